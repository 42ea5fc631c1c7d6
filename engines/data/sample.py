"""A small held-out sample that travels inside a checkpoint.

The app's dataset views (encoded scatter, KL bars, label vectors, encoding an image, PixelCNN
completion) need the held-out split of the model's data. A bundled model carries its first N test
images, as the dataset gives them (binarized if the model's data was), so those views also work on
a machine without the dataset's files; the full split is used whenever it can be loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import ImageDataset, TensorImageDataset
from .loader import load_dataset
from .spec import DatasetError, DataSpec


def take_sample(dataset: ImageDataset, n: int, spread: bool = False) -> dict[str, Any]:
    """The first n images of `dataset` (`spread`: n evenly spaced over it, so an image folder listed
    class by class gives every class) as {"images": uint8 (N, C, S, S), "labels": float32 (N, L),
    "label_names": [...], "label_kinds": {...}}: what save_checkpoint(sample=...) stores."""
    n = min(int(n), len(dataset))
    if n < 1:
        raise ValueError("a sample needs at least one image")
    idx = np.linspace(0, len(dataset) - 1, n).round().astype(np.int64) if spread else np.arange(n, dtype=np.int64)
    return {
        "images": dataset._uint8_batch(idx).contiguous(),
        "labels": dataset._label_batch(idx).contiguous(),
        "label_names": list(dataset.label_names),
        "label_kinds": dict(dataset.attribute_kinds),
    }


def sample_dataset(spec: dict[str, Any], sample: dict[str, Any]) -> TensorImageDataset:
    """A dataset over a checkpoint's carried sample, with the checkpoint's DataSpec (so images and
    labels read exactly as the first N images of the full held-out split do)."""
    images = torch.as_tensor(sample["images"])
    labels = torch.as_tensor(sample["labels"], dtype=torch.float32)
    dataset = TensorImageDataset(DataSpec.from_dict(spec), images, labels, sample["label_names"], sample["label_kinds"])
    dataset.is_sample = True  # the app says it shows the carried sample, not the whole split
    return dataset


def heldout_or_sample(spec: dict[str, Any], sample: dict[str, Any] | None) -> ImageDataset:
    """The held-out split of `spec`'s dataset; where its files cannot be loaded, the carried sample
    (marked `is_sample`, with `missing` saying why), else the DatasetError. For browsing only:
    `latent-explorer eval` always measures on the full split."""
    try:
        return load_dataset(DataSpec.from_dict(spec), train=False)
    except DatasetError as error:
        if sample is None:
            raise
        dataset = sample_dataset(spec, sample)
        dataset.missing = str(error)
        return dataset


def describe(dataset: ImageDataset, count: int) -> str:
    """How a status line names `count` images of `dataset`: held-out images, or the carried sample's."""
    if dataset.is_sample:
        return (
            f"{count} of the {len(dataset)} test images carried in the model file (the dataset's files are "
            f"not on this machine)"
        )
    return f"{count} held-out images"
