"""The bookmark strip: a horizontal row of thumbnails of saved latents; click one to jump to it.

The thumbnails are decoded in a worker and kept per latent for the open model (panels.thumbnails), so a
rename or a new bookmark decodes only what is new."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from .panels.thumbnails import Thumbnails, icon_list
from .state import ExplorerState
from .workers import Latest

log = logging.getLogger(__name__)
THUMB = 64


class BookmarkStrip(QWidget):
    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.list = icon_list(THUMB, one_row=True)
        self.thumbnails = Thumbnails(self.list, THUMB, Latest(self))
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
        self.thumbnails.forget()
        self.refresh()

    def refresh(self) -> None:
        has_latent = self.state.latent_dim > 0
        self.add_button.setEnabled(has_latent)
        self.delete_button.setEnabled(has_latent)
        marks = self.state.bookmarks
        self.list.blockSignals(True)  # itemChanged would take the rebuild for renames
        try:
            self.list.clear()
            for mark in marks:
                item = self.thumbnails.item(mark.z, mark.name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                item.setToolTip(f"{mark.name}: click to jump here; double-click to rename")
                self.list.addItem(item)
        finally:
            self.list.blockSignals(False)
        self.thumbnails.decode_missing(
            self.state.model,
            [m.z for m in marks],
            on_failed=lambda message: log.warning("bookmark thumbnails failed: %s", message),
        )

    def thumbnail_count(self) -> int:
        """How many bookmarks show their thumbnail."""
        return self.thumbnails.shown()
