"""The Replay tab's Surprise page: where a PixelCNN is surprised by a dataset image, and mask-and-resample.

For a held-out image: heat maps of each pixel's negative log-likelihood and of its predictive entropy
(engines.surprise, one forward pass). Paint a region on the image with the mouse (right button erases),
then Resample: the region's pixels are drawn again in raster order, each conditioned on everything
before it, at the chosen temperature; the rest of the image is kept. The maps follow the new image.

From code (tests): `show_image(index)`, `paint(row, col)`, `resample()` (each returns the Job or None),
`region`, `maps`, `levels`.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engines.data.sample import heldout_or_sample
from engines.replay import image_levels
from engines.surprise import SurpriseMaps, resample_region, surprise_maps
from explorer.image_view import ImageView
from explorer.workers import Job, Latest

from .panel_tools import MAX_SEED, laid_out, spin_box
from .training_curves import Column

REGION_RGBA = (255, 40, 40, 120)
BRUSH = 1  # pixels painted around the cursor (a 3x3 brush)


def heat(values: np.ndarray) -> np.ndarray:
    """(H, W) values >= 0 -> (H, W, 3) uint8 through the inferno colour map, 0 black and the maximum yellow."""
    top = float(values.max()) if values.size else 0.0
    scaled = values / top if top > 0 else np.zeros_like(values)
    return pg.colormap.get("inferno").map(scaled.astype(np.float32), mode="byte")[..., :3].reshape(*values.shape, 3)


def image_job(job, model, dataset_source, index: int) -> tuple[np.ndarray, SurpriseMaps]:
    """Held-out image `index` as the model's levels, and its maps."""
    state, checkpoint = dataset_source
    if state is not None and state.checkpoint is checkpoint:
        dataset = state.dataset(train=False)
    else:
        dataset = heldout_or_sample(checkpoint.dataset, checkpoint.sample)
    levels = image_levels(model, dataset, index)
    return levels, surprise_maps(model, levels)


def resample_job(job, model, levels: np.ndarray, region: np.ndarray, temperature: float, seed: int):
    new = resample_region(model, levels, region, temperature, generator=torch.Generator().manual_seed(seed))
    return new, surprise_maps(model, new)


