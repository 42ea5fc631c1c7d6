"""Datasets for Latent Explorer (Qt-free).

Build a `DataSpec` and call `load_dataset(spec, train)`; every dataset returns float32
images (C, S, S) in [0, 1] and float32 label vectors named by `label_names`, and offers a
vectorised `get_batch(indices)` for training loops.
"""

from .base import ImageDataset, TensorImageDataset
from .faces import FacesDataset
from .folder import FolderDataset
from .loader import load_dataset
from .procedural import ProceduralDataset
from .shapes import SHAPE_NAMES, ShapesDataset
from .spec import (
    BINARIZE_MODES,
    CHANNEL_COUNTS,
    DATA_ROOT_ENV,
    DATASET_CLASSES,
    DATASET_NAMES,
    IMAGE_SIZES,
    DatasetError,
    DataSpec,
    dataset_classes,
    default_data_root,
    default_shape,
)
from .split import Splits, SubsetDataset, load_splits
from .torchvision_sets import MNIST_CLASSES, CelebADataset

__all__ = [
    "BINARIZE_MODES",
    "CHANNEL_COUNTS",
    "DATASET_CLASSES",
    "DATASET_NAMES",
    "DATA_ROOT_ENV",
    "IMAGE_SIZES",
    "MNIST_CLASSES",
    "SHAPE_NAMES",
    "CelebADataset",
    "DataSpec",
    "DatasetError",
    "FacesDataset",
    "FolderDataset",
    "ImageDataset",
    "ProceduralDataset",
    "ShapesDataset",
    "Splits",
    "SubsetDataset",
    "TensorImageDataset",
    "dataset_classes",
    "default_data_root",
    "default_shape",
    "load_dataset",
    "load_splits",
]
