"""Model images for the screen: float pixels in [0, 1] -> uint8 -> QImage / QPixmap, NaN-safe.

Every view converts through here, so a broken model's output (NaN, inf) shows the same everywhere:
NaN as black, +inf as white, -inf as black, everything else clamped to [0, 1] first. Nothing here
raises for odd values, so a paint never crashes on them.

- `to_uint8(x)`: any shape (one image, a batch), the same shape in uint8 (engines.images.unit_to_uint8,
  the project's one rounding: x * 255 + 0.5).
- `image_array(image)`: one (H, W) or (H, W, C) image -> contiguous uint8 (H, W, 1 or 3).
- `to_qimage(image)`, `to_pixmap(image, size)`: one image for Qt (the QImage owns its pixels).
- `mosaic(images, rows, cols)`: a batch laid out as one picture.
- `blank_pixmap(size)`: a transparent square, the stand-in for a thumbnail still being decoded.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QImage, QPixmap

from engines.images import unit_to_uint8 as to_uint8

__all__ = ["blank_pixmap", "image_array", "mosaic", "to_pixmap", "to_qimage", "to_uint8"]


def image_array(image: np.ndarray) -> np.ndarray:
    """One (H, W) or (H, W, C) image, float in [0, 1] or uint8 -> contiguous uint8 (H, W, 1 or 3).
    Two channels keep the first, four drop alpha; NaN-safe (see to_uint8)."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(f"an image must be (H, W) or (H, W, C), not {array.shape}")
    if array.shape[2] not in (1, 3):
        array = array[:, :, :3] if array.shape[2] > 3 else array[:, :, :1]
    return np.ascontiguousarray(to_uint8(array))


def to_qimage(image: np.ndarray) -> QImage:
    """One image (see image_array) -> a QImage that owns a copy of the pixels."""
    array = image_array(image)
    height, width, channels = array.shape
    fmt = QImage.Format.Format_Grayscale8 if channels == 1 else QImage.Format.Format_RGB888
    return QImage(array.data, width, height, width * channels, fmt).copy()


def to_pixmap(image: np.ndarray, size: int | None = None) -> QPixmap:
    """A pixmap, scaled to fit `size` pixels with crisp (nearest) pixels when given."""
    pix = QPixmap.fromImage(to_qimage(image))
    if size:
        pix = pix.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
    return pix


def mosaic(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows*cols, H, W, C) -> one (rows*H, cols*W, C) picture, row-major, no padding."""
    n, h, w, c = images.shape
    if n != rows * cols:
        raise ValueError(f"{n} images do not fill a {rows} x {cols} mosaic")
    return images.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def blank_pixmap(size: int) -> QPixmap:
    """A transparent size x size pixmap: it keeps a thumbnail's room in a list until the image comes."""
    pix = QPixmap(size, size)
    pix.fill(QColor(0, 0, 0, 0))
    return pix
