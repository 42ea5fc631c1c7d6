"""The Styles tab: style mixing (a style-based generator) and what any generator's layers compute.

- **Style mixing** (Karras et al. 2019, figure 3): sources A down the left (random seeds, and optionally
  the current latent first), sources B along the top, and in each cell the image whose layers in the
  crossover range [start, stop) take B's w and the rest A's: coarse layers (4-8 px) carry pose and face
  shape, fine ones colour. Presets coarse / middle / fine, or any range; Export PNG saves the figure.
  Seeds draw z as the Explore tab does (seed s is the same face here and there); in W / W+ the
  space's truncation psi applies to every source.
- **Layer view**: the output of any layer of the generator for the current latent (forward hooks,
  engines.layers), every channel normalised on its own and tiled, or one channel; it follows z. For a
  VAE decoder, a DCGAN and a style generator alike; ONNX models have no layers to read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from engines.images import save_png, unit_to_uint8
from engines.layers import channel_grid, generator_layers, layer_activation
from engines.styles import has_styles, layer_resolutions, mixing_grid, mixing_mosaic, style_ranges

from ..image_view import ImageView
from ..state import ExplorerState
from ..workers import Job
from .panel_tools import MAX_SEED, debounce, laid_out, require_finite, spin_box
from .tab import Tab

log = logging.getLogger(__name__)

MAX_SOURCES = 8
PRESETS = ("coarse", "middle", "fine", "custom")
NO_STYLES = (
    "Style mixing needs a style-based generator (model kind stylegan): this model has one latent for all layers."
)


# --- work functions (worker threads; numpy out) ------------------------------------------------------
def seed_latents(dim: int, first_seed: int, count: int) -> np.ndarray:
    """(count, dim) z from seeds first_seed.. as the Explore tab draws them (ExplorerState.randomize)."""
    return np.stack(
        [np.random.default_rng(first_seed + i).standard_normal(dim).astype(np.float32) for i in range(count)]
    )


@torch.no_grad()
def source_styles(state_model, base, psi: float, zs: np.ndarray, current: np.ndarray | None) -> torch.Tensor:
    """W+ (N, n_styles, w_dim) of seed latents zs (Z), with the current latent of the state's space first."""
    device = base.device
    w = base.truncate(base.mapping(torch.as_tensor(zs, device=device)), psi)
    rows = [base.broadcast(w)]
    if current is not None:
        latent = torch.as_tensor(current[None], device=device)
        if state_model is base:  # Z
            cur = base.broadcast(base.truncate(base.mapping(latent), psi))
        else:  # a StyleSpace: W or W+, with its own psi
            cur = state_model.w_plus(latent)
        rows.insert(0, cur)
    return torch.cat(rows)


def mix_job(job: Job, state_model, base, psi: float, a_z, b_z, current, start: int, stop: int) -> dict:
    w_a = source_styles(state_model, base, psi, a_z, current)
    w_b = source_styles(state_model, base, psi, b_z, None)
    a, b, cells = mixing_grid(base, w_a, w_b, start, stop)
    require_finite(cells)
    return {"model": state_model, "a": a, "b": b, "cells": cells, "mosaic": mixing_mosaic(a, b, cells)}


def layers_job(job: Job, model, z: np.ndarray) -> dict:
    return {"model": model, "layers": generator_layers(model, z)}


def activation_job(job: Job, model, z: np.ndarray, name: str, channel: int | None) -> dict:
    activation = layer_activation(model, z, name)
    require_finite(activation, what="the layer's output")
    return {"model": model, "name": name, "activation": activation, "image": channel_grid(activation, channel)}


