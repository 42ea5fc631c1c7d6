"""The Explore tab: the decoded image of the current z, sliders to move z, and ways to set z
(random draws, a dataset image, an image file). PixelCNNs have no latent: they get a sampler."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from engines.latent import encode_dataset, encode_images, principal_directions
from engines.projection import ACTIVE_KL_NATS, image_to_tensor, kl_per_dimension
from engines.projection import project_to_latent as _project
from engines.replay import Recording, sample_chunks
from engines.styles import layer_resolutions

from ..decoder import LatentDecoder
from ..image_view import IMAGE_SUFFIXES, ImageView
from ..state import ExplorerState
from ..workers import Job
from .panel_tools import MAX_SEED, NONFINITE_MESSAGE, laid_out, require_finite, spin_box
from .sliders import LatentSliders
from .tab import Tab

log = logging.getLogger(__name__)

STATS_IMAGES = 1000  # dataset images encoded for the principal directions
KL_IMAGES = 500  # of those, the ones averaged for the per-dimension KL
PCA_MIN_DIM = 9  # principal-direction sliders are offered for latents of more than 8 dimensions
PROJECTION_STEPS = 200
# One slider unit along a principal direction is its standard deviation, but at least this much:
# prior draws lie far out along the near-zero-variance directions of a VAE's means (collapsed dims).
MIN_DIRECTION_SCALE = 0.1
NO_MODEL = (
    "No model is open.\n\nFile > Open a checkpoint or ONNX model (Ctrl+O), or drop a .safetensors or .onnx file here."
)


# --- work functions (run in worker threads; numpy out) ---------------------------------------------
def latent_statistics(job: Job, state: ExplorerState, model, with_pca: bool) -> dict:
    """Per-dimension KL over KL_IMAGES dataset images and PCA of the encoder means of STATS_IMAGES."""
    data = state.dataset(train=False)
    encoded = encode_dataset(
        model, data, STATS_IMAGES if with_pca else KL_IMAGES, batch=250, seed=0, should_stop=lambda: job.cancelled
    )
    if job.cancelled:
        return {}
    mu, logvar, n = encoded.latents, encoded.logvars, len(encoded.indices)
    require_finite(mu, logvar, what="the encoder's output")
    stats = {"model": model, "images": n}
    if getattr(model, "encoder_variance", True):  # an encoder giving means only has no per-dimension KL
        stats["kl"] = kl_per_dimension(mu[:KL_IMAGES], logvar[:KL_IMAGES])
    if with_pca:
        mean, components, variance = principal_directions(mu)
        stats["pca"] = (mean, components.T, np.sqrt(variance))  # directions as columns, std per direction
    return stats


PRIOR_PCA_DRAWS = 2000  # prior draws whose principal directions W offers (W is not isotropic, unlike Z)
PSI_STEPS = 100  # the truncation slider's ticks per unit of psi
BLEND_STEPS = 100  # the class blend slider's ticks from the first class (0) to the second (1)
SPACE_TIPS = {
    "Z": "Z: the input z ~ N(0, I) of the mapping network; image = G(mapping(z))",
    "W": "W: the mapping's output w, the same w at every layer; coordinates centred on the mean w, in units "
    "of w's spread, so 0 is the mean-w image",
    "W+": "W+: one w per layer; the layer selector says which layer's w the sliders move (all: every layer alike)",
}


def prior_statistics(job: Job, model) -> dict:
    """Principal directions of PRIOR_PCA_DRAWS prior draws of a space that is not isotropic (W)."""
    latents = model.random_latents(PRIOR_PCA_DRAWS, generator=torch.Generator().manual_seed(0)).cpu().numpy()
    require_finite(latents, what="the mapped latents")
    mean, components, variance = principal_directions(latents)
    return {"model": model, "images": PRIOR_PCA_DRAWS, "prior": True, "pca": (mean, components.T, np.sqrt(variance))}


def layer_basis(n_styles: int, w_dim: int, layer: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sliders in W+: (mean, directions (D, w_dim), scale) moving one layer's w (`layer`), or with None
    every layer's w alike (slider k shows the mean over layers of coordinate k)."""
    dim = n_styles * w_dim
    directions = np.zeros((dim, w_dim), np.float32)
    if layer is None:
        for i in range(n_styles):
            directions[i * w_dim : (i + 1) * w_dim] = np.eye(w_dim) / np.sqrt(n_styles)
        scale = np.full(w_dim, np.sqrt(n_styles), np.float32)
    else:
        directions[layer * w_dim : (layer + 1) * w_dim] = np.eye(w_dim)
        scale = np.ones(w_dim, np.float32)
    return np.zeros(dim, np.float32), directions, scale


