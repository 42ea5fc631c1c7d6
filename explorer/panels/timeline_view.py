"""A training timeline as a strip: a slider over the kept snapshots, and what each one's decoder makes of
the same fixed latents (and, for a VAE, of the same real images: originals above reconstructions).
The Train tab fills it live from Snapshot events; the Timeline tab from an opened checkpoint's snapshots."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from explorer.image_view import ImageView

from .panel_tools import laid_out


class TimelineStrip(QWidget):
    """`add(label, samples, reconstructions)` appends a moment; the slider follows the newest one unless it
    was moved back. `frames` holds (label, samples, reconstructions); `shown` is the index on screen."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frames: list[tuple[str, np.ndarray, np.ndarray | None]] = []
        self.shown = -1
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel(title)
        self.title.setWordWrap(True)
        lay.addWidget(self.title)
        row = QHBoxLayout()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.label = QLabel("no snapshots yet")
        self.label.setMinimumWidth(120)
        row.addWidget(self.slider, 1)
        row.addWidget(self.label)
        lay.addLayout(row)
        views, vrow = laid_out(QHBoxLayout)
        self.samples_view = ImageView(placeholder="Fixed latents, decoded by each snapshot")
        self.recon_view = ImageView(placeholder="Real images (top) and their reconstructions")
        for view in (self.samples_view, self.recon_view):
            view.setMinimumSize(96, 96)
            vrow.addWidget(view, 1)
        lay.addWidget(views, 1)
        self.slider.valueChanged.connect(self.show_index)

    def clear(self) -> None:
        self.frames, self.shown = [], -1
        self.slider.setRange(0, 0)
        self.slider.setEnabled(False)
        self.label.setText("no snapshots yet")
        self.samples_view.set_image(None)
        self.recon_view.set_image(None)
        self.recon_view.hide()

    def set_frames(self, frames: list[tuple[str, np.ndarray, np.ndarray | None]]) -> None:
        self.clear()
        for frame in frames:
            self.add(*frame)

    def add(self, label: str, samples: np.ndarray, reconstructions: np.ndarray | None) -> None:
        follow = self.shown == len(self.frames) - 1
        self.frames.append((label, samples, reconstructions))
        self.slider.setEnabled(True)
        self.slider.setRange(0, len(self.frames) - 1)
        if follow:
            self.slider.setValue(len(self.frames) - 1)
            self.show_index(len(self.frames) - 1)

    def show_index(self, i: int) -> None:
        if not 0 <= i < len(self.frames):
            return
        self.shown = i
        label, samples, recon = self.frames[i]
        self.label.setText(f"{label} ({i + 1}/{len(self.frames)})")
        self.samples_view.set_image(samples)
        self.recon_view.setVisible(recon is not None)
        if recon is not None:
            self.recon_view.set_image(recon)
