"""A widget that shows one small model image large, with crisp (nearest-neighbour) pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from .pixels import image_array, to_qimage

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def local_files(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    mime = event.mimeData()
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


class ImageView(QWidget):
    """Paints the current image scaled to fit, keeping its aspect, without smoothing.

    Dropping an image file on it emits `imageDropped(path)` (other files pass to the parent)."""

    imageDropped = Signal(str)

    def __init__(self, parent: QWidget | None = None, placeholder: str = "", accept_image_drops: bool = False) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._array: np.ndarray | None = None
        self._placeholder = placeholder
        self.setMinimumSize(96, 96)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAcceptDrops(accept_image_drops)
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(32, 32, 36))
        self.setPalette(palette)

    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    # --- content ---------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray | None) -> None:
        """Show an (H, W[, C]) float [0, 1] or uint8 image; None clears the view."""
        self._array = None if image is None else image_array(image)
        self._image = None if image is None else to_qimage(self._array)
        self.update()

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def array(self) -> np.ndarray | None:
        """The shown image as uint8 (H, W, C), or None."""
        return self._array

    def image_rect(self) -> QRect:
        """Where the image is drawn: the largest rect of its aspect that fits, centred."""
        if self._image is None:
            return QRect()
        w, h = self._image.width(), self._image.height()
        scale = min(self.width() / w, self.height() / h)
        if scale >= 1:  # whole multiples keep every source pixel the same size on screen
            scale = float(int(scale))
        dw, dh = int(w * scale), int(h * scale)
        return QRect((self.width() - dw) // 2, (self.height() - dh) // 2, dw, dh)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            if self._image is not None:
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
                painter.drawImage(self.image_rect(), self._image)
            elif self._placeholder:
                painter.setPen(QColor(200, 200, 205))
                painter.drawText(
                    self.rect().adjusted(12, 12, -12, -12),
                    Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                    self._placeholder,
                )
        finally:
            painter.end()

    # --- dropping an image file ------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        files = local_files(event)
        if files and files[0].suffix.lower() in IMAGE_SUFFIXES:
            event.acceptProposedAction()
        else:
            event.ignore()  # e.g. a checkpoint: the main window takes it

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event)
        if files and files[0].suffix.lower() in IMAGE_SUFFIXES:
            event.acceptProposedAction()
            self.imageDropped.emit(str(files[0]))
        else:
            event.ignore()