def dataset_image(job: Job, state: ExplorerState, seed: int) -> torch.Tensor:
    data = state.dataset(train=False)
    index = int(np.random.default_rng(seed).integers(len(data)))
    return data.get_batch([index])[0][0]


def encode_image(job: Job, model, image: torch.Tensor) -> dict:
    z = encode_images(model, image.unsqueeze(0))[0][0]
    require_finite(z, what="the encoder's output")
    return {"model": model, "z": z, "message": "Encoded the image: z is its posterior mean"}


def encode_dataset_image(job: Job, state: ExplorerState, model, seed: int) -> dict:
    return encode_image(job, model, dataset_image(job, state, seed))


def project_image(
    job: Job,
    model,
    image: torch.Tensor | None,
    state: ExplorerState | None = None,
    seed: int = 0,
    steps: int | None = None,
) -> dict:
    steps = steps or PROJECTION_STEPS
    if image is None:
        image = dataset_image(job, state, seed)
    result = _project(
        model,
        image,
        steps=steps,
        lr=0.05,
        callback=lambda step, loss: job.report((step, steps, loss)),
        should_stop=lambda: job.cancelled,
    )
    require_finite(result.z, what="the projected latent")
    return {
        "model": model,
        "z": result.z,
        "message": f"Projected the image: MSE {result.mse:.4f} after {result.steps} steps",
    }


def sample_pixelcnn(job: Job, model, seed: int, temperature: float) -> np.ndarray | None:
    """One image, pixel by pixel; reports (done, total, partial image) with each chunk of steps."""
    config = model.config
    recording = Recording(config.channels, config.image_size, config.levels)
    for chunk in sample_chunks(model, temperature, seed, should_stop=lambda: job.cancelled):
        recording.append(chunk)
        job.report((len(recording), recording.expected, recording.image()))
    return None if job.cancelled else recording.image()


