"""`load_dataset`: the one entry point from a DataSpec to a dataset."""

from __future__ import annotations

from .base import ImageDataset
from .faces import FacesDataset
from .folder import FolderDataset
from .shapes import ShapesDataset
from .spec import DatasetError, DataSpec
from .torchvision_sets import load_celeba, load_cifar10, load_mnist_like


def load_dataset(spec: DataSpec, train: bool = True) -> ImageDataset:
    """Load the train (or test) split described by `spec`.

    Raises DatasetError with a user-facing message when the data is missing or unusable.
    Folder datasets have no split: train=False returns the same images.
    """
    name = spec.name
    if name in ("mnist", "fashion-mnist"):
        return load_mnist_like(spec, train)
    if name == "cifar10":
        return load_cifar10(spec, train)
    if name == "celeba":
        return load_celeba(spec, train)
    if name == "shapes":
        return ShapesDataset(spec, train)
    if name == "faces":
        return FacesDataset(spec, train)
    if name == "folder":
        return FolderDataset(spec, train)
    raise DatasetError(f"Unknown dataset {name!r}")  # unreachable: DataSpec validates the name
