"""The small base classes every model shares: a config-carrying module, and the generative model."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
from torch import nn

from ..data.spec import CHANNEL_COUNTS, IMAGE_SIZES


class ConfigModel(nn.Module):
    """A model with a frozen config kept on it: all a checkpoint needs to rebuild the module.

    `kind` names the model family (the checkpoint registry's key). Images handed in and out of the
    public API are float tensors in [0, 1], shape (B, C, H, W).

    What a model can do is said by its capabilities, not by its kind: code that drives models (the
    CLI, the explorer's tabs) asks `model.has_encoder`, never `kind == "vae"`, so a model from
    elsewhere (ONNX, a plugin) that sets the same attributes and methods slots in unchanged.
    """

    kind: ClassVar[str]
    config_class: ClassVar[type]

    # --- capabilities (class attributes; all False here) -------------------------------------
    can_sample: ClassVar[bool] = False  # sample(n, generator=, **sample_options) draws images
    has_latent: ClassVar[bool] = False  # decode(z) maps (B, latent_dim) latents to images; z ~ N(0, I)
    has_encoder: ClassVar[bool] = False  # encode(images) -> (mean, log-variance) of q(z|x), each (B, D)
    can_project: ClassVar[bool] = False  # decode is differentiable in z, so an image can be projected to a z
    is_autoregressive: ClassVar[bool] = False  # sample_steps() yields every value drawn (the Replay tab)
    sample_options: ClassVar[tuple[str, ...]] = ()  # keyword arguments sample() takes ("temperature", ...)
    grid_samples: ClassVar[int] = 64  # images in a training run's sample grid
    # state_dict prefixes of the weights decode(z) depends on: what a training timeline keeps (engines.timeline)
    decoder_prefixes: ClassVar[tuple[str, ...]] = ()
    # Its config is derived from the training data's labels (the classifier's heads), not from settings.
    config_from_data: ClassVar[bool] = False

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.config.channels, self.config.image_size, self.config.image_size)

    @property
    def latent_dim(self) -> int:
        """The size of z for a model with a latent (has_latent), else 0."""
        return int(self.config.latent_dim) if self.has_latent else 0

    @property
    def num_classes(self) -> int:
        """K > 0 for a class-conditional model: decode(z, classes=y) and sample(n, classes=y) draw the
        class blend y (B, K) (engines.models.conditional); 0 for every unconditional model."""
        return int(getattr(self.config, "num_classes", 0))

    @property
    def class_names(self) -> tuple[str, ...]:
        """The name of each of the num_classes classes (empty without classes)."""
        return tuple(getattr(self.config, "class_names", ())) if self.num_classes else ()

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @classmethod
    def data_defaults(cls, channels: int) -> dict[str, Any]:
        """Config values a new run gets from its data (beyond the config class's own defaults)."""
        return {}


class GenerativeModel(ConfigModel):
    """A generative image model: a ConfigModel that can draw samples."""

    can_sample = True

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
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be {_one_of(IMAGE_SIZES)}, not {image_size}")
    if channels not in CHANNEL_COUNTS:
        raise ValueError(f"channels must be {_one_of(CHANNEL_COUNTS)}, not {channels}")


def _one_of(values: tuple[int, ...]) -> str:
    """(28, 32, 64) -> "28, 32 or 64"."""
    return ", ".join(map(str, values[:-1])) + f" or {values[-1]}"