class ExplorePanel(Tab):
    """Shows decode(state.z) and edits z. Tells the window about news and errors by signals.

    The image follows z whether the tab is shown or not (the window's export and the decoder's
    coalescing rely on it); `pages` shows `latent_page` for a VAE or GAN and `pixel_page` (a sampler)
    for a PixelCNN; without a model the gate says how to open one."""

    statusMessage = Signal(str)
    errorOccurred = Signal(str)

    def __init__(
        self, state: ExplorerState, decoder: LatentDecoder | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(state, parent)
        self.decoder = decoder if decoder is not None else LatentDecoder(self)
        self.last_decoded_z: np.ndarray | None = None
        self._last_decoded: tuple[np.ndarray, np.ndarray] | None = None  # (z, image) on screen
        self.stats: dict | None = None  # the latest latent statistics of the open model
        self._stats_slot = self.job_slot()
        self._image_slot = self.job_slot()
        self._sample_slot = self.job_slot()
        self._image_job: Job | None = None
        self._sample_job: Job | None = None
        self._dataset_draws = 0

        self.pages = QStackedWidget()
        self.latent_page = self._build_latent_page()
        self.pixel_page = self._build_pixel_page()
        for page in (self.latent_page, self.pixel_page):
            self.pages.addWidget(page)

        state.latentChanged.connect(self._on_latent_changed)
        state.seedChanged.connect(self._on_seed_changed)
        self.decoder.decoded.connect(self._on_decoded)
        self.decoder.failed.connect(self.errorOccurred)
        self.set_content(self.pages)

    def model_problem(self) -> str | None:
        return NO_MODEL if self.state.model is None else None

    # --- layout ----------------------------------------------------------------------------------------
    def _build_latent_page(self) -> QWidget:
        self.image_view = ImageView(accept_image_drops=True, placeholder="decoding…")
        self.image_view.imageDropped.connect(self.encode_file)

        self.seed_spin = spin_box(0, MAX_SEED, tip="The seed of the random draw; edit it to draw that z again")
        self.seed_spin.setKeyboardTracking(False)  # draw on Enter, not on every typed digit
        self.seed_spin.valueChanged.connect(lambda seed: self.randomize(seed))
        self.randomize_button = QPushButton("Randomize")
        self.randomize_button.setToolTip("Draw z from the prior with the next seed (R)")
        self.randomize_button.clicked.connect(lambda: self.randomize())
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("z = 0, the centre of the prior (0)")
        self.reset_button.clicked.connect(self.state.reset)
        self.temperature_label = QLabel("Temperature")
        self.temperature_spin = spin_box(0.05, 3.0, 1.0, step=0.1)
        self.temperature_spin.setKeyboardTracking(False)
        self.temperature_spin.valueChanged.connect(lambda _: self.randomize(self.state.seed))

        self.dataset_button = QPushButton("Dataset image")
        self.dataset_button.clicked.connect(self.use_dataset_image)
        self.encode_button = QPushButton("Encode image…")
        self.encode_button.clicked.connect(self.encode_file_dialog)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setMaximumWidth(180)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_image_job)
        self.cancel_button.hide()

        draw_row = QHBoxLayout()
        draw_row.addWidget(QLabel("Seed"))
        draw_row.addWidget(self.seed_spin)
        draw_row.addWidget(self.randomize_button)
        draw_row.addWidget(self.reset_button)
        draw_row.addSpacing(12)
        draw_row.addWidget(self.temperature_label)
        draw_row.addWidget(self.temperature_spin)
        draw_row.addStretch(1)
        image_row = QHBoxLayout()
        image_row.addWidget(QLabel("From an image:"))
        image_row.addWidget(self.dataset_button)
        image_row.addWidget(self.encode_button)
        image_row.addWidget(self.progress)
        image_row.addWidget(self.cancel_button)
        image_row.addStretch(1)
        left, left_layout = laid_out(QVBoxLayout)
        left_layout.addWidget(self.image_view, 1)
        left_layout.addLayout(draw_row)
        left_layout.addLayout(image_row)

        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["Latent axes", "Principal directions"])
        self.mode_combo.currentIndexChanged.connect(self._apply_basis)
        self.stats_label = QLabel("")
        self.stats_label.setWordWrap(True)
        self.sliders = LatentSliders()
        self.sliders.zEdited.connect(self._on_sliders_edited)
        self.sliders.editStarted.connect(self.state.begin_edit)
        self.sliders.editFinished.connect(self.state.end_edit)
        right, right_layout = laid_out(QVBoxLayout)
        right_layout.addWidget(self._build_class_box())
        right_layout.addWidget(self._build_space_box())
        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("Sliders"))
        mode_row.addWidget(self.mode_combo, 1)
        right_layout.addLayout(mode_row)
        right_layout.addWidget(self.stats_label)
        right_layout.addWidget(self.sliders, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("exploreSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        return self.splitter

    def _build_class_box(self) -> QWidget:
        """The class of a conditional model: a class, and optionally a second one blended in by t (class
        interpolation: the class embeddings are blended). Shown for a conditional model only."""
        self.class_box = QGroupBox("Class")
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("The class the image is drawn from")
        self.blend_combo = QComboBox()
        self.blend_combo.setToolTip("A second class, blended in by the slider (its embedding mixed with the first's)")
        self.blend_slider = QSlider(Qt.Orientation.Horizontal)
        self.blend_slider.setRange(0, BLEND_STEPS)
        self.blend_slider.setToolTip("Class interpolation: 0 is the first class, 1 the second")
        self.blend_label = QLabel("t 0.00")
        for combo in (self.class_combo, self.blend_combo):
            combo.currentIndexChanged.connect(lambda _: self._on_class_chosen())
        self.blend_slider.valueChanged.connect(lambda _: self._on_class_chosen())
        box = QVBoxLayout(self.class_box)
        row = QHBoxLayout()
        row.addWidget(self.class_combo, 1)
        row.addWidget(QLabel("blend with"))
        row.addWidget(self.blend_combo, 1)
        box.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self.blend_label)
        row.addWidget(self.blend_slider, 1)
        box.addLayout(row)
        self.class_box.hide()
        return self.class_box

    def _update_class_box(self) -> None:
        """Show the class controls as the state has them (signals blocked: no echo). A blend of more than
        two classes (a saved session's) shows its two heaviest."""
        names = self.state.class_names
        self.class_box.setVisible(bool(names))
        if not names:
            return
        for combo in (self.class_combo, self.blend_combo):
            if [combo.itemText(i) for i in range(combo.count())] != list(names):
                with signals_blocked(combo):
                    combo.clear()
                    combo.addItems(list(names))
        mix = self.state.class_mix
        if np.allclose(self._widget_mix(), mix, atol=0.5 / BLEND_STEPS):  # the controls say it already
            return
        order = np.argsort(-mix, kind="stable")
        first, second = int(order[0]), int(order[1])
        t = float(mix[second] / (mix[first] + mix[second]))
        if t == 0.0:
            second = self.blend_combo.currentIndex() if 0 <= self.blend_combo.currentIndex() < len(names) else 0
        with signals_blocked(self.class_combo), signals_blocked(self.blend_combo), signals_blocked(self.blend_slider):
            self.class_combo.setCurrentIndex(first)
            self.blend_combo.setCurrentIndex(second)
            self.blend_slider.setValue(int(round(t * BLEND_STEPS)))
        self.blend_label.setText(f"t {t:.2f}")

    def _widget_mix(self) -> np.ndarray:
        """The class blend the controls show: (1 - t) first + t second."""
        mix = np.zeros(self.class_combo.count(), np.float32)
        t = self.blend_slider.value() / BLEND_STEPS
        first, second = self.class_combo.currentIndex(), self.blend_combo.currentIndex()
        if 0 <= first < mix.size and 0 <= second < mix.size:
            mix[first] += 1 - t
            mix[second] += t
        return mix

    def _on_class_chosen(self) -> None:
        t = self.blend_slider.value() / BLEND_STEPS
        self.blend_label.setText(f"t {t:.2f}")
        self.state.set_class(self.class_combo.currentIndex(), self.blend_combo.currentIndex(), t)

    def set_class(self, index: int, other: int | None = None, t: float = 0.0) -> None:
        """Pick a class, and optionally blend in `other` by t, through the controls (as a user would)."""
        self.class_combo.setCurrentIndex(index)
        if other is not None:
            self.blend_combo.setCurrentIndex(other)
        self.blend_slider.setValue(int(round(t * BLEND_STEPS)))

    def class_changed(self) -> None:
        """The same z, another class: decode it with the new view (the decoder's old one draws the old class)."""
        self._update_class_box()
        if self.state.has_latent and not self.state.is_autoregressive:
            self.decoder.set_model(self.state.model)
            self._last_decoded = None
            self.last_decoded_z = None
            # latentChanged follows and requests z's image

    def _build_space_box(self) -> QWidget:
        """Space (Z / W / W+), the truncation psi (W, W+) and the layer the sliders move (W+): shown for a
        style-based generator only."""
        self.space_box = QGroupBox("Latent space")
        self.space_combo = QComboBox()
        self.space_combo.currentTextChanged.connect(self._on_space_chosen)
        self.psi_slider = QSlider(Qt.Orientation.Horizontal)
        self.psi_slider.setRange(0, int(1.5 * PSI_STEPS))
        self.psi_slider.setValue(PSI_STEPS)
        self.psi_slider.setTracking(False)  # redraw on release: every view redraws for a new psi
        self.psi_slider.setToolTip("Truncation ψ: w = mean w + ψ (w - mean w) in every view; ψ = 0 is the mean-w image")
        self.psi_slider.valueChanged.connect(self._on_psi_chosen)
        self.psi_slider.sliderMoved.connect(lambda v: self.psi_label.setText(f"ψ {v / PSI_STEPS:.2f}"))
        self.psi_label = QLabel("ψ 1.00")
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Which layer's w the sliders move in W+")
        self.layer_combo.currentIndexChanged.connect(lambda _: self._apply_basis())
        row = QHBoxLayout(self.space_box)
        row.addWidget(self.space_combo)
        row.addWidget(self.psi_label)
        row.addWidget(self.psi_slider, 1)
        self.layer_label = QLabel("Layer")
        row.addWidget(self.layer_label)
        row.addWidget(self.layer_combo)
        self.space_box.hide()
        return self.space_box

    def _update_space_box(self) -> None:
        """Show the space controls as the state has them (signals blocked: no echo)."""
        spaces = self.state.spaces()
        self.space_box.setVisible(len(spaces) > 1)
        if len(spaces) <= 1:
            return
        space, styled = self.state.space, self.state.space != "Z"
        with signals_blocked(self.space_combo):
            if [self.space_combo.itemText(i) for i in range(self.space_combo.count())] != list(spaces):
                self.space_combo.clear()
                for i, name in enumerate(spaces):
                    self.space_combo.addItem(name)
                    self.space_combo.setItemData(i, SPACE_TIPS.get(name, ""), Qt.ItemDataRole.ToolTipRole)
            self.space_combo.setCurrentText(space)
        self.space_combo.setToolTip(SPACE_TIPS.get(space, ""))
        with signals_blocked(self.psi_slider):
            self.psi_slider.setValue(int(round(self.state.psi * PSI_STEPS)))
        self.psi_label.setText(f"ψ {self.state.psi:.2f}")
        for widget in (self.psi_slider, self.psi_label):
            widget.setVisible(styled)
        model = self.state.base_model
        with signals_blocked(self.layer_combo):
            self.layer_combo.clear()
            self.layer_combo.addItem("all layers")
            for i, size in enumerate(layer_resolutions(model)):
                self.layer_combo.addItem(f"{i}: {size}x{size}")
        for widget in (self.layer_combo, self.layer_label):
            widget.setVisible(space == "W+")

    def _on_space_chosen(self, space: str) -> None:
        if space and space != self.state.space:
            try:
                self.state.set_space(space)
            except ValueError as error:
                self.errorOccurred.emit(str(error))
                return
            self.statusMessage.emit(f"Working in {space}: {SPACE_TIPS.get(space, '')}")

    def _on_psi_chosen(self, value: int) -> None:
        self.state.set_space(self.state.space, value / PSI_STEPS)

    def set_layer(self, layer: int | None) -> None:
        """W+: the sliders move `layer`'s w (None: every layer alike)."""
        self.layer_combo.setCurrentIndex(0 if layer is None else layer + 1)

    def _build_pixel_page(self) -> QWidget:
        page = QWidget()
        message = QLabel(
            "A PixelCNN has no latent space: it models p(x) as a product of p(pixel | pixels before it), "
            "and each image is drawn pixel by pixel. Sample to see what it has learned."
        )
        message.setWordWrap(True)
        self.pixel_view = ImageView(placeholder="Press Sample")
        self.pixel_seed = spin_box(0, MAX_SEED)
        self.pixel_seed.setKeyboardTracking(False)
        self.pixel_temperature = spin_box(0.0, 3.0, 1.0, step=0.1)
        self.sample_button = QPushButton("Sample")
        self.sample_button.setToolTip("Sample one image with the next seed (R)")
        self.sample_button.clicked.connect(lambda: self.sample(self.state.seed + 1))
        self.pixel_seed.valueChanged.connect(lambda seed: self.sample(seed))
        self.pixel_progress = QProgressBar()
        self.pixel_progress.hide()
        self.pixel_cancel = QPushButton("Cancel")
        self.pixel_cancel.hide()
        self.pixel_cancel.clicked.connect(lambda: self._sample_job.cancel() if self._sample_job else None)
        row = QHBoxLayout()
        for widget in (
            QLabel("Seed"),
            self.pixel_seed,
            QLabel("Temperature"),
            self.pixel_temperature,
            self.sample_button,
            self.pixel_progress,
            self.pixel_cancel,
        ):
            row.addWidget(widget)
        row.addStretch(1)
        layout = QVBoxLayout(page)
        layout.addWidget(message)
        layout.addWidget(self.pixel_view, 1)
        layout.addLayout(row)
        return page

    # --- model and latent changes ------------------------------------------------------------------------
    def reset_for_model(self) -> None:
        self.stats = None
        if self.state.model is None:
            self.decoder.set_model(None)
            return
        if self.state.is_autoregressive:
            self.decoder.set_model(None)
            self.pages.setCurrentWidget(self.pixel_page)
            self.pixel_view.set_image(None)
            return
        self.pages.setCurrentWidget(self.latent_page)
        self._update_class_box()
        self._update_space_box()
        self.decoder.set_model(self.state.model)
        self.last_decoded_z = None
        self._last_decoded = None
        dim = self.state.latent_dim
        encodes = self.state.has_encoder  # else images are projected (a GAN)
        truncates = "truncation" in self.state.model.sample_options
        self.temperature_label.setText("Truncation ψ" if truncates else "Temperature")
        self.temperature_spin.setToolTip(
            "Random z is scaled by ψ < 1 towards the mean: more typical, less varied images"
            if truncates
            else "Random z is drawn from N(0, T²I)"
        )
        if self.state.space != "Z":
            self.temperature_spin.setToolTip("Random draws are w = mean w + ψ (mapping(z) - mean w)")
        self.encode_button.setText("Encode image…" if encodes else "Project image…")
        self.encode_button.setToolTip(
            "z = the encoder's mean for an image file"
            if encodes
            else f"Find z whose image matches an image file ({PROJECTION_STEPS} steps of Adam on z)"
        )
        self.encode_button.setEnabled(encodes or self.state.can_project)
        self.dataset_button.setEnabled(encodes or self.state.can_project)
        self.dataset_button.setToolTip(("Encode" if encodes else "Project") + " a random image of the model's dataset")
        with signals_blocked(self.mode_combo):
            self.mode_combo.setCurrentIndex(0)
        self._set_pca_available(
            False,
            "Principal directions are offered for latents of more than 8 dimensions"
            if dim < PCA_MIN_DIM
            else "computing the principal directions…",
        )
        prior_pca = self.state.space == "W"  # W's prior is not isotropic: its principal directions say something
        if not encodes and dim >= PCA_MIN_DIM and not prior_pca:
            self._set_pca_available(
                False,
                "Without an encoder there are only prior draws, and the prior N(0, I) is "
                "isotropic: its principal directions are the latent axes themselves, so the "
                "sliders use the raw axes",
            )
        self.sliders.set_raw_axes(dim)
        self.stats_label.setText("")
        if prior_pca:
            self._stats_slot.start(
                prior_statistics, self.state.model, on_result=self._on_stats, on_failed=self._on_stats_failed
            )
        if encodes:
            self.stats_label.setText("Measuring each dimension's KL on the dataset…")
            self._stats_slot.start(
                latent_statistics,
                self.state,
                self.state.model,
                dim >= PCA_MIN_DIM,
                on_result=self._on_stats,
                on_failed=self._on_stats_failed,
            )
        self._on_latent_changed()

    def _set_pca_available(self, available: bool, tooltip: str) -> None:
        item = self.mode_combo.model().item(1)
        item.setEnabled(available)
        self.mode_combo.setItemData(1, tooltip, Qt.ItemDataRole.ToolTipRole)
        self.mode_combo.setToolTip(tooltip)
        self.mode_combo.setEnabled(available)

    def _on_latent_changed(self) -> None:
        if not self.state.has_latent:
            return
        self.sliders.set_z(self.state.z)
        self.decoder.request(self.state.z)

    def _on_seed_changed(self, seed: int) -> None:
        for spin in (self.seed_spin, self.pixel_seed):
            with signals_blocked(spin):
                spin.setValue(seed)

    def _on_decoded(self, z: np.ndarray, image: np.ndarray) -> None:
        self.last_decoded_z = z
        self._last_decoded = (z, image)  # for export: the image on screen, while it is decode(z)
        self.image_view.set_image(image)  # NaN pixels show as black
        if not np.all(np.isfinite(image)):
            self.statusMessage.emit(f"The decoded image holds NaN/inf values (shown black): {NONFINITE_MESSAGE}")

    def _on_sliders_edited(self, z: np.ndarray) -> None:
        self.state.set_z(z)  # inside a drag, begin_edit made this part of one undo step

    # --- latent statistics -----------------------------------------------------------------------------
    def _on_stats(self, stats: dict) -> None:
        if stats.get("model") is not self.state.model:
            return
        self.stats = stats
        if stats.get("prior"):
            self.stats_label.setText(
                f"Principal directions of {stats['images']} mapped prior draws are offered: W is not isotropic."
            )
        elif "kl" in stats:
            kl = stats["kl"]
            active = kl > ACTIVE_KL_NATS
            self.stats_label.setText(
                f"{int(active.sum())} of {kl.size} dimensions active (mean KL > {ACTIVE_KL_NATS} nats over "
                f"{min(stats['images'], 500)} images); greyed dimensions are ignored by the encoder."
            )
        else:
            self.stats_label.setText("The encoder gives means only (no variances), so there is no per-dimension KL.")
        if "pca" in stats:
            source = "mapped prior draws" if stats.get("prior") else "the encoder means of"
            self._set_pca_available(
                True,
                f"Sliders along the principal directions of {source} {stats['images']} "
                f"{'' if stats.get('prior') else 'dataset images'}, in standard deviations".replace("  ", " "),
            )
        self._apply_basis()

    def _on_stats_failed(self, message: str) -> None:
        self.stats_label.setText(f"No dataset statistics ({message}); the sliders use the raw axes.")
        if self.state.latent_dim >= PCA_MIN_DIM:
            self._set_pca_available(False, f"The dataset could not be loaded: {message}")
        self.statusMessage.emit(f"Dataset statistics unavailable: {message}")

    def _apply_basis(self) -> None:
        dim = self.state.latent_dim
        if dim == 0:
            return
        stats = self.stats or {}
        if self.state.space == "W+":
            model, layer = self.state.base_model, self.layer_combo.currentIndex() - 1
            mean, directions, scale = layer_basis(model.n_styles, model.w_dim, None if layer < 0 else layer)
            prefix = "w" if layer < 0 else f"w{layer}."
            self.sliders.set_basis(mean, directions, scale, [f"{prefix}{k}" for k in range(model.w_dim)])
        elif self.mode_combo.currentIndex() == 1 and "pca" in stats:
            mean, directions, std = stats["pca"]
            total = float((std**2).sum()) or 1.0
            names = [f"PC{k + 1}" for k in range(dim)]
            tips = [
                f"Principal direction {k + 1}: σ = {std[k]:.3f}, {100 * std[k] ** 2 / total:.1f}% of the variance"
                for k in range(dim)
            ]
            self.sliders.set_basis(mean, directions, np.maximum(std, MIN_DIRECTION_SCALE), names, tips)
            self.sliders.set_indicators(std**2 / max(float((std**2).max()), 1e-12), None, tips)
        else:
            self.sliders.set_raw_axes(dim)
            if "kl" in stats:
                kl = stats["kl"]
                tips = [
                    f"z{d}: mean KL {kl[d]:.3f} nats "
                    + ("(active)" if kl[d] > ACTIVE_KL_NATS else "(inactive: collapsed)")
                    for d in range(dim)
                ]
                self.sliders.set_indicators(kl / max(float(kl.max()), 1e-12), kl > ACTIVE_KL_NATS, tips)
        self.sliders.set_z(self.state.z)

    # --- actions ---------------------------------------------------------------------------------------
    def randomize(self, seed: int | None = None) -> None:
        """Draw z with `seed` (the next seed when None); for a PixelCNN, sample an image."""
        if self.state.is_autoregressive:
            self.sample(self.state.seed + 1 if seed is None else seed)
        elif self.state.has_latent:
            self.state.randomize(seed, self.temperature_spin.value())

    def temperature(self) -> float:
        return self.temperature_spin.value()

    def set_temperature(self, value: float) -> None:
        with signals_blocked(self.temperature_spin):
            self.temperature_spin.setValue(value)

    def use_dataset_image(self) -> None:
        """Encode (VAE) or project (GAN) a random image of the model's dataset."""
        if not (self.state.has_encoder or self.state.can_project):
            return
        self._dataset_draws += 1
        seed = self.state.seed * 1000 + self._dataset_draws
        if self.state.has_encoder:
            self._start_image_job(encode_dataset_image, self.state, self.state.model, seed)
        else:
            self._start_image_job(project_image, self.state.model, None, self.state, seed, progress=True)

    def encode_file_dialog(self) -> None:
        pattern = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Encode an image", "", f"Images ({pattern})")
        if path:
            self.encode_file(path)

    def encode_file(self, path: str) -> None:
        """Make an image file's latent current: encoder mean (VAE) or projection (GAN)."""
        model = self.state.model
        encodes = self.state.has_encoder
        if not (encodes or self.state.can_project):
            self.errorOccurred.emit(
                "Only models with an encoder (VAEs) or a differentiable decoder (GANs) map images to latents"
            )
            return
        try:
            channels, size, _width = model.image_shape
            image = image_to_tensor(path, size, channels)
        except (OSError, ValueError) as error:
            self.errorOccurred.emit(f"Cannot read {Path(path).name}: {error}")
            return
        self.statusMessage.emit(f"{'Encoding' if encodes else 'Projecting'} {Path(path).name}…")
        if encodes:
            self._start_image_job(encode_image, model, image)
        else:
            self._start_image_job(project_image, model, image, progress=True)

    def _start_image_job(self, fn, *args, progress: bool = False) -> None:
        """One image job at a time (encode or project): a new one replaces the one running."""
        job = self._image_job = self._image_slot.start(
            fn,
            *args,
            on_result=self._on_image_result,
            on_failed=self.errorOccurred.emit,
            on_progress=self._on_image_progress,
        )
        if progress:
            self.progress.setRange(0, max(1, PROJECTION_STEPS))
            self.progress.setValue(0)
            self.progress.setFormat("projecting %v/%m")
            self.progress.show()
            self.cancel_button.show()
        job.finished.connect(lambda: self._on_image_finished(job))

    def _on_image_progress(self, value: tuple) -> None:
        step, total, _loss = value
        self.progress.setMaximum(total)
        self.progress.setValue(step)

    def _on_image_result(self, result: dict) -> None:
        if result.get("model") is not self.state.model:
            return
        self.state.set_z(result["z"])
        self.statusMessage.emit(result["message"])

    def _on_image_finished(self, job: Job) -> None:
        if job is self._image_job:
            self._image_job = None
            self.progress.hide()
            self.cancel_button.hide()
            if job.cancelled:
                self.statusMessage.emit("Cancelled")

    def cancel_image_job(self) -> None:
        if self._image_job is not None:
            self._image_job.cancel()

    def image_job(self) -> Job | None:
        return self._image_job

    # --- PixelCNN ------------------------------------------------------------------------------------------
    def sample(self, seed: int) -> None:
        if not self.state.is_autoregressive:
            return
        self.state.set_seed(seed)
        job = self._sample_job = self._sample_slot.start(
            sample_pixelcnn,
            self.state.model,
            seed,
            self.pixel_temperature.value(),
            on_result=self._on_sample_result,
            on_failed=self.errorOccurred.emit,
            on_progress=self._on_sample_progress,
        )
        self.pixel_progress.setRange(0, 1)
        self.pixel_progress.setValue(0)
        self.pixel_progress.show()
        self.pixel_cancel.show()
        job.finished.connect(lambda: self._on_sample_finished(job))

    def _on_sample_progress(self, value: tuple) -> None:
        done, total, partial = value
        self.pixel_progress.setRange(0, total)
        self.pixel_progress.setValue(done)
        self.pixel_view.set_image(partial)

    def _on_sample_result(self, image: np.ndarray | None) -> None:
        if image is not None:
            self.pixel_view.set_image(image)
            self.statusMessage.emit(f"Sampled with seed {self.state.seed}")

    def _on_sample_finished(self, job: Job) -> None:
        if job is self._sample_job:
            self._sample_job = None
            self.pixel_progress.hide()
            self.pixel_cancel.hide()

    def sample_job(self) -> Job | None:
        return self._sample_job

    # --- what the window exports -----------------------------------------------------------------------
    def current_image(self) -> np.ndarray | None:
        """The image to export: decode(z) for latent models (the one on screen, decoded in the worker;
        decoded now only when z moved since and its image has not arrived), the last sample for a PixelCNN."""
        if self.state.has_latent:
            shown = self._last_decoded
            if shown is not None and np.array_equal(shown[0], self.state.z):
                return shown[1]
            return self.state.decode(self.state.z)[0]
        if self.state.is_autoregressive:
            return self.pixel_view.array()
        return None