class PaintCanvas(ImageView):
    """The image, with a region painted on it by the mouse (left paints, right erases)."""

    def __init__(self, on_paint) -> None:
        super().__init__(placeholder="Choose a dataset image")
        self.region: np.ndarray | None = None  # (H, W) bool
        self._overlay: QImage | None = None
        self._on_paint = on_paint
        self._erase = False

    def set_region(self, region: np.ndarray | None) -> None:
        self.region = None if region is None else region.copy()
        self._overlay = None
        if self.region is not None:
            rgba = np.zeros((*self.region.shape, 4), np.uint8)
            rgba[self.region] = REGION_RGBA
            h, w = self.region.shape
            self._overlay = QImage(np.ascontiguousarray(rgba).data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self.update()

    def pixel_at(self, pos: QPoint) -> tuple[int, int] | None:
        image, rect = self.image(), self.image_rect()
        if image is None or not rect.contains(pos):
            return None
        scale = rect.width() / image.width()
        return int((pos.y() - rect.y()) / scale), int((pos.x() - rect.x()) / scale)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._erase = event.button() == Qt.MouseButton.RightButton
        self._stroke(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & (Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton):
            self._stroke(event)

    def _stroke(self, event: QMouseEvent) -> None:
        pixel = self.pixel_at(event.position().toPoint())
        if pixel is not None:
            self._on_paint(*pixel, erase=self._erase)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self._overlay is not None and self.image() is not None:
            painter = QPainter(self)
            try:
                painter.drawImage(self.image_rect(), self._overlay)
            finally:
                painter.end()


class SurprisePage(QWidget):
    """The page; `set_model(checkpoint, state)` on every model change (None: not a PixelCNN)."""

    def __init__(self, image_slot: Latest, resample_slot: Latest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.checkpoint, self.state = None, None
        self.levels: np.ndarray | None = None  # (C, H, W) the image shown
        self.maps: SurpriseMaps | None = None
        self.region: np.ndarray | None = None
        self.index_shown: int | None = None
        self._images, self._resamples = image_slot, resample_slot

        left, col = laid_out(QVBoxLayout, Column(), width=290, margins=(0, 0, 4, 0))
        box, form = laid_out(QFormLayout, QGroupBox("Dataset image"), margins=None)
        self.index_spin = spin_box(0, 10**7, prefix="#", tip="An image of the checkpoint's held-out split")
        form.addRow("Image", self.index_spin)
        self.show_button = QPushButton("Show surprise")
        form.addRow(self.show_button)
        col.addWidget(box)
        rbox, rform = laid_out(QFormLayout, QGroupBox("Mask and resample"), margins=None)
        hint = QLabel("Paint a region on the image (right button erases).")
        hint.setWordWrap(True)
        rform.addRow(hint)
        self.temperature_spin = spin_box(0.0, 3.0, 1.0, step=0.1, tip="0: always the most likely level")
        rform.addRow("Temperature", self.temperature_spin)
        self.seed_spin = spin_box(0, MAX_SEED)
        rform.addRow("Seed", self.seed_spin)
        self.resample_button = QPushButton("Resample region")
        self.clear_button = QPushButton("Clear region")
        rform.addRow(self.resample_button)
        rform.addRow(self.clear_button)
        col.addWidget(rbox)
        self.status = QLabel()
        self.status.setWordWrap(True)
        col.addWidget(self.status)
        col.addStretch(1)

        self.canvas = PaintCanvas(self.paint)
        self.nll_view = ImageView(placeholder="-log p(x_i | x_<i)")
        self.entropy_view = ImageView(placeholder="entropy of p(. | x_<i)")
        views = QHBoxLayout()
        for title, view in (
            ("Image (paint a region)", self.canvas),
            ("Surprise: -log p(pixel | pixels before), nats", self.nll_view),
            ("Uncertainty: predictive entropy, nats", self.entropy_view),
        ):
            holder, vcol = laid_out(QVBoxLayout)
            vcol.addWidget(QLabel(title))
            view.setMinimumSize(200, 200)
            vcol.addWidget(view, 1)
            views.addWidget(holder, 1)
        right, rcol = laid_out(QVBoxLayout, margins=(4, 0, 0, 0))
        rcol.addLayout(views, 1)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        rcol.addWidget(self.caption)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 4, 4, 4)
        row.addWidget(left)
        row.addWidget(right, 1)
        self.show_button.clicked.connect(lambda: self.show_image())
        self.resample_button.clicked.connect(lambda: self.resample())
        self.clear_button.clicked.connect(self.clear_region)

    def set_model(self, checkpoint, state) -> None:
        self.checkpoint, self.state = checkpoint, state
        self.levels = self.maps = self.region = self.index_shown = None
        for view in (self.canvas, self.nll_view, self.entropy_view):
            view.set_image(None)
        self.canvas.set_region(None)
        self.caption.setText("")
        self.status.setText("Choose a held-out image and Show surprise." if checkpoint is not None else "")
        self._update_buttons()

    # --- actions -----------------------------------------------------------------------------------
    def show_image(self, index: int | None = None) -> Job | None:
        if self.checkpoint is None:
            return None
        index = self.index_spin.value() if index is None else index
        self.index_spin.setValue(index)
        self.status.setText(f"Reading image #{index}…")
        return self._images.start(
            image_job,
            self.checkpoint.model,
            (self.state, self.checkpoint),
            index,
            on_result=lambda value: self._shown(value, index),
            on_failed=self._failed,
        )

    def paint(self, row: int, col: int, erase: bool = False) -> None:
        if self.levels is None:
            return
        if self.region is None:
            self.region = np.zeros(self.levels.shape[1:], bool)
        self.region[max(0, row - BRUSH) : row + BRUSH + 1, max(0, col - BRUSH) : col + BRUSH + 1] = not erase
        self.canvas.set_region(self.region)
        self._update_buttons()

    def clear_region(self) -> None:
        self.region = None
        self.canvas.set_region(None)
        self._update_buttons()

    def resample(self) -> Job | None:
        if self.levels is None or self.region is None or not self.region.any():
            return None
        count = int(self.region.sum())
        self.status.setText(f"Resampling {count} pixels in raster order…")
        self.resample_button.setEnabled(False)
        return self._resamples.start(
            resample_job,
            self.checkpoint.model,
            self.levels.copy(),
            self.region.copy(),
            float(self.temperature_spin.value()),
            int(self.seed_spin.value()),
            on_result=self._resampled,
            on_failed=self._failed,
        )

    # --- results -----------------------------------------------------------------------------------
    def _shown(self, value, index: int) -> None:
        self.levels, self.maps = value
        self.index_shown = index
        self.region = None
        self.canvas.set_region(None)
        self._draw()
        self.status.setText(f"Image #{index}.")

    def _resampled(self, value) -> None:
        old = self.maps.total_nll if self.maps is not None else float("nan")
        self.levels, self.maps = value
        self._draw()
        self.status.setText(
            f"Resampled {int(self.region.sum())} pixels at temperature {self.temperature_spin.value():g}: "
            f"NLL {old:.1f} -> {self.maps.total_nll:.1f} nats."
        )
        self._update_buttons()

    def _failed(self, message: str) -> None:
        self.status.setText(message)
        self._update_buttons()

    def _draw(self) -> None:
        levels, maps = self.levels, self.maps
        top = max(1, self.checkpoint.model.config.levels - 1)
        self.canvas.set_image((levels.transpose(1, 2, 0) / top).astype(np.float32))
        self.nll_view.set_image(heat(maps.nll))
        self.entropy_view.set_image(heat(maps.entropy))
        pixels = maps.nll.size
        self.caption.setText(
            f"NLL {maps.total_nll:.1f} nats ({maps.total_nll / (pixels * levels.shape[0] * np.log(2)):.3f} bits/dim); "
            f"most surprising pixel {maps.nll.max():.2f} nats, most uncertain {maps.entropy.max():.2f} nats "
            "(both maps scaled from 0, black, to their maximum, yellow)."
        )
        self._update_buttons()

    def _update_buttons(self) -> None:
        painted = self.region is not None and bool(self.region.any())
        self.resample_button.setEnabled(painted and not self._resamples.busy())
        self.clear_button.setEnabled(painted)
