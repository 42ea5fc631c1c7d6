"""Common dataset interface and the uint8 helpers every dataset goes through.

Every dataset produces uint8 pixels at the final size; `get_batch` is the single place
that turns them into float32 in [0, 1], so `__getitem__` (a batch of one) and `get_batch`
give bit-identical values by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .spec import DataSpec

Indices = torch.Tensor | np.ndarray | Sequence[int]

_CHUNK = 2048  # images per chunk in whole-set conversions, bounds temporary float memory


class ImageDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Base class of every dataset returned by `load_dataset`.

    Subclasses implement `__len__`, `_uint8_batch` and `_label_batch`.
    """

    spec: DataSpec
    label_names: list[str]
    attribute_kinds: dict[str, str]
    skipped: dict[str, int]
    skipped_files: list[tuple[str, str]]
    is_sample: bool = False  # True: a checkpoint's carried sample standing in for the split (data.sample)
    missing: str | None = None  # then: why the split itself could not be loaded

    def __init__(self, spec: DataSpec, label_names: list[str], attribute_kinds: dict[str, str]) -> None:
        self.spec = spec
        self.label_names = list(label_names)
        self.attribute_kinds = dict(attribute_kinds)
        self.skipped = {}
        self.skipped_files = []

    def __len__(self) -> int:
        raise NotImplementedError

    def _uint8_batch(self, idx: np.ndarray) -> torch.Tensor:
        """uint8 (B, 1 or spec.channels, S, S) for valid non-negative indices."""
        raise NotImplementedError

    def _label_batch(self, idx: np.ndarray) -> torch.Tensor:
        """float32 (B, len(label_names))."""
        raise NotImplementedError

    def _index_array(self, indices: Indices) -> np.ndarray:
        if isinstance(indices, torch.Tensor):
            arr = indices.detach().cpu().numpy()
        else:
            arr = np.asarray(indices)
        arr = arr.reshape(-1)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"dataset indices must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        n = len(self)
        if arr.min() < -n or arr.max() >= n:
            raise IndexError(f"index out of range for dataset of length {n}")
        return np.where(arr < 0, arr + n, arr)

    def get_batch(self, indices: Indices) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (B,C,S,S) float32 in [0,1], labels (B,L) float32) for the given indices."""
        idx = self._index_array(indices)
        pixels = self._uint8_batch(idx)
        if pixels.shape[1] != self.spec.channels:  # stored gray, asked for RGB
            pixels = pixels.expand(-1, self.spec.channels, -1, -1)
        images = pixels.to(torch.float32).div_(255.0).contiguous()
        return images, self._label_batch(idx)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(index, torch.Tensor):
            index = int(index.item())
        images, labels = self.get_batch([int(index)])
        return images[0], labels[0]

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"{type(self).__name__}(name={s.name!r}, n={len(self)}, size={s.image_size}, "
            f"channels={s.channels}, binarize={s.binarize!r}, labels={len(self.label_names)})"
        )


class TensorImageDataset(ImageDataset):
    """Dataset whose pixels are all in memory as uint8 (N, c, S, S), c = 1 or spec.channels."""

    def __init__(
        self,
        spec: DataSpec,
        images: torch.Tensor,
        labels: torch.Tensor,
        label_names: list[str],
        attribute_kinds: dict[str, str],
    ) -> None:
        super().__init__(spec, label_names, attribute_kinds)
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a uint8 tensor (N, C, H, W)")
        if labels.shape != (images.shape[0], len(label_names)):
            raise ValueError(f"labels shape {tuple(labels.shape)} does not match images/label_names")
        self._images = images
        self._labels = labels.to(torch.float32)

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def _uint8_batch(self, idx: np.ndarray) -> torch.Tensor:
        return self._images[torch.from_numpy(idx)]

    def _label_batch(self, idx: np.ndarray) -> torch.Tensor:
        return self._labels[torch.from_numpy(idx)]


# --------------------------------------------------------------------------- uint8 helpers


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) to (N, C, size, size); bilinear with antialiasing, rounded back to uint8.

    Done once per dataset at load time, so batches are a plain index.
    """
    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    out = torch.empty((n, c, size, size), dtype=torch.uint8)
    for s in range(0, n, _CHUNK):
        x = images[s : s + _CHUNK].to(torch.float32)
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[s : s + _CHUNK] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def rgb_to_gray_uint8(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> (N, 1, H, W) with ITU-R 601 luma (same weights as Pillow's convert("L"))."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32).view(1, 3, 1, 1)
    out = torch.empty((images.shape[0], 1, *images.shape[2:]), dtype=torch.uint8)
    for s in range(0, images.shape[0], _CHUNK):
        x = images[s : s + _CHUNK].to(torch.float32)
        out[s : s + _CHUNK] = (x * weights).sum(1, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    return out


def match_channels_uint8(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Reduce RGB to gray when asked for 1 channel; gray is kept and expanded lazily in get_batch."""
    if images.shape[1] == 3 and channels == 1:
        return rgb_to_gray_uint8(images)
    return images


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _uniform_noise(indices: np.ndarray, per_item: int, salt: int) -> np.ndarray:
    """Counter-based uniforms in [0, 1): element j of item i depends only on (salt, i, j).

    A splitmix64 hash instead of an RNG stream, so the value for an image never depends on
    which other images are in the batch or on how many images the set has.
    """
    z = indices.astype(np.uint64)[:, None] * np.uint64(per_item) + np.arange(per_item, dtype=np.uint64)[None, :]
    z ^= np.uint64(((salt + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    z += _GOLDEN  # uint64 array arithmetic wraps silently, which is what the hash wants
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def binarize_uint8(pixels: np.ndarray, indices: np.ndarray, mode: str, salt: int = 0) -> np.ndarray:
    """Binarize uint8 pixels (B, ...) of the images `indices` to {0, 255}.

    "threshold": x > 0.5.  "stochastic": Bernoulli(x) drawn once per (image index, pixel) from a
    fixed hash, i.e. a fixed, reproducible binarized dataset like the standard binarized MNIST.
    """
    if mode == "none":
        return pixels
    if mode == "threshold":
        return (pixels > 127).astype(np.uint8) * np.uint8(255)  # v/255 > 0.5  <=>  v >= 128
    if mode != "stochastic":
        raise ValueError(f"unknown binarize mode {mode!r}")
    out = np.empty_like(pixels)
    per_item = int(np.prod(pixels.shape[1:]))
    for s in range(0, pixels.shape[0], _CHUNK):
        flat = pixels[s : s + _CHUNK].reshape(-1, per_item)
        u = _uniform_noise(indices[s : s + _CHUNK], per_item, salt)
        hit = (u * 255.0 < flat).astype(np.uint8) * np.uint8(255)  # P(hit) = v / 255
        out[s : s + _CHUNK] = hit.reshape(flat.shape[0], *pixels.shape[1:])
    return out


def binarize_tensor_uint8(images: torch.Tensor, mode: str, salt: int = 0) -> torch.Tensor:
    """Whole-set binarization for in-memory sets (image i has index i)."""
    if mode == "none":
        return images
    arr = binarize_uint8(images.numpy(), np.arange(images.shape[0], dtype=np.int64), mode, salt)
    return torch.from_numpy(arr)
