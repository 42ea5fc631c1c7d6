"""The Nearest tab: is the current image (decoded, sampled or projected: decode(z)) a copy of a training
image? Its k nearest training images in pixel space and in the bundled classifier's feature space, with
their distances, beside the distances real held-out images have to the training set (engines.nearest).

The index is built once per dataset in a worker (cached on disk; the tab keeps it for the session) and
every change of z asks for a query, the newest request winning.
"""

from __future__ import annotations

import json

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from engines import latent
from engines.nearest import NearestIndex, checkpoint_index
from explorer.image_view import ImageView
from explorer.pixels import to_pixmap

from .panel_tools import laid_out, require_finite, spin_box
from .tab import Tab
from .thumbnails import icon_list

THUMB = 56
SPACE_TITLES = {"pixels": "Pixel space (L2, pixels in [0, 1])", "features": "Classifier feature space (L2)"}
_INDEXES: dict[str, tuple[NearestIndex, str]] = {}  # dataset description -> index, for the session


def _dataset_key(ckpt) -> str:
    return json.dumps({"spec": ckpt.dataset, "validation": (ckpt.training or {}).get("validation")}, sort_keys=True)


def build_job(job, ckpt) -> tuple[NearestIndex, str] | None:
    try:
        return checkpoint_index(ckpt, should_stop=lambda: job.cancelled)
    except InterruptedError:  # cancelled (another model opened): nobody waits for it
        return None


def query_job(job, model, z: np.ndarray, index: NearestIndex, k: int):
    """decode(z) and its neighbours: (image (H, W, C), {space: Neighbours})."""
    image = latent.decode_latents(model, z[None])[0]
    require_finite(image)
    return image, index.query(image.transpose(2, 0, 1), k)


class SpaceView(QGroupBox):
    """One space: the neighbours as thumbnails with their distances, the sentence, and the reference
    distribution (a histogram of held-out images' nearest distances) with this image's as a line."""

    def __init__(self, title: str) -> None:
        super().__init__(title)
        lay = QHBoxLayout(self)
        left, col = laid_out(QVBoxLayout)
        self.thumbs: QListWidget = icon_list(THUMB, one_row=True)
        self.thumbs.setFixedHeight(THUMB + 44)
        self.sentence = QLabel()
        self.sentence.setWordWrap(True)
        col.addWidget(self.thumbs)
        col.addWidget(self.sentence)
        lay.addWidget(left, 3)
        self.plot = pg.PlotWidget()
        self.plot.setFixedHeight(130)
        self.plot.setLabel("bottom", "nearest distance")
        self.plot.hideAxis("left")
        self.plot.setMouseEnabled(False, False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=1, brush=(120, 120, 160))
        self.plot.addItem(self.bars)
        self.line = pg.InfiniteLine(angle=90, pen=pg.mkPen((230, 80, 60), width=2))
        self.plot.addItem(self.line)
        lay.addWidget(self.plot, 2)
        self.distances: np.ndarray = np.zeros(0)
        self._reference_id = None

    def show_result(self, neighbours, index: NearestIndex) -> None:
        self.distances = neighbours.distances
        self.thumbs.clear()
        for i, d in zip(neighbours.indices, neighbours.distances, strict=True):
            item = QListWidgetItem(QIcon(to_pixmap(index.image(i).transpose(1, 2, 0), THUMB)), f"{d:.3g}")
            item.setToolTip(f"training image {int(i)}: distance {d:.4g}")
            self.thumbs.addItem(item)
        self.sentence.setText(
            neighbours.sentence() if len(neighbours.reference) else f"nearest {neighbours.distances[0]:.3g}"
        )
        if self._reference_id is not id(neighbours.reference) and len(neighbours.reference):
            self._reference_id = id(neighbours.reference)
            counts, edges = np.histogram(neighbours.reference, bins=30)
            self.bars.setOpts(x=(edges[:-1] + edges[1:]) / 2, height=counts, width=edges[1] - edges[0])
        self.line.setValue(float(neighbours.distances[0]))

    def clear(self) -> None:
        self.thumbs.clear()
        self.sentence.setText("")
        self.distances = np.zeros(0)


class NearestPanel(Tab):
    """The current image and its nearest training images, in pixel and feature space."""

    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.index: NearestIndex | None = None
        self.index_text = ""
        self.results: dict = {}
        self.builds = self.job_slot()
        self.queries = self.job_slot(interrupt=False)
        content, lay = laid_out(QVBoxLayout, margins=None)
        top, row = laid_out(QHBoxLayout)
        self.view = ImageView(placeholder="decode(z)")
        self.view.setFixedSize(160, 160)
        row.addWidget(self.view)
        info, col = laid_out(QVBoxLayout)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.k_spin = spin_box(1, 16, 8, prefix="k = ", tip="How many nearest training images to show")
        self.k_spin.setMaximumWidth(110)
        self.k_spin.valueChanged.connect(self.refresh)
        explain = QLabel(
            "A generated image much closer to a training image than real held-out images are to the training "
            "set (a low percentile) may be a copy of it."
        )
        explain.setWordWrap(True)
        col.addWidget(self.status)
        col.addWidget(self.k_spin)
        col.addWidget(explain)
        col.addStretch(1)
        row.addWidget(info, 1)
        lay.addWidget(top)
        self.space_views = {name: SpaceView(title) for name, title in SPACE_TITLES.items()}
        for view in self.space_views.values():
            lay.addWidget(view)
        lay.addStretch(1)
        state.latentChanged.connect(self.refresh)
        self.set_content(content)

    def reset_for_model(self) -> None:
        self.results = {}
        self.view.set_image(None)
        for view in self.space_views.values():
            view.clear()
        ckpt = self.state.checkpoint
        cached = _INDEXES.get(_dataset_key(ckpt)) if ckpt is not None and ckpt.dataset else None
        self.index, self.index_text = cached if cached else (None, "")
        if ckpt is not None and not ckpt.dataset:
            self.status.setText("The model does not say which dataset it was trained on: nothing to compare with.")

    def update_view(self) -> None:
        ckpt = self.state.checkpoint
        if ckpt is None or not ckpt.dataset:
            return
        if self.index is None:
            if not self.builds.busy():
                self.status.setText("Building the index of the training images (once per dataset; cached on disk)…")
                self.builds.start(build_job, ckpt, on_result=self._built, on_failed=self._failed)
            return
        self.queries.start(
            query_job,
            self.state.model,
            self.state.z.copy(),
            self.index,
            self.k_spin.value(),
            on_result=self._answered,
            on_failed=self._failed,
        )

    def _built(self, value: tuple[NearestIndex, str] | None) -> None:
        if value is None:
            return
        self.index, self.index_text = value
        if self.state.checkpoint is not None:
            _INDEXES[_dataset_key(self.state.checkpoint)] = value
        self.status.setText(self.index_text)
        self.refresh()

    def _failed(self, message: str) -> None:
        self.status.setText(f"No nearest neighbours: {message}")

    def _answered(self, value) -> None:
        image, results = value
        self.results = results
        self.view.set_image(image)
        self.status.setText(self.index_text)
        for name, view in self.space_views.items():
            view.setVisible(name in results)
            if name in results:
                view.show_result(results[name], self.index)
