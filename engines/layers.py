"""What a generator's layers compute for one latent: forward hooks on its modules (Qt-free).

`generator_layers(model, z)` runs decode(z) once with a forward hook on every module and lists the
ones whose output is an image-shaped (B, C, H, W) tensor, in the order they ran: a VAE's decoder
convolutions, a DCGAN's transposed convolutions, batchnorms and ReLUs, a style generator's modulated
convolutions and toRGB layers (the discriminator, an encoder, never run by decode, are not listed).
`layer_activation(model, z, name)` returns that module's output for z, and `channel_grid` makes an
image of it: every channel normalised to [0, 1] on its own and tiled, or one channel.
A model without modules to hook (ONNX) has no layers to show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    name: str  # the module's dotted name (model.named_modules)
    type: str  # its class name
    shape: tuple[int, int, int]  # (C, H, W) of its output

    @property
    def label(self) -> str:
        c, h, w = self.shape
        return f"{self.name} ({self.type}, {c}x{h}x{w})"


def _modules(model) -> dict[str, nn.Module]:
    if not isinstance(model, nn.Module):
        return {}
    return {name: m for name, m in model.named_modules() if name and not isinstance(m, (nn.Sequential, nn.ModuleList))}


@torch.no_grad()
def generator_layers(model, z: np.ndarray | torch.Tensor) -> list[LayerInfo]:
    """The modules decode(z) runs that output a (1, C, H, W) tensor, in running order (a module run
    twice is listed once, at its first run)."""
    seen: dict[str, LayerInfo] = {}
    handles = []

    def hook(name: str):
        def record(module, inputs, output) -> None:
            if isinstance(output, torch.Tensor) and output.ndim == 4 and name not in seen:
                seen[name] = LayerInfo(name, type(module).__name__, tuple(int(v) for v in output.shape[1:]))

        return record

    for name, module in _modules(model).items():
        handles.append(module.register_forward_hook(hook(name)))
    try:
        model.decode(_latent(model, z))
    finally:
        for handle in handles:
            handle.remove()
    return list(seen.values())


@torch.no_grad()
def layer_activation(model, z: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """The output (C, H, W) float32 of module `name` when decoding z (its first run)."""
    module = _modules(model).get(name)
    if module is None:
        raise KeyError(f"the model has no layer {name!r}")
    captured: list[torch.Tensor] = []

    def record(module, inputs, output) -> None:
        if not captured and isinstance(output, torch.Tensor):
            captured.append(output.detach())

    handle = module.register_forward_hook(record)
    try:
        model.decode(_latent(model, z))
    finally:
        handle.remove()
    if not captured or captured[0].ndim != 4:
        raise ValueError(f"layer {name!r} did not produce an image-shaped output")
    return captured[0][0].float().cpu().numpy()


def _latent(model, z: np.ndarray | torch.Tensor) -> torch.Tensor:
    z = torch.as_tensor(np.asarray(z, np.float32)).reshape(1, -1)
    return z.to(model.device)


def normalise_channels(activation: np.ndarray) -> np.ndarray:
    """Each channel of (C, H, W) scaled to [0, 1] by its own min and max (a constant channel is 0.5)."""
    a = np.asarray(activation, np.float64)
    low = a.min(axis=(1, 2), keepdims=True)
    span = a.max(axis=(1, 2), keepdims=True) - low
    out = np.where(span > 0, (a - low) / np.where(span > 0, span, 1.0), 0.5)
    return out.astype(np.float32)


def channel_grid(activation: np.ndarray, channel: int | None = None, gap: int = 1) -> np.ndarray:
    """An (H', W', 1) image in [0, 1]: channel `channel` normalised, or every channel normalised on its own
    and tiled in a near-square grid with `gap` pixels of 0.2 grey between them."""
    norm = normalise_channels(activation)
    if channel is not None:
        return norm[channel][:, :, None]
    c, h, w = norm.shape
    cols = math.ceil(math.sqrt(c))
    rows = math.ceil(c / cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), 0.2, np.float32)
    for k in range(c):
        r, q = divmod(k, cols)
        out[r * (h + gap) : r * (h + gap) + h, q * (w + gap) : q * (w + gap) + w] = norm[k]
    return out[:, :, None]
