"""The bookmark strip: a horizontal row of thumbnails of saved latents; click one to jump to it."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QListView, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from .image_view import to_qimage
from .state import ExplorerState

log = logging.getLogger(__name__)
THUMB = 64


class BookmarkStrip(QWidget):
    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
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
        state.modelChanged.connect(self.refresh)
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

    def refresh(self) -> None:
        has_latent = self.state.latent_dim > 0
        self.add_button.setEnabled(has_latent)
        self.delete_button.setEnabled(has_latent)
        marks = self.state.bookmarks
        images = self._thumbnails([m.z for m in marks]) if marks else []
        self.list.blockSignals(True)  # itemChanged would take the rebuild for renames
        try:
            self.list.clear()
            for mark, image in zip(marks, images, strict=True):
                item = QListWidgetItem(mark.name)
                if image is not None:
                    pixmap = QPixmap.fromImage(to_qimage(image)).scaled(
                        THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
                    item.setIcon(QIcon(pixmap))
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                item.setToolTip(f"{mark.name}: click to jump here; double-click to rename")
                self.list.addItem(item)
        finally:
            self.list.blockSignals(False)

    def _thumbnails(self, zs: list[np.ndarray]) -> list[np.ndarray | None]:
        """Decoded in one small batch on the GUI thread: bookmarks change rarely, and a few images are cheap."""
        try:
            return list(self.state.decode(np.stack(zs)))
        except Exception:  # noqa: BLE001 - a thumbnail is not worth an error dialog
            log.exception("bookmark thumbnails failed")
            return [None] * len(zs)
