"""How much memory a model needs, estimated before anything real is allocated.

A config from a checkpoint or a form can ask for more memory than the machine has (a PixelCNN at
64x64 reached 20.5 GB on a 23 GB machine), so sizes are estimated first and refused with one line.
The estimate builds the model on PyTorch's "meta" device (shapes only, no storage) and runs one
forward pass of the training loss there, adding up the bytes of every intermediate tensor.

Calibrated against the peak resident memory of two real training steps on the CPU (torch 2.15,
float32, Adam): weights + gradients + Adam state + allocator slack come to about 10x the weight
bytes, and the activations kept for backward to about 0.6x the forward total (many forward outputs
are views or freed early). Measured/estimated: VAE 28px b128 85/86 MB, VAE 64px 278/267 MB,
DCGAN 64px 521/617 MB, PixelCNN 28px b128 3.21/3.60 GB: within -5%..+20%, erring high;
the PixelCNN at 64x64, batch 128, that reached 20.5 GB is estimated at 20.2 GB.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .models import build_model

WEIGHT_FACTOR = 10  # weights, gradients, two Adam moments, allocator slack
ACTIVATION_FACTOR = 0.6
RUNTIME_BYTES = 800 * 2**20  # the Python process with torch loaded, before any model
MODEL_LIMIT_BYTES = 4 * 2**30  # no checkpoint this app writes comes near this: a file asking for more is lying


class MemoryEstimateError(ValueError):
    """A model or a run would need more memory than is available; the message is one line."""


class _CountBytes(TorchDispatchMode):
    """Adds up the bytes of every tensor an operation returns."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(tensor, torch.Tensor):
                self.total += tensor.numel() * tensor.element_size()
        return out


def _meta_model(kind: str, config: dict[str, Any]) -> torch.nn.Module:
    """The model with shapes only. Raises ValueError/TypeError for a config out of bounds."""
    with torch.device("meta"):
        return build_model(kind, config)


@lru_cache(maxsize=128)
def _shapes(kind: str, config_json: str) -> tuple[tuple[tuple[str, tuple[int, ...]], ...], int]:
    model = _meta_model(kind, json.loads(config_json))
    shapes = tuple((name, tuple(t.shape)) for name, t in model.state_dict().items())
    return shapes, sum(t.numel() * 4 for t in model.state_dict().values())


def state_shapes(kind: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in the model's state_dict, without allocating it (cached per config)."""
    return dict(_shapes(kind, json.dumps(config, sort_keys=True))[0])


def model_bytes(kind: str, config: dict[str, Any]) -> int:
    """Bytes of the model's float32 weights and buffers."""
    return _shapes(kind, json.dumps(config, sort_keys=True))[1]


def training_bytes(kind: str, config: dict[str, Any], batch_size: int) -> int:
    """Estimated peak memory of a training run (weights, optimizer, activations, the runtime)."""
    model = _meta_model(kind, config)
    weights = sum(p.numel() * 4 for p in model.parameters())
    with torch.device("meta"):
        images = torch.rand(batch_size, *model.image_shape)
    counter = _CountBytes()
    from .training.recipes import RECIPES  # here: engines.training imports checkpoint, which imports this module

    with counter:
        RECIPES[kind].forward_loss(model, images)
    return int(WEIGHT_FACTOR * weights + ACTIVATION_FACTOR * counter.total + RUNTIME_BYTES)


def available_bytes(device: str | torch.device = "cpu") -> int:
    """Memory free for a new job: the GPU's free memory for CUDA, else the system's available memory."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil is a dependency; this keeps engines importable without it
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # unreachable


def check_training_memory(
    kind: str, config: dict[str, Any], batch_size: int, device: str | torch.device = "cpu"
) -> int:
    """The estimate of `training_bytes`; raises MemoryEstimateError when it exceeds what is available."""
    need, have = training_bytes(kind, config, batch_size), available_bytes(device)
    if need > have:
        raise MemoryEstimateError(
            f"this run needs about {format_bytes(need)} of memory but {format_bytes(have)} is available; "
            "use a smaller batch size, image size or model"
        )
    return need


def check_model_size(kind: str, config: dict[str, Any]) -> int:
    """Bytes of the model's weights; raises MemoryEstimateError above MODEL_LIMIT_BYTES."""
    need = model_bytes(kind, config)
    if need > MODEL_LIMIT_BYTES:
        raise MemoryEstimateError(
            f"the model would need {format_bytes(need)} of weights, more than {format_bytes(MODEL_LIMIT_BYTES)}"
        )
    return need
