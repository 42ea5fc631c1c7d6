"""The validation split: a fixed, seeded slice of the training data that training never sees.

A run is judged per epoch on validation images; the test split is left to `latent-explorer eval`.
CelebA has its own validation split; every other dataset holds out a fixed slice of its training
split: 5,000 images of MNIST, Fashion-MNIST and CIFAR-10 (as is customary), 10% of a folder or of
a procedural set. Which images are held out depends only on the number of training images and a
fixed seed (never the run's seed), so a resumed run, the CLI and the Train tab hold out the same
ones. A run records its split (`record`) in its checkpoint's training summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .base import ImageDataset
from .spec import DatasetError, DataSpec

SPLIT_SEED = 20_241  # fixed: the split is the same for every run of a dataset
HELD_OUT_COUNT = {"mnist": 5000, "fashion-mnist": 5000, "cifar10": 5000}
HELD_OUT_FRACTION = 0.1  # of a folder or a procedural set
OWN_SPLIT = ("celeba",)  # datasets that ship their own validation split


class SubsetDataset(ImageDataset):
    """Some images of another dataset, by index (each image keeps its binarization and labels)."""

    def __init__(self, base: ImageDataset, indices: np.ndarray) -> None:
        super().__init__(base.spec, base.label_names, base.attribute_kinds)
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.skipped, self.skipped_files = base.skipped, base.skipped_files
        files = getattr(base, "files", None)
        if files is not None:
            self.files = [files[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def _uint8_batch(self, idx: np.ndarray) -> torch.Tensor:
        return self.base._uint8_batch(self.indices[idx])

    def _label_batch(self, idx: np.ndarray) -> torch.Tensor:
        return self.base._label_batch(self.indices[idx])


def held_out_count(name: str, n: int) -> int:
    """How many of `n` training images a dataset holds out for validation (0: too few to hold any)."""
    count = HELD_OUT_COUNT.get(name, int(n * HELD_OUT_FRACTION))
    return count if 0 < count < n else 0


def split_indices(n: int, count: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of `n` images, `count` held out, each sorted; a function of (n, count, seed)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[count:]), np.sort(order[:count])


@dataclass
class Splits:
    train: ImageDataset
    val: ImageDataset | None  # None: too few images to hold any out
    record: dict[str, Any]  # what the checkpoint stores (training.validation)


def describe_record(record: dict[str, Any] | None) -> str:
    """One line on where a run's per-epoch held-out figures come from."""
    if not record:
        return "test split (a run from before validation splits)"
    if record.get("source") == "own":
        return f"the dataset's own validation split ({record.get('count', '?'):,} images)"
    if not record.get("count"):
        return "none (too few images to hold any out)"
    text = f"{record['count']:,} of the {record.get('of', '?'):,} training images, held out (seed {record.get('seed')})"
    if record.get("since_step"):
        text += f"; held out from step {record['since_step']} on (the run trained on them before)"
    return text


def load_splits(spec: DataSpec, record: dict[str, Any] | None = None, since_step: int = 0) -> Splits:
    """The training images and the validation images of `spec`'s dataset.

    `record`, from a resumed run's checkpoint, must describe the same split again (else DatasetError,
    e.g. a folder whose images changed); without one, the dataset's default split is made and recorded,
    with `since_step` for an older run that starts holding images out only now.
    """
    from .loader import load_dataset
    from .torchvision_sets import load_celeba

    full = load_dataset(spec, train=True)
    if spec.name in OWN_SPLIT:
        val = load_celeba(spec, split="valid")
        return Splits(full, val, {"source": "own", "count": len(val)})
    n = len(full)
    if record is not None and record.get("source") == "held out":
        count, seed = record.get("count"), record.get("seed")
        if record.get("of") != n or not isinstance(count, int) or not isinstance(seed, int):
            raise DatasetError(
                f"The run held out {count} of {record.get('of')} training images for validation, but the dataset "
                f"now has {n}: resuming would mix its validation images into training. Start a new run instead."
            )
    else:
        count, seed = held_out_count(spec.name, n), SPLIT_SEED
    since_step = since_step or (record or {}).get("since_step", 0)
    record = {"source": "held out", "count": count, "of": n, "seed": seed}
    if since_step:
        record["since_step"] = since_step
    if count == 0:
        return Splits(full, None, record)
    train_idx, val_idx = split_indices(n, count, seed)
    return Splits(SubsetDataset(full, train_idx), SubsetDataset(full, val_idx), record)
