"""Small pieces the latent panels share: image conversion, the "needs a VAE or GAN" gate, and a
job slot in which the newest request wins."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from engines.images import unit_to_uint8
from explorer.image_view import to_qimage as _to_qimage
from explorer.state import ExplorerState
from explorer.workers import Job, WorkError, start_job

log = logging.getLogger(__name__)

NONFINITE_MESSAGE = "the model's output holds NaN/inf values (its weights are broken: see the Model panel)"


def require_finite(*arrays: np.ndarray, what: str = "the model's output") -> None:
    """Raise WorkError (a one-line message, no traceback) when any array holds NaN or inf."""
    if not all(np.all(np.isfinite(np.asarray(a))) for a in arrays):
        raise WorkError(NONFINITE_MESSAGE.replace("the model's output", what, 1))


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] (any shape, e.g. a batch) -> uint8, rounded the way engines.images does
    (x * 255 + 0.5); NaN shows as black and infinities are clamped (never raises)."""
    return unit_to_uint8(images)


def to_qimage(image: np.ndarray) -> QImage:
    """One (H, W, C) image (float in [0, 1] or uint8, C = 1 or 3) -> an owned QImage (NaN-safe)."""
    return _to_qimage(image)


def to_pixmap(image: np.ndarray, size: int | None = None) -> QPixmap:
    """A pixmap, scaled to `size` pixels with crisp (nearest) pixels when given."""
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


def model_problem(state: ExplorerState) -> str | None:
    """Why a latent panel cannot work with the state's model, or None when it can."""
    if state.model is None:
        return "Open a checkpoint to use this panel."
    if not state.has_latent:
        return ("This panel needs a model with a latent space, such as a VAE or GAN: this one has no latent to map, "
                "interpolate or do arithmetic in (a PixelCNN draws images pixel by pixel).")
    return None


class ModelGate(QStackedWidget):
    """Shows the panel's content, or a short message when the model has no latent space."""

    def __init__(self, content: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setObjectName("modelMessage")
        holder = QWidget()
        lay = QVBoxLayout(holder)
        lay.addWidget(self.message)
        self.addWidget(holder)
        self.addWidget(content)

    def update_for(self, state: ExplorerState) -> bool:
        """Pick the page for the current model; True when the content is usable."""
        problem = model_problem(state)
        self.message.setText(problem or "")
        self.setCurrentIndex(0 if problem else 1)
        return problem is None


class LatestJob(QObject):
    """Runs one job at a time for a view: a new request cancels the previous one, and a result
    from an older request (one that finished just before it was cancelled) is dropped."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job: Job | None = None
        self._generation = 0

    def start(self, fn: Callable[..., Any], *args: Any, on_result: Callable[[Any], None],
              on_failed: Callable[[str], None] | None = None,
              on_progress: Callable[[Any], None] | None = None) -> Job:
        self.cancel()
        self._generation += 1
        generation = self._generation
        job = start_job(fn, *args)
        job.result.connect(lambda value: generation == self._generation and on_result(value))
        if on_failed is not None:
            job.failed.connect(lambda msg: generation == self._generation and on_failed(msg))
        if on_progress is not None:
            job.progress.connect(lambda value: generation == self._generation and on_progress(value))
        self.job = job
        return job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self._generation += 1
        self.job = None

    def busy(self) -> bool:
        return self.job is not None and self.job.is_running()


def fit_stack(stack: QStackedWidget) -> None:
    """Size a QStackedWidget to its current page (by default it keeps room for the largest)."""
    for i in range(stack.count()):
        policy = QSizePolicy.Policy.Preferred if i == stack.currentIndex() else QSizePolicy.Policy.Ignored
        stack.widget(i).setSizePolicy(policy, policy)
    stack.adjustSize()


def debounce(parent: QObject, slot: Callable[[], None], ms: int = 40) -> QTimer:
    """A single-shot timer: calling .start() many times in a burst runs `slot` once, after the burst."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(ms)
    timer.timeout.connect(slot)
    return timer
