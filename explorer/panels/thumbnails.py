"""Thumbnails of latents in a list widget, decoded in a worker and kept per latent.

`Thumbnails(list_widget, size, slot)` makes the list's items (`item(z, text)`: the thumbnail when it
is known, else a transparent stand-in of the same size, so nothing moves when it comes) and decodes the
missing ones (`decode_missing(model, latents)`, in `slot`, a workers.Latest: the newest request wins); each arrives in every
item of its latent. The Bookmarks strip and the Interpolate keyframes use it; `forget()` on a model change.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from explorer.pixels import blank_pixmap, to_pixmap
from explorer.workers import Latest

from .panel_tools import decode_job

KEY = Qt.ItemDataRole.UserRole  # item data: the latent's bytes
DECODED = Qt.ItemDataRole.UserRole + 1  # item data: True once the item shows its thumbnail


def icon_list(size: int, one_row: bool = False) -> QListWidget:
    """A list of size x size icons that stay where they are (one row that scrolls, when `one_row`)."""
    widget = QListWidget()
    widget.setViewMode(QListView.ViewMode.IconMode)
    widget.setMovement(QListView.Movement.Static)
    widget.setIconSize(QSize(size, size))
    if one_row:
        widget.setFlow(QListView.Flow.LeftToRight)
        widget.setWrapping(False)
    return widget


class Thumbnails:
    def __init__(self, widget: QListWidget, size: int, slot: Latest) -> None:
        self.widget, self.size = widget, size
        self._icons: dict[bytes, QIcon] = {}
        self._slot = slot

    def item(self, z: np.ndarray, text: str) -> QListWidgetItem:
        """A new item for latent z (not added to the list)."""
        key = np.asarray(z, np.float32).tobytes()
        icon = self._icons.get(key)
        item = QListWidgetItem(icon or QIcon(blank_pixmap(self.size)), text)
        item.setData(KEY, key)
        item.setData(DECODED, icon is not None)
        return item

    def decode_missing(self, model, latents: list[np.ndarray], on_failed=None) -> None:
        """Decode, in a worker, the thumbnails of `latents` not known yet (nothing when all are)."""
        missing = {np.asarray(z, np.float32).tobytes(): z for z in latents}
        missing = {key: z for key, z in missing.items() if key not in self._icons}
        if missing and model is not None:
            self._slot.start(
                decode_job,
                model,
                np.stack(list(missing.values())),
                on_result=lambda images: self._arrived(list(missing), images),
                on_failed=on_failed,
            )

    def forget(self) -> None:
        """Another model: drop the known thumbnails and the decode in progress."""
        self._slot.cancel()
        self._icons = {}

    def shown(self) -> int:
        """How many items of the list show their thumbnail."""
        return sum(bool(self.widget.item(row).data(DECODED)) for row in range(self.widget.count()))

    def _arrived(self, keys: list[bytes], images: np.ndarray) -> None:
        self._icons.update((key, QIcon(to_pixmap(image, self.size))) for key, image in zip(keys, images, strict=True))
        blocked = self.widget.blockSignals(True)  # an icon is not an edit (the bookmark strip renames on itemChanged)
        try:
            for row in range(self.widget.count()):
                item = self.widget.item(row)
                if not item.data(DECODED) and item.data(KEY) in self._icons:
                    item.setIcon(self._icons[item.data(KEY)])
                    item.setData(DECODED, True)
        finally:
            self.widget.blockSignals(blocked)
