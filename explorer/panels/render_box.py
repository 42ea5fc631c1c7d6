"""The video settings and progress that the Interpolate and Control tabs share: frame size, filter,
seamless loop (and, for walks, duration and frame rate); a progress bar and Cancel for the render,
which runs `engines.export.render_latents` in a worker (explorer.workers)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from engines.export import FILTERS, VideoSettings, render_latents
from explorer.workers import Job, start_job

from .panel_tools import spin_box

log = logging.getLogger(__name__)

SIZES = (None, 256, 512, 768, 1024)  # None: the model's own pixels
FILE_FILTERS = {"png": "PNG image (*.png)", "gif": "Animated GIF (*.gif)", "mp4": "MP4 video (*.mp4)"}


def _render_job(job: Job, model, latents: np.ndarray, kind: str, path: str, meta: dict, settings) -> list[Path]:
    return render_latents(
        model,
        latents,
        kind,
        path,
        meta,
        settings,
        progress=lambda done, total: job.report((done, total)),
        should_stop=lambda: job.cancelled,
    )


def ask_video_path(parent: QWidget, kind: str, name: str) -> str:
    """A save dialog for a `kind` file (empty when cancelled)."""
    path, _ = QFileDialog.getSaveFileName(parent, f"Export {kind.upper()}", f"{name}.{kind}", FILE_FILTERS[kind])
    return path


class RenderBox(QGroupBox):
    """Video settings and the render's progress. `timing=True` adds duration and fps (walks); the
    Interpolate tab has its own frame count and fps. `rendered(files)` when a render is written."""

    rendered = Signal(list)

    def __init__(self, title: str = "Video", timing: bool = False, size: int | None = None) -> None:
        super().__init__(title)
        form = QFormLayout(self)
        self.seconds_spin = spin_box(1.0, 600.0, 10.0, suffix=" s")
        self.fps_spin = spin_box(1.0, 60.0, 30.0, suffix=" fps")
        if timing:
            form.addRow("Duration", self.seconds_spin)
            form.addRow("Frame rate", self.fps_spin)
        self.size_combo = QComboBox()
        for value in SIZES:
            self.size_combo.addItem("model pixels" if value is None else f"{value} px", value)
        self.size_combo.setCurrentIndex(SIZES.index(size))
        self.size_combo.setToolTip("The longer side of each frame (MP4 enlarges model pixels to at least 256)")
        self.filter_combo = QComboBox()
        self.filter_combo.addItems(FILTERS)
        self.filter_combo.setToolTip("nearest: crisp model pixels; smooth: bicubic")
        size_row = QHBoxLayout()
        size_row.addWidget(self.size_combo)
        size_row.addWidget(self.filter_combo)
        form.addRow("Frame size", size_row)
        self.loop_check = QCheckBox("Seamless loop (the last frame leads into the first)")
        form.addRow(self.loop_check)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        form.addRow(progress_row)
        self.status = QLabel()
        self.status.setWordWrap(True)
        form.addRow(self.status)
        self.job: Job | None = None
        self._idle()

    def settings(self, fps: float | None = None) -> VideoSettings:
        """The chosen settings, at `fps` (default: this box's)."""
        return VideoSettings(
            fps=float(fps if fps is not None else self.fps_spin.value()),
            size=self.size_combo.currentData(),
            filter=self.filter_combo.currentText(),
        )

    def frames(self) -> int:
        return max(2, round(self.seconds_spin.value() * self.fps_spin.value()))

    def busy(self) -> bool:
        return self.job is not None

    def start(
        self, model, latents: np.ndarray, kind: str, path: str | Path, meta: dict, fps: float | None = None
    ) -> Job:
        """Render `latents` as `kind` to `path` in a worker, showing progress; returns the job."""
        self.cancel()
        settings = self.settings(fps)
        self.progress.setRange(0, len(latents))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.status.setText(f"Rendering {len(latents)} frames to {Path(path).name}…")
        job = self.job = start_job(_render_job, model, latents, kind, str(path), meta, settings)
        job.progress.connect(lambda done_total: self.progress.setValue(done_total[0]))
        job.result.connect(self._written)
        job.failed.connect(lambda message: self.status.setText(f"Render failed: {message}"))
        job.finished.connect(lambda: self._ended(job))
        return job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Render cancelled; nothing was written.")

    def _written(self, files: list) -> None:
        if files:
            self.status.setText("Wrote " + ", ".join(Path(f).name for f in files))
            self.rendered.emit(files)

    def _ended(self, job: Job) -> None:
        if job is self.job:
            self.job = None
            self._idle()

    def _idle(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
