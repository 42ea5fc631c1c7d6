"""ONNX decoders and generators (with an optional encoder) as models the explorer drives.

A decoder graph maps z (N, D) -- or (N, D, 1, 1), as DCGAN generators take it -- to images
(N, C, H, W); the latent size and image shape come from the graph, and a fixed batch (of 1, say)
is run one batch at a time. An optional sidecar JSON beside it (same stem, `.json`; see
`read_sidecar` and README "Open your own model") names an encoder graph, the output range, the
dataset, label names, a display name and the kind.

Two backends run the same validated graph (engines.foreign.onnx_file):
- onnxruntime (CPU; the CUDA execution provider when it is installed and the device is CUDA) for
  every decode and encode without gradients: sliders, maps, galleries, exports, samples;
- TorchGraph (engines.foreign.onnx_torch) where gradients are needed (projecting an image to z)
  or where onnxruntime cannot use the device (CUDA without its provider, MPS).
benchmarks/onnx.py measures both against the model's own PyTorch module.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..data.spec import DATASET_CLASSES, DatasetError, DataSpec
from .base import ForeignModel
from .onnx_file import OnnxError, OnnxFile, elem_type, graph_inputs, read_onnx, tensor_shape
from .onnx_torch import TorchGraph, UnsupportedGraph

log = logging.getLogger(__name__)

SIDECAR_FORMAT = "latent-explorer-onnx/1"
SIDECAR_KEYS = {
    "format",
    "name",
    "kind",
    "encoder",
    "output_range",
    "dataset",
    "label_names",
    "latent_dim",
    "description",
    "source",
}
MAX_SIDECAR_BYTES = 1 << 20
RANGES = {"[0, 1]": (0.0, 1.0), "[-1, 1]": (-1.0, 1.0)}
KINDS = ("vae", "gan")
MAX_LATENT = 65536
MAX_SIDE = 4096
PROBE_BATCH = 8
BATCH = 256  # latents per run when the graph's batch is free
_FLOAT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64}
# Label columns of the datasets the app knows, for a sidecar that names a dataset but no labels.
_KNOWN_LABELS = {
    **{name: list(classes) for name, classes in DATASET_CLASSES.items()},
    "shapes": ["shape", "color", "size", "x", "y", "rotation"],
    "faces": ["smiling", "glasses", "hair_color", "face_width", "skin_tone", "eye_size"],
}


def range_name(value: tuple[float, float]) -> str:
    return next((name for name, r in RANGES.items() if r == tuple(value)), f"[{value[0]:g}, {value[1]:g}]")


# --- the sidecar -----------------------------------------------------------------------------------
@dataclass
class Sidecar:
    """What a decoder's sidecar JSON says; every field optional."""

    path: Path | None = None
    name: str | None = None
    kind: str | None = None
    encoder: Path | None = None
    output_range: tuple[float, float] | None = None
    dataset: str | dict[str, Any] | None = None
    label_names: list[str] | None = None
    latent_dim: int | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sidecar_path(decoder: Path) -> Path:
    return decoder.with_suffix(".json")


def _inside(folder: Path, relative: str, what: str, name: str) -> Path:
    """`relative` as a file inside `folder` (refusing absolute paths, '..' and links leading out)."""
    posix, windows = PurePosixPath(relative), PureWindowsPath(relative)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or relative.startswith(("/", "\\")):
        raise OnnxError(f"{name}: {what} {relative!r:.80} is an absolute path; name a file in the model's folder")
    if ".." in posix.parts or ".." in windows.parts:
        raise OnnxError(f"{name}: {what} {relative!r:.80} leads outside the model's folder ('..' is refused)")
    target = folder / relative
    if not target.is_file():
        raise OnnxError(f"{name}: {what} {relative!r:.80} is not there")
    if not target.resolve().is_relative_to(folder.resolve()):
        raise OnnxError(f"{name}: {what} {relative!r:.80} leads outside the model's folder (a link); refused")
    return target


