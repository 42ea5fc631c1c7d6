"""A view of a model: a module that changes what some methods do (a fixed class blend, another latent
space) and is the model itself for everything else, so the explorer can drive it as the model."""

from __future__ import annotations

from typing import Any

import torch


class ModelView(torch.nn.Module):
    """Wraps `model` as `self.base`; any attribute the view does not define (kind, config, image_shape,
    latent_weight, ...) is the model's own."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.base = model

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("base"), name)

    @property
    def device(self) -> torch.device:
        return self.base.device
