"""Models from elsewhere: ONNX graphs (the safe path: data, never code) and trusted plugins.

`open_foreign(path)` is what `engines.checkpoint.load_checkpoint` hands every file that is not a
safetensors checkpoint: a suffix an installed plugin claims goes to that plugin; PyTorch pickles and
archives are refused unread (with the way to export them); a file that parses as an ONNX graph, or
any .onnx file, is validated and opened by engines.foreign.onnx_model. onnx and onnxruntime are
imported only here, when such a file is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..checkpoint import Checkpoint, CheckpointError, _foreign_reason, is_pickle_like
from .base import ForeignModel

ONNX_SUFFIX = ".onnx"


def open_foreign(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Open a file that is not a safetensors checkpoint (see the module docstring); CheckpointError otherwise."""
    from .plugins import load_plugin, plugin_for

    path = Path(path)
    plugin = plugin_for(path)
    if plugin is not None:
        return load_plugin(plugin, path, device)
    if is_pickle_like(path):
        raise CheckpointError(_foreign_reason(path))
    from .onnx_file import looks_like_onnx
    from .onnx_model import load_onnx

    if path.suffix.lower() == ONNX_SUFFIX or looks_like_onnx(path):
        return load_onnx(path, device)
    raise CheckpointError(_foreign_reason(path))


def onnx_for_sidecar(path: str | os.PathLike) -> Path | None:
    """The ONNX decoder a sidecar .json belongs to (same stem), or None."""
    path = Path(path)
    candidate = path.with_suffix(ONNX_SUFFIX)
    return candidate if path.suffix.lower() == ".json" and candidate.is_file() else None


__all__ = ["ForeignModel", "ONNX_SUFFIX", "onnx_for_sidecar", "open_foreign"]
