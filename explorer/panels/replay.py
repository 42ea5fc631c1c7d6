"""Replay: watch a PixelCNN draw an image pixel by pixel, scrub through the steps, and branch.

A worker samples (or completes a held-out image whose bottom rows are hidden) and reports its
steps in chunks; the panel keeps them all in a Recording. The timeline's step k shows the given
pixels plus those drawn in steps < k, outlines the pixel drawn at step k, and charts the
distribution it was drawn from. "Resample from here" keeps the canvas of step k and draws the rest
again, replacing the recording from k on.

From code (tests, benchmarks): `sample(seed)`, `complete(index, rows)`, `resample_from(k)` each
return the Job; `show_step(k)`; `recording`, `shown_step`, `canvas.array()`, `bars.opts["height"]`,
`current_field` (after `fieldShown`).
"""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from engines.data.sample import heldout_or_sample
from engines.replay import (
    Given,
    Recording,
    StepChunk,
    completion,
    field_model,
    image_levels,
    receptive_field,
    render,
    sample_chunks,
)
from explorer.state import ExplorerState
from explorer.workers import Job

from .panel_tools import MAX_SEED, laid_out, spin_box
from .replay_canvas import ReplayCanvas
from .surprise import SurprisePage
from .tab import Tab
from .training_curves import Column

log = logging.getLogger(__name__)

TICK_MS = 33  # playback timer (~30 redraws a second whatever the speed)
BAR_COLOUR, CHOSEN_COLOUR = "#4e9af1", "#ff4030"


def _field_job(job, model, key: tuple[int, int, int]) -> tuple[tuple[int, int, int], np.ndarray]:
    return key, receptive_field(model, *key)


def sample_worker(job, model, temperature: float, seed: int, given: Given) -> int:
    """Draw every position not given, reporting StepChunks; returns the number of steps reported."""
    drawn = 0
    for chunk in sample_chunks(model, temperature, seed, given, should_stop=lambda: job.cancelled):
        job.report(chunk)
        drawn += len(chunk.values)
    return drawn


def complete_worker(
    job, state: ExplorerState | None, checkpoint, index: int, rows: int, temperature: float, seed: int
) -> int:
    """Give rows < `rows` of held-out image `index` and sample the rest (reports the Given first). The
    image comes through the state's cached dataset when the checkpoint is the state's."""
    if state is not None and state.checkpoint is checkpoint:
        dataset = state.dataset(train=False)
    else:
        dataset = heldout_or_sample(checkpoint.dataset, checkpoint.sample)
    given = completion(image_levels(checkpoint.model, dataset, index), rows, index)
    job.report(given)
    return sample_worker(job, checkpoint.model, temperature, seed, given)


