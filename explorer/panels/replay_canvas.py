"""The Replay tab's canvas: the image so far, with the current pixel outlined and, optionally, the
pixels it can see (its receptive field) tinted."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen

from explorer.image_view import ImageView

CURRENT_COLOUR = QColor(255, 64, 48)
FIELD_RGBA = (255, 196, 0, 110)


class ReplayCanvas(ImageView):
    def __init__(self, parent=None) -> None:
        super().__init__(parent, placeholder="Sample or complete an image to replay its generation")
        self.current: tuple[int, int] | None = None  # (row, col) outlined
        self.field: np.ndarray | None = None  # (S, S) bool, tinted
        self._field_image: QImage | None = None

    def set_marks(self, current: tuple[int, int] | None, field: np.ndarray | None) -> None:
        self.current = current
        if field is None:
            self.field, self._field_image = None, None
        elif self.field is None or not np.array_equal(field, self.field):
            self.field = field.copy()
            rgba = np.zeros((*field.shape, 4), np.uint8)
            rgba[field] = FIELD_RGBA
            h, w = field.shape
            # Premultiplied-free RGBA8888: one translucent image, scaled like the picture (crisp pixels).
            self._field_image = QImage(
                np.ascontiguousarray(rgba).data, w, h, 4 * w, QImage.Format.Format_RGBA8888
            ).copy()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        image = self.image()
        if image is None:
            return
        rect = self.image_rect()
        scale = rect.width() / image.width()
        painter = QPainter(self)
        try:
            if self._field_image is not None:
                painter.drawImage(rect, self._field_image)
            if self.current is not None:
                row, col = self.current
                pen = QPen(CURRENT_COLOUR)
                pen.setWidthF(max(2.0, scale / 6))
                painter.setPen(pen)
                painter.drawRect(QRectF(rect.x() + col * scale, rect.y() + row * scale, scale, scale))
        finally:
            painter.end()
