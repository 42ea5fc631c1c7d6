"""Directions: discover, learn, explain and apply directions in the latent space (engines.directions).

Left, how directions are made, and the list of them grouped by where they came from:
- Discovered, without labels: SeFa (the generator's first layer, closed form), the local Jacobian basis
  at the current z (optionally following z as it moves), and GANSpace-style PCA (of the encoded
  dataset for a model with an encoder, else of prior samples).
- Boundaries (InterFaceGAN): a linear boundary per attribute, from the dataset's labels of encoded
  images or from the bundled classifier's readings of generated samples; the direction is its normal.
- Conditional: "change A, keep B": A's normal with the kept normals projected out.
- Tagged: a boundary fitted on samples the user tagged yes/no in the gallery.
A discovered direction that lines up with a boundary (|cos| > 0.5) is named after it in the list.

Right, for the selected direction: images along it (-3..+3 sigma around z) and, where the dataset has a
classifier, how each of its readings moves along it; apply it to z (a slider or a step, with undo) and
save it as an attribute vector (the Arithmetic tab, the sliders and sessions then have it).
"""

from __future__ import annotations

import logging
import re
import threading

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from engines import directions as dirs
from engines.checkpoint import load_checkpoint
from engines.directions import Boundary, Direction
from engines.encoded import EncodedData
from engines.evaluation import classifier_filename, find_classifier
from explorer.pixels import to_pixmap
from explorer.state import ExplorerState
from explorer.workers import WorkError

from .encoded import DEFAULT_COUNT, encoded_set
from .panel_tools import MAX_SEED, NONFINITE_MESSAGE, debounce, decode_job, laid_out, require_finite, spin_box
from .tab import Tab
from .tag_gallery import TagGallery
from .training_curves import Column

log = logging.getLogger(__name__)

GROUPS = {
    "sefa": "Discovered",
    "jacobian": "Discovered",
    "pca": "Discovered",
    "boundary": "Boundaries",
    "conditional": "Conditional",
    "tagged": "Tagged",
}
DISCOVERED = ("sefa", "jacobian", "pca")
VALUE_NAMES = {"sefa": "λ", "jacobian": "σ", "pca": "var"}
SIGMAS = np.linspace(-3.0, 3.0, 13)  # the score curves; every other one is a strip image
STRIP = SIGMAS[::2]  # -3..+3 in whole sigmas: 7 images
STRIP_PX = 72
STRENGTH_STEPS = 100  # slider units per sigma
GALLERY_SIZE = 48
FOLLOW_MS = 300  # "follow z": the Jacobian is recomputed once z has rested this long
SAMPLED = 2000  # prior samples for PCA of a model without an encoder
COLOURS = ("#4e9af1", "#f1a24e", "#5fc46a", "#e0604f", "#b07ee8", "#d4c84a", "#4ed1d1", "#f17ec2", "#a0a0a0", "#8fd14e")
DARK_BOX = "background: #202124; border: 1px solid #555; color: #bbb;"

_classifiers: dict[tuple[str, str], object] = {}
_classifier_lock = threading.Lock()  # jobs of several tabs may load the same classifier at once


def load_classifier(dataset: str, device) -> object:
    """The dataset's bundled classifier (engines.evaluation.find_classifier), loaded once per device."""
    path = find_classifier(dataset)
    key = (str(path.resolve()), str(device))
    with _classifier_lock:
        if key not in _classifiers:
            _classifiers[key] = load_checkpoint(path, device=device).model
        return _classifiers[key]


def classifier_problem(dataset: str | None) -> str | None:
    """Why there is no classifier to read this dataset's images, or None."""
    if not dataset:
        return "the model does not say which dataset it was trained on, so no classifier can read its images"
    try:
        find_classifier(dataset)
    except ValueError:
        return f"no classifier for {dataset} ({classifier_filename(dataset)} is not in checkpoints/ or runs/)"
    return None


# --- work functions (worker threads) ---------------------------------------------------------------
def _checked(fn, *args) -> list[Direction]:
    """A discovery; a broken model's NaN weights or images give the one-line message, not a LinAlgError."""
    try:
        found = fn(*args)
    except np.linalg.LinAlgError as error:
        raise WorkError(NONFINITE_MESSAGE) from error
    require_finite(*(d.vector for d in found))
    return found


def _sefa(job, model) -> list[Direction]:
    return _checked(dirs.sefa, model, 10)


def _jacobian(job, model, z: np.ndarray) -> tuple[np.ndarray, list[Direction]]:
    return z, _checked(dirs.jacobian_basis, model, z, 10)


def _pca(job, model, latents: np.ndarray | None) -> list[Direction]:
    latents = dirs.sampled_latents(model, SAMPLED) if latents is None else latents
    return _checked(dirs.pca_directions, latents, 10)


def _classifier_boundaries(job, model, dataset: str, device, n: int) -> tuple[dict[str, Boundary], dirs.Labelled]:
    labelled = dirs.classifier_labelled(model, load_classifier(dataset, device), n)
    return labelled.boundaries(), labelled


def _dataset_boundaries(job, data: EncodedData) -> tuple[dict[str, Boundary], dirs.Labelled]:
    labelled = dirs.dataset_labelled(data.latents, data.labels, data.label_names, data.kinds)
    return labelled.boundaries(), labelled


