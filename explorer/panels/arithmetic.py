"""Arithmetic: attribute vectors from labels or from exemplars, and applying a vector to z.

1. From labels (VAE): encoder means of held-out images; vector = mean latent of the images with the
   attribute - mean of those without (continuous attributes split at the median).
2. From exemplars (Radford et al. 2016): pick a few samples per concept from a seeded gallery into
   slots A, B and C; each slot averages its latents; result = A - B + C. Works for a GAN too.
3. Apply: z = base + strength * vector. The base is the z when the slider last sat at 0 (or when a
   vector was picked), so the slider moving back to 0 returns to it; a drag is one undo step.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from engines import latent
from engines.data.sample import describe
from engines.encoded import EncodedData
from explorer.pixels import to_pixmap
from explorer.state import ExplorerState

from .encoded import DEFAULT_COUNT, encoded_set
from .panel_tools import MAX_SEED, decode_job, laid_out, spin_box
from .tab import Tab
from .thumbnails import icon_list

log = logging.getLogger(__name__)

GALLERY_SIZE = 24
THUMB_PX = 80
OPERAND_PX = 96
SLOTS = ("A", "B", "C")
STRENGTH_RANGE = 3.0  # the slider spans -3..3
STRENGTH_STEPS = 100  # slider units per 1.0 of strength
DARK_BOX = "background: #202124; border: 1px solid #555; color: #bbb;"


def load_vectors(path: str | Path) -> dict[str, np.ndarray]:
    """Vectors from a .npz (one array per name) or a .json ({name: [floats]}) file."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"{path.name} does not hold a {{name: [numbers]}} object")
        return {str(k): np.asarray(v, np.float32).reshape(-1) for k, v in raw.items()}
    with np.load(path, allow_pickle=False) as npz:
        return {k: np.asarray(npz[k], np.float32).reshape(-1) for k in npz.files}


def save_vectors(path: str | Path, vectors: dict[str, np.ndarray]) -> None:
    path = Path(path)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps({k: np.asarray(v, float).tolist() for k, v in vectors.items()}, indent=1))
    else:
        np.savez(path, **{k: np.asarray(v, np.float32) for k, v in vectors.items()})


