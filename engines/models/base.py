"""The small base classes every model shares: a config-carrying module, and the generative model."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn


class ConfigModel(nn.Module):
    """A model with a frozen config kept on it: all a checkpoint needs to rebuild the module.

    `kind` names the model family (the checkpoint registry's key). Images handed in and out of the
    public API are float tensors in [0, 1], shape (B, C, H, W).
    """

    kind: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config.channels, self.config.image_size, self.config.image_size)

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)


class GenerativeModel(ConfigModel):
    """A generative image model: a ConfigModel that can draw samples."""

    def sample(self, n: int, generator: torch.Generator | None = None, **kwargs: Any) -> torch.Tensor:
        """n images in [0, 1], shape (n, C, H, W)."""
        raise NotImplementedError


def conv_plan(image_size: int) -> tuple[int, int]:
    """How many stride-2 stages take `image_size` down to a small base grid, and that grid's size.

    28 -> 14 -> 7 (2 stages, base 7); 32 -> 4 (3 stages); 64 -> 4 (4 stages).
    """
    stages, size = 0, image_size
    while size % 2 == 0 and size > 4:
        size //= 2
        stages += 1
    return stages, size


def check_image_config(image_size: int, channels: int) -> None:
    if image_size not in (28, 32, 64):
        raise ValueError(f"image_size must be 28, 32 or 64, not {image_size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
