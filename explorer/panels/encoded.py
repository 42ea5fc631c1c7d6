"""The encoded dataset the latent panels share: encoder means of a few thousand held-out images.

One `EncodedSet` per ExplorerState, so the map's scatter, PCA axes and the label vectors of the
arithmetic panel all come from the same latents, computed once per checkpoint in a worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal

from engines import latent
from engines.data import SHAPE_NAMES
from explorer.state import ExplorerState
from explorer.workers import Latest

from .panel_tools import require_finite

log = logging.getLogger(__name__)

DEFAULT_COUNT = 2000
ENCODE_SEED = 0

@dataclass(frozen=True)
class Attribute:
    """Something a label column says about an image: shown to the user, turned into a mask."""

    name: str
    column: int
    kind: str  # "class" (one-hot column), "category" (value == index), "binary", "continuous"
    value: float = 0.0  # the category index for kind "category"

    def mask(self, labels: np.ndarray) -> np.ndarray:
        """(N,) bool: which images have the attribute (continuous: above the median)."""
        y = labels[:, self.column]
        if self.kind == "category":
            return y == self.value
        return latent.binarize_labels(y)


@dataclass(frozen=True)
class ColourBy:
    """How the scatter is coloured: one group per class, or a continuous value."""

    name: str
    columns: tuple[int, ...]  # several one-hot columns (argmax) or one column
    kind: str  # "argmax", "category", "binary", "continuous"
    class_names: tuple[str, ...] = ()

    def values(self, labels: np.ndarray) -> np.ndarray:
        y = labels[:, list(self.columns)]
        if self.kind == "argmax":
            return np.argmax(y, axis=1)
        if self.kind == "category":
            return np.round(y[:, 0]).astype(np.int64)
        if self.kind == "binary":
            return latent.binarize_labels(y[:, 0]).astype(np.int64)
        return y[:, 0]


@dataclass
class EncodedData:
    latents: np.ndarray  # (N, D) encoder means
    labels: np.ndarray  # (N, L)
    indices: np.ndarray  # (N,) dataset indices
    label_names: list[str]
    kinds: dict[str, str]
    dataset: object = field(repr=False)
    category_names: dict[str, list[str]] = field(default_factory=dict)

    def image(self, row: int) -> np.ndarray:
        """The real image behind encoded row `row`, (H, W, C) float in [0, 1]."""
        images, _ = self.dataset.get_batch([int(self.indices[row])])
        return images[0].permute(1, 2, 0).numpy()

    def attributes(self) -> list[Attribute]:
        out = []
        for j, name in enumerate(self.label_names):
            kind = self.kinds.get(name, "continuous")
            if kind == "categorical":
                names = self.category_names.get(name) or [str(int(v)) for v in np.unique(self.labels[:, j])]
                out += [Attribute(f"{name} = {cat}", j, "category", float(k)) for k, cat in enumerate(names)]
            elif kind == "class":
                out.append(Attribute(f"class {name}", j, "class"))
            elif kind == "binary":
                out.append(Attribute(name, j, "binary"))
            else:
                out.append(Attribute(f"{name} (high vs low)", j, "continuous"))
        return out

    def colourings(self) -> list[ColourBy]:
        """Colour choices, the default first: the class (argmax), else the first binary attribute."""
        classes = [j for j, n in enumerate(self.label_names) if self.kinds.get(n) == "class"]
        out: list[ColourBy] = []
        if classes:
            out.append(ColourBy("class", tuple(classes), "argmax", tuple(self.label_names[j] for j in classes)))
        rest = [(j, n, self.kinds.get(n, "continuous")) for j, n in enumerate(self.label_names) if j not in classes]
        rank = {"binary": 0, "categorical": 1, "continuous": 2}
        for j, name, kind in sorted(rest, key=lambda t: (rank.get(t[2], 3), t[0])):
            if kind == "binary":
                out.append(ColourBy(name, (j,), "binary", (f"no {name}", name)))
            elif kind == "categorical":
                cats = self.category_names.get(name) or [str(int(v)) for v in np.unique(self.labels[:, j])]
                out.append(ColourBy(name, (j,), "category", tuple(cats)))
            else:
                out.append(ColourBy(name, (j,), "continuous"))
        return out


def _category_names(dataset) -> dict[str, list[str]]:
    if getattr(dataset, "spec", None) is not None and dataset.spec.name == "shapes":
        return {"shape": list(SHAPE_NAMES)}
    return {}


def _encode(job, state: ExplorerState, model, n: int) -> EncodedData:
    # The state loads (and caches) the checkpoint's held-out split; it raises DatasetError when the
    # files are missing, and RuntimeError when another checkpoint was opened meanwhile.
    dataset = state.dataset(train=False)
    z, y, idx = latent.encode_dataset(model, dataset, n, batch=250, seed=ENCODE_SEED,
                                      should_stop=lambda: job.cancelled,
                                      progress=lambda done, total: job.report((done, total)))
    require_finite(z, what="the encoder's output")
    names = list(dataset.label_names)
    return EncodedData(z, y.reshape(len(z), len(names)), idx, names, dict(dataset.attribute_kinds), dataset,
                       _category_names(dataset))


class EncodedSet(QObject):
    """Encoder means of `count` held-out images of the checkpoint's dataset, shared by the panels.

    `ensure(n)` returns the data when it is there (with at least n rows) and otherwise starts the
    worker; `ready` follows. Opening another checkpoint drops the data and cancels the worker.
    """

    ready = Signal(object)  # EncodedData
    failed = Signal(str)
    progress = Signal(int, int)

    def __init__(self, state: ExplorerState) -> None:
        super().__init__(state)
        self.state = state
        self.data: EncodedData | None = None
        self.error: str | None = None
        self._pending = 0
        self._job = Latest(self)
        self._model = state.model  # the model the data belongs to
        state.modelChanged.connect(self._reset)

    def available(self) -> str | None:
        """Why nothing can be encoded, or None."""
        if self.state.model is None:
            return "no model"
        if self.state.kind != "vae":
            return "a GAN has no encoder, so dataset images cannot be mapped to latents"
        return None

    def ensure(self, n: int = DEFAULT_COUNT, retry: bool = False) -> EncodedData | None:
        """The data, or None while it is computed (or cannot be). After a failure (say, the dataset's
        files are missing) nothing is retried until `retry` is set by an explicit user action."""
        if self._model is not self.state.model:  # a view asked before this set heard of the new model
            self._reset()
        if self.available() is not None or (self.error is not None and not retry):
            return None
        if self.data is not None and len(self.data.latents) >= min(n, len(self.data.dataset)):
            return self.data
        if self._job.busy() and self._pending >= n:
            return None
        self._pending, self.error = n, None
        self._job.start(_encode, self.state, self.state.model, n, on_result=self._done,
                        on_failed=self._failed, on_progress=lambda p: self.progress.emit(*p))
        return None

    def busy(self) -> bool:
        return self._job.busy()

    def report_to(self, label, failure: str) -> None:
        """Say in `label` (a QLabel) how the encoding goes, and "`failure`: why" when it fails."""
        self.progress.connect(lambda done, total: label.setText(f"Encoding dataset… {done}/{total}"))
        self.failed.connect(lambda message: label.setText(f"{failure}: {message}"))

    def _done(self, data: EncodedData) -> None:
        self.data, self._pending = data, 0
        log.info("encoded %d dataset images", len(data.latents))
        self.ready.emit(data)

    def _failed(self, message: str) -> None:
        self.error, self._pending = message, 0
        self.failed.emit(message)

    def _reset(self) -> None:
        self._job.cancel()
        self.data, self.error, self._pending, self._model = None, None, 0, self.state.model


def encoded_set(state: ExplorerState) -> EncodedSet:
    """The one EncodedSet of `state` (a Qt child of it, so it lives and dies with the state)."""
    found = state.findChild(EncodedSet, options=Qt.FindChildOption.FindDirectChildrenOnly)
    return found if found is not None else EncodedSet(state)
