"""MNIST, Fashion-MNIST, CIFAR-10 (in memory) and CelebA (lazy, per item) via torchvision."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from .base import (
    ImageDataset,
    TensorImageDataset,
    binarize_tensor_uint8,
    binarize_uint8,
    match_channels_uint8,
    resize_uint8,
)
from .spec import DATA_ROOT_ENV, DATASET_CLASSES, DatasetError, DataSpec, default_data_root

# Where torchvision expects each dataset below the root, for error messages.
_LAYOUT = {
    "mnist": "MNIST/raw/ (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)",
    "fashion-mnist": "FashionMNIST/raw/ (the four *-idx?-ubyte files)",
    "cifar10": "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)",
    "celeba": "celeba/ (img_align_celeba/ and the list_*.txt / identity_CelebA.txt files)",
}

MNIST_CLASSES = list(DATASET_CLASSES["mnist"])  # torchvision's are "0 - zero", ...; plain digits are friendlier


def _open(name: str, factory: Callable[..., Any], root: str, download: bool, **kwargs: Any) -> Any:
    """Construct a torchvision dataset, turning its errors into one DatasetError the user can act on."""
    try:
        return factory(root=root, download=download, **kwargs)
    except Exception as e:  # torchvision raises RuntimeError/OSError/URLError/ImportError(gdown)/...
        where = os.path.abspath(root)
        if download:
            msg = (
                f"Could not download {name} into {where!r} ({e}). Without internet access, copy the files to "
                f"{where}/{_LAYOUT[name]} or point --data-root at a folder that has them."
            )
        elif "not found" in str(e).lower():
            msg = (
                f"{name} files not found under data root {where!r}: expected {where}/{_LAYOUT[name]}. "
                f"Pass download=True to fetch them (needs internet), or point --data-root (or ${DATA_ROOT_ENV}) at the folder that contains them."
            )
        else:
            msg = f"Could not read {name} from data root {where!r}: {e}"
        raise DatasetError(msg) from e


def _class_dataset(
    spec: DataSpec, images: torch.Tensor, targets: torch.Tensor, classes: list[str], train: bool
) -> TensorImageDataset:
    """images uint8 (N, c, H, W) at native size -> in-memory dataset with one-hot labels."""
    images = match_channels_uint8(images, spec.channels)  # RGB->gray before resizing: 3x less work
    images = resize_uint8(images, spec.image_size)
    images = binarize_tensor_uint8(images, spec.binarize, salt=0 if train else 1)
    labels = torch.nn.functional.one_hot(targets.to(torch.int64), len(classes)).to(torch.float32)
    return TensorImageDataset(spec, images.contiguous(), labels, classes, {c: "class" for c in classes})


def load_mnist_like(spec: DataSpec, train: bool) -> TensorImageDataset:
    from torchvision import datasets

    root = spec.root or default_data_root()
    if spec.name == "mnist":
        ds = _open("mnist", datasets.MNIST, root, spec.download, train=train)
        classes = MNIST_CLASSES
    else:
        ds = _open("fashion-mnist", datasets.FashionMNIST, root, spec.download, train=train)
        classes = list(DATASET_CLASSES["fashion-mnist"])  # torchvision's own, as a table known before loading
    images = torch.as_tensor(ds.data, dtype=torch.uint8).unsqueeze(1)  # (N, 1, 28, 28)
    return _class_dataset(spec, images, torch.as_tensor(ds.targets), classes, train)


def load_cifar10(spec: DataSpec, train: bool) -> TensorImageDataset:
    from torchvision import datasets

    root = spec.root or default_data_root()
    ds = _open("cifar10", datasets.CIFAR10, root, spec.download, train=train)
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2)  # HWC -> CHW
    return _class_dataset(spec, images, torch.as_tensor(ds.targets), list(DATASET_CLASSES["cifar10"]), train)


class CelebADataset(ImageDataset):
    """CelebA aligned faces, read lazily per item (200k images do not fit in memory at 64x64x3 comfortably).

    Each image is centre-cropped to a square (178x178 for the aligned set) and resized with Lanczos.
    """

    def __init__(
        self,
        spec: DataSpec,
        image_dir: str,
        filenames: list[str],
        attrs: torch.Tensor,
        attr_names: list[str],
        train: bool = True,
    ) -> None:
        super().__init__(spec, attr_names, {n: "binary" for n in attr_names})
        self._image_dir = image_dir
        self._filenames = list(filenames)
        self._attrs = attrs.to(torch.float32)
        self._salt = 0 if train else 1

    def __len__(self) -> int:
        return len(self._filenames)

    def _load_one(self, i: int) -> np.ndarray:
        with Image.open(os.path.join(self._image_dir, self._filenames[i])) as im:
            im = im.convert("RGB")
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side))
        size = self.spec.image_size
        im = im.resize((size, size), Image.Resampling.LANCZOS)
        if self.spec.channels == 1:
            im = im.convert("L")
        arr = np.asarray(im, dtype=np.uint8)
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)

    def _uint8_batch(self, idx: np.ndarray) -> torch.Tensor:
        size, c = self.spec.image_size, self.spec.channels
        pixels = np.empty((len(idx), c, size, size), dtype=np.uint8)
        for k, i in enumerate(idx):
            pixels[k] = self._load_one(int(i))
        pixels = binarize_uint8(pixels, idx, self.spec.binarize, self._salt)
        return torch.from_numpy(pixels)

    def _label_batch(self, idx: np.ndarray) -> torch.Tensor:
        return self._attrs[torch.from_numpy(idx)]


def load_celeba(spec: DataSpec, train: bool = True, split: str | None = None) -> CelebADataset:
    """CelebA's train or test split, or `split` ("train", "valid", "test") when given."""
    from torchvision import datasets

    root = spec.root or default_data_root()
    split = split or ("train" if train else "test")
    ds = _open("celeba", datasets.CelebA, root, spec.download, split=split, target_type="attr")
    names = [n for n in ds.attr_names if n]  # the header line may end with an empty field
    image_dir = os.path.join(ds.root, ds.base_folder, "img_align_celeba")
    return CelebADataset(spec, image_dir, list(ds.filename), ds.attr[:, : len(names)], names, split == "train")