def _shift_here(job, model, dataset: str | None, device, labelled: dirs.Labelled, attribute: str, z: np.ndarray):
    """The conditional shift for the face at z: its labels are the classifier's reading of decode(z)
    where the dataset has one, else those of the nearest labelled latent."""
    if dataset and classifier_problem(dataset) is None:
        from engines.metrics import decode_to_labels

        classifier = load_classifier(dataset, device)
        here = dirs.classifier_columns(decode_to_labels(model, classifier, z[None]), classifier, labelled.names)
    else:
        here = labelled.labels[np.argmin(np.linalg.norm(labelled.latents - z[None], axis=1))][None]
    return labelled.shift(attribute, here)


def _explain(job, model, dataset: str | None, device, z: np.ndarray, vector: np.ndarray):
    classifier = load_classifier(dataset, device) if dataset else None
    images, scores = dirs.scores_along(model, classifier, z, vector, SIGMAS)
    require_finite(images)
    return images, scores


def _fit_tags(job, latents: np.ndarray, has: np.ndarray, name: str) -> Boundary:
    return dirs.fit_boundary(latents, has, name)


def _group_tree(tree: QTreeWidget) -> dict[str, QTreeWidgetItem]:
    groups = {}
    for title in dict.fromkeys(GROUPS.values()):
        item = QTreeWidgetItem(tree, [title])
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        item.setExpanded(True)
        groups[title] = item
    return groups


