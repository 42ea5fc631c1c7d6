"""Our VAEs and GANs as ONNX: the decoder (and the VAE's encoder) plus a sidecar, for other tools.

`export_onnx(checkpoint, folder)` writes
    <stem>.onnx          z (N, D) -> images (N, C, H, W) in [0, 1]  (a free batch dimension)
    <stem>-encoder.onnx  images (N, C, H, W) in [0, 1] -> mean (N, D), log-variance (N, D)  (VAE)
    <stem>.json          the sidecar: name, kind, encoder, output range, dataset, label names, latent size
with torch's own exporter (torch.onnx.export), each file written atomically, and then re-opens the
export with the app's own loader and compares its images (and encodings) with the checkpoint's
model on the same latents: an export that differs by more than TOLERANCE is refused, not written.
A PixelCNN has no z -> image map to export (its sampler is a loop over pixels), so it is refused.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import Checkpoint, CheckpointError, write_atomically
from .base import ForeignModel
from .onnx_model import SIDECAR_FORMAT, load_onnx

TOLERANCE = 1e-4
CHECK_LATENTS = 64


class ExportError(CheckpointError):
    """The model cannot be exported (a PixelCNN, a foreign model), or the export did not reproduce it."""


@dataclass(frozen=True)
class Exported:
    decoder: Path
    encoder: Path | None
    sidecar: Path
    max_diff: float  # of the images, re-opened export vs checkpoint, on CHECK_LATENTS latents
    encoder_max_diff: float | None


class _Decoder(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


class _Encoder(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(images)


def export_targets(ckpt: Checkpoint, folder: Path, stem: str) -> list[Path]:
    """The files export_onnx writes for `ckpt` in `folder` (to check beforehand)."""
    paths = [folder / f"{stem}.onnx", folder / f"{stem}.json"]
    if ckpt.model.has_encoder:
        paths.insert(1, folder / f"{stem}-encoder.onnx")
    return paths


def check_exportable(ckpt: Checkpoint) -> None:
    model = ckpt.model
    name = ckpt.path.name if ckpt.path else "the model"
    if isinstance(model, ForeignModel):
        raise ExportError(f"{name} is already an {model.source} model; export applies to Latent Explorer checkpoints")
    if not model.has_latent:
        what = "a Gated PixelCNN" if model.is_autoregressive else f"a {model.kind}"
        raise ExportError(
            f"{name} is {what}: it has no z -> image decoder to export (a PixelCNN samples pixel by pixel "
            "in a loop that ONNX export does not capture); only VAEs and GANs export to ONNX"
        )
    if model.num_classes:
        raise ExportError(
            f"{name} is class-conditional: its decoder takes a class blend beside z, and an exported model "
            "is z -> image only"
        )


_EXPORTING = threading.Lock()


def _graph(module: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str]):
    """The ONNX ModelProto of `module` from torch's exporter, with a free batch dimension.

    It traces a copy: torch.export swaps the module's parameters for fake tensors while it traces, so
    another thread using the same model meanwhile (an encode job beside a map's export) would compute
    on fake tensors and fail.
    """
    module = copy.deepcopy(module)
    quiet = io.StringIO()
    # One export at a time in the process: torch.export keeps its tracing state (each node's module stack)
    # in globals, so two at once (a map's decoder pick beside File > Export) mixed one model's modules
    # into the other's graph and both failed; redirect_stdout swaps the process's sys.stdout too.
    with _EXPORTING, torch.no_grad(), contextlib.redirect_stdout(quiet):
        program = torch.onnx.export(
            module,
            (example,),
            None,
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=({0: "batch"},),
            verbose=False,
        )
    return program.model_proto


def decoder_graph(model: nn.Module) -> bytes:
    """The serialized ONNX graph of model.decode (float32, CPU), batch dimension free."""
    return _graph(_Decoder(model).eval(), torch.zeros(2, model.latent_dim), ["z"], ["images"]).SerializeToString()


def export_onnx(ckpt: Checkpoint, folder: str | os.PathLike, stem: str | None = None) -> Exported:
    """Write the decoder (+ encoder) and sidecar of a VAE or GAN checkpoint into `folder` (see the module
    docstring); returns the files and the measured differences. Raises ExportError."""
    check_exportable(ckpt)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = stem or (ckpt.path.stem if ckpt.path else ckpt.kind)
    model = ckpt.model.float().eval().to("cpu")
    dim = model.latent_dim
    c, h, w = model.image_shape
    decoder_path, sidecar_path = folder / f"{stem}.onnx", folder / f"{stem}.json"
    encoder_path = folder / f"{stem}-encoder.onnx" if model.has_encoder else None

    with tempfile.TemporaryDirectory(prefix=".export-", dir=folder) as scratch:
        staged = Path(scratch)
        (staged / decoder_path.name).write_bytes(decoder_graph(model))
        if encoder_path is not None:
            (staged / encoder_path.name).write_bytes(
                _graph(
                    _Encoder(model).eval(), torch.zeros(2, c, h, w), ["images"], ["mean", "logvar"]
                ).SerializeToString()
            )
        sidecar = {
            "format": SIDECAR_FORMAT,
            "name": stem,
            "kind": model.kind,
            "output_range": [0, 1],
            "latent_dim": dim,
            "dataset": ckpt.dataset or None,
            "label_names": list(ckpt.label_names),
            "source": f"exported by latent-explorer from {ckpt.path.name if ckpt.path else stem}",
        }
        if encoder_path is not None:
            sidecar["encoder"] = encoder_path.name
        (staged / sidecar_path.name).write_text(
            json.dumps({k: v for k, v in sidecar.items() if v is not None}, indent=1)
        )
        diff, encoder_diff = _verify(model, staged / decoder_path.name)
        for path in (decoder_path, encoder_path, sidecar_path):
            if path is not None:
                write_atomically(path, (staged / path.name).read_bytes())
    return Exported(decoder_path, encoder_path, sidecar_path, diff, encoder_diff)


@torch.no_grad()
def _verify(model: nn.Module, decoder: Path) -> tuple[float, float | None]:
    """Re-open the staged export with the app's loader; the largest pixel (and latent) difference."""
    reopened = load_onnx(decoder).model
    z = torch.randn((CHECK_LATENTS, model.latent_dim), generator=torch.Generator().manual_seed(0))
    diff = float((reopened.decode(z) - model.decode(z)).abs().max())
    encoder_diff = None
    if model.has_encoder:
        images = model.decode(z[:16])
        mu, logvar = model.encode(images)
        mu2, logvar2 = reopened.encode(images)
        encoder_diff = float(max((mu - mu2).abs().max(), (logvar - logvar2).abs().max()))
    worst = max(diff, encoder_diff or 0.0)
    if not np.isfinite(worst) or worst > TOLERANCE:
        raise ExportError(
            f"the exported graph differs from the checkpoint by {worst:.2g} (more than {TOLERANCE:g}); "
            "nothing was written"
        )
    return diff, encoder_diff
