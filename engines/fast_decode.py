"""The maps' batched decode, run by whichever runtime is faster for this model on this machine.

Large batched decodes (a 16x16 or 32x32 map is 256 or 1024 latents) are dominated by transposed
convolutions, and PyTorch eager is not the fastest runtime for them on every CPU: onnxruntime ran the
bundled decoders 1.4-6x faster here (dcgan-faces 178 vs 245 ms, vae-faces 58 vs 300 ms for 256 latents,
measured under load). bfloat16 autocast was not faster on this CPU (its convolutions run in float32
anyway), so it is not a candidate. `pick_decoder` exports the model's decoder to ONNX in memory, checks
that onnxruntime's images match eager's (PSNR >= MIN_PSNR against float32 eager on the same latents;
in practice ~145 dB) and then uses it: the rule is "onnxruntime whenever its images match", because
it was the faster on every bundled model in every measurement here, while a timing taken at open time
on a busy 2-core machine is noisy enough to pick the slower one (it did, once, for dcgan-mnist: 776 ms
maps instead of ~100). Both are still timed on one batch, for the record. On a GPU, or for a model that
is not ours (ONNX files already run in onnxruntime), it stays with PyTorch on the model's device.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .latent import decode_latents

log = logging.getLogger(__name__)

MIN_PSNR = 40.0  # dB against float32 eager: "visually identical"
PROBE = 64  # latents in the timing batch


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two image arrays in [0, 1] (inf when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


@dataclass
class Decoder:
    """A batched decode (N, D) -> (N, H, W, C) float32 images in [0, 1], and how it was chosen."""

    name: str  # "torch" or "onnxruntime"
    run: Callable[[np.ndarray], np.ndarray]
    seconds: dict[str, float] = field(default_factory=dict)  # each candidate's time for PROBE latents
    psnr: dict[str, float] = field(default_factory=dict)  # each candidate's PSNR against eager
    note: str = ""

    def __call__(self, latents: np.ndarray) -> np.ndarray:
        return self.run(np.atleast_2d(np.asarray(latents, np.float32)))


def torch_decoder(model: torch.nn.Module) -> Decoder:
    return Decoder("torch", lambda z: decode_latents(model, z, batch=256))


def onnx_decoder(model: torch.nn.Module, threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """model.decode exported to ONNX (in memory; no file is written) and run by onnxruntime on the CPU."""
    import onnxruntime as ort

    from .foreign.export import decoder_graph

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(decoder_graph(model), sess_options=options, providers=["CPUExecutionProvider"])

    def run(z: np.ndarray) -> np.ndarray:
        out = session.run(["images"], {"z": z.astype(np.float32, copy=False)})[0]
        return np.clip(out, 0.0, 1.0).transpose(0, 2, 3, 1)

    return run


def _seconds(run: Callable[[np.ndarray], np.ndarray], z: np.ndarray, repeats: int = 3) -> float:
    run(z)  # warm-up (first-call allocations, kernel choice)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(z)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def pick_decoder(model: torch.nn.Module, seed: int = 0) -> Decoder:
    """onnxruntime for this model's batched decode when its images match PyTorch's (checked now, a few
    seconds: the ONNX export dominates; both timed for the record); eager when the model is not ours,
    not on the CPU, or when the export fails or its images differ (with the reason in `note`)."""
    eager = torch_decoder(model)
    device = getattr(model, "device", torch.device("cpu"))
    if device.type != "cpu" or not hasattr(model, "latent_weight") or getattr(model, "kind", "") not in ("vae", "gan"):
        eager.note = "PyTorch on the model's device (onnxruntime is tried for our VAEs and GANs on the CPU)"
        return eager
    if getattr(model, "num_classes", 0):
        # The exported graph is z -> image; a conditional model's image depends on the class blend too,
        # which the explorer changes without a new model: eager decodes always use the current class.
        eager.note = "PyTorch: a class-conditional model's decode takes its class blend, which the ONNX graph does not"
        return eager
    z = torch.randn(PROBE, model.latent_dim, generator=torch.Generator().manual_seed(seed)).numpy()
    reference = eager(z)
    try:
        ort_run = onnx_decoder(model)
        quality = psnr(ort_run(z), reference)
    except Exception as error:  # noqa: BLE001 - the exporter and onnxruntime raise many types
        log.warning("onnxruntime decoder unavailable for %s: %s", getattr(model, "kind", "model"), error)
        eager.note = f"onnxruntime unavailable: {str(error).splitlines()[0][:120]}"
        return eager
    times = {"torch": _seconds(eager.run, z), "onnxruntime": _seconds(ort_run, z)}
    scores = {"torch": float("inf"), "onnxruntime": float(quality)}
    if quality < MIN_PSNR:
        return Decoder("torch", eager.run, times, scores, f"onnxruntime's images differ (PSNR {quality:.1f} dB)")
    return Decoder("onnxruntime", ort_run, times, scores, f"its images match PyTorch's (PSNR {quality:.0f} dB)")
