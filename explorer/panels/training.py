"""Train: pick a model, data and hyperparameters, and watch a run live in a worker thread.

The trainer (engines.training) runs in a Job; its events arrive here as lists (StepDone batched by
the worker) and are folded into plain attributes at once, while everything drawn (curves, progress,
the sample grid) is redrawn by a 10 Hz timer, so an event flood never stalls the event loop.

Driving it from code (tests, benchmarks)::

    panel.configure(model="vae", dataset="shapes", image_size=28, channels=1, max_steps=200,
                    checkpoint_path="/tmp/run.safetensors")
    panel.config_overrides = {"width": 8, "fc_dim": 32}   # extra model config
    panel.train_overrides = {"eval_batches": 2}           # extra TrainConfig fields
    job = panel.start()            # None (and a message in the panel) when the form is invalid
    panel.trainingEvent            # Signal(object): every trainer event, in order, on the GUI thread
    panel.runFinished              # Signal(str): "completed" | "stopped" | "diverged" | "failed"
    panel.step, panel.total_steps, panel.checkpoint_path, panel.phase
    panel.pause(); panel.resume(); panel.stop(); panel.open_in_explorer()
    panel.stop_and_wait()          # for scripts: stop, then wait (processing events) until the thread ends
    panel.memory                   # the MemoryEstimate shown in the Memory row (once the tab was shown)
    panel.memoryEstimated          # Signal(object): each new estimate
    panel.confirm_memory = lambda message: True   # the "start anyway?" question (default No)

Stopping never blocks the GUI thread: the run stops after the step in progress (which may be long)
and writes its checkpoint; the status line says so meanwhile.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QEventLoop, QMetaMethod, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from engines.checkpoint import SUFFIX
from engines.data import DatasetError, dataset_classes, default_shape
from engines.memory import format_bytes
from engines.models import make_config
from engines.training import RECIPES, events
from engines.training.run import (
    CHANNEL_COUNTS,
    EMA_DECAY,
    GAN_LOSSES,
    IMAGE_SIZES,
    RunSettings,
    applies,
    default_latent_dim,
    default_levels,
)
from explorer.banner import MessageBanner
from explorer.image_view import ImageView
from explorer.state import ExplorerState
from explorer.workers import Job, start_job

from .panel_tools import MAX_SEED, debounce, laid_out, spin_box
from .tab import Tab
from .timeline_view import TimelineStrip
from .training_curves import Column, LossCurves
from .training_setup import (
    DatasetInfo,
    MemoryEstimate,
    default_lr_text,
    default_sample_every,
    estimate_memory,
    format_duration,
    format_losses,
    memory_key,
    one_line,
    train_worker,
    unique_path,
)

log = logging.getLogger(__name__)

MODELS = (
    ("vae", "VAE"),
    ("gan", "GAN (DCGAN)"),
    ("stylegan", "StyleGAN (style-based generator, 32 or 64 px)"),
    ("pixelcnn", "Gated PixelCNN"),
)
DATASETS = (
    ("shapes", "Shapes (procedural)"),
    ("faces", "Faces (procedural)"),
    ("mnist", "MNIST"),
    ("fashion-mnist", "Fashion-MNIST"),
    ("cifar10", "CIFAR-10"),
    ("celeba", "CelebA"),
    ("folder", "Folder of images"),
)
PROCEDURAL = ("shapes", "faces")
MEMORY_DEBOUNCE_MS = 200  # the estimate follows the form this long after the last edit
MEMORY_STYLE = {"ok": "", "high": "color: #e0b050;", "bad": "color: #ff6b6b;"}
FIELD_LABELS = {
    "hidden": "Width",
    "n_layers": "Layers",
    "latent_dim": "Latent dim",
    "levels": "Levels",
    "image_size": "Image size",
    "channels": "Channels",
}  # config field -> the form's name for it
STOPPING_TEXT = "Stopping training: waiting for the current step to finish, then saving a checkpoint…"
REDRAW_MS = 100  # curves, progress and grid redraw at most 10 times a second


def runs_folder() -> Path:
    """A user-writable runs/ folder (the app's data folder), created when a run starts."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return (Path(base) if base else Path.home() / ".latent-explorer") / "runs"


class TrainingPanel(Tab):
    trainingEvent = Signal(object)  # every trainer event, in order (GUI thread)
    runFinished = Signal(str)  # "completed", "stopped", "diverged" or "failed"
    memoryEstimated = Signal(object)  # a MemoryEstimate, each time the Memory row is updated

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.config_overrides: dict[str, Any] = {}  # merged into the model config (e.g. tiny widths)
        self.train_overrides: dict[str, Any] = {}  # merged into TrainConfig (e.g. eval_batches)
        self.job: Job | None = None
        self.phase = "idle"  # idle | running | paused | stopping
        self._auto_path = True  # the output path follows model/dataset until the user edits it
        self._reset_run()
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self.memory: MemoryEstimate | None = None  # the estimate shown, for the settings of self._memory_for
        self._memory_for: tuple | None = None
        self._memory_job = self.job_slot()
        self._memory_timer = debounce(self, self.refresh, MEMORY_DEBOUNCE_MS)
        self._handlers = {  # trainer event type -> what the panel does with it
            events.StepDone: self._on_step,
            events.SampleGrid: self._on_grid,
            events.Health: self._on_health,
            events.Snapshot: self._on_snapshot,
            events.Started: self._on_started,
            events.EpochEnd: self._on_epoch,
            events.CheckpointSaved: self._on_checkpoint,
            events.Paused: self._on_paused,
            events.Resumed: self._on_resumed,
            events.Diverged: self._on_diverged,
            events.Finished: self._on_finished,
        }
        content = self._build_ui()
        self._on_model_kind()
        self._on_dataset()
        self.set_content(content)  # a model change (or the device's) re-estimates the memory

    def model_problem(self) -> str | None:
        return None  # training needs no open model

    def update_view(self) -> None:
        self.update_memory_estimate()

    # --- layout ------------------------------------------------------------------------------------
    def _build_ui(self) -> QWidget:
        left, col = laid_out(QVBoxLayout, width=340, margins=(0, 0, 4, 0))

        data_box = QGroupBox("Model and data")
        self.data_form = form = QFormLayout(data_box)
        self.model_combo = QComboBox()
        for kind, label in MODELS:
            self.model_combo.addItem(label, kind)
        form.addRow("Model", self.model_combo)
        self.dataset_combo = QComboBox()
        for name, label in DATASETS:
            self.dataset_combo.addItem(label, name)
        form.addRow("Dataset", self.dataset_combo)
        self.root_edit = QLineEdit()
        self.root_button = QPushButton("Browse…")
        self.root_row = self._with_button(self.root_edit, self.root_button)
        self.root_label = QLabel("Data root")
        form.addRow(self.root_label, self.root_row)
        shape_row = QHBoxLayout()
        self.size_combo = QComboBox()
        for size in IMAGE_SIZES:
            self.size_combo.addItem(f"{size} x {size}", size)
        self.channels_combo = QComboBox()
        for channels in CHANNEL_COUNTS:
            self.channels_combo.addItem(f"grey ({channels})" if channels == 1 else f"colour ({channels})", channels)
        shape_row.addWidget(self.size_combo)
        shape_row.addWidget(self.channels_combo)
        form.addRow("Images", shape_row)
        col.addWidget(data_box)

        hyper_box = QGroupBox("Hyperparameters")
        self.hyper_form = hform = QFormLayout(hyper_box)
        self.epochs_spin = spin_box(1, 100_000, 10)
        hform.addRow("Epochs", self.epochs_spin)
        self.max_steps_spin = spin_box(0, 10**9, 0)
        self.max_steps_spin.setSpecialValueText("all epochs")
        self.max_steps_spin.setToolTip("Stop after this many steps in all (0: run every epoch)")
        hform.addRow("Max steps", self.max_steps_spin)
        self.batch_spin = spin_box(1, 4096, 128)
        hform.addRow("Batch size", self.batch_spin)
        self.lr_edit = QLineEdit()
        self.lr_edit.setToolTip("Adam learning rate; blank: the model's default")
        hform.addRow("Learning rate", self.lr_edit)
        self.latent_spin = spin_box(1, 1024, 16)
        hform.addRow("Latent dim", self.latent_spin)
        self.gan_loss_combo = QComboBox()
        self.gan_loss_combo.addItems(GAN_LOSSES)
        self.gan_loss_combo.setToolTip("ns: non-saturating DCGAN; wgan-gp: Wasserstein critic with gradient penalty")
        hform.addRow("GAN loss", self.gan_loss_combo)
        self.conditional_check = QCheckBox("on the dataset's classes")
        self.conditional_check.setToolTip(
            "A class-conditional generator: it learns each class (MNIST digits, CIFAR-10 objects) and draws "
            "the one it is asked for; the Explore tab then offers a class picker"
        )
        hform.addRow("Conditional", self.conditional_check)
        self.code_spin = spin_box(0, 1024, 0)
        self.code_spin.setSpecialValueText("none")
        self.code_spin.setSuffix(" categories")
        self.code_spin.setToolTip(
            "A categorical code learned without labels (InfoGAN): the first K latent units pick one of K "
            "categories, which the GAN learns to draw apart (10 on MNIST: mostly one digit each, 81% after "
            "100 epochs: the bundled dcgan-mnist)"
        )
        hform.addRow("Code", self.code_spin)
        self.levels_spin = spin_box(2, 256, 2)
        self.levels_spin.setToolTip("Intensity levels per channel (2: binarized images)")
        hform.addRow("Levels", self.levels_spin)
        self.hidden_spin = spin_box(0, 1024, 0)
        self.hidden_spin.setSpecialValueText("default (64 gray, 96 colour)")
        self.hidden_spin.setToolTip("PixelCNN channels per layer (a multiple of the image's channels)")
        hform.addRow("Width", self.hidden_spin)
        self.layers_spin = spin_box(0, 64, 0)
        self.layers_spin.setSpecialValueText("default (10)")
        self.layers_spin.setToolTip("PixelCNN gated layers: more see further up the image, and cost more")
        hform.addRow("Layers", self.layers_spin)
        self.seed_spin = spin_box(0, MAX_SEED, 0)
        hform.addRow("Seed", self.seed_spin)
        self.sample_every_spin = spin_box(0, 10**7, 100)
        self.sample_every_spin.setSpecialValueText("epoch ends")
        self.sample_every_spin.setSuffix(" steps")
        self.sample_every_spin.setToolTip("Draw the fixed-noise sample grid this often (0: at epoch ends)")
        hform.addRow("Samples every", self.sample_every_spin)
        self.memory_label = QLabel("estimating…")
        self.memory_label.setWordWrap(True)
        self.memory_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.memory_label.setToolTip(
            "Peak memory of a training run with these settings, estimated without allocating\n"
            "anything (weights, optimizer state, activations), against what the device has free"
        )
        self.bf16_check = QCheckBox("bfloat16 (mixed precision)")
        self.bf16_check.setToolTip(
            "Run the training forward passes in bfloat16: about 2x faster on CPUs with bf16 units (AVX512-BF16,\n"
            "AMX) and on recent GPUs, slower elsewhere. Weights, evaluation and checkpoints stay float32."
        )
        hform.addRow("Precision", self.bf16_check)
        self.ema_check = QCheckBox(f"EMA of the weights ({EMA_DECAY})")
        self.ema_check.setToolTip(
            "Keep an exponential moving average of the weights: checkpoints and sample grids hold the average,\n"
            "which gives a GAN cleaner, steadier samples than the last step's weights. Training itself goes on\n"
            "with the live weights."
        )
        hform.addRow("Averaging", self.ema_check)
        hform.addRow("Memory", self.memory_label)
        col.addWidget(hyper_box)

        out_box, out_col = laid_out(QVBoxLayout, QGroupBox("Checkpoint"), margins=None)
        self.out_edit = QLineEdit()
        self.out_edit.setToolTip(
            "Written at every epoch end, at stop and at the end (a diverging run keeps the last good one)"
        )
        self.out_button = QPushButton("Browse…")
        out_col.addWidget(self._with_button(self.out_edit, self.out_button))
        col.addWidget(out_box)

        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after this step and save a checkpoint")
        for button in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            buttons.addWidget(button)
        col.addLayout(buttons)
        self.open_button = QPushButton("Open in explorer")
        self.open_button.setToolTip("Open the latest checkpoint of this run in the Explore tab")
        col.addWidget(self.open_button)
        col.addStretch(1)

        right, rcol = laid_out(QVBoxLayout, Column(), margins=(4, 0, 0, 0))
        self.banner = MessageBanner()
        rcol.addWidget(self.banner)
        self.skipped_label = QLabel()
        self.skipped_label.setWordWrap(True)
        self.skipped_label.setStyleSheet("color: #e0b050;")
        self.skipped_label.hide()
        rcol.addWidget(self.skipped_label)
        # A collapse seen at a sample grid (engines.training.collapse): one line, until it is gone.
        self.collapse_label = QLabel()
        self.collapse_label.setWordWrap(True)
        self.collapse_label.setStyleSheet("background: #7a2020; color: white; padding: 4px;")
        self.collapse_label.hide()
        rcol.addWidget(self.collapse_label)
        self.status_label = QLabel("Choose a model and data, then Start.")
        self.status_label.setWordWrap(True)
        rcol.addWidget(self.status_label)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("not started")
        self.progress.setValue(0)
        rcol.addWidget(self.progress)

        self.curves = LossCurves()
        self.curves.setMinimumSize(320, 200)
        self.sample_view = ImageView(placeholder="Samples from fixed noise appear here")
        self.sample_view.setMinimumSize(220, 220)
        self.sample_view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        grid_box, grid_col = laid_out(QVBoxLayout)
        self.grid_caption = QLabel("Samples (fixed noise)")
        grid_col.addWidget(self.grid_caption)
        grid_col.addWidget(self.sample_view, 1)
        curves_box, curves_col = laid_out(QVBoxLayout)
        header = QHBoxLayout()
        header.addWidget(QLabel("Losses (dashed: validation, per epoch)"))
        header.addStretch(1)
        self.log_check = QCheckBox("log scale")
        self.log_check.toggled.connect(lambda on: self.curves.setLogMode(y=on))
        header.addWidget(self.log_check)
        curves_col.addLayout(header)
        curves_col.addWidget(self.curves, 1)
        # Samples now, and the training timeline: fixed latents decoded by each kept snapshot (engines.timeline).
        self.timeline = TimelineStrip("Fixed latents decoded by the decoder of each kept snapshot")
        self.sample_tabs = QTabWidget()
        self.sample_tabs.addTab(grid_box, "Samples")
        self.sample_tabs.addTab(self.timeline, "Timeline")
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(curves_box)
        top.addWidget(self.sample_tabs)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(2000)
        self.log_view.setPlaceholderText("One line per epoch: train and validation losses, minutes")
        self.log_view.setMinimumHeight(90)
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(top)
        body.addWidget(self.log_view)
        body.setStretchFactor(0, 4)
        body.setStretchFactor(1, 1)
        rcol.addWidget(body, 1)

        content, row = laid_out(QHBoxLayout, margins=(4, 4, 4, 4))
        row.addWidget(left)
        row.addWidget(right, 1)

        self.model_combo.currentIndexChanged.connect(self._on_model_kind)
        self.dataset_combo.currentIndexChanged.connect(self._on_dataset)
        self.channels_combo.currentIndexChanged.connect(self._on_channels)
        self.root_button.clicked.connect(self._browse_root)
        self.out_button.clicked.connect(self._browse_out)
        self.out_edit.textEdited.connect(lambda _text: setattr(self, "_auto_path", False))
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.open_button.clicked.connect(self.open_in_explorer)
        for combo in (self.model_combo, self.dataset_combo, self.size_combo, self.channels_combo, self.gan_loss_combo):
            combo.currentIndexChanged.connect(self._memory_timer.start)
        for spin in (
            self.batch_spin,
            self.latent_spin,
            self.levels_spin,
            self.hidden_spin,
            self.layers_spin,
            self.code_spin,
        ):
            spin.valueChanged.connect(self._memory_timer.start)
        self.conditional_check.toggled.connect(self._memory_timer.start)
        self._update_buttons()
        return content

    @staticmethod
    def _with_button(edit: QLineEdit, button: QPushButton) -> QWidget:
        holder, lay = laid_out(QHBoxLayout)
        lay.addWidget(edit, 1)
        lay.addWidget(button)
        return holder

    # --- the form ----------------------------------------------------------------------------------
    def kind(self) -> str:
        return self.model_combo.currentData()

    def dataset_name(self) -> str:
        return self.dataset_combo.currentData()

    def _on_model_kind(self) -> None:
        kind = self.kind()
        self.latent_spin.setValue(default_latent_dim(kind) or self.latent_spin.value())
        for setting, widget in (
            ("latent_dim", self.latent_spin),
            ("gan_loss", self.gan_loss_combo),
            ("levels", self.levels_spin),
            ("hidden", self.hidden_spin),
            ("layers", self.layers_spin),
            ("conditional", self.conditional_check),
            ("code_classes", self.code_spin),
        ):
            self.hyper_form.setRowVisible(widget, applies(setting, kind))
        self.lr_edit.setPlaceholderText(f"model default ({default_lr_text(kind)})")
        self.sample_every_spin.setValue(default_sample_every(kind))
        self.log_check.setChecked(not RECIPES[kind].signed_losses)  # a WGAN critic's losses can be negative
        self._default_path()

    def _on_dataset(self) -> None:
        name = self.dataset_name()
        size, channels = default_shape(name)
        with signals_blocked(self.size_combo), signals_blocked(self.channels_combo):
            self.size_combo.setCurrentIndex(self.size_combo.findData(size))
            self.channels_combo.setCurrentIndex(self.channels_combo.findData(channels))
        self._on_channels()
        self.data_form.setRowVisible(self.root_row, name not in PROCEDURAL)
        self.conditional_check.setEnabled(bool(dataset_classes(name)))  # labelled by class
        if not dataset_classes(name):
            self.conditional_check.setChecked(False)
        self.root_label.setText("Image folder" if name == "folder" else "Data root")
        self.root_edit.setPlaceholderText(
            "folder of images (searched recursively)"
            if name == "folder"
            else "torchvision root folder (holding the downloaded files)"
        )
        self._default_path()

    def _on_channels(self) -> None:
        self.levels_spin.setValue(default_levels(self.channels_combo.currentData()))

    def _default_path(self) -> None:
        if self._auto_path:
            self.out_edit.setText(str(unique_path(runs_folder(), f"{self.kind()}-{self.dataset_name()}")))

    def _browse_root(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the data folder", self.root_edit.text())
        if folder:
            self.root_edit.setText(folder)

    def _browse_out(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Checkpoint file", self.out_edit.text(), f"Checkpoints (*{SUFFIX})")
        if path:
            self.out_edit.setText(path if path.endswith(SUFFIX) else path + SUFFIX)
            self._auto_path = False

    def configure(self, **values: Any) -> None:
        """Set form fields by name: model, dataset, root, image_size, channels, epochs, max_steps,
        batch_size, lr (None: default), latent_dim, gan_loss, conditional, levels, hidden, layers (0: default),
        seed, sample_every, checkpoint_path."""
        combos = {
            "model": self.model_combo,
            "dataset": self.dataset_combo,
            "image_size": self.size_combo,
            "channels": self.channels_combo,
        }
        spins = {
            "epochs": self.epochs_spin,
            "max_steps": self.max_steps_spin,
            "batch_size": self.batch_spin,
            "latent_dim": self.latent_spin,
            "levels": self.levels_spin,
            "seed": self.seed_spin,
            "hidden": self.hidden_spin,
            "layers": self.layers_spin,
            "code_classes": self.code_spin,
            "sample_every": self.sample_every_spin,
        }
        order = ["model", "dataset", "image_size", "channels"]  # these reset defaults of the others
        for name in sorted(values, key=lambda n: order.index(n) if n in order else len(order)):
            value = values[name]
            if name in combos:
                index = combos[name].findData(value)
                if index < 0:
                    raise ValueError(f"{name} cannot be {value!r}")
                combos[name].setCurrentIndex(index)
            elif name in spins:
                spins[name].setValue(int(value or 0))
            elif name == "lr":
                self.lr_edit.setText("" if value is None else repr(float(value)))
            elif name == "gan_loss":
                self.gan_loss_combo.setCurrentText(value)
            elif name == "conditional":
                self.conditional_check.setChecked(bool(value))
            elif name == "root":
                self.root_edit.setText(str(value or ""))
            elif name == "checkpoint_path":
                self.out_edit.setText(str(value))
                self._auto_path = False
            else:
                raise ValueError(f"unknown training option {name!r}")

    def settings(self) -> RunSettings:
        """The run the form describes; raises ValueError for a field that makes no sense."""
        lr_text = self.lr_edit.text().strip()
        try:
            lr = float(lr_text) if lr_text else None
        except ValueError:
            raise ValueError(
                f"The learning rate {lr_text!r} is not a number (leave it blank for the default)"
            ) from None
        if lr is not None and not (lr > 0 and math.isfinite(lr)):
            raise ValueError("The learning rate must be a positive number")
        out = self.out_edit.text().strip()
        if not out:
            raise ValueError("Choose where to save the checkpoint")
        if not out.endswith(SUFFIX):
            raise ValueError(f"The checkpoint file must end in {SUFFIX}")
        if self._auto_path and Path(out).exists():  # a default name from an earlier run: take the next one
            out = str(unique_path(Path(out).parent, f"{self.kind()}-{self.dataset_name()}"))
            self.out_edit.setText(out)
        return self.form_settings(lr, out)

    def form_settings(self, lr: float | None = None, checkpoint_path: str = "") -> RunSettings:
        """The form's settings without checking the learning rate or the output path (for the estimate)."""
        kind = self.kind()
        return RunSettings(
            kind=kind,
            dataset=self.dataset_name(),
            root=self.root_edit.text().strip() or None,
            image_size=self.size_combo.currentData(),
            channels=self.channels_combo.currentData(),
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            lr=lr,
            latent_dim=self.latent_spin.value() if applies("latent_dim", kind) else None,
            gan_loss=self.gan_loss_combo.currentText() if applies("gan_loss", kind) else None,
            conditional=self.conditional_check.isChecked() and applies("conditional", kind),
            levels=self.levels_spin.value() if applies("levels", kind) else None,
            seed=self.seed_spin.value(),
            hidden=self.hidden_spin.value() or None if applies("hidden", kind) else None,
            layers=self.layers_spin.value() or None if applies("layers", kind) else None,
            code_classes=self.code_spin.value() or None if applies("code_classes", kind) else None,
            max_steps=self.max_steps_spin.value() or None,
            sample_every=self.sample_every_spin.value(),
            checkpoint_path=checkpoint_path,
            device=str(self.state.device),
            precision="bf16" if self.bf16_check.isChecked() else "fp32",
            ema=EMA_DECAY if self.ema_check.isChecked() else 0.0,
            model_overrides=dict(self.config_overrides),
            train_overrides=dict(self.train_overrides),
        )

    # --- the memory estimate ---------------------------------------------------------------------------
    def update_memory_estimate(self) -> None:
        """Estimate the memory of the form's run in a worker (the first estimate takes about a second);
        the Memory row shows it when it arrives. Runs (as update_view) 200 ms after the last edit of a field
        it depends on and on a model or device change, while the tab is shown, else when it is shown: no
        work for a tab never opened."""
        settings = self.form_settings()
        key = memory_key(settings)
        if key == self._memory_for and self.memory is not None:
            return
        self._memory_for = None
        self.memory_label.setText("estimating…")
        self.memory_label.setStyleSheet(MEMORY_STYLE["ok"])
        self._memory_job.start(
            lambda _job: estimate_memory(settings), on_result=lambda estimate: self._show_memory(key, estimate)
        )

    def _show_memory(self, key: tuple, estimate: MemoryEstimate) -> None:
        self.memory, self._memory_for = estimate, key
        text = estimate.text()
        if estimate.invalid:
            text = self._form_terms(text)
        self.memory_label.setText(text)
        high = estimate.need is not None and estimate.need > 0.8 * estimate.available
        style = "bad" if estimate.invalid or not estimate.fits else "high" if high else "ok"
        self.memory_label.setStyleSheet(MEMORY_STYLE[style])
        self.memoryEstimated.emit(estimate)

    @staticmethod
    def _form_terms(message: str) -> str:
        """A config class's message in the form's words ("hidden must be ..." -> "Width must be ...")."""
        for field, label in FIELD_LABELS.items():
            if message.startswith(field + " ") or message.startswith(f"{field} ("):
                return label + message[len(field) :]
        return message[:1].upper() + message[1:]

    def memory_text(self) -> str:
        return self.memory_label.text()

    def confirm_memory(self, message: str) -> bool:
        """Ask whether to start a run that may not fit in memory; No is the default (tests replace this)."""
        answer = QMessageBox.warning(
            self,
            "Not enough memory",
            f"{message}.\n\nThe estimate errs high, but a run that exhausts memory can make the whole machine "
            "unresponsive. Start anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _check_memory(self, settings: RunSettings) -> bool:
        """True when the run fits in memory, or the user chose to start it anyway."""
        key = memory_key(settings)
        estimate = self.memory if key == self._memory_for and self.memory is not None else estimate_memory(settings)
        if estimate.need is None or estimate.fits:
            return True
        message = (
            f"This run needs about {format_bytes(estimate.need)} of memory but "
            f"{format_bytes(estimate.available)} is available; use a smaller batch size, image size or model"
        )
        if self.confirm_memory(message):
            log.warning("starting a run the memory estimate says will not fit: %s", message)
            return True
        self.show_banner("error", f"Not started: {message[:1].lower()}{message[1:]}.")
        return False

    # --- running -----------------------------------------------------------------------------------
    def _reset_run(self) -> None:
        self.step = 0
        self.total_steps = 0
        self.steps_per_epoch = 0
        self.checkpoint_path: str | None = None
        self.checkpoint_step = 0
        self.finish_reason: str | None = None
        self.grid: np.ndarray | None = None  # the newest sample grid (H, W, C) uint8, and its step
        self.grid_step = 0
        self.skipped: dict[str, int] = {}
        self.validation = ""  # where the held-out curves come from (engines.data.split.describe_record)
        self._images_per_s = 0.0
        self._start_step = 0
        self._t0 = 0.0
        self._paused_total = 0.0
        self._paused_since: float | None = None
        self._grid_dirty = False
        self._device = ""

    def start(self) -> Job | None:
        """Start a run with the form's settings; None (with a message) when it cannot start."""
        if self.phase != "idle":
            return None
        try:
            settings = self.settings()
            # Say what is wrong before any thread starts: a folder run without a folder, a config that
            # does not fit (the config class checks itself).
            config = settings.model_config(settings.data_spec())
            make_config(settings.kind, config)
        except (ValueError, TypeError, DatasetError) as error:
            self.show_banner("error", self._form_terms(one_line(error)))
            return None
        if not self._check_memory(settings):
            return None
        self._reset_run()
        self.curves.clear_curves()
        self.sample_view.set_image(None)
        self.grid_caption.setText("Samples (fixed noise)")
        self.banner.hide()
        self.skipped_label.hide()
        self.collapse_label.hide()
        self.timeline.clear()
        self.progress.setRange(0, 0)  # busy until Started says how many steps
        self.progress.setFormat("loading data…")
        self.status_label.setText(f"Loading {self.dataset_combo.currentText()}…")
        self.log_view.appendPlainText(
            f"--- {settings.kind} on {settings.dataset}, checkpoint {settings.checkpoint_path}"
        )
        job = start_job(train_worker, settings)
        job.progress.connect(self._on_progress)
        job.failed.connect(self._on_failed)
        job.finished.connect(lambda j=job: self._on_job_finished(j))
        self.job = job
        self._set_phase("running")
        self._timer.start()
        log.info("training %s on %s -> %s", settings.kind, settings.dataset, settings.checkpoint_path)
        return job

    def pause(self) -> None:
        if self.phase == "running" and self.job is not None:
            self.job.pause()
            self._set_phase("paused")
            self.status_label.setText("Pausing after this step…")

    def resume(self) -> None:
        if self.phase == "paused" and self.job is not None:
            self.job.resume()
            self._set_phase("running")
            self.status_label.setText("Training…")

    def is_training(self) -> bool:
        """A run is going (or paused). Not once it has ended: its thread may still be finishing then (on a
        busy machine, a window closed right after a run asked "still training"), which quitting waits for."""
        return self.phase != "idle" and self.job is not None and self.job.is_running()

    def _set_phase(self, phase: str) -> None:
        self.phase = phase
        self._update_buttons()

    def _update_buttons(self) -> None:
        idle = self.phase == "idle"
        self.start_button.setEnabled(idle)
        self.pause_button.setEnabled(self.phase == "running")
        self.resume_button.setEnabled(self.phase == "paused")
        self.stop_button.setEnabled(self.phase in ("running", "paused"))
        for widget in (
            self.model_combo,
            self.dataset_combo,
            self.root_row,
            self.size_combo,
            self.channels_combo,
            self.epochs_spin,
            self.max_steps_spin,
            self.batch_spin,
            self.lr_edit,
            self.latent_spin,
            self.gan_loss_combo,
            self.conditional_check,
            self.code_spin,
            self.levels_spin,
            self.seed_spin,
            self.sample_every_spin,
            self.out_edit,
            self.out_button,
        ):
            widget.setEnabled(idle)
        self.open_button.setEnabled(self.checkpoint_path is not None and Path(self.checkpoint_path).is_file())

    # --- events from the worker (GUI thread) ---------------------------------------------------------
    def _on_progress(self, payload: object) -> None:
        """The worker reports a DatasetInfo first, then lists of trainer events (each to its handler)."""
        if isinstance(payload, DatasetInfo):
            self._on_dataset_info(payload)
            return
        for event in payload:
            handler = self._handlers.get(type(event))
            if handler is not None:
                handler(event)
            self.trainingEvent.emit(event)

    def _on_dataset_info(self, info: DatasetInfo) -> None:
        self.skipped = dict(info.skipped)
        self.validation = info.validation
        self.status_label.setText(f"{info.images} images loaded; building the model…")
        if info.validation:
            self.log_view.appendPlainText(f"validation: {info.validation}")
        if info.skipped:
            total = sum(info.skipped.values())
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(info.skipped.items()))
            held = f", {info.held_out} of them held out for validation" if info.held_out else ""
            self.skipped_label.setText(
                f"Skipped {total} of {info.images + total} files ({why}); using the other {info.images}{held}."
            )
            self.skipped_label.setToolTip("\n".join(f"{path}: {reason}" for path, reason in info.skipped_files))
            self.skipped_label.show()
            self.log_view.appendPlainText(f"skipped {total} file(s): {why}")

    def _on_step(self, event: events.StepDone) -> None:
        self.step = event.step
        self._images_per_s = event.images_per_s
        for name, value in event.losses.items():
            self.curves.add_point(name, event.step, value)

    def _on_grid(self, event: events.SampleGrid) -> None:
        if event.grid is not None:
            self.grid, self.grid_step = event.grid, event.step
            self._grid_dirty = True

    def _on_snapshot(self, event: events.Snapshot) -> None:
        self.timeline.add(f"step {event.step}", event.samples, event.reconstructions)

    def _on_health(self, event: events.Health) -> None:
        self.collapse_label.setText(f"⚠ {event.warning}" if event.warning else "")
        self.collapse_label.setVisible(bool(event.warning))
        if event.warning:
            self.log_view.appendPlainText(f"step {event.step}: {event.warning}")

    def _on_started(self, event: events.Started) -> None:
        self.step = self._start_step = event.step
        self.total_steps, self.steps_per_epoch, self._device = event.total_steps, event.steps_per_epoch, event.device
        self._t0 = time.monotonic()
        self.progress.setRange(0, max(1, event.total_steps))
        self.status_label.setText(
            f"Training on {event.device}: {event.total_steps} steps, {event.steps_per_epoch} per epoch"
        )

    def _on_epoch(self, event: events.EpochEnd) -> None:
        line = (
            f"epoch {event.epoch + 1}: train {format_losses(event.train_losses)} | "
            f"val {format_losses(event.val_losses)} | {event.seconds / 60:.2f} min"
        )
        self.log_view.appendPlainText(line)
        for name, value in event.val_losses.items():
            self.curves.add_point(f"val {name}", event.step, value, marker=True)

    def _on_checkpoint(self, event: events.CheckpointSaved) -> None:
        self.checkpoint_path, self.checkpoint_step = event.path, event.step
        self.open_button.setEnabled(True)
        self.open_button.setToolTip(f"Open {event.path} (step {event.step}) in the Explore tab")

    def _on_paused(self, event: events.Paused) -> None:
        self._paused_since = time.monotonic()
        self.status_label.setText(f"Paused at step {event.step}")

    def _on_resumed(self, event: events.Resumed) -> None:
        if self._paused_since is not None:
            self._paused_total += time.monotonic() - self._paused_since
            self._paused_since = None
        self.status_label.setText("Training…")

    def _on_diverged(self, event: events.Diverged) -> None:
        head = event.message.split(";")[0]
        kept = (
            f"The last good checkpoint (step {self.checkpoint_step}) was kept: {self.checkpoint_path}"
            if self.checkpoint_path
            else "No checkpoint was written: it diverged before the first one."
        )
        text = f"{head[:1].upper()}{head[1:]}: the run stopped. {kept} Try a lower learning rate."
        self.show_banner("error", text)
        self.log_view.appendPlainText(text)

    def _on_finished(self, event: events.Finished) -> None:
        self.finish_reason = event.reason
        self.step = event.step
        self.log_view.appendPlainText(f"{event.reason} at step {event.step} in {event.seconds / 60:.2f} min")

    def _on_failed(self, message: str) -> None:
        self.finish_reason = "failed"
        self.show_banner("error", message)
        self.log_view.appendPlainText(f"failed: {message}")

    def _on_job_finished(self, job: Job) -> None:
        if job is not self.job:
            return
        self._timer.stop()
        self._set_phase("idle")
        self._redraw()
        reason = self.finish_reason or "failed"
        if reason == "completed":
            self.status_label.setText(f"Finished: {self.step} steps. Checkpoint: {self.checkpoint_path}")
        elif reason == "stopped":
            self.status_label.setText(f"Stopped at step {self.step}. Checkpoint: {self.checkpoint_path or 'none'}")
        elif reason == "diverged":
            self.status_label.setText(f"Diverged at step {self.step + 1}")
        else:
            self.status_label.setText("The run could not start")
        if reason == "failed":
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("not started")
        self.runFinished.emit(reason)

    def _redraw(self) -> None:
        """Everything drawn, at most REDRAW_MS apart."""
        self.curves.refresh()
        if self._grid_dirty and self.grid is not None:
            self.sample_view.set_image(self.grid)
            self.grid_caption.setText(f"Samples (fixed noise), step {self.grid_step}")
            self._grid_dirty = False
        if self.total_steps:
            self.progress.setValue(min(self.step, self.total_steps))
            self.progress.setFormat(self._progress_text())

    def _progress_text(self) -> str:
        text = f"step {self.step} / {self.total_steps}"
        if self.steps_per_epoch:
            text += (
                f" · epoch {min(self.step // self.steps_per_epoch + 1, -(-self.total_steps // self.steps_per_epoch))}"
            )
        now = time.monotonic()
        paused = self._paused_total + (now - self._paused_since if self._paused_since is not None else 0.0)
        running = now - self._t0 - paused
        done = self.step - self._start_step
        if self.phase != "idle" and done > 0 and running > 0:
            text += f" · ETA {format_duration((self.total_steps - self.step) * running / done)}"
        if self._images_per_s:
            text += f" · {self._images_per_s:,.0f} img/s"
        return text

    def show_banner(self, kind: str, text: str) -> None:
        """A message in the panel (red for errors), never a dialog or a traceback."""
        (log.warning if kind == "error" else log.info)("%s", text)
        self.banner.show_message(kind, text)

    def banner_text(self) -> str:
        return self.banner.text()

    # --- the explorer ------------------------------------------------------------------------------
    def open_in_explorer(self) -> bool:
        """Open this run's latest checkpoint: `openRequested` asks the main window (which opens it and
        shows the Explore tab); a panel on its own opens it in its state. True when it is open now."""
        path = self.checkpoint_path
        if not path or not Path(path).is_file():
            self.show_banner("error", "This run has not written a checkpoint yet")
            return False
        if self.isSignalConnected(QMetaMethod.fromSignal(self.openRequested)):
            self.openRequested.emit(path)
            current = self.state.checkpoint_path
            return current is not None and Path(current).resolve() == Path(path).resolve()
        try:
            self.state.open_checkpoint(path)
        except Exception as error:  # noqa: BLE001 - shown in the panel; the app goes on
            log.exception("opening %s failed", path)
            self.show_banner("error", f"Cannot open {Path(path).name}: {error}")
            return False
        return True

    # --- closing -----------------------------------------------------------------------------------
    def confirm_close(self) -> bool:
        """Ask whether to stop the run and close (tests replace this)."""
        answer = QMessageBox.question(
            self,
            "Training in progress",
            "A model is still training. Stop it and close? Its checkpoint is saved first.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def stopping_message(self) -> str | None:
        return STOPPING_TEXT if self.is_training() else None

    def can_close(self) -> bool:
        """For the main window's closeEvent: True when nothing trains, or the user agreed to stop the run
        (then it is asked to stop after the step in progress, which writes its checkpoint; the window
        waits for the thread without blocking)."""
        if not self.is_training():
            return True
        if not self.confirm_close():
            return False
        self.stop()
        return True

    def stop_and_wait(self, timeout_ms: int | None = None) -> bool:
        """For scripts: stop the run (it saves a checkpoint) and wait until its thread ends, processing
        events meanwhile (the GUI never freezes); True when it has ended."""
        self.stop()
        if self.job is None:
            return True
        start = time.monotonic()
        app = QCoreApplication.instance()
        while not self.job.wait(50):
            if app is not None:
                app.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
            if timeout_ms is not None and (time.monotonic() - start) * 1000 >= timeout_ms:
                log.warning("the training thread did not stop within %d ms", timeout_ms)
                return False
        return True

    def stop(self) -> None:
        """Stop the run after the step in progress (a paused one wakes); it writes its checkpoint."""
        if self.phase in ("running", "paused"):
            self._set_phase("stopping")
            self.status_label.setText(STOPPING_TEXT)
        if self.job is not None:
            self.job.cancel()  # also before the trainer exists (it then never starts), or when idle

    def stop_work(self) -> None:
        """At close and quit: stop the run after the step in progress (non-blocking), and the estimate."""
        self.stop()
        super().stop_work()
