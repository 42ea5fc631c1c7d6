"""A dataset encoded to latents, with what its labels say: the attributes label vectors are built
from and the ways a scatter of the latents can be coloured. Qt-free: the explorer's Maps and
Arithmetic tabs share one EncodedData per checkpoint, computed in a worker by `encode_labelled`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .data import SHAPE_NAMES
from .latent import binarize_labels, encode_dataset


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
        return binarize_labels(y)


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
            return binarize_labels(y[:, 0]).astype(np.int64)
        return y[:, 0]


@dataclass
class EncodedData:
    """Encoded dataset images (row i is dataset image indices[i]) and what their labels say."""

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
        """What a label vector can be built from: one attribute per label (per category, for a
        categorical one)."""
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


def category_names(dataset) -> dict[str, list[str]]:
    """The names of a dataset's categorical label values, where it has them (the procedural shapes)."""
    if getattr(dataset, "spec", None) is not None and dataset.spec.name == "shapes":
        return {"shape": list(SHAPE_NAMES)}
    return {}


def encode_labelled(
    model: torch.nn.Module,
    dataset,
    n: int,
    seed: int = 0,
    batch: int = 250,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EncodedData:
    """n images drawn (seeded) from `dataset`, encoded (engines.latent.encode_dataset), with the
    dataset's label names, kinds and category names. Raises ValueError for a model without an encoder."""
    encoded = encode_dataset(model, dataset, n, batch=batch, seed=seed, should_stop=should_stop, progress=progress)
    names = list(dataset.label_names)
    return EncodedData(
        encoded.latents,
        encoded.labels.reshape(len(encoded.latents), len(names)),
        encoded.indices,
        names,
        dict(dataset.attribute_kinds),
        dataset,
        category_names(dataset),
    )