class DirectionsPanel(Tab):
    """The Directions tab. Public state: `directions` (name -> engines.directions.Direction, in list
    order), `boundaries` (name -> Boundary, for the boundary and tagged directions), `selected` (a
    name or None), `strip_images` ((7, H, W, C) along the selected direction), `scores` (reading ->
    values at SIGMAS), `singular_values` (of the last Jacobian basis), `encoded`, `gallery`."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.encoded = encoded_set(state)
        self.directions: dict[str, Direction] = {}
        self.boundaries: dict[str, Boundary] = {}
        self.labelled: dirs.Labelled | None = None  # what the boundaries were fitted on
        self.shift: tuple[np.ndarray, np.ndarray] | None = None  # (z, the shift) of the last shift for a face
        self.selected: str | None = None
        self.strip_images = np.zeros((0, 0, 0, 0), np.float32)
        self.scores: dict[str, np.ndarray] = {}
        self.singular_values = np.zeros(0)
        self._classifier_problem: str | None = None
        self._awaiting_encoded: set[str] = set()  # "pca", "boundaries": wait for the encoded dataset
        self._explained: bytes | None = None  # (z, vector) of the strip shown or being made
        self._base: np.ndarray | None = None  # z at strength 0
        self._applying = False  # our own set_z is running: keep the base
        self._dragging = False
        self._sefa_job = self.job_slot()
        self._jacobian_job = self.job_slot()
        self._pca_job = self.job_slot()
        self._boundary_job = self.job_slot()
        self._explain_job = self.job_slot()
        self._tags_job = self.job_slot()
        self._shift_job = self.job_slot()
        self._gallery_job = self.job_slot()
        self._follow_timer = debounce(self, self.compute_jacobian, FOLLOW_MS)
        content = self._build_ui()
        state.latentChanged.connect(self._on_latent)
        state.historyChanged.connect(lambda: self.undo_button.setEnabled(self.state.can_undo()))
        self.encoded.ready.connect(self._on_encoded)
        self.encoded.failed.connect(self._on_encode_failed)
        self.set_content(content)

    # --- layout ---------------------------------------------------------------------------------
    def _build_ui(self) -> QWidget:
        # A Column: the word-wrapped labels' height-for-width would otherwise make the window's scroll
        # area size the tab to its preferred height (the plot's) and scroll.
        content, row = laid_out(QHBoxLayout, Column())
        left, col = laid_out(QVBoxLayout, width=350, margins=(0, 0, 4, 0))

        find_box, grid = laid_out(QGridLayout, QGroupBox("Discover (no labels)"), margins=None)
        self.sefa_button = QPushButton("SeFa")
        self.sefa_button.setToolTip("Closed-form factorization: the directions the first layer stretches most")
        self.pca_button = QPushButton("PCA")
        self.jacobian_button = QPushButton("Jacobian: recompute here")
        self.jacobian_button.setToolTip("The directions that change the image most at the current z")
        self.follow_check = QCheckBox("follow z")
        self.follow_check.setToolTip("Recompute the Jacobian basis whenever z has moved and rests")
        grid.addWidget(self.sefa_button, 0, 0)
        grid.addWidget(self.pca_button, 0, 1)
        grid.addWidget(self.jacobian_button, 1, 0)
        grid.addWidget(self.follow_check, 1, 1)
        self.discover_note = QLabel()
        self.discover_note.setWordWrap(True)
        grid.addWidget(self.discover_note, 2, 0, 1, 2)
        col.addWidget(find_box)

        fit_box, form = laid_out(QFormLayout, QGroupBox("Boundaries (labels)"), margins=None)
        self.source_combo = QComboBox()
        form.addRow("Labels", self.source_combo)
        self.count_spin = spin_box(200, 10000, 1000, step=500, suffix=" latents")
        self.fit_button = QPushButton("Fit boundaries")
        fit_row = QHBoxLayout()
        fit_row.addWidget(self.count_spin, 1)
        fit_row.addWidget(self.fit_button)
        form.addRow(fit_row)
        self.boundary_status = QLabel()
        self.boundary_status.setWordWrap(True)
        form.addRow(self.boundary_status)
        col.addWidget(fit_box)

        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(False)
        self._groups = _group_tree(self.tree)
        col.addWidget(self.tree, 1)
        self.remove_button = QPushButton("Remove")
        col.addWidget(self.remove_button)
        row.addWidget(left)

        self.pages = QTabWidget()
        self.pages.addTab(self._explain_page(), "Explain and apply")
        self.pages.addTab(self._conditional_page(), "Conditional")
        self.pages.addTab(self._tag_page(), "Tag samples")
        row.addWidget(self.pages, 1)

        self.sefa_button.clicked.connect(self.compute_sefa)
        self.pca_button.clicked.connect(self.compute_pca)
        self.jacobian_button.clicked.connect(self.compute_jacobian)
        self.follow_check.toggled.connect(lambda on: on and self.compute_jacobian())
        self.fit_button.clicked.connect(self.fit_boundaries)
        self.tree.currentItemChanged.connect(self._item_picked)
        self.remove_button.clicked.connect(self.remove_selected)
        self.pages.currentChanged.connect(lambda _: self.refresh())
        return content

    def _explain_page(self) -> QWidget:
        page, col = laid_out(QVBoxLayout, margins=(6, 6, 6, 6))
        self.explain_title = QLabel("Compute or fit a direction (left), then pick it in the list.")
        self.explain_title.setWordWrap(True)
        col.addWidget(self.explain_title)
        strip = QGridLayout()
        self.strip_views: list[QLabel] = []
        for k, s in enumerate(STRIP):
            view = QLabel()
            view.setFixedSize(STRIP_PX, STRIP_PX)
            view.setAlignment(Qt.AlignmentFlag.AlignCenter)
            view.setStyleSheet(DARK_BOX if s else DARK_BOX.replace("#555", "#4e9af1"))
            caption = QLabel(f"{s:+.0f}σ" if s else "z")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            strip.addWidget(view, 0, k, Qt.AlignmentFlag.AlignCenter)
            strip.addWidget(caption, 1, k)
            self.strip_views.append(view)
        col.addLayout(strip)

        self.plot = pg.PlotWidget()
        self.plot.setBackground("#1e1f22")
        self.plot.setLabel("bottom", "σ along the direction")
        self.plot.setLabel("left", "classifier reading")
        self.plot.setMinimumHeight(120)
        self.plot.addLine(x=0, pen=pg.mkPen("#666", style=Qt.PenStyle.DashLine))
        self.curves: dict[str, pg.PlotDataItem] = {}
        col.addWidget(self.plot, 1)
        self.legend = QLabel()  # under the plot, not over it: the curves fill the whole plot
        self.legend.setWordWrap(True)
        col.addWidget(self.legend)
        self.scores_note = QLabel()
        self.scores_note.setWordWrap(True)
        col.addWidget(self.scores_note)

        apply_box, aform = laid_out(QFormLayout, QGroupBox("Apply to z"), margins=None)
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(-3 * STRENGTH_STEPS, 3 * STRENGTH_STEPS)
        self.strength_slider.setPageStep(STRENGTH_STEPS // 2)
        self.strength_label = QLabel("+0.00σ")
        self.strength_label.setMinimumWidth(56)
        srow = QHBoxLayout()
        srow.addWidget(self.strength_slider, 1)
        srow.addWidget(self.strength_label)
        aform.addRow("Move", srow)
        self.step_spin = spin_box(-10.0, 10.0, 1.0, step=0.5, suffix=" σ")
        self.apply_button = QPushButton("Step along")
        self.undo_button = QPushButton("Undo")
        step_row = QHBoxLayout()
        step_row.addWidget(self.step_spin)
        step_row.addWidget(self.apply_button)
        step_row.addWidget(self.undo_button)
        step_row.addStretch(1)
        aform.addRow("Step", step_row)
        self.vector_name_edit = QLineEdit()
        self.vector_name_edit.setPlaceholderText("vector name")
        self.scale_spin = spin_box(0.1, 10.0, 1.0, step=0.5, prefix="× ")
        self.scale_spin.setToolTip("The saved vector is the unit direction times this length")
        self.save_button = QPushButton("Save as vector")
        save_row = QHBoxLayout()
        save_row.addWidget(self.vector_name_edit, 1)
        save_row.addWidget(self.scale_spin)
        save_row.addWidget(self.save_button)
        aform.addRow("Save", save_row)
        self.apply_status = QLabel()
        self.apply_status.setWordWrap(True)
        aform.addRow(self.apply_status)
        col.addWidget(apply_box)

        self.strength_slider.sliderPressed.connect(self._drag_started)
        self.strength_slider.sliderReleased.connect(self._drag_finished)
        self.strength_slider.valueChanged.connect(self._strength_changed)
        self.apply_button.clicked.connect(lambda: self.step_along(self.step_spin.value()))
        self.undo_button.clicked.connect(self.state.undo)
        self.save_button.clicked.connect(self.save_as_vector)
        return page

    def _conditional_page(self) -> QWidget:
        page, col = laid_out(QVBoxLayout, margins=(6, 6, 6, 6))
        note = QLabel(
            "Change one attribute while others stay as they are: the direction is the attribute's boundary "
            "normal with the normals of the kept attributes projected out, so moving along it leaves "
            "their linear readings unchanged. Fit boundaries first (left)."
        )
        note.setWordWrap(True)
        col.addWidget(note)
        form = QFormLayout()
        self.change_combo = QComboBox()
        form.addRow("Change", self.change_combo)
        col.addLayout(form)
        col.addWidget(QLabel("Keep fixed:"))
        self.keep_list = QListWidget()
        col.addWidget(self.keep_list, 1)
        self.conditional_button = QPushButton("Make conditional direction")
        col.addWidget(self.conditional_button)
        shift_note = QLabel(
            "Or shift this face: the mean change of z when the attribute turns on and every other label stays "
            "as this face's, fitted with the attribute's interactions, so it adapts to the face (on vae-faces "
            "96% clean glasses edits, against 78% for one direction; see the model card)."
        )
        shift_note.setWordWrap(True)
        col.addWidget(shift_note)
        self.shift_button = QPushButton("Shift for this face")
        col.addWidget(self.shift_button)
        self.conditional_status = QLabel()
        self.conditional_status.setWordWrap(True)
        col.addWidget(self.conditional_status)
        self.change_combo.currentTextChanged.connect(self._fill_keep_list)
        self.conditional_button.clicked.connect(self.make_conditional)
        self.shift_button.clicked.connect(self.shift_for_this_face)
        return page

    def _tag_page(self) -> QWidget:
        page, col = laid_out(QVBoxLayout, margins=(6, 6, 6, 6))
        top = QHBoxLayout()
        hint = QLabel("Tag samples that show a concept: left click yes, right click no (again to clear).")
        hint.setWordWrap(True)
        top.addWidget(hint, 1)
        self.gallery_seed = spin_box(0, MAX_SEED, prefix="seed ")
        self.new_samples_button = QPushButton("New samples")
        top.addWidget(self.gallery_seed)
        top.addWidget(self.new_samples_button)
        col.addLayout(top)
        self.gallery = TagGallery()
        col.addWidget(self.gallery, 1)
        fit_row = QHBoxLayout()
        self.tag_counts = QLabel()
        self.tag_name_edit = QLineEdit()
        self.tag_name_edit.setPlaceholderText("name, e.g. smiling")
        self.fit_tags_button = QPushButton("Fit boundary")
        fit_row.addWidget(self.tag_counts)
        fit_row.addStretch(1)
        fit_row.addWidget(self.tag_name_edit)
        fit_row.addWidget(self.fit_tags_button)
        col.addLayout(fit_row)
        self.tags_status = QLabel()
        self.tags_status.setWordWrap(True)
        col.addWidget(self.tags_status)
        self.new_samples_button.clicked.connect(lambda: self.gallery_seed.setValue(self.gallery_seed.value() + 1))
        self.gallery_seed.valueChanged.connect(self.new_samples)
        self.gallery.tagsChanged.connect(self._show_tag_counts)
        self.fit_tags_button.clicked.connect(self.fit_tags)
        return page

    # --- model ----------------------------------------------------------------------------------
    def reset_for_model(self) -> None:
        self.directions, self.boundaries, self.selected, self.labelled = {}, {}, None, None
        self._awaiting_encoded.clear()
        self._explained = self._base = None
        self.singular_values = np.zeros(0)
        self.gallery.set_samples(np.zeros((0, 0), np.float32))
        for label in (self.discover_note, self.boundary_status, self.conditional_status, self.tags_status):
            label.clear()
        self.apply_status.clear()
        self._clear_explanation()
        self._rebuild_list()
        if not self.usable:
            return
        model = self.state.model
        dataset = (self.state.checkpoint.dataset or {}).get("name")
        self._classifier_problem = classifier_problem(dataset)
        sefa_ok = hasattr(model, "latent_weight")
        self.sefa_button.setEnabled(sefa_ok)
        notes = []
        if not sefa_ok:
            notes.append(
                f"SeFa needs the weights of the generator's first layer, which this {self._model_kind()} does not "
                "expose: use the Jacobian basis instead (it only needs decoded images)."
            )
        notes.append(
            "PCA of the encoded dataset's latents."
            if self.state.has_encoder
            else "PCA of prior samples: an isotropic prior has no favoured axes, so expect little."
        )
        self.discover_note.setText(" ".join(notes))
        with signals_blocked(self.source_combo):
            self.source_combo.clear()
            if self._classifier_problem is None:
                self.source_combo.addItem("the classifier's readings of samples", "classifier")
            if self.state.has_encoder and self.state.has_labels:
                self.source_combo.addItem("the dataset's labels (encoded images)", "dataset")
        self.fit_button.setEnabled(self.source_combo.count() > 0)
        if self.source_combo.count() == 0:
            self.boundary_status.setText(
                "No labels: "
                + (self._classifier_problem or "")
                + ("" if self.state.has_encoder else "; and the model has no encoder to map labelled images")
                + ". Tag samples instead (right)."
            )
        self.tag_name_edit.setText("")
        self._show_tag_counts()

    def _model_kind(self) -> str:
        return getattr(self.state.model, "kind", None) or "model"

    def stop_work(self) -> None:
        self._follow_timer.stop()
        super().stop_work()

    def update_view(self) -> None:
        """Decode what the shown page needs: the strip along the selected direction, the gallery."""
        page = self.pages.currentIndex()
        if page == 0:
            self._explain()
        elif page == 2 and len(self.gallery.latents) == 0:
            self.new_samples()

    # --- discovery ------------------------------------------------------------------------------
    def compute_sefa(self) -> None:
        self.discover_note.setText("Computing SeFa…")
        self._sefa_job.start(
            _sefa,
            self.state.model,
            on_result=lambda found: self._discovered("sefa", found, "SeFa: eigenvalues λ of AᵀA (A: first layer)."),
            on_failed=lambda m: self.discover_note.setText(f"SeFa failed: {m}"),
        )

    def compute_jacobian(self) -> None:
        if not self.usable:
            return
        self._jacobian_job.start(
            _jacobian,
            self.state.model,
            self.state.z.copy(),
            on_result=self._jacobian_done,
            on_failed=lambda m: self.discover_note.setText(f"Jacobian failed: {m}"),
        )

    def _jacobian_done(self, result: tuple[np.ndarray, list[Direction]]) -> None:
        z, found = result
        self.singular_values = np.array([d.value for d in found])
        values = ", ".join(f"{s:.3g}" for s in self.singular_values)
        where = "the current z" if np.array_equal(z, self.state.z) else "a previous z"
        self._discovered("jacobian", found, f"Jacobian basis at {where}: singular values σ {values}.")

    def compute_pca(self) -> None:
        if self.state.has_encoder:
            data = self.encoded.ensure(DEFAULT_COUNT, retry=True)
            if data is None:
                self._awaiting_encoded.add("pca")
                self.discover_note.setText("Encoding the dataset for PCA…")
                return
            self._start_pca(data.latents, f"PCA of {len(data.latents)} encoded dataset images.")
        else:
            self._start_pca(None, f"PCA of {SAMPLED} prior samples (variance per axis).")

    def _start_pca(self, latents: np.ndarray | None, note: str) -> None:
        self._pca_job.start(
            _pca,
            self.state.model,
            latents,
            on_result=lambda found: self._discovered("pca", found, note),
            on_failed=lambda m: self.discover_note.setText(f"PCA failed: {m}"),
        )

    def _discovered(self, method: str, found: list[Direction], note: str) -> None:
        self._replace(method, {d.name: d for d in found})
        self.discover_note.setText(note)

    def _on_latent(self) -> None:
        if self._applying:
            self.refresh()
            return
        # z changed elsewhere (undo, another tab): it is the new base, at strength 0.
        self._base = self.state.z.copy()
        with signals_blocked(self.strength_slider):
            self.strength_slider.setValue(0)
        self._show_strength(0.0)
        if self.follow_check.isChecked() and self.usable:
            self._follow_timer.start()
        self.refresh()

    # --- boundaries -----------------------------------------------------------------------------
    def fit_boundaries(self) -> None:
        source = self.source_combo.currentData()
        if source == "classifier":
            self.boundary_status.setText("Reading samples with the classifier and fitting…")
            self._boundary_job.start(
                _classifier_boundaries,
                self.state.model,
                self.state.checkpoint.dataset["name"],
                self.state.device,
                self.count_spin.value(),
                on_result=lambda result: self._boundaries_done(*result, "the classifier's readings of samples"),
                on_failed=lambda m: self.boundary_status.setText(f"Could not fit boundaries: {m}"),
            )
        elif source == "dataset":
            data = self.encoded.ensure(self.count_spin.value(), retry=True)
            if data is None:
                self._awaiting_encoded.add("boundaries")
                self.boundary_status.setText("Encoding the dataset…")
                return
            self._start_dataset_boundaries(data)

    def _start_dataset_boundaries(self, data: EncodedData) -> None:
        self.boundary_status.setText("Fitting boundaries on the encoded images…")
        self._boundary_job.start(
            _dataset_boundaries,
            data,
            on_result=lambda result: self._boundaries_done(
                *result, f"the labels of {len(data.latents)} encoded images"
            ),
            on_failed=lambda m: self.boundary_status.setText(f"Could not fit boundaries: {m}"),
        )

    def _boundaries_done(self, found: dict[str, Boundary], labelled: dirs.Labelled, source: str) -> None:
        self.labelled = labelled  # for conditional shifts
        for name in [n for n, d in self.directions.items() if d.method == "boundary"]:
            self.boundaries.pop(name, None)
        self.boundaries.update(found)
        self._replace("boundary", {name: self._boundary_direction(b, "boundary") for name, b in found.items()})
        scores = ", ".join(f"{n} {b.accuracy:.2f}" for n, b in found.items() if b.accuracy is not None)
        self.boundary_status.setText(
            f"{len(found)} boundaries from {source}; held-out accuracy (binary) or R² (continuous): {scores}."
        )

    @staticmethod
    def _boundary_direction(b: Boundary, method: str) -> Direction:
        return Direction(b.attribute, b.normal, method, b.accuracy)

    def _on_encoded(self, data: EncodedData) -> None:
        if not self.usable or data.latents.shape[1] != self.state.latent_dim:
            return
        waiting, self._awaiting_encoded = self._awaiting_encoded, set()
        if "pca" in waiting:
            self._start_pca(data.latents, f"PCA of {len(data.latents)} encoded dataset images.")
        if "boundaries" in waiting:
            self._start_dataset_boundaries(data)

    def _on_encode_failed(self, message: str) -> None:
        if "pca" in self._awaiting_encoded:
            self.discover_note.setText(f"Could not encode the dataset for PCA: {message}")
        if "boundaries" in self._awaiting_encoded:
            self.boundary_status.setText(f"Could not encode the dataset: {message}")
        self._awaiting_encoded.clear()

    # --- conditional ----------------------------------------------------------------------------
    def _fill_conditional(self) -> None:
        with signals_blocked(self.change_combo):
            previous = self.change_combo.currentText()
            self.change_combo.clear()
            self.change_combo.addItems(list(self.boundaries))
            if previous in self.boundaries:
                self.change_combo.setCurrentText(previous)
        self._fill_keep_list()
        self.conditional_button.setEnabled(len(self.boundaries) >= 2)
        self.shift_button.setEnabled(self.labelled is not None and len(self.boundaries) >= 2)

    def _fill_keep_list(self) -> None:
        kept = set(self.kept())
        change = self.change_combo.currentText()
        self.keep_list.clear()
        for name in self.boundaries:
            if name != change:
                item = QListWidgetItem(name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if name in kept else Qt.CheckState.Unchecked)
                self.keep_list.addItem(item)

    def kept(self) -> list[str]:
        """The boundaries ticked "keep fixed"."""
        items = (self.keep_list.item(i) for i in range(self.keep_list.count()))
        return [item.text() for item in items if item.checkState() == Qt.CheckState.Checked]

    def set_kept(self, names: list[str]) -> None:
        for i in range(self.keep_list.count()):
            item = self.keep_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def make_conditional(self) -> Direction | None:
        """change A, keep the ticked ones: A's normal with theirs projected out (a list entry)."""
        change, keep = self.change_combo.currentText(), self.kept()
        if change not in self.boundaries:
            self.conditional_status.setText("Fit boundaries first, then pick the attribute to change.")
            return None
        try:
            vector = dirs.conditional(self.boundaries[change].normal, [self.boundaries[k].normal for k in keep])
        except ValueError as error:
            self.conditional_status.setText(str(error))
            return None
        name = f"{change} | keep {', '.join(keep)}" if keep else f"{change} | keep nothing"
        cos = float(vector @ self.boundaries[change].normal)
        found = Direction(name, vector, "conditional", round(cos, 3))
        self._replace("conditional", {**self._of("conditional"), name: found})
        self.conditional_status.setText(
            f"'{name}': cosine {cos:.2f} with {change}'s normal; "
            + ", ".join(f"{k} {float(vector @ self.boundaries[k].normal):+.1e}" for k in keep)
            + (" with the kept normals (0: unchanged)." if keep else "")
            + " It is selected: see it in Explain and apply."
        )
        self.select(name)
        return found

    def shift_for_this_face(self) -> None:
        """Turn the chosen attribute on for the face at z, keeping its other labels (a list entry whose
        length is the whole shift: Step by it, or move the slider there)."""
        change = self.change_combo.currentText()
        if self.labelled is None or change not in self.labelled.names:
            self.conditional_status.setText("Fit boundaries first, then pick the attribute to turn on.")
            return
        self.conditional_status.setText(f"Fitting the shift that turns {change} on for this face…")
        dataset = self.state.checkpoint.dataset.get("name") if self.state.checkpoint else None
        z = self.state.z.copy()
        self._shift_job.start(
            _shift_here,
            self.state.model,
            dataset,
            self.state.device,
            self.labelled,
            change,
            z,
            on_result=lambda vector: self._shift_done(change, z, vector),
            on_failed=lambda m: self.conditional_status.setText(f"No shift: {m}"),
        )

    def _shift_done(self, change: str, z: np.ndarray, vector: np.ndarray) -> None:
        length = float(np.linalg.norm(vector))
        if not np.isfinite(length) or length < 1e-9:
            self.conditional_status.setText(f"This face needs no shift to show {change} (or the fit is degenerate).")
            return
        name = f"{change} | shift for this face"
        found = Direction(name, (vector / length).astype(np.float32), "conditional", round(length, 3))
        self._replace("conditional", {**self._of("conditional"), name: found})
        self.select(name)
        self.step_spin.setValue(length)
        self.conditional_status.setText(
            f"'{name}': a shift of length {length:.2f}; Step {length:.2f}σ along it (set) turns {change} on for "
            "the face it was fitted at, with its other labels kept."
        )
        self.shift = (z, vector)

    # --- tagging --------------------------------------------------------------------------------
    def new_samples(self) -> None:
        if not self.usable:
            return
        latents = dirs.sampled_latents(self.state.model, GALLERY_SIZE, seed=self.gallery_seed.value())
        self.gallery.set_samples(latents)
        self._gallery_job.start(
            decode_job,
            self.state.model,
            latents,
            on_result=self.gallery.set_images,
            on_failed=lambda m: self.tags_status.setText(f"Could not decode the samples: {m}"),
        )

    def _show_tag_counts(self) -> None:
        yes, no = self.gallery.counts()
        self.tag_counts.setText(f"{yes} yes, {no} no")
        self.fit_tags_button.setEnabled(min(yes, no) >= 2)

    def fit_tags(self) -> None:
        latents, has = self.gallery.tagged()
        name = self.tag_name_edit.text().strip() or f"tagged {len(self._of('tagged')) + 1}"
        if name in self.directions and self.directions[name].method != "tagged":
            name += " (tagged)"
        self.tags_status.setText(f"Fitting '{name}' on {len(has)} tags…")
        self._tags_job.start(
            _fit_tags,
            latents,
            has,
            name,
            on_result=self._tags_done,
            on_failed=lambda m: self.tags_status.setText(f"Could not fit: {m}"),
        )

    def _tags_done(self, b: Boundary) -> None:
        self.boundaries[b.attribute] = b
        self._replace("tagged", {**self._of("tagged"), b.attribute: self._boundary_direction(b, "tagged")})
        yes, no = self.gallery.counts()
        accuracy = (
            f"held-out accuracy {b.accuracy:.2f}"
            if b.accuracy is not None
            else "too few tags on one side for a held-out accuracy (4 per side give one)"
        )
        self.tags_status.setText(f"Fitted '{b.attribute}' on {yes} yes and {no} no: {accuracy}.")
        self.select(b.attribute)

    # --- the list -------------------------------------------------------------------------------
    def _of(self, method: str) -> dict[str, Direction]:
        return {n: d for n, d in self.directions.items() if d.method == method}

    def _replace(self, method: str, found: dict[str, Direction]) -> None:
        """Put `found` in place of every direction of `method` (a recomputation replaces the old ones)."""
        kept = {n: d for n, d in self.directions.items() if d.method != method}
        self.directions = {**kept, **found}
        self._rebuild_list()

    def label(self, name: str) -> str:
        """The list's text for a direction: its value and, for a discovered one, the attribute it matches."""
        d = self.directions[name]
        text = name
        if d.method in VALUE_NAMES and d.value is not None:
            text += f" · {VALUE_NAMES[d.method]} {d.value:.3g}"
        elif d.method in ("boundary", "tagged") and d.value is not None:
            kind = self.boundaries[name].kind if name in self.boundaries else "binary"
            text += f" · {'R²' if kind == 'continuous' else 'acc'} {d.value:.2f}"
        match = self.match(name)
        if match is not None:
            text += f" ≈ {match[0]} (cos {match[1]:+.2f})"
        return text

    def match(self, name: str) -> tuple[str, float] | None:
        """The boundary a discovered direction lines up with (|cos| > 0.5), with the cosine, or None."""
        d = self.directions[name]
        if d.method not in DISCOVERED or not self.boundaries:
            return None
        return dirs.match_attribute(d.vector, self.boundaries)

    def _rebuild_list(self) -> None:
        with signals_blocked(self.tree):
            for group in self._groups.values():
                group.takeChildren()
            current = None
            for name, d in self.directions.items():
                item = QTreeWidgetItem(self._groups[GROUPS.get(d.method, "Discovered")], [self.label(name)])
                item.setData(0, Qt.ItemDataRole.UserRole, name)
                item.setToolTip(0, self.label(name))
                if name == self.selected:
                    current = item
            for title, group in self._groups.items():
                group.setText(0, f"{title} ({group.childCount()})")
            self.tree.setCurrentItem(current)
        self._fill_conditional()
        if self.selected not in self.directions:
            self.select(None)
        else:
            self._direction_changed()

    def item(self, name: str) -> QTreeWidgetItem | None:
        """The list item of a direction."""
        for group in self._groups.values():
            for i in range(group.childCount()):
                if group.child(i).data(0, Qt.ItemDataRole.UserRole) == name:
                    return group.child(i)
        return None

    def _item_picked(self, item: QTreeWidgetItem | None, _previous=None) -> None:
        name = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        if name is not None:
            self.select(name)

    def select(self, name: str | None) -> None:
        """Make `name` the selected direction (None: none)."""
        self.selected = name if name in self.directions else None
        item = self.item(self.selected) if self.selected else None
        with signals_blocked(self.tree):
            self.tree.setCurrentItem(item)
        if self.selected:
            self.vector_name_edit.setText(re.sub(r"\W+", "_", self.selected).strip("_"))
        self._direction_changed()

    def _direction_changed(self) -> None:
        """The selected direction (or its vector) changed: start at strength 0 from the current z."""
        self._base = self.state.z.copy() if self.usable else None
        with signals_blocked(self.strength_slider):
            self.strength_slider.setValue(0)
        self._show_strength(0.0)
        has = self.selected is not None
        for w in (self.strength_slider, self.apply_button, self.save_button, self.remove_button):
            w.setEnabled(has)
        self.undo_button.setEnabled(self.state.can_undo())
        if not has:
            self._clear_explanation()
        else:
            d = self.directions[self.selected]
            self.explain_title.setText(f"<b>{self.label(self.selected)}</b> &nbsp; ({d.method}; unit length)")
        self.refresh()

    def remove_selected(self) -> None:
        if self.selected is None:
            return
        self.boundaries.pop(self.selected, None)
        self.directions.pop(self.selected, None)
        self.selected = None
        self._rebuild_list()

    def unit(self) -> np.ndarray | None:
        """The selected direction as a unit vector, or None."""
        if self.selected is None:
            return None
        v = self.directions[self.selected].vector.astype(np.float64)
        return (v / np.linalg.norm(v)).astype(np.float32)

    # --- explaining -----------------------------------------------------------------------------
    def _clear_explanation(self) -> None:
        self._explained = None
        self.strip_images = np.zeros((0, 0, 0, 0), np.float32)
        self.scores = {}
        for view in self.strip_views:
            view.clear()
        for curve in self.curves.values():
            self.plot.removeItem(curve)
        self.curves.clear()
        self.legend.clear()
        self.explain_title.setText("Compute or fit a direction (left), then pick it in the list.")
        self.scores_note.clear()

    def _explain(self) -> None:
        v = self.unit()
        if v is None:
            return
        z = self.state.z.copy()
        key = z.tobytes() + v.tobytes()
        if key == self._explained:
            return
        self._explained = key
        dataset = None if self._classifier_problem else self.state.checkpoint.dataset["name"]
        self._explain_job.start(
            _explain,
            self.state.model,
            dataset,
            self.state.device,
            z,
            v,
            on_result=self._explained_done,
            on_failed=self._explain_failed,
        )

    def _explain_failed(self, message: str) -> None:
        self._explained = None
        self.scores_note.setText(f"Could not explain the direction: {message}")

    def _explained_done(self, result: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
        images, scores = result
        self.strip_images = images[::2]
        for view, image in zip(self.strip_views, self.strip_images, strict=True):
            view.setPixmap(to_pixmap(image, STRIP_PX - 4))
        self.scores = scores
        for name in [n for n in self.curves if n not in scores]:
            self.plot.removeItem(self.curves.pop(name))
        for name, values in scores.items():
            if name not in self.curves:
                colour = COLOURS[len(self.curves) % len(COLOURS)]
                self.curves[name] = self.plot.plot([], [], pen=pg.mkPen(colour, width=2))
                self.curves[name].colour = colour
            self.curves[name].setData(SIGMAS, values)
        self.legend.setText(
            " &nbsp; ".join(
                f'<span style="color:{COLOURS[k % len(COLOURS)]}">━━</span> {name}'
                for k, name in enumerate(self.curves)
            )
        )
        self.plot.setVisible(bool(scores))
        if not scores:
            self.scores_note.setText(
                f"No attribute scores: {self._classifier_problem or 'the classifier reads nothing here'}."
            )
        else:
            moved = max(scores, key=lambda n: abs(scores[n][-1] - scores[n][0]))
            self.scores_note.setText(
                "The classifier's reading of each image along the direction (probability for binary attributes "
                f"and classes, value for continuous ones). Moves most: {moved} "
                f"({scores[moved][0]:.2f} at −3σ → {scores[moved][-1]:.2f} at +3σ)."
            )

    # --- applying and saving --------------------------------------------------------------------
    @property
    def strength(self) -> float:
        return self.strength_slider.value() / STRENGTH_STEPS

    def _drag_started(self) -> None:
        self._dragging = True
        self.state.begin_edit()

    def _drag_finished(self) -> None:
        self._dragging = False
        self.state.end_edit()
        if self.follow_check.isChecked():
            self._follow_timer.start()

    def _strength_changed(self, _value: int) -> None:
        v = self.unit()
        if v is None or self._base is None:
            return
        self._set_z(self._base + self.strength * v, record=not self._dragging)
        self._show_strength(self.strength)

    def step_along(self, amount: float) -> None:
        """z += amount * the unit direction: one undo step (the slider's base follows)."""
        v = self.unit()
        if v is None:
            return
        self._set_z(self.state.z + amount * v, record=True)
        self._base = self.state.z - self.strength * v
        self.apply_status.setText(f"Moved z {amount:+.2f}σ along '{self.selected}' (Undo returns).")

    def _set_z(self, z: np.ndarray, record: bool) -> None:
        self._applying = True
        try:
            self.state.set_z(z, record=record)
        except ValueError as error:  # NaN/inf from a broken direction: say so, keep z
            self.apply_status.setText(str(error))
        finally:
            self._applying = False

    def _show_strength(self, s: float) -> None:
        self.strength_label.setText(f"{s:+.2f}σ")

    def save_as_vector(self) -> np.ndarray | None:
        """Save the unit direction times the scale as an attribute vector of the state."""
        v = self.unit()
        if v is None:
            return None
        name = self.vector_name_edit.text().strip() or self.selected
        vector = v * self.scale_spin.value()
        self.state.set_vector(name, vector)
        self.apply_status.setText(
            f"Saved vector '{name}' (length {self.scale_spin.value():g}): the Arithmetic tab and the sliders have it."
        )
        return vector

    # --- sessions -------------------------------------------------------------------------------
    def session_data(self) -> dict:
        entries = []
        for name, d in self.directions.items():
            entry = {"name": name, "method": d.method, "value": d.value, "vector": d.vector.tolist()}
            b = self.boundaries.get(name)
            if b is not None:
                entry["boundary"] = {"offset": b.offset, "accuracy": b.accuracy, "kind": b.kind, "n": b.n}
            entries.append(entry)
        return {"directions": entries, "selected": self.selected}

    def load_session_data(self, d: dict) -> None:
        dim = self.state.latent_dim
        directions, boundaries = {}, {}
        for entry in d.get("directions", []):
            vector = np.asarray(entry["vector"], np.float32).reshape(-1)
            if vector.shape != (dim,) or not np.all(np.isfinite(vector)) or not np.any(vector):
                continue
            name, method = str(entry["name"]), str(entry["method"])
            value = entry.get("value")
            directions[name] = Direction(name, vector, method, None if value is None else float(value))
            if "boundary" in entry:
                b = entry["boundary"]
                boundaries[name] = Boundary(name, vector, float(b["offset"]), b["accuracy"], b["kind"], int(b["n"]))
        self.directions, self.boundaries = directions, boundaries
        self.selected = d.get("selected") if d.get("selected") in directions else None
        self._rebuild_list()
