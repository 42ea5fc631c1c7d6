"""Dataset description shared by training, checkpoints and the CLI (no torch needed here)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any

DATASET_NAMES: tuple[str, ...] = ("mnist", "fashion-mnist", "cifar10", "celeba", "shapes", "faces", "folder")
IMAGE_SIZES: tuple[int, ...] = (28, 32, 64)
CHANNEL_COUNTS: tuple[int, ...] = (1, 3)
BINARIZE_MODES: tuple[str, ...] = ("none", "threshold", "stochastic")

# Natural (image_size, channels) of each dataset, i.e. the shape that needs no conversion.
_DEFAULT_SHAPES: dict[str, tuple[int, int]] = {
    "mnist": (28, 1),
    "fashion-mnist": (28, 1),
    "cifar10": (32, 3),
    "celeba": (64, 3),
    "shapes": (32, 3),
    "faces": (64, 3),
    "folder": (64, 3),
}


# Where the torchvision datasets are looked for when no root is given (train, eval, a resumed run
# that was started without --data-root, the Train tab): $LATENT_EXPLORER_DATA, else ./data.
DATA_ROOT_ENV = "LATENT_EXPLORER_DATA"
FALLBACK_DATA_ROOT = "./data"


def default_data_root() -> str:
    """The data root used when none is given: $LATENT_EXPLORER_DATA if set (and not empty), else ./data."""
    return os.environ.get(DATA_ROOT_ENV) or FALLBACK_DATA_ROOT


class DatasetError(Exception):
    """A dataset cannot be loaded; the message is meant to be shown to the user as is."""


def _check_name(name: str) -> None:
    if name not in DATASET_NAMES:
        raise DatasetError(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")


# The classes of the datasets labelled by one class per image (one-hot labels of kind "class"), in label
# order, as their loaders name them: what a class-conditional model is trained on, known before loading.
DATASET_CLASSES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}


def dataset_classes(name: str) -> tuple[str, ...]:
    """The classes of dataset `name` (empty for one not labelled by class: a conditional model cannot train on it)."""
    _check_name(name)
    return DATASET_CLASSES.get(name, ())


def default_shape(name: str) -> tuple[int, int]:
    """Natural (image_size, channels) of dataset `name`."""
    _check_name(name)
    return _DEFAULT_SHAPES[name]


@dataclass(frozen=True)
class DataSpec:
    """What to load and how to present it; JSON-able so checkpoints can record it."""

    name: str
    # torchvision root dir (None: default_data_root()), or the image folder for "folder"; ignored by procedural sets
    root: str | None = None
    image_size: int = 28  # output images are image_size x image_size
    channels: int = 1  # 1 (ITU-R 601 luma) or 3 (gray is replicated)
    binarize: str = "none"  # "none" | "threshold" (x > 0.5) | "stochastic" (fixed Bernoulli sample per image)
    download: bool = False  # passed through to torchvision

    def __post_init__(self) -> None:
        _check_name(self.name)
        # bool is an int subclass; reject it so a JSON mix-up does not pass silently.
        if isinstance(self.image_size, bool) or self.image_size not in IMAGE_SIZES:
            raise DatasetError(f"image_size must be one of {IMAGE_SIZES}, got {self.image_size!r}")
        if isinstance(self.channels, bool) or self.channels not in CHANNEL_COUNTS:
            raise DatasetError(f"channels must be 1 or 3, got {self.channels!r}")
        if self.binarize not in BINARIZE_MODES:
            raise DatasetError(f"binarize must be one of {BINARIZE_MODES}, got {self.binarize!r}")
        if self.root is not None and not isinstance(self.root, str):
            # Accept os.PathLike for convenience but keep the stored value JSON-able.
            object.__setattr__(self, "root", str(self.root))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        """Inverse of to_dict; unknown keys (from newer versions) are ignored."""
        if "name" not in d:
            raise DatasetError("Dataset description has no 'name'")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