class ArithmeticPanel(Tab):
    """The Arithmetic tab. Public state: `gallery_latents`, `slots` (the exemplar latents of A, B, C),
    `result` (A - B + C), `label_vector`, `encoded`; `strength`."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.encoded = encoded_set(state)
        self.gallery_latents = np.zeros((0, 0), np.float32)
        self.slots: dict[str, list[np.ndarray]] = {s: [] for s in SLOTS}
        self.result: np.ndarray | None = None
        self.label_vector: np.ndarray | None = None
        self._attributes: list = []
        self._base: np.ndarray | None = None  # z at strength 0
        self._applying = False  # our own set_z is running: keep the base
        self._dragging = False
        self._operands_shown: bytes | None = None  # the operand latents shown or being decoded
        self._preview_shown: bytes | None = None  # likewise, the z of the apply preview
        self._gallery_job = self.job_slot()
        self._operands_job = self.job_slot()
        self._preview_job = self.job_slot(interrupt=False)  # follows the strength slider: newest wins
        content = self._build_ui()
        state.latentChanged.connect(self._on_latent)
        state.vectorsChanged.connect(self._fill_vectors)
        self.encoded.ready.connect(self._on_encoded)
        self.encoded.report_to(self.labels_status, "Could not encode the dataset")
        self.set_content(content)

    # --- layout ---------------------------------------------------------------------------------
    def _build_ui(self) -> QWidget:
        content, row = laid_out(QHBoxLayout)

        left, col = laid_out(QVBoxLayout, width=330, margins=(0, 0, 4, 0))

        labels_box, form = laid_out(QFormLayout, QGroupBox("1 · Vector from labels"), margins=None)
        self.labels_note = QLabel()
        self.labels_note.setWordWrap(True)
        form.addRow(self.labels_note)
        self.count_spin = spin_box(50, 20000, DEFAULT_COUNT, step=500)
        self.encode_button = QPushButton("Encode")
        count_row = QHBoxLayout()
        count_row.addWidget(self.count_spin, 1)
        count_row.addWidget(self.encode_button)
        form.addRow("Images", count_row)
        self.attribute_combo = QComboBox()
        form.addRow("Attribute", self.attribute_combo)
        self.label_name_edit = QLineEdit()
        form.addRow("Save as", self.label_name_edit)
        self.save_label_button = QPushButton("Compute and save vector")
        form.addRow(self.save_label_button)
        self.labels_status = QLabel()
        self.labels_status.setWordWrap(True)
        form.addRow(self.labels_status)
        self.labels_box = labels_box
        col.addWidget(labels_box)

        apply_box, aform = laid_out(QFormLayout, QGroupBox("3 · Apply a vector to z"), margins=None)
        self.vector_combo = QComboBox()
        aform.addRow("Vector", self.vector_combo)
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        span = int(STRENGTH_RANGE * STRENGTH_STEPS)
        self.strength_slider.setRange(-span, span)
        self.strength_slider.setPageStep(STRENGTH_STEPS // 2)
        self.strength_label = QLabel("+0.00")
        self.strength_label.setMinimumWidth(44)
        srow = QHBoxLayout()
        srow.addWidget(self.strength_slider, 1)
        srow.addWidget(self.strength_label)
        aform.addRow("Strength", srow)
        self.apply_preview = QLabel()
        self.apply_preview.setFixedSize(OPERAND_PX, OPERAND_PX)
        self.apply_preview.setStyleSheet(DARK_BOX)
        self.apply_norm = QLabel()
        self.apply_norm.setWordWrap(True)
        prow = QHBoxLayout()
        prow.addWidget(self.apply_preview)
        prow.addWidget(self.apply_norm, 1)
        aform.addRow(prow)
        vrow = QHBoxLayout()
        self.remove_vector_button = QPushButton("Remove")
        self.load_vectors_button = QPushButton("Load…")
        self.save_vectors_button = QPushButton("Save all…")
        for b in (self.remove_vector_button, self.load_vectors_button, self.save_vectors_button):
            vrow.addWidget(b)
        aform.addRow(vrow)
        self.vectors_status = QLabel()
        self.vectors_status.setWordWrap(True)
        aform.addRow(self.vectors_status)
        col.addWidget(apply_box)
        col.addStretch(1)
        row.addWidget(left)

        ex_box, ex = laid_out(QVBoxLayout, QGroupBox("2 · Vector from exemplars: A − B + C"), margins=None)
        grow = QHBoxLayout()
        self.seed_spin = spin_box(0, MAX_SEED, prefix="gallery seed ")
        self.new_gallery_button = QPushButton("New gallery")
        grow.addWidget(QLabel("Pick samples showing a concept, then add them to a slot:"), 1)
        grow.addWidget(self.seed_spin)
        grow.addWidget(self.new_gallery_button)
        ex.addLayout(grow)
        self.gallery = icon_list(THUMB_PX)
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setGridSize(QSize(THUMB_PX + 12, THUMB_PX + 12))
        self.gallery.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        ex.addWidget(self.gallery, 1)
        add_row = QHBoxLayout()
        self.add_buttons = {s: QPushButton(f"Add to {s}") for s in SLOTS}
        self.clear_buttons = {s: QPushButton(f"Clear {s}") for s in SLOTS}
        for s in SLOTS:
            add_row.addWidget(self.add_buttons[s])
        for s in SLOTS:
            add_row.addWidget(self.clear_buttons[s])
        ex.addLayout(add_row)

        ops = QGridLayout()
        self.operand_views: dict[str, QLabel] = {}
        self.operand_captions: dict[str, QLabel] = {}
        names = ["A", "−", "B", "+", "C", "=", "result"]
        for k, name in enumerate(names):
            if name in ("−", "+", "="):
                sign = QLabel(name)
                sign.setStyleSheet("font-size: 22px;")
                sign.setAlignment(Qt.AlignmentFlag.AlignCenter)
                ops.addWidget(sign, 0, k)
                continue
            view = QLabel()
            view.setFixedSize(OPERAND_PX, OPERAND_PX)
            view.setAlignment(Qt.AlignmentFlag.AlignCenter)
            view.setStyleSheet(DARK_BOX)
            cap = QLabel()
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            ops.addWidget(view, 0, k, Qt.AlignmentFlag.AlignCenter)
            ops.addWidget(cap, 1, k)
            self.operand_views[name], self.operand_captions[name] = view, cap
        ex.addLayout(ops)
        rrow = QHBoxLayout()
        self.goto_result_button = QPushButton("Go to result")
        self.vector_name_edit = QLineEdit()
        self.vector_name_edit.setPlaceholderText("name, e.g. smile")
        self.save_ab_button = QPushButton("Save A − B as vector")
        rrow.addWidget(self.goto_result_button)
        rrow.addStretch(1)
        rrow.addWidget(self.vector_name_edit)
        rrow.addWidget(self.save_ab_button)
        ex.addLayout(rrow)
        row.addWidget(ex_box, 1)

        self.encode_button.clicked.connect(lambda: self._request_encoding(retry=True))
        self.attribute_combo.currentIndexChanged.connect(self._attribute_picked)
        self.save_label_button.clicked.connect(self.save_label_vector)
        self.new_gallery_button.clicked.connect(lambda: self.seed_spin.setValue(self.seed_spin.value() + 1))
        self.seed_spin.valueChanged.connect(self.new_gallery)
        for s in SLOTS:
            self.add_buttons[s].clicked.connect(lambda _=False, s=s: self.add_selected(s))
            self.clear_buttons[s].clicked.connect(lambda _=False, s=s: self.clear_slot(s))
        self.goto_result_button.clicked.connect(self.go_to_result)
        self.save_ab_button.clicked.connect(self.save_a_minus_b)
        self.vector_combo.currentIndexChanged.connect(self._vector_picked)
        self.strength_slider.sliderPressed.connect(self._drag_started)
        self.strength_slider.sliderReleased.connect(self._drag_finished)
        self.strength_slider.valueChanged.connect(self._strength_changed)
        self.remove_vector_button.clicked.connect(self._remove_vector)
        self.load_vectors_button.clicked.connect(self._load_dialog)
        self.save_vectors_button.clicked.connect(self._save_dialog)
        return content

    # --- model ----------------------------------------------------------------------------------
    def reset_for_model(self) -> None:
        self._operands_shown = self._preview_shown = None
        self.slots = {s: [] for s in SLOTS}
        self.result, self.label_vector, self._base = None, None, None
        self._attributes = []
        self.gallery.clear()
        self.gallery_latents = np.zeros((0, 0), np.float32)
        with signals_blocked(self.attribute_combo):
            self.attribute_combo.clear()
        self.labels_status.clear()
        self.vectors_status.clear()
        if not self.usable:
            return
        by_labels = self.state.has_encoder and self.state.has_labels
        for w in (
            self.count_spin,
            self.encode_button,
            self.attribute_combo,
            self.label_name_edit,
            self.save_label_button,
        ):
            w.setEnabled(by_labels)
        self.labels_note.setText(
            "Encode held-out images and take (mean latent with the attribute) − (mean latent without)."
            if by_labels
            else (
                "This model has no encoder (a GAN), so dataset images cannot be mapped to latents and labels cannot "
                if not self.state.has_encoder
                else "The model's dataset has no labels, so they cannot "
            )
            + "give a vector. Build it from exemplars instead (right): pick samples into A and B and save A − B."
        )
        self._fill_vectors()
        self._update_operands()

    def update_view(self) -> None:
        """Decode what is shown (gallery, operands, the apply preview) and fill the attribute list."""
        self._show_strength(self.strength)
        self._decode_preview()
        self._decode_operands()
        if len(self.gallery_latents) == 0:
            self.new_gallery()
        if self.state.has_encoder and self.state.has_labels and not self._attributes:
            self._request_encoding()

    # --- 1: vectors from labels -----------------------------------------------------------------
    def _request_encoding(self, retry: bool = False) -> None:
        data = self.encoded.ensure(self.count_spin.value(), retry=retry)
        if data is not None:
            self._on_encoded(data)

    def _on_encoded(self, data: EncodedData) -> None:
        if not self.state.has_encoder or data.latents.shape[1] != self.state.latent_dim:
            return
        self._attributes = data.attributes()
        with signals_blocked(self.attribute_combo):
            previous = self.attribute_combo.currentText()
            self.attribute_combo.clear()
            self.attribute_combo.addItems([a.name for a in self._attributes])
            if previous:
                self.attribute_combo.setCurrentText(previous)
        self.labels_status.setText(
            f"{describe(data.dataset, len(data.latents))} encoded."
            if self._attributes
            else "This dataset has no labels; use exemplars."
        )
        self._attribute_picked()

    def _attribute_picked(self) -> None:
        i = self.attribute_combo.currentIndex()
        if 0 <= i < len(self._attributes):
            name = self._attributes[i].name.replace(" (high vs low)", "").replace(" = ", "_").replace(" ", "_")
            self.label_name_edit.setText(name)

    def save_label_vector(self) -> np.ndarray | None:
        """Compute the chosen attribute's vector from the encoded images and save it in the state."""
        data = self.encoded.data
        i = self.attribute_combo.currentIndex()
        if data is None or not 0 <= i < len(self._attributes):
            self.labels_status.setText("Encode the dataset first.")
            return None
        attribute = self._attributes[i]
        has = attribute.mask(data.labels)
        try:
            vector = latent.attribute_vector(data.latents, has)
        except ValueError as error:
            self.labels_status.setText(str(error))
            return None
        name = self.label_name_edit.text().strip() or attribute.name
        self.label_vector = vector
        self.state.set_vector(name, vector)
        self.labels_status.setText(
            f"Saved '{name}': {int(has.sum())} with, {int((~has).sum())} without; length {np.linalg.norm(vector):.2f}."
        )
        self.vector_combo.setCurrentText(name)
        return vector

    # --- 2: exemplars ---------------------------------------------------------------------------
    def new_gallery(self) -> None:
        """Seeded random latents, decoded in a worker into the gallery."""
        if self.state.model is None:
            return
        rng = np.random.default_rng(self.seed_spin.value())
        self.gallery_latents = rng.standard_normal((GALLERY_SIZE, self.state.latent_dim)).astype(np.float32)
        self.gallery.clear()
        self._gallery_job.start(decode_job, self.state.model, self.gallery_latents, on_result=self._show_gallery)

    def _show_gallery(self, images: np.ndarray) -> None:
        self.gallery.clear()
        for i, image in enumerate(images):
            item = QListWidgetItem(QIcon(to_pixmap(image, THUMB_PX)), "")
            item.setToolTip(f"sample {i} of gallery seed {self.seed_spin.value()}")
            item.setData(Qt.ItemDataRole.UserRole, i)
            self.gallery.addItem(item)

    def add_selected(self, slot: str) -> None:
        rows = sorted(self.gallery.row(item) for item in self.gallery.selectedItems())
        for r in rows:
            self.slots[slot].append(self.gallery_latents[r].copy())
        self.gallery.clearSelection()
        self._update_operands()

    def add_latent(self, slot: str, z: np.ndarray) -> None:
        self.slots[slot].append(np.asarray(z, np.float32).copy())
        self._update_operands()

    def clear_slot(self, slot: str) -> None:
        self.slots[slot] = []
        self._update_operands()

    def slot_mean(self, slot: str) -> np.ndarray | None:
        return np.mean(self.slots[slot], axis=0).astype(np.float32) if self.slots[slot] else None

    def _operands(self) -> dict[str, np.ndarray]:
        """The latents shown in the operand views (slot means and the result), by view name."""
        shown = {**{s: self.slot_mean(s) for s in SLOTS}, "result": self.result}
        return {name: z for name, z in shown.items() if z is not None}

    def _update_operands(self) -> None:
        ready = all(self.slots[s] for s in SLOTS)
        self.result = latent.exemplar_arithmetic(*(np.stack(self.slots[s]) for s in SLOTS)) if ready else None
        have = self._operands()
        for name, view in self.operand_views.items():
            if name not in have:
                view.clear()
                view.setText("empty" if name != "result" else "needs A, B, C")
            count = len(self.slots[name]) if name in self.slots else None
            self.operand_captions[name].setText(f"{name} ({count})" if count is not None else "A − B + C")
        self.goto_result_button.setEnabled(ready)
        self.save_ab_button.setEnabled("A" in have and "B" in have)
        self.refresh()  # the images: decoded in a worker (when the tab is shown)

    def _decode_operands(self) -> None:
        have = self._operands()
        latents = np.stack(list(have.values())) if have else np.zeros((0, self.state.latent_dim), np.float32)
        key = latents.tobytes() + ",".join(have).encode()
        if not have or key == self._operands_shown:
            self._operands_shown = key if have else None
            return
        self._operands_shown = key
        self._operands_job.start(
            decode_job, self.state.model, latents, on_result=lambda images: self._show_operands(list(have), images)
        )

    def _show_operands(self, names: list[str], images: np.ndarray) -> None:
        for name, image in zip(names, images, strict=True):
            self.operand_views[name].setPixmap(to_pixmap(image, OPERAND_PX - 4))

    def go_to_result(self) -> None:
        if self.result is not None:
            self.state.set_z(self.result)

    def save_a_minus_b(self) -> np.ndarray | None:
        a, b = self.slot_mean("A"), self.slot_mean("B")
        if a is None or b is None:
            return None
        name = self.vector_name_edit.text().strip() or f"A-B ({len(self.slots['A'])}/{len(self.slots['B'])})"
        vector = (a.astype(np.float64) - b).astype(np.float32)
        self.state.set_vector(name, vector)
        self.vector_combo.setCurrentText(name)
        return vector

    # --- 3: apply -------------------------------------------------------------------------------
    def _fill_vectors(self) -> None:
        with signals_blocked(self.vector_combo):
            previous = self.vector_combo.currentText()
            self.vector_combo.clear()
            self.vector_combo.addItems(sorted(self.state.vectors))
            if previous in self.state.vectors:
                self.vector_combo.setCurrentText(previous)
        has = bool(self.state.vectors)
        for w in (self.strength_slider, self.remove_vector_button, self.save_vectors_button):
            w.setEnabled(has)
        self._vector_picked()

    def _vector_picked(self) -> None:
        """A new vector starts from the current z at strength 0."""
        self._base = self.state.z.copy() if self.state.model is not None else None
        with signals_blocked(self.strength_slider):
            self.strength_slider.setValue(0)
        self._show_strength(0.0)
        self.refresh()

    @property
    def strength(self) -> float:
        return self.strength_slider.value() / STRENGTH_STEPS

    def _on_latent(self) -> None:
        if self._applying:
            return
        # z changed elsewhere (undo, another panel): it is the new base, at strength 0.
        self._base = self.state.z.copy()
        with signals_blocked(self.strength_slider):
            self.strength_slider.setValue(0)
        self._show_strength(0.0)
        self.refresh()  # the preview of the new z (when the tab is shown)

    def _drag_started(self) -> None:
        self._dragging = True
        self.state.begin_edit()

    def _drag_finished(self) -> None:
        self._dragging = False
        self.state.end_edit()

    def _strength_changed(self, _value: int) -> None:
        name = self.vector_combo.currentText()
        if name not in self.state.vectors or self._base is None:
            return
        z = latent.apply_vector(self._base, self.state.vectors[name], self.strength)
        self._applying = True
        try:
            # Keyboard steps are undo steps of their own; a drag is one (begin/end_edit).
            self.state.set_z(z, record=not self._dragging)
        finally:
            self._applying = False
        self._show_strength(self.strength)
        self.refresh()

    def _show_strength(self, s: float) -> None:
        self.strength_label.setText(f"{s:+.2f}")
        name = self.vector_combo.currentText()
        if self.state.model is None or name not in self.state.vectors:
            self.apply_preview.clear()
            self._preview_shown = None
            self.apply_norm.setText("Save a vector (1 or 2) or load one to apply it.")
            return
        v = self.state.vectors[name]
        self.apply_norm.setText(f"z = base + {s:+.2f} × '{name}'\n|vector| = {np.linalg.norm(v):.2f}")

    def _decode_preview(self) -> None:
        """decode(z) in the apply box, while a vector is picked (slider drags: the newest z wins)."""
        if self.vector_combo.currentText() not in self.state.vectors:
            return
        z = self.state.z.copy()
        if z.tobytes() == self._preview_shown:
            return
        self._preview_shown = z.tobytes()
        self._preview_job.start(
            decode_job,
            self.state.model,
            z[None],
            on_result=lambda images: self.apply_preview.setPixmap(to_pixmap(images[0], OPERAND_PX - 4)),
        )

    def _remove_vector(self) -> None:
        name = self.vector_combo.currentText()
        if name:
            self.state.remove_vector(name)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load vectors", "", "Vectors (*.npz *.json)")
        if path:
            self.load_vectors_file(path)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save vectors", "vectors.npz", "NumPy (*.npz);;JSON (*.json)")
        if path:
            save_vectors(path, self.state.vectors)
            self.vectors_status.setText(f"Saved {len(self.state.vectors)} vectors to {Path(path).name}.")

    def load_vectors_file(self, path: str | Path) -> list[str]:
        """Add the vectors of a .npz/.json file that fit this model's latent; returns their names."""
        try:
            vectors = load_vectors(path)
        except (OSError, ValueError, json.JSONDecodeError) as error:
            self.vectors_status.setText(f"Could not read {Path(path).name}: {error}")
            return []
        dim = self.state.latent_dim
        fits = {k: v for k, v in vectors.items() if v.shape == (dim,)}
        for name, v in fits.items():
            self.state.set_vector(name, v)
        skipped = len(vectors) - len(fits)
        self.vectors_status.setText(
            f"Loaded {len(fits)} vectors" + (f"; skipped {skipped} that are not {dim}-D." if skipped else ".")
        )
        return list(fits)

    # --- sessions -------------------------------------------------------------------------------
    def session_data(self) -> dict:
        return {
            "gallery_seed": self.seed_spin.value(),
            "slots": {s: [z.tolist() for z in self.slots[s]] for s in SLOTS},
            "vector": self.vector_combo.currentText(),
        }

    def load_session_data(self, d: dict) -> None:
        dim = self.state.latent_dim
        self.slots = {
            s: [np.asarray(z, np.float32) for z in d.get("slots", {}).get(s, []) if len(z) == dim] for s in SLOTS
        }
        if "gallery_seed" in d:
            self.seed_spin.setValue(int(d["gallery_seed"]))
        if d.get("vector") in self.state.vectors:
            self.vector_combo.setCurrentText(d["vector"])
        self._update_operands()
