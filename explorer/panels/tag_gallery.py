"""The tagging gallery of the Directions tab: samples the user marks yes or no with a click (left:
yes, right: no; the same click again clears the tag), for a boundary fitted on their latents.

A tag shows twice, so it reads at a glance and without colour: a coloured frame around the thumbnail
and "yes"/"no" under it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QMouseEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

from explorer.pixels import blank_pixmap, to_pixmap

TAG_PX = 64
FRAME = 4
COLOURS = {True: QColor("#3fb950"), False: QColor("#f85149")}
TEXT = {True: "yes", False: "no", None: ""}


class TagGallery(QListWidget):
    """Thumbnails of `latents`; `tags` maps a row to True (yes) or False (no)."""

    tagsChanged = Signal()

    def __init__(self, size: int = TAG_PX, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.latents = np.zeros((0, 0), np.float32)
        self.tags: dict[int, bool] = {}
        self._pixmaps: list[QPixmap] = []
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(size, size))
        self.setGridSize(QSize(size + 12, size + 30))
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setToolTip("Left click: yes. Right click: no. The same click again clears the tag.")

    # --- content --------------------------------------------------------------------------------
    def set_samples(self, latents: np.ndarray) -> None:
        """New samples (their images follow with set_images); every tag is dropped."""
        self.latents = np.asarray(latents, np.float32)
        self.tags = {}
        self._pixmaps = [blank_pixmap(self.size) for _ in range(len(self.latents))]
        self.clear()
        for row in range(len(self.latents)):
            item = QListWidgetItem(QIcon(self._pixmaps[row]), "")
            item.setToolTip(f"sample {row}: left click yes, right click no")
            self.addItem(item)
        self.tagsChanged.emit()

    def set_images(self, images: np.ndarray) -> None:
        self._pixmaps = [to_pixmap(image, self.size) for image in images]
        for row in range(min(self.count(), len(self._pixmaps))):
            self._show(row)

    # --- tags -----------------------------------------------------------------------------------
    def set_tag(self, row: int, value: bool | None) -> None:
        """Tag sample `row` yes (True), no (False) or not at all (None)."""
        if value is None:
            self.tags.pop(row, None)
        else:
            self.tags[row] = bool(value)
        self._show(row)
        self.tagsChanged.emit()

    def toggle(self, row: int, value: bool) -> None:
        """What a click does: tag `value`, or clear the tag when it already is `value`."""
        self.set_tag(row, None if self.tags.get(row) == value else value)

    def counts(self) -> tuple[int, int]:
        """(yes, no)."""
        yes = sum(self.tags.values())
        return yes, len(self.tags) - yes

    def tagged(self) -> tuple[np.ndarray, np.ndarray]:
        """The tagged latents (N, D) and their tags (N,) bool, in row order."""
        rows = sorted(self.tags)
        return self.latents[rows], np.array([self.tags[r] for r in rows], bool)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        item = self.itemAt(event.position().toPoint())
        button = event.button()
        if item is None or button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            super().mousePressEvent(event)
            return
        self.toggle(self.row(item), button == Qt.MouseButton.LeftButton)
        event.accept()

    def _show(self, row: int) -> None:
        item = self.item(row)
        if item is None:
            return
        value = self.tags.get(row)
        pix = self._pixmaps[row] if row < len(self._pixmaps) else blank_pixmap(self.size)
        if value is not None:
            pix = QPixmap(pix)  # a copy: the untagged image stays for when the tag is cleared
            painter = QPainter(pix)
            painter.setPen(QPen(COLOURS[value], FRAME))
            painter.drawRect(pix.rect().adjusted(FRAME // 2, FRAME // 2, -FRAME // 2, -FRAME // 2))
            painter.end()
        item.setIcon(QIcon(pix))
        item.setText(TEXT[value])
        item.setForeground(COLOURS[value] if value is not None else QColor("#bbbbbb"))