def read_sidecar(decoder: Path) -> Sidecar:
    """The sidecar beside `decoder` (an empty Sidecar when there is none). Raises OnnxError (one line)
    for a sidecar that is not JSON, has unknown keys or values of the wrong type."""
    path = sidecar_path(decoder)
    if not path.is_file():
        return Sidecar()
    name = path.name
    if path.stat().st_size > MAX_SIDECAR_BYTES:
        raise OnnxError(f"{name} (the sidecar of {decoder.name}) is larger than 1 MB")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise OnnxError(f"{name} (the sidecar of {decoder.name}) is not valid JSON ({error})") from error
    if not isinstance(doc, dict):
        raise OnnxError(f"{name} (the sidecar of {decoder.name}) must be a JSON object")
    unknown = sorted(set(doc) - SIDECAR_KEYS)
    if unknown:
        raise OnnxError(f"{name}: unknown key {unknown[0]!r:.40} (known: {', '.join(sorted(SIDECAR_KEYS))})")

    def want(key: str, ok: bool, what: str) -> None:
        if key in doc and not ok:
            raise OnnxError(f"{name}: {key} must be {what}, not {doc[key]!r:.60}")

    want("format", doc.get("format") == SIDECAR_FORMAT, repr(SIDECAR_FORMAT))
    for key in ("name", "description", "source"):
        want(key, isinstance(doc.get(key), str) and len(doc.get(key, "")) <= 1000, "a string")
    want("kind", doc.get("kind") in KINDS, " or ".join(repr(k) for k in KINDS))
    want(
        "encoder",
        isinstance(doc.get("encoder"), str) and doc.get("encoder", "").lower().endswith(".onnx"),
        "the file name of an .onnx encoder beside it",
    )
    raw_range = doc.get("output_range")
    want("output_range", isinstance(raw_range, list) and tuple(raw_range) in RANGES.values(), "[0, 1] or [-1, 1]")
    dataset = doc.get("dataset")
    want("dataset", isinstance(dataset, str) or isinstance(dataset, dict), "a dataset name or a dataset object")
    labels = doc.get("label_names")
    want(
        "label_names",
        isinstance(labels, list) and len(labels) <= 10_000 and all(isinstance(x, str) for x in labels),
        "a list of strings",
    )
    latent = doc.get("latent_dim")
    want(
        "latent_dim",
        isinstance(latent, int) and not isinstance(latent, bool) and 1 <= latent <= MAX_LATENT,
        f"a whole number from 1 to {MAX_LATENT}",
    )
    encoder = _inside(decoder.parent, doc["encoder"], "its encoder", name) if "encoder" in doc else None
    return Sidecar(
        path=path,
        name=doc.get("name"),
        kind=doc.get("kind"),
        encoder=encoder,
        output_range=tuple(float(v) for v in raw_range) if raw_range is not None else None,
        dataset=dataset,
        label_names=labels,
        latent_dim=latent,
        description=doc.get("description"),
        extra={k: doc[k] for k in ("source",) if k in doc},
    )


def _dataset_spec(dataset: str | dict[str, Any] | None, image_shape: tuple[int, int, int], name: str) -> dict[str, Any]:
    """The DataSpec dict of a sidecar's dataset (a name, or a DataSpec object), checked against the image shape."""
    if dataset is None:
        return {}
    channels, height, width = image_shape
    given = {"name": dataset} if isinstance(dataset, str) else dict(dataset)
    given.setdefault("image_size", height)
    given.setdefault("channels", channels)
    if (given["image_size"], given["channels"]) != (height, channels) or height != width:
        raise OnnxError(
            f"{name}: the dataset {given.get('name')!r:.40} gives {given['image_size']}x{given['image_size']}"
            f"x{given['channels']} images, but the model makes {height}x{width}x{channels}"
        )
    try:
        return DataSpec.from_dict(given).to_dict()
    except (DatasetError, TypeError) as error:
        raise OnnxError(
            f"{name}: the dataset {given.get('name')!r:.40} cannot give the model's {height}x{width}x"
            f"{channels} images ({error})"
        ) from error


