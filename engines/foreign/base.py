"""The small protocol every model the engines and the explorer drive has, for models from elsewhere.

Our own models (engines.models) state their capabilities as class attributes and expose
`latent_dim`, `image_shape`, `decode(z)`, `encode(x)`, `sample(n)`, `device` and `.to(device)`.
A `ForeignModel` is the same surface over something that is not one of our modules: an ONNX graph
(engines.foreign.onnx_model) or a plugin's object (engines.foreign.plugins). Code that drives
models asks these attributes, never the class, so a foreign model works in every tab and command
that its capabilities allow.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class ForeignModel(nn.Module):
    """A model from outside: z (B, latent_dim) -> images (B, C, H, W) in [0, 1], optionally images -> z.

    Subclasses set `latent_dim`, `image_shape`, `kind` and the capabilities in __init__, and implement
    `decode` (and `encode` when `has_encoder`).
    """

    can_sample: ClassVar[bool] = True
    has_latent: ClassVar[bool] = True
    is_autoregressive: ClassVar[bool] = False
    sample_options: ClassVar[tuple[str, ...]] = ("temperature",)
    grid_samples: ClassVar[int] = 64
    config_from_data: ClassVar[bool] = False
    num_classes: ClassVar[int] = 0  # a foreign model is unconditional: decode(z) takes no class
    class_names: ClassVar[tuple[str, ...]] = ()
    source: ClassVar[str] = "foreign"  # "onnx" or "plugin": what the Model dock says the model is

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], kind: str = "gan") -> None:
        super().__init__()
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.kind = kind
        self.has_encoder = False
        self.can_project = False
        self.encoder_variance = False  # encode() gives a log-variance, not zeros standing in for one
        self._device = torch.device("cpu")

    # --- device ---------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, *args: Any, **kwargs: Any) -> ForeignModel:
        """Move to a device (a dtype is ignored: a foreign model keeps the precision it was made in)."""
        target = kwargs.get("device", next((a for a in args if isinstance(a, (str, torch.device))), None))
        if target is not None:
            target = torch.device(target)
            super().to(target)
            self._device = target
            self.moved_to(target)
        return self

    def moved_to(self, device: torch.device) -> None:
        """Called after .to(device): rebuild whatever runs on the device (a session, a torch graph)."""

    # --- the protocol --------------------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError(f"this {self.kind} has no encoder")

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images in [0, 1] from z ~ N(0, temperature^2 I)."""
        z = torch.randn((n, self.latent_dim), generator=generator) * temperature
        return torch.cat([self.decode(z[i : i + 256].to(self.device)) for i in range(0, n, 256)])

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> list[tuple[str, str]]:
        """(label, text) rows the Model dock shows about where the model came from and how it runs."""
        return []

    def nonfinite(self) -> list[str]:
        """Names of weight tensors holding NaN or inf."""
        return [
            name for name, p in self.named_parameters() if p.is_floating_point() and not bool(torch.isfinite(p).all())
        ]
