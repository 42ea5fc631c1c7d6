"""The bookmark strip: a horizontal row of thumbnails of saved latents; click one to jump to it.

The thumbnails are decoded in a worker (explorer.workers.Latest: the newest list of bookmarks wins) and
kept per latent for the open model, so a rename or a new bookmark decodes only what is new."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QListView, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from .panels.panel_tools import decode_job
from .pixels import blank_pixmap, to_pixmap
from .state import ExplorerState
from .workers import Latest

log = logging.getLogger(__name__)
THUMB = 64
DECODED = Qt.ItemDataRole.UserRole  # item data: True once the item shows its decoded thumbnail


class BookmarkStrip(QWidget):
    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._icons: dict[bytes, QIcon] = {}  # z -> thumbnail, for the open model
        self._thumbs = Latest(self)
        self.list = QListWidget()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSpacing(4)
        self.list.setMinimumHeight(THUMB + 44)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.list.setEditTriggers(QListWidget.EditTrigger.EditKeyPressed | QListWidget.EditTrigger.DoubleClicked)
        self.list.itemClicked.connect(self._jump)
        self.list.itemChanged.connect(self._renamed)
        QShortcut(QKeySequence.StandardKey.Delete, self.list, self.delete_selected)

        self.add_button = QPushButton("Add")
        self.add_button.setToolTip("Bookmark the current z (B)")
        self.add_button.clicked.connect(self.add)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected bookmark (Del)")
        self.delete_button.clicked.connect(self.delete_selected)
        buttons = QVBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.delete_button)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.list, 1)

        state.bookmarksChanged.connect(self.refresh)
        state.modelChanged.connect(self._on_model)
        self.refresh()

    def add(self) -> None:
        if self.state.latent_dim:
            self.state.add_bookmark()

    def delete_selected(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.state.bookmarks):
            self.state.remove_bookmark(row)

    def _jump(self, item: QListWidgetItem) -> None:
        row = self.list.row(item)
        if 0 <= row < len(self.state.bookmarks):
            self.state.set_z(self.state.bookmarks[row].z)

    def _renamed(self, item: QListWidgetItem) -> None:
        row = self.list.row(item)
        if 0 <= row < len(self.state.bookmarks) and item.text() and item.text() != self.state.bookmarks[row].name:
            self.state.rename_bookmark(row, item.text())

    def _on_model(self) -> None:
        self._thumbs.cancel()
        self._icons = {}
        self.refresh()

    def refresh(self) -> None:
        has_latent = self.state.latent_dim > 0
        self.add_button.setEnabled(has_latent)
        self.delete_button.setEnabled(has_latent)
        marks = self.state.bookmarks
        self.list.blockSignals(True)  # itemChanged would take the rebuild for renames
        try:
            self.list.clear()
            for mark in marks:  # a thumbnail still decoding keeps its room, so nothing moves when it comes
                icon = self._icons.get(mark.z.tobytes())
                item = QListWidgetItem(icon or QIcon(blank_pixmap(THUMB)), mark.name)
                item.setData(DECODED, icon is not None)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                item.setToolTip(f"{mark.name}: click to jump here; double-click to rename")
                self.list.addItem(item)
        finally:
            self.list.blockSignals(False)
        missing = {m.z.tobytes(): m.z for m in marks if m.z.tobytes() not in self._icons}
        if missing and self.state.model is not None:
            self._thumbs.start(decode_job, self.state.model, np.stack(list(missing.values())),
                               on_result=lambda images: self._show_thumbnails(list(missing), images),
                               on_failed=lambda message: log.warning("bookmark thumbnails failed: %s", message))

    def _show_thumbnails(self, keys: list[bytes], images: np.ndarray) -> None:
        self._icons.update((key, QIcon(to_pixmap(image, THUMB))) for key, image in zip(keys, images, strict=True))
        self.list.blockSignals(True)
        try:
            for row, mark in enumerate(self.state.bookmarks):
                if row < self.list.count() and mark.z.tobytes() in keys:
                    self.list.item(row).setIcon(self._icons[mark.z.tobytes()])
                    self.list.item(row).setData(DECODED, True)
        finally:
            self.list.blockSignals(False)

    def thumbnail_count(self) -> int:
        """How many bookmarks show their thumbnail."""
        return sum(bool(self.list.item(row).data(DECODED)) for row in range(self.list.count()))
