"""The maps' batched decode, run by whichever path is fastest for this model on this machine.

Large batched decodes (a 16x16 or 32x32 map is 256 or 1024 latents) are dominated by (transposed)
convolutions: ~36 MFLOP per dcgan-faces image, so a 16x16 map is ~9 GFLOP, and float32 eager already runs
near this CPU's float32 peak. The paths, measured on the quiet 2-core EPYC (AVX-512 with bf16 units),
256 latents / 1024 latents, ms:

    model           float32 eager   onnxruntime     bfloat16 eager (channels_last)  bf16 PSNR
    dcgan-faces     50.7 / 243      37.5 / 151      20.5 / 94                       57 dB
    dcgan-cifar10   44.5 / 221      37.2 / 148      19.5 / 85                       58 dB
    dcgan-mnist     30.9 / 127      21.1 / 100      13.4 / 62                       54 dB
    cdcgan-mnist    25.0 / 125      (conditional)   13.4 / 58                       57 dB
    vae-faces       17.2 / 71       16.7 / 66       10.2 / 36                       58 dB
    stylegan-faces  252  / 981      (not tried)     111  / 575                      49 dB

(Before the allocator policy, engines.allocator, and the style-based generator's cheaper layers: since,
stylegan-faces decodes 256 latents in 64 ms in float32 and 26.9 ms in bfloat16.)

So the rule, in order:
1. bfloat16: a bfloat16, channels_last copy of the model decoding under inference_mode, where the CPU
   has native bfloat16 units (oneDNN says so; emulated bfloat16 is slower than float32) and its images
   match float32 eager on the same latents (PSNR >= MIN_PSNR; 49-61 dB on the bundled models). It was
   the fastest on every bundled model, 1.6-2.5x float32 eager; it follows the job's torch thread count
   (the app's thread policy) and needs no export, so opening a map makes no ONNX garbage.
2. onnxruntime (our unconditional VAEs and GANs): model.decode exported to ONNX in memory and checked
   the same way; 1.1-1.5x eager. The rule is fixed rather than a race at open time, because a timing
   taken on a busy 2-core machine is noisy enough to pick the slower one (it did, once: 776 ms maps
   instead of ~100). The candidates are still timed on one batch, for the record.
3. float32 eager otherwise: on a GPU (the model's own device), for a model that is not ours (ONNX files
   already run in onnxruntime), or when neither check passes (the reason in `note`).

A Decoder says whether its batch may be split across threads (`split`: our own models run by torch on
the CPU); the Maps tab then decodes a slice per core (explorer.workers.decode_on_threads).
"""

from __future__ import annotations

import copy
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


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 convolutions in hardware (oneDNN's check: AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@dataclass
class Decoder:
    """A batched decode (N, D) -> (N, H, W, C) float32 images in [0, 1], and how it was chosen."""

    name: str  # "torch", "bfloat16" or "onnxruntime"
    run: Callable[[np.ndarray], np.ndarray]
    seconds: dict[str, float] = field(default_factory=dict)  # each candidate's time for PROBE latents
    psnr: dict[str, float] = field(default_factory=dict)  # each candidate's PSNR against eager
    note: str = ""
    # whether the batch may be split across threads, each decoding a slice at once: our own models run by
    # torch on the CPU (not onnxruntime, which threads itself, nor a foreign or plugin model, whose
    # thread safety is not ours to know)
    split: bool = False

    def __call__(self, latents: np.ndarray) -> np.ndarray:
        return self.run(np.atleast_2d(np.asarray(latents, np.float32)))


def torch_decoder(model: torch.nn.Module) -> Decoder:
    return Decoder("torch", lambda z: decode_latents(model, z, batch=256), split=_own_on_cpu(model))


def _own_on_cpu(model: torch.nn.Module) -> bool:
    """A model of this project's (not an ONNX graph or a plugin's) whose decode runs on the CPU."""
    device = getattr(model, "device", torch.device("cpu"))
    return device.type == "cpu" and getattr(model, "source", None) is None  # foreign models name their source


def bfloat16_decoder(model: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """model.decode run by a bfloat16, channels_last copy of the model (on the CPU), images back in float32.
    A copy, so the model itself (shared with every tab and job) keeps its float32 weights."""
    fast = copy.deepcopy(model).to(torch.bfloat16).to(memory_format=torch.channels_last).eval()
    dtype = torch.float32 if getattr(model, "float32_latents", False) else torch.bfloat16

    def run(z: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            images = fast.decode(torch.from_numpy(np.ascontiguousarray(z, np.float32)).to(dtype))
        return images.float().clamp(0, 1).permute(0, 2, 3, 1).numpy()

    return run


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


def _ours(model: torch.nn.Module) -> bool:
    return hasattr(model, "latent_weight") and getattr(model, "kind", "") in ("vae", "gan")


def pick_decoder(model: torch.nn.Module, seed: int = 0) -> Decoder:
    """The batched decode for this model's maps, by the rule in the module docstring: bfloat16 where the
    CPU has bfloat16 units and its images match float32 eager, else onnxruntime for our unconditional
    VAEs and GANs when its images match (the export takes a few seconds), else float32 eager with the
    reason in `note`. Each candidate tried is timed on PROBE latents, for the record."""
    eager = torch_decoder(model)
    if not _own_on_cpu(model):
        eager.note = "PyTorch on the model's device (the faster paths are for our models on the CPU)"
        return eager
    z = torch.randn(PROBE, model.latent_dim, generator=torch.Generator().manual_seed(seed)).numpy()
    reference = eager(z)
    times, scores, notes = {"torch": _seconds(eager.run, z)}, {"torch": float("inf")}, []

    def tried(name: str, make: Callable[[], Callable[[np.ndarray], np.ndarray]]) -> Decoder | None:
        try:
            run = make()
            scores[name] = psnr(run(z), reference)
        except Exception as error:  # noqa: BLE001 - the exporter, onnxruntime and a model's copy raise many types
            log.warning("%s decoder unavailable for %s: %s", name, getattr(model, "kind", "model"), error)
            notes.append(f"{name} unavailable: {str(error).splitlines()[0][:120]}")
            return None
        times[name] = _seconds(run, z)
        if scores[name] < MIN_PSNR:
            notes.append(f"{name}'s images differ (PSNR {scores[name]:.1f} dB)")
            return None
        note = f"its images match PyTorch's (PSNR {scores[name]:.0f} dB)"
        return Decoder(name, run, times, scores, note, split=name == "bfloat16")

    if native_bfloat16():
        picked = tried("bfloat16", lambda: bfloat16_decoder(model))
        if picked is not None:
            return picked
    else:
        notes.append("no bfloat16 units on this CPU")
    if getattr(model, "num_classes", 0):
        # The exported graph is z -> image; a conditional model's image depends on the class blend too,
        # which the explorer changes without a new model: eager decodes always use the current class.
        notes.append("onnxruntime: a class-conditional model's decode takes its class blend, which the graph does not")
    elif _ours(model):
        picked = tried("onnxruntime", lambda: onnx_decoder(model))
        if picked is not None:
            return picked
    return Decoder("torch", eager.run, times, scores, "; ".join(notes) or "PyTorch float32", split=eager.split)
