"""Turning image tensors into grids and files."""

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