class StylesPanel(Tab):
    """Style mixing for a style-based generator; the layer view for any generator with a latent."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.mosaic: np.ndarray | None = None  # the latest mixing figure, (H, W, C) float in [0, 1]
        self.mixed: dict | None = None  # its parts: a, b, cells
        self.layers: list = []  # engines.layers.LayerInfo of the open model
        self.activation: np.ndarray | None = None  # the shown layer's output (C, H, W)
        self._mix_slot = self.job_slot()
        self._layers_slot = self.job_slot()
        self._activation_slot = self.job_slot(interrupt=False)  # follows z: newest wins, no restarts
        self._mix_timer = debounce(self, self.refresh_mix, 80)
        self._layers_pending = False  # the model's layers are still to be found (when next shown)
        self._mix_stale = True  # the figure is still to be (re)computed (when next shown)

        splitter = QSplitter()
        splitter.addWidget(self._build_mixing())
        splitter.addWidget(self._build_layers())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        state.latentChanged.connect(self.refresh)
        self.set_content(splitter)

    # --- layout ---------------------------------------------------------------------------------------
    def _build_mixing(self) -> QWidget:
        box = QGroupBox("Style mixing")
        self.mixing_message = QLabel(NO_STYLES)
        self.mixing_message.setWordWrap(True)
        self.a_seed = spin_box(
            0, MAX_SEED, 1, tip="Sources A (rows): seeds from this one, drawn as the Explore tab does"
        )
        self.a_count = spin_box(1, MAX_SOURCES, 4, tip="How many sources A")
        self.b_seed = spin_box(0, MAX_SEED, 101, tip="Sources B (columns): seeds from this one")
        self.b_count = spin_box(1, MAX_SOURCES, 5, tip="How many sources B")
        self.use_current = QCheckBox("current latent as the first A")
        self.preset_combo = QComboBox()
        self.preset_combo.addItems(PRESETS)
        self.preset_combo.setToolTip("Which layers take B's styles: coarse (4-8 px), middle (16 px), fine (the rest)")
        self.start_spin = spin_box(0, 1, 0, tip="First layer taken from B")
        self.stop_spin = spin_box(0, 1, 1, tip="Layers from B end before this one")
        self.range_label = QLabel("")
        self.export_button = QPushButton("Export PNG…")
        self.export_button.clicked.connect(self.export_dialog)
        self.mixing_view = ImageView(placeholder="mixing…")
        for spin in (self.a_seed, self.a_count, self.b_seed, self.b_count, self.start_spin, self.stop_spin):
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._on_range_or_sources)
        self.use_current.toggled.connect(self._on_range_or_sources)
        self.preset_combo.currentTextChanged.connect(self._on_preset)

        sources = QHBoxLayout()
        for widget in (QLabel("A seeds"), self.a_seed, self.a_count, QLabel("B seeds"), self.b_seed, self.b_count):
            sources.addWidget(widget)
        sources.addWidget(self.use_current)
        sources.addStretch(1)
        crossover = QHBoxLayout()
        for widget in (
            QLabel("B's layers"),
            self.preset_combo,
            QLabel("from"),
            self.start_spin,
            QLabel("to"),
            self.stop_spin,
        ):
            crossover.addWidget(widget)
        crossover.addWidget(self.range_label, 1)
        crossover.addWidget(self.export_button)
        self.mixing_controls, column = laid_out(QVBoxLayout)
        column.addLayout(sources)
        column.addLayout(crossover)
        column.addWidget(self.mixing_view, 1)
        layout = QVBoxLayout(box)
        layout.addWidget(self.mixing_message)
        layout.addWidget(self.mixing_controls, 1)
        return box

    def _build_layers(self) -> QWidget:
        box = QGroupBox("Layer view")
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("A layer of the generator: its output for the current latent")
        self.layer_combo.currentIndexChanged.connect(self._on_layer_chosen)
        self.channel_combo = QComboBox()
        self.channel_combo.setToolTip("Every channel tiled (each normalised to its own min..max), or one")
        self.channel_combo.currentIndexChanged.connect(lambda _: self.refresh_activation())
        self.layer_info = QLabel("")
        self.layer_info.setWordWrap(True)
        self.layer_view = ImageView(placeholder="…")
        row = QHBoxLayout()
        row.addWidget(self.layer_combo, 1)
        row.addWidget(self.channel_combo)
        layout = QVBoxLayout(box)
        layout.addLayout(row)
        layout.addWidget(self.layer_info)
        layout.addWidget(self.layer_view, 1)
        return box

    # --- the Tab hooks --------------------------------------------------------------------------------
    def reset_for_model(self) -> None:
        self.mosaic, self.mixed, self.layers, self.activation = None, None, [], None
        self.mixing_view.set_image(None)
        self.layer_view.set_image(None)
        with signals_blocked(self.layer_combo):
            self.layer_combo.clear()
        with signals_blocked(self.channel_combo):
            self.channel_combo.clear()
        styled = self.usable and has_styles(self.state.base_model)
        self.mixing_message.setVisible(not styled)
        self.mixing_controls.setVisible(styled)
        if styled:
            n = self.state.base_model.n_styles
            for spin in (self.start_spin, self.stop_spin):
                with signals_blocked(spin):
                    spin.setRange(0, n)
            self._on_preset(self.preset_combo.currentText())
        self._layers_pending = self.usable
        self._mix_stale = True

    def update_view(self) -> None:
        if self._layers_pending:
            self._layers_pending = False
            self.layer_info.setText("Finding the generator's layers…")
            self._layers_slot.start(
                layers_job, self.state.model, self.state.z.copy(), on_result=self._on_layers, on_failed=self._failed
            )
        else:
            self.refresh_activation()
        if self.mixing_controls.isVisible() and (self._mix_stale or self.use_current.isChecked()):
            self.refresh_mix()

    # --- style mixing ---------------------------------------------------------------------------------
    def set_crossover(self, start: int, stop: int) -> None:
        """B's styles for layers [start, stop) (custom range)."""
        with signals_blocked(self.preset_combo):
            self.preset_combo.setCurrentText("custom")
        for spin, value in ((self.start_spin, start), (self.stop_spin, stop)):
            with signals_blocked(spin):
                spin.setValue(value)
        self._on_range_or_sources()

    def crossover(self) -> tuple[int, int]:
        return self.start_spin.value(), self.stop_spin.value()

    def _on_preset(self, name: str) -> None:
        model = self.state.base_model
        if name != "custom" and has_styles(model):
            start, stop = style_ranges(model)[name]
            for spin, value in ((self.start_spin, start), (self.stop_spin, stop)):
                with signals_blocked(spin):
                    spin.setValue(value)
        self._on_range_or_sources()

    def _on_range_or_sources(self, *_) -> None:
        if self.sender() in (self.start_spin, self.stop_spin):
            with signals_blocked(self.preset_combo):
                self.preset_combo.setCurrentText("custom")
        model = self.state.base_model
        if has_styles(model):
            start, stop = self.crossover()
            sizes = layer_resolutions(model)
            shown = f"{sizes[start]}-{sizes[stop - 1]} px" if start < stop else "none: every image is its A"
            self.range_label.setText(f"layers {start}..{stop - 1} of {model.n_styles} ({shown})")
        self._mix_timer.start()

    def refresh_mix(self) -> None:
        """Compute the mixing figure now (when the tab is shown and the model is a style generator)."""
        self._mix_stale = True
        if not (self.usable and self.isVisible() and has_styles(self.state.base_model)):
            self.refresh()  # marks the tab for an update when it is next shown
            return
        self._mix_stale = False
        base, model = self.state.base_model, self.state.model
        psi = self.state.psi if self.state.space != "Z" else 1.0
        dim = base.config.latent_dim
        start, stop = self.crossover()
        self._mix_slot.start(
            mix_job,
            model,
            base,
            psi,
            seed_latents(dim, self.a_seed.value(), self.a_count.value()),
            seed_latents(dim, self.b_seed.value(), self.b_count.value()),
            self.state.z.copy() if self.use_current.isChecked() else None,
            start,
            stop,
            on_result=self._on_mixed,
            on_failed=self._failed,
        )

    def _on_mixed(self, result: dict) -> None:
        if result["model"] is not self.state.model:
            return
        self.mixed = result
        self.mosaic = result["mosaic"]
        self.mixing_view.set_image(self.mosaic)

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the style-mixing figure", "style-mixing.png", "PNG (*.png)")
        if path:
            self.export_png(path)

    def export_png(self, path: str | Path, scale: int = 4) -> Path | None:
        """Save the shown figure as PNG (enlarged `scale` times with crisp pixels); None when there is none."""
        if self.mosaic is None:
            return None
        path = Path(path)
        save_png(unit_to_uint8(self.mosaic), path, scale=scale)
        return path

    # --- layer view -----------------------------------------------------------------------------------
    def _on_layers(self, result: dict) -> None:
        if result["model"] is not self.state.model:
            return
        self.layers = result["layers"]
        with signals_blocked(self.layer_combo):
            self.layer_combo.clear()
            for info in self.layers:
                self.layer_combo.addItem(info.label.removeprefix("base."), info.name)
        if not self.layers:
            self.layer_info.setText("This model's layers cannot be read (it is not a PyTorch module, e.g. ONNX).")
            return
        self.layer_info.setText("")
        self.layer_combo.setCurrentIndex(0)
        self._on_layer_chosen()

    def set_layer(self, index: int, channel: int | None = None) -> None:
        """Show layer `index` (of self.layers), all channels or one."""
        self.layer_combo.setCurrentIndex(index)
        self.channel_combo.setCurrentIndex(0 if channel is None else channel + 1)

    def _on_layer_chosen(self, *_) -> None:
        index = self.layer_combo.currentIndex()
        if not 0 <= index < len(self.layers):
            return
        channels = self.layers[index].shape[0]
        with signals_blocked(self.channel_combo):
            self.channel_combo.clear()
            self.channel_combo.addItem(f"all {channels} channels")
            self.channel_combo.addItems([f"channel {c}" for c in range(channels)])
        self.refresh_activation()

    def refresh_activation(self) -> None:
        index = self.layer_combo.currentIndex()
        if not (self.usable and self.isVisible()) or not 0 <= index < len(self.layers):
            return
        channel = self.channel_combo.currentIndex() - 1
        self._activation_slot.start(
            activation_job,
            self.state.model,
            self.state.z.copy(),
            self.layers[index].name,
            None if channel < 0 else channel,
            on_result=self._on_activation,
            on_failed=self._failed,
        )

    def _on_activation(self, result: dict) -> None:
        if result["model"] is not self.state.model:
            return
        self.activation = result["activation"]
        self.layer_view.set_image(result["image"])
        a = self.activation
        self.layer_info.setText(
            f"{result['name'].removeprefix('base.')}: {a.shape[0]} channels of {a.shape[1]}x{a.shape[2]}, "
            f"values {a.min():.2f}..{a.max():.2f} (each channel shown on its own min..max)"
        )

    def _failed(self, message: str) -> None:
        self.layer_info.setText(f"Failed: {message}")
