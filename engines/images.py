"""Turning images (tensors in [0, 1], or float numpy arrays) into uint8 pixels, grids and files."""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image


def to_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> one (H', W', C) uint8 grid, C = 1 or 3."""
    # Imported here, not at the top: torchvision pulls in torch._dynamo (seconds), and this module is
    # on the GUI's start-up path (explorer.main_window imports save_png from it).
    from torchvision.utils import make_grid

    images = images.detach().float().cpu().clamp(0, 1)
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    grid = make_grid(images, nrow=nrow, padding=padding, pad_value=0.5)  # always 3 channels
    if images.shape[1] == 1:
        grid = grid[:1]
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def unit_to_uint8(images: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] (any shape) -> uint8, rounded as to_uint8 and to_grid do (x * 255 + 0.5).

    Never raises for odd values: NaN becomes 0 (black), +inf 255, -inf 0, and everything else is
    clamped to [0, 1] first, so a broken model's output is shown rather than crashing a paint."""
    array = np.asarray(images)
    if array.dtype == np.uint8:
        return array
    array = np.nan_to_num(array.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """One (C, H, W) image in [0, 1] -> (H, W, C) uint8."""
    return (image.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def save_png(array: np.ndarray, path: str | os.PathLike, scale: int = 1) -> None:
    """Save an (H, W, C) or (H, W) uint8 array as PNG, optionally enlarged with crisp pixels."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    image.save(path)
