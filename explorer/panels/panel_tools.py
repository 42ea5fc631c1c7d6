"""Small pieces the tabs share: the work function that decodes latents in a worker, the finite-output
check, and two widget helpers. (The tab lifecycle is in tab.py, image conversion in explorer.pixels,
jobs in explorer.workers.)"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QSizePolicy, QStackedWidget

from engines import latent
from explorer.workers import Job, WorkError

log = logging.getLogger(__name__)

NONFINITE_MESSAGE = "the model's output holds NaN/inf values (its weights are broken: see the Model panel)"
DECODE_BATCH = 64


def require_finite(*arrays: np.ndarray, what: str = "the model's output") -> None:
    """Raise WorkError (a one-line message, no traceback) when any array holds NaN or inf."""
    if not all(np.all(np.isfinite(np.asarray(a))) for a in arrays):
        raise WorkError(NONFINITE_MESSAGE.replace("the model's output", what, 1))


def decode_job(job: Job, model, latents: np.ndarray) -> np.ndarray:
    """Work function: (N, D) latents -> (N, H, W, C) float images, in batches, stopping when cancelled."""
    return latent.decode_latents(model, latents, batch=DECODE_BATCH, should_stop=lambda: job.cancelled)


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