# --- running one graph ------------------------------------------------------------------------------------
class GraphRunner:
    """One validated graph, run by onnxruntime or TorchGraph, in batches its input allows."""

    def __init__(self, onnx_file: OnnxFile, threads: int | None = None) -> None:
        self.file = onnx_file
        model = onnx_file.model
        inputs = graph_inputs(model)
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs[:4])
            raise OnnxError(
                f"{onnx_file.path.name} has {len(inputs)} inputs ({names}); a decoder or encoder takes exactly one"
            )
        self.input_name = inputs[0].name
        self.input_shape = tensor_shape(inputs[0])
        self.input_type = _FLOAT_TYPES.get(elem_type(inputs[0]))
        if self.input_type is None:
            raise OnnxError(f"{onnx_file.path.name}: its input {self.input_name!r:.40} is not a float tensor")
        first = self.input_shape[0] if self.input_shape else None
        self.fixed_batch = first if isinstance(first, int) and first > 0 else None
        self.output_names = [o.name for o in model.graph.output]
        self.output_shapes = [tensor_shape(o) for o in model.graph.output]
        self._bytes = model.SerializeToString()
        self._threads = threads or torch.get_num_threads()
        self._sessions: dict[str, Any] = {}
        try:
            self.torch_graph: TorchGraph | None = TorchGraph(model)
            self.torch_reason = ""
        except UnsupportedGraph as error:
            self.torch_graph, self.torch_reason = None, str(error)
        self.session("cpu")  # builds now, so a graph onnxruntime refuses is refused on opening

    # --- onnxruntime ----------------------------------------------------------------------------------
    @staticmethod
    def providers() -> list[str]:
        import onnxruntime as ort

        return list(ort.get_available_providers())

    def session(self, kind: str):
        """An onnxruntime session on the CPU, or with the CUDA provider ("cuda"); None where that is not installed."""
        if kind in self._sessions:
            return self._sessions[kind]
        import onnxruntime as ort

        if kind == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
            self._sessions[kind] = None
            return None
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # No custom-op library is ever registered (SessionOptions.register_custom_ops_library is not
        # called), and the model arrives as bytes with its weights inline: onnxruntime opens no file.
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if kind == "cuda" else ["CPUExecutionProvider"]
        try:
            session = ort.InferenceSession(self._bytes, sess_options=options, providers=providers)
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise OnnxError(f"{self.file.path.name}: onnxruntime cannot run it ({first[:200]})") from error
        self._sessions[kind] = session
        return session

    # --- running ---------------------------------------------------------------------------------------
    def run(self, x: torch.Tensor, device: torch.device, grad: bool = False) -> list[torch.Tensor]:
        """Every output for the batch x, on `device`; through TorchGraph when `grad` (or where
        onnxruntime cannot use the device), else onnxruntime."""
        backend = self.backend(device, grad)
        if backend == "torch" and self.torch_graph is None:
            raise RuntimeError(
                f"{self.file.path.name} cannot run in torch ({self.torch_reason}), and onnxruntime gives no gradients"
            )
        n = x.shape[0]
        step = self.fixed_batch or BATCH
        parts: list[list[torch.Tensor]] = []
        for start in range(0, n, step):
            chunk = x[start : start + step]
            short = step - chunk.shape[0] if self.fixed_batch else 0
            if short:
                chunk = torch.cat([chunk, chunk.new_zeros((short, *chunk.shape[1:]))])
            outs = self._torch(chunk, device) if backend == "torch" else self._ort(chunk, device, backend)
            parts.append([o[: o.shape[0] - short] if short else o for o in outs])
        return [torch.cat([p[i] for p in parts]) for i in range(len(parts[0]))]

    def backend(self, device: torch.device, grad: bool = False) -> str:
        """ "torch", "ort-cuda" or "ort-cpu": what runs a batch on `device`."""
        if grad:
            return "torch"
        if device.type == "cuda" and self.session("cuda") is not None:
            return "ort-cuda"
        if device.type != "cpu" and self.torch_graph is not None:
            return "torch"
        return "ort-cpu"

    def _torch(self, chunk: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
        graph = self.torch_graph
        dtype = graph.weights[0].dtype if len(graph.weights) else torch.float32
        return list(graph(chunk.to(device=device, dtype=dtype)))

    def _ort(self, chunk: torch.Tensor, device: torch.device, backend: str) -> list[torch.Tensor]:
        session = self.session("cuda" if backend == "ort-cuda" else "cpu")
        array = chunk.detach().to("cpu").numpy().astype(self.input_type, copy=False)
        outs = session.run(self.output_names, {self.input_name: array})
        return [torch.from_numpy(np.asarray(o)).to(device) for o in outs]

    def moved_to(self, device: torch.device) -> None:
        if self.torch_graph is not None:
            self.torch_graph.to(device)


# --- the model -----------------------------------------------------------------------------------------
class OnnxModel(ForeignModel):
    """An ONNX decoder (and encoder) behind the models' protocol (engines.foreign.base)."""

    source = "onnx"

    def __init__(self, decoder: OnnxFile, encoder: OnnxFile | None = None, sidecar: Sidecar | None = None) -> None:
        sidecar = sidecar or Sidecar()
        name = decoder.path.name
        runner = GraphRunner(decoder)
        shape = runner.input_shape
        if len(shape) == 4 and shape[2:] == [1, 1] and isinstance(shape[1], int):
            latent, self_reshape = shape[1], True
        elif len(shape) == 2 and isinstance(shape[1], int):
            latent, self_reshape = shape[1], False
        else:
            raise OnnxError(
                f"{name}: its input {runner.input_name!r:.40} has shape {_show(shape)}; a decoder takes z of "
                "shape (N, D) or (N, D, 1, 1) with a fixed D"
            )
        if not 1 <= latent <= MAX_LATENT:
            raise OnnxError(f"{name}: a latent of {latent} values is out of range (1 to {MAX_LATENT})")
        if sidecar.latent_dim is not None and sidecar.latent_dim != latent:
            raise OnnxError(f"{name}: its sidecar says latent_dim {sidecar.latent_dim}, the graph takes {latent}")
        super().__init__(latent, (1, 1, 1), kind=sidecar.kind or ("vae" if sidecar.encoder else "gan"))
        self.decoder_runner = runner
        self._z_4d = self_reshape
        self.display_name = sidecar.name
        self.output_range: tuple[float, float] = (0.0, 1.0)
        self.range_source = "sidecar"
        self.image_shape = self._probe(sidecar.output_range)
        self.can_project = runner.torch_graph is not None
        self.encoder_runner: GraphRunner | None = None
        if encoder is not None:
            self._attach_encoder(encoder)
        self.files = [*decoder.files, *(encoder.files if encoder else [])]
        self.parameter_count_value = sum(_float_count(f) for f in (decoder, encoder) if f is not None)

    # --- opening checks -----------------------------------------------------------------------------
    def _probe(self, declared: tuple[float, float] | None) -> tuple[int, int, int]:
        """Run a probe batch: the image shape (checked), and the output range when the sidecar gives none."""
        name = self.decoder_runner.file.path.name
        z = torch.randn((PROBE_BATCH, self.latent_dim), generator=torch.Generator().manual_seed(0))
        try:
            out = self._raw_decode(z)
        except OnnxError:
            raise
        except Exception as error:  # noqa: BLE001 - onnxruntime's errors: the graph does not run on a z batch
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise OnnxError(f"{name} does not run on a batch of latents ({first[:160]})") from error
        if out.dim() != 4 or out.shape[0] != PROBE_BATCH:
            raise OnnxError(
                f"{name} makes {_show(list(out.shape))} from {PROBE_BATCH} latents; a decoder makes images (N, C, H, W)"
            )
        c, h, w = (int(v) for v in out.shape[1:])
        if c not in (1, 3) or not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise OnnxError(
                f"{name} makes images of shape {c}x{h}x{w}; images have 1 or 3 channels (N, C, H, W) and "
                f"sides up to {MAX_SIDE}"
            )
        finite = out[torch.isfinite(out)]
        if declared is not None:
            self.output_range, self.range_source = declared, "sidecar"
        else:
            low = float(finite.min()) if finite.numel() else 0.0
            self.output_range = RANGES["[-1, 1]"] if low < -0.02 else RANGES["[0, 1]"]
            self.range_source = f"inferred from {PROBE_BATCH} probe images (min {low:.3g})"
        return (c, h, w)

    def _attach_encoder(self, encoder: OnnxFile) -> None:
        runner = GraphRunner(encoder)
        name = encoder.path.name
        shape = runner.input_shape
        c, h, w = self.image_shape
        if len(shape) != 4 or [d for d in shape[1:] if isinstance(d, int)] not in ([c, h, w], []):
            raise OnnxError(f"{name}: its input has shape {_show(shape)}; the decoder makes (N, {c}, {h}, {w}) images")
        probe = torch.rand((2, c, h, w), generator=torch.Generator().manual_seed(0))
        try:
            outs = runner.run(probe, torch.device("cpu"))
        except Exception as error:  # noqa: BLE001
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise OnnxError(f"{name} does not run on a batch of images ({first[:160]})") from error
        d = self.latent_dim
        shapes = [tuple(o.shape) for o in outs]
        if len(outs) >= 2 and shapes[0] == shapes[1] == (2, d):
            self._encoder_layout = "mean+logvar"
        elif shapes[0] == (2, 2 * d):
            self._encoder_layout = "stacked"
        elif shapes[0] == (2, d):
            self._encoder_layout = "mean"
        else:
            raise OnnxError(
                f"{name} gives outputs of shapes {', '.join(_show(list(s)) for s in shapes[:3])}; an encoder "
                f"gives the mean (N, {d}), or the mean and log-variance (two outputs, or one (N, {2 * d}))"
            )
        self.encoder_runner = runner
        self.has_encoder = True
        self.encoder_variance = self._encoder_layout != "mean"

    # --- the protocol -------------------------------------------------------------------------------------
    def _raw_decode(self, z: torch.Tensor, grad: bool = False) -> torch.Tensor:
        if self._z_4d:
            z = z.reshape(*z.shape, 1, 1)
        return self.decoder_runner.run(z, self.device, grad=grad)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (N, C, H, W) on the model's device, float32. Differentiable in z when z
        requires a gradient (through TorchGraph)."""
        grad = torch.is_grad_enabled() and z.requires_grad
        out = self._raw_decode(z, grad=grad).float()
        low, high = self.output_range
        return out if (low, high) == (0.0, 1.0) else (out - low) / (high - low)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x) for images in [0, 1]; the log-variance is zeros for an encoder
        that gives the mean only (encoder_variance False)."""
        if self.encoder_runner is None:
            raise ValueError("this ONNX model has no encoder")
        low, high = self.output_range
        x = images.float() * (high - low) + low  # the encoder reads images in the decoder's range
        outs = self.encoder_runner.run(x, self.device)
        if self._encoder_layout == "mean+logvar":
            mu, logvar = outs[0], outs[1]
        elif self._encoder_layout == "stacked":
            mu, logvar = outs[0].chunk(2, dim=1)
        else:
            mu, logvar = outs[0], torch.zeros_like(outs[0])
        return mu.float(), logvar.float().clamp(-30.0, 20.0)

    def set_output_range(self, value: tuple[float, float]) -> None:
        if tuple(value) not in RANGES.values():
            raise ValueError(f"the output range is [0, 1] or [-1, 1], not {value}")
        self.output_range, self.range_source = tuple(value), "set by the user"

    def moved_to(self, device: torch.device) -> None:
        for runner in (self.decoder_runner, self.encoder_runner):
            if runner is not None:
                runner.moved_to(device)

    @property
    def parameter_count(self) -> int:
        return self.parameter_count_value

    def backends(self) -> dict[str, str]:
        """What runs each kind of work on the current device, in words."""
        runner = self.decoder_runner
        names = {
            "ort-cpu": "onnxruntime (CPU)",
            "ort-cuda": "onnxruntime (CUDA)",
            "torch": f"the graph as torch operations ({self.device})",
        }
        out = {"decode": names[runner.backend(self.device)]}
        out["projection"] = (
            names["torch"] + ", for gradients"
            if runner.torch_graph is not None
            else f"unavailable ({runner.torch_reason})"
        )
        return out

    def describe(self) -> list[tuple[str, str]]:
        runner = self.decoder_runner
        rows = [("Format", "ONNX" + (f" — {self.display_name}" if self.display_name else ""))]
        if self.encoder_runner is not None:
            what = {
                "mean+logvar": "mean and log-variance",
                "stacked": "mean and log-variance (stacked)",
                "mean": "mean only (no per-dimension KL)",
            }[self._encoder_layout]
            rows.append(("Encoder", f"{self.encoder_runner.file.path.name}: {what}"))
        rows.append(
            (
                "Batch",
                f"fixed at {runner.fixed_batch} (run in batches of {runner.fixed_batch})"
                if runner.fixed_batch
                else "free",
            )
        )
        rows.append(("Output range", f"{range_name(self.output_range)} ({self.range_source})"))
        for work, how in self.backends().items():
            rows.append((work.capitalize(), how))
        return rows

    def nonfinite(self) -> list[str]:
        bad = []
        for runner in (self.decoder_runner, self.encoder_runner):
            if runner is None:
                continue
            for init in runner.file.model.graph.initializer:
                if init.data_type in _FLOAT_TYPES:
                    from onnx import numpy_helper

                    if not np.isfinite(numpy_helper.to_array(init)).all():
                        bad.append(f"{runner.file.path.name}:{init.name}")
        return bad


def _float_count(f: OnnxFile) -> int:
    return sum(int(np.prod(t.dims)) for t in f.model.graph.initializer if t.data_type in _FLOAT_TYPES)


def _show(shape: list[Any]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def load_onnx(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Open an ONNX decoder (with its sidecar and encoder) as a Checkpoint holding an OnnxModel.

    Raises OnnxError (a CheckpointError) with a one-line reason for anything it refuses."""
    path = Path(path)
    sidecar = read_sidecar(path)
    decoder = read_onnx(path, "decoder")
    encoder = read_onnx(sidecar.encoder, "encoder") if sidecar.encoder is not None else None
    model = OnnxModel(decoder, encoder, sidecar)
    dataset = _dataset_spec(sidecar.dataset, model.image_shape, (sidecar.path or path).name)
    labels = sidecar.label_names if sidecar.label_names is not None else _KNOWN_LABELS.get(dataset.get("name"), [])
    model.to(torch.device(device))
    files = list(model.files) + ([sidecar.path] if sidecar.path else [])
    return Checkpoint(
        model=model,
        path=path,
        dataset=dataset,
        label_names=list(labels),
        nonfinite=model.nonfinite(),
        format="onnx",
        files=files,
    )
