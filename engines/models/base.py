"""The small base classes every model shares: a config-carrying module, and the generative model."""

from __future__ import annotations

import dataclasses
import math
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


_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string", tuple: "a list"}


def check_fields(config: Any, bounds: dict[str, tuple[float, float]]) -> None:
    """Check a config dataclass's field types (taken from each field's default) and numeric bounds.

    Configs come from checkpoint metadata and user input, so a size is never trusted: a lying file
    must give a one-line ValueError before any layer is built (a width of 1e9 would try to allocate
    terabytes; a bool where an int belongs, or a NaN, would build something meaningless).
    """
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), f.default
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if ok:
                object.__setattr__(config, f.name, float(value))
        elif isinstance(default, str):
            ok = isinstance(value, str)
        elif isinstance(default, tuple):
            ok = isinstance(value, (list, tuple))
        else:
            ok = True
        if not ok:
            raise ValueError(f"{f.name} must be {_TYPE_WORDS[type(default)]}, not {value!r:.40}")
        if f.name in bounds:
            low, high = bounds[f.name]
            if not low <= value <= high:
                raise ValueError(f"{f.name} must be between {low:g} and {high:g}, not {value!r:.40}")


def check_image_config(image_size: int, channels: int) -> None:
    if image_size not in (28, 32, 64):
        raise ValueError(f"image_size must be 28, 32 or 64, not {image_size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