class ReplayPanel(Tab):
    fieldShown = Signal()  # the receptive field of the shown step is on the canvas

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.recording: Recording | None = None
        self.shown_step = 0
        self.current_field: np.ndarray | None = None  # (C, S, S) bool, of the shown step's position
        self._job = self.job_slot()
        self._current_job: Job | None = None  # the generation running now (None once it has ended)
        self._field_job = self.job_slot(interrupt=False)  # one field at a time; the newest position next
        self._field_model = None
        self._fields: dict[tuple[int, int, int], np.ndarray] = {}
        self._field_wanted: tuple[int, int, int] | None = None  # the position asked for last
        self._play_timer = QTimer(self)
        self._play_timer.setInterval(TICK_MS)
        self._play_timer.timeout.connect(self._tick)
        self._play_carry = 0.0
        # Two pages: sampling with its replay, and the surprise maps with mask-and-resample (surprise.py).
        self.surprise = SurprisePage(self.job_slot(), self.job_slot())
        self.pages = QTabWidget()
        self.pages.addTab(self._build_ui(), "Sample and replay")
        self.pages.addTab(self.surprise, "Surprise maps")
        self.set_content(self.pages)

    def model_problem(self) -> str | None:
        if self.state.is_autoregressive:
            return None
        kind = self.state.kind  # only named in the message
        return "Replay shows how a PixelCNN draws an image, pixel by pixel. " + (
            "Open a PixelCNN checkpoint to use it."
            if kind is None
            else f"This is a {kind.upper()}, which draws the whole image at once: "
            "open a PixelCNN checkpoint to use this tab."
        )

    # --- layout ------------------------------------------------------------------------------------
    def _build_ui(self) -> QWidget:
        left, col = laid_out(QVBoxLayout, Column(), width=290, margins=(0, 0, 4, 0))
        sample_box, form = laid_out(QFormLayout, QGroupBox("Sample a new image"), margins=None)
        self.seed_spin = spin_box(0, MAX_SEED)
        form.addRow("Seed", self.seed_spin)
        self.temperature_spin = spin_box(
            0.0, 3.0, 1.0, step=0.1, tip="Softmax temperature: 0 always takes the most likely level"
        )
        form.addRow("Temperature", self.temperature_spin)
        self.sample_button = QPushButton("Sample")
        form.addRow(self.sample_button)
        col.addWidget(sample_box)

        complete_box, cform = laid_out(QFormLayout, QGroupBox("Complete a dataset image"), margins=None)
        self.index_spin = spin_box(0, 10**7, prefix="#", tip="An image of the checkpoint's held-out split")
        cform.addRow("Image", self.index_spin)
        self.rows_spin = QSpinBox()
        self.rows_spin.setToolTip("Rows above this are given; the rest is hidden and sampled")
        cform.addRow("Given rows", self.rows_spin)
        self.complete_button = QPushButton("Complete")
        cform.addRow(self.complete_button)
        col.addWidget(complete_box)

        self.resample_button = QPushButton("Resample from this step")
        self.resample_button.setToolTip("Keep the canvas of the shown step and draw the rest again (next seed)")
        col.addWidget(self.resample_button)
        self.cancel_button = QPushButton("Cancel")
        col.addWidget(self.cancel_button)
        self.field_check = QCheckBox("Show receptive field")
        self.field_check.setToolTip(
            "Tint the pixels the current pixel's distribution depends on (exact: from the "
            "gradient of its logits with respect to the input)"
        )
        col.addWidget(self.field_check)
        self.status = QLabel()
        self.status.setWordWrap(True)
        col.addWidget(self.status)
        col.addStretch(1)

        self.canvas = ReplayCanvas()
        self.canvas.setMinimumSize(280, 280)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("#1e1f22")
        self.plot.setMinimumSize(240, 200)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setLabel("left", "probability")
        self.plot.setLabel("bottom", "level")
        self.plot.hideButtons()
        self.bars = pg.BarGraphItem(x=np.zeros(0), height=np.zeros(0), width=0.8, brush=BAR_COLOUR)
        self.plot.addItem(self.bars)
        self.dist_caption = QLabel()
        self.dist_caption.setWordWrap(True)
        dist, dcol = laid_out(QVBoxLayout)
        dcol.addWidget(QLabel("Predictive distribution of the outlined pixel"))
        dcol.addWidget(self.plot, 1)
        dcol.addWidget(self.dist_caption)
        views = QHBoxLayout()
        views.addWidget(self.canvas, 3)
        views.addWidget(dist, 2)

        timeline = QHBoxLayout()
        self.back_button = QPushButton("◀")
        self.back_button.setToolTip("One step back")
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.forward_button = QPushButton("▶")
        self.forward_button.setToolTip("One step on")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.step_label = QLabel("step 0 / 0")
        self.step_label.setMinimumWidth(120)
        self.speed_spin = spin_box(1, 10_000, 100, suffix=" steps/s")
        for widget in (self.back_button, self.play_button, self.forward_button):
            widget.setFixedWidth(56 if widget is self.play_button else 32)
            timeline.addWidget(widget)
        timeline.addWidget(self.slider, 1)
        timeline.addWidget(self.step_label)
        timeline.addWidget(self.speed_spin)

        right, rcol = laid_out(QVBoxLayout, Column(), margins=(4, 0, 0, 0))
        rcol.addLayout(views, 1)
        rcol.addLayout(timeline)
        content, row = laid_out(QHBoxLayout, margins=(4, 4, 4, 4))
        row.addWidget(left)
        row.addWidget(right, 1)

        self.sample_button.clicked.connect(lambda: self.sample())
        self.complete_button.clicked.connect(lambda: self.complete())
        self.resample_button.clicked.connect(lambda: self.resample_from(self.shown_step))
        self.cancel_button.clicked.connect(self.cancel)
        self.slider.valueChanged.connect(self.show_step)
        self.back_button.clicked.connect(lambda: self.slider.setValue(self.slider.value() - 1))
        self.forward_button.clicked.connect(lambda: self.slider.setValue(self.slider.value() + 1))
        self.play_button.toggled.connect(self._play)
        self.field_check.toggled.connect(lambda _on: self.show_step(self.shown_step))
        return content

    # --- model -------------------------------------------------------------------------------------
    def reset_for_model(self) -> None:
        self.surprise.set_model(self.state.checkpoint if self.usable else None, self.state)
        self.cancel()
        self.play_button.setChecked(False)
        self._field_model, self._fields, self._field_wanted = None, {}, None
        self.recording = None
        if not self.usable:
            return
        config = self.state.model.config
        every = 1 if config.levels <= 16 else config.levels // 8  # whole levels only, never 0.5
        self.plot.getAxis("bottom").setTicks([[(i, str(i)) for i in range(0, config.levels, every)], []])
        self.rows_spin.setRange(0, config.image_size)
        self.rows_spin.setValue(config.image_size // 2)
        self.status.setText(
            f"{config.image_size}x{config.image_size}x{config.channels}, {config.levels} levels: "
            "Sample or Complete to record a generation."
        )
        self._show_recording()

    # --- generation ---------------------------------------------------------------------------------
    def _start(self, fn, *args) -> Job:
        self.play_button.setChecked(False)
        job = self._job.start(
            fn, *args, on_result=self._on_done, on_failed=self._on_failed, on_progress=self._on_progress
        )
        self._current_job = job
        job.finished.connect(lambda j=job: self._job_ended(j))
        self._update_buttons()
        return job

    def _job_ended(self, job: Job) -> None:
        if job is self._current_job:
            self._current_job = None
            self._update_buttons()

    def generating(self) -> bool:
        return self._current_job is not None

    def sample(self, seed: int | None = None) -> Job | None:
        """Record a fresh image from `seed` (the spin box's when None)."""
        model = self.state.model
        if not self.state.is_autoregressive:
            return None
        if seed is not None:
            self.seed_spin.setValue(seed)
        config = model.config
        self.recording = Recording(config.channels, config.image_size, config.levels)
        self._show_recording()
        self.status.setText(f"Sampling with seed {self.seed_spin.value()}…")
        return self._start(
            sample_worker, model, self.temperature_spin.value(), self.seed_spin.value(), self.recording.given
        )

    def complete(self, index: int | None = None, rows: int | None = None) -> Job | None:
        """Give rows < `rows` of held-out image `index` and record the sampling of the rest."""
        if not self.state.is_autoregressive:
            return None
        if index is not None:
            self.index_spin.setValue(index)
        if rows is not None:
            self.rows_spin.setValue(rows)
        self.recording = None
        self._show_recording()
        self.status.setText(f"Loading image #{self.index_spin.value()}…")
        return self._start(
            complete_worker,
            self.state,
            self.state.checkpoint,
            self.index_spin.value(),
            self.rows_spin.value(),
            self.temperature_spin.value(),
            self.seed_spin.value(),
        )

    def resample_from(self, k: int) -> Job | None:
        """Keep the canvas of step k (given pixels and steps < k) and draw the rest with the next seed."""
        recording = self.recording
        if (
            recording is None
            or not self.state.is_autoregressive
            or not 0 <= k <= len(recording)
            or k >= recording.expected
            or self.generating()
        ):
            return None
        levels, mask = recording.canvas(k)
        recording.truncate(k)
        self.seed_spin.setValue(self.seed_spin.value() + 1)
        self._show_recording()
        self.status.setText(f"Resampling from step {k} with seed {self.seed_spin.value()}…")
        return self._start(
            sample_worker,
            self.state.model,
            self.temperature_spin.value(),
            self.seed_spin.value(),
            Given(levels, mask, f"canvas of step {k}"),
        )

    def cancel(self) -> None:
        self._job.cancel()
        self._current_job = None
        self._update_buttons()

    def job(self) -> Job | None:
        """The latest generation's job (wait on its `finished`)."""
        return self._job.job

    def _on_progress(self, payload: object) -> None:
        if isinstance(payload, Given):
            config = self.state.model.config
            self.recording = Recording(config.channels, config.image_size, config.levels, payload)
            self.status.setText(f"Completing {payload.label}…")
        elif isinstance(payload, StepChunk) and self.recording is not None:
            self.recording.append(payload)
        self._show_recording(follow=True)

    def _on_done(self, drawn: int) -> None:
        if self.recording is not None:
            self.status.setText(
                f"Recorded {len(self.recording)} steps ({self.recording.given.label}). "
                "Scrub the timeline or press Play."
            )
        self._show_recording()

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Could not generate: {message}")

    def _update_buttons(self) -> None:
        busy = self.generating()
        for button in (self.sample_button, self.complete_button):
            button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        r = self.recording
        self.resample_button.setEnabled(not busy and r is not None and self.shown_step < r.expected)

    # --- the timeline ------------------------------------------------------------------------------
    def _show_recording(self, follow: bool = False) -> None:
        """Fit the slider to the recording; while generating, a slider at the end stays at the end."""
        total = len(self.recording) if self.recording is not None else 0
        at_end = self.slider.value() >= self.slider.maximum()
        with signals_blocked(self.slider):
            self.slider.setMaximum(total)
            if follow and at_end:
                self.slider.setValue(total)
        self.show_step(self.slider.value())

    def show_step(self, k: int) -> None:
        """Show the canvas before step k, outline step k's pixel and chart its distribution."""
        r = self.recording
        if r is None:
            self.shown_step = 0
            self.canvas.set_image(None)
            self.canvas.set_marks(None, None)
            self.bars.setOpts(x=np.zeros(0), height=np.zeros(0))
            self.step_label.setText("step 0 / 0")
            self.dist_caption.clear()
            self._update_buttons()
            return
        k = max(0, min(int(k), len(r)))
        self.shown_step = k
        if self.slider.value() != k:  # shown from code: keep the timeline on the same step
            with signals_blocked(self.slider):
                self.slider.setValue(k)
        levels, mask = r.canvas(k)
        self.canvas.set_image(render(levels, mask, r.levels))
        self.step_label.setText(f"step {k} / {len(r)}" + ("" if len(r) >= r.expected else f" (of {r.expected})"))
        if k < len(r):
            channel, row, col = (int(v) for v in r.positions[k])
            value, probs = int(r.values[k]), r.probs[k]
            brushes = [pg.mkBrush(CHOSEN_COLOUR if i == value else BAR_COLOUR) for i in range(r.levels)]
            self.bars.setOpts(x=np.arange(r.levels), height=probs.copy(), width=0.8, brushes=brushes)
            self.plot.setXRange(-0.6, r.levels - 0.4, padding=0)
            colour = f", channel {'RGB'[channel]}" if r.channels == 3 else ""
            self.dist_caption.setText(
                f"Step {k}: pixel (row {row}, column {col}){colour} drew level {value} "
                f"(p = {probs[value]:.3f}; most likely {int(np.argmax(probs))})"
            )
            self.canvas.set_marks((row, col), self._field_for((channel, row, col)))
        else:
            self.bars.setOpts(x=np.zeros(0), height=np.zeros(0))
            self.dist_caption.setText(
                "The end of the recording: every pixel drawn." if len(r) >= r.expected else "Generating…"
            )
            self.current_field = None
            self.canvas.set_marks(None, None)
        self._update_buttons()

    def _play(self, on: bool) -> None:
        self.play_button.setText("Pause" if on else "Play")
        if on:
            if self.recording is None or self.slider.value() >= len(self.recording):
                self.slider.setValue(0)
            self._play_carry = 0.0
            self._play_timer.start()
        else:
            self._play_timer.stop()

    def _tick(self) -> None:
        if self.recording is None:
            self.play_button.setChecked(False)
            return
        self._play_carry += self.speed_spin.value() * TICK_MS / 1000
        steps, self._play_carry = int(self._play_carry), self._play_carry % 1
        target = min(self.slider.value() + steps, len(self.recording))
        self.slider.setValue(target)
        if target >= len(self.recording) and not self.generating():
            self.play_button.setChecked(False)

    # --- receptive fields ----------------------------------------------------------------------------
    def _field_for(self, key: tuple[int, int, int]) -> np.ndarray | None:
        """The (S, S) tint for `key` when it is known; otherwise ask a worker (one at a time, the
        latest position wins) and return None for now."""
        if not self.field_check.isChecked():
            self.current_field = None
            return None
        if key in self._fields:
            self.current_field = self._fields[key]
            self.fieldShown.emit()
            return self.current_field.any(axis=0)
        self.current_field = None
        if key == self._field_wanted and self._field_job.busy():
            return None  # on its way
        if self._field_model is None:
            self._field_model = field_model(self.state.model)
        self._field_wanted = key
        self._field_job.start(
            _field_job,
            self._field_model,
            key,
            on_result=self._on_field,
            on_failed=lambda msg: self.status.setText(f"Receptive field failed: {msg}"),
        )
        return None

    def _on_field(self, result: tuple[tuple[int, int, int], np.ndarray]) -> None:
        key, field = result
        self._fields[key] = field
        r = self.recording
        if r is not None and self.shown_step < len(r) and tuple(int(v) for v in r.positions[self.shown_step]) == key:
            self.show_step(self.shown_step)

    def stop_work(self) -> None:
        """At exit: stop playback and cancel the workers (the window then waits for their threads)."""
        self.play_button.setChecked(False)
        super().stop_work()
