"""Small pieces the tabs share: the work function that decodes latents in a worker, the finite-output
check, and widget helpers. (The tab lifecycle is in tab.py, image conversion in explorer.pixels, jobs
in explorer.workers.)"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QDoubleSpinBox, QLayout, QSizePolicy, QSpinBox, QStackedWidget, QWidget

from engines import latent
from explorer.workers import Job, WorkError

log = logging.getLogger(__name__)

NONFINITE_MESSAGE = "the model's output holds NaN/inf values (its weights are broken: see the Model panel)"
DECODE_BATCH = 64
MAX_SEED = 2**31 - 1


def require_finite(*arrays: np.ndarray, what: str = "the model's output") -> None:
    """Raise WorkError (a one-line message, no traceback) when any array holds NaN or inf."""
    if not all(np.all(np.isfinite(np.asarray(a))) for a in arrays):
        raise WorkError(NONFINITE_MESSAGE.replace("the model's output", what, 1))


def decode_job(job: Job, model, latents: np.ndarray) -> np.ndarray:
    """Work function: (N, D) latents -> (N, H, W, C) float images, in batches, stopping when cancelled."""
    return latent.decode_latents(model, latents, batch=DECODE_BATCH, should_stop=lambda: job.cancelled)


def laid_out(
    layout_class: type[QLayout],
    widget: QWidget | None = None,
    *,
    width: int | None = None,
    margins: tuple[int, int, int, int] | None = (0, 0, 0, 0),
) -> tuple:
    """`widget` (a new QWidget when None) with a new layout of `layout_class` and these margins (None:
    the style's), at a fixed `width` when given; returns (widget, layout). The tabs' columns, rows and
    group boxes: `left, col = laid_out(QVBoxLayout, width=300, margins=(0, 0, 4, 0))`."""
    widget = QWidget() if widget is None else widget
    layout = layout_class(widget)
    if margins is not None:
        layout.setContentsMargins(*margins)
    if width is not None:
        widget.setFixedWidth(width)
    return widget, layout


def spin_box(
    low: float,
    high: float,
    value: float | None = None,
    *,
    step: float | None = None,
    prefix: str = "",
    suffix: str = "",
    tip: str = "",
) -> QSpinBox | QDoubleSpinBox:
    """A spin box over [low, high] (a QDoubleSpinBox when any number given is a float), at `value`."""
    double = any(isinstance(x, float) for x in (low, high, value, step))
    spin = QDoubleSpinBox() if double else QSpinBox()
    spin.setRange(low, high)
    if step is not None:
        spin.setSingleStep(step)
    if value is not None:
        spin.setValue(value)
    spin.setPrefix(prefix)
    spin.setSuffix(suffix)
    if tip:
        spin.setToolTip(tip)
    return spin


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
