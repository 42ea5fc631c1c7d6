"""One checkpoint format for every model: a single .safetensors file.

Tensors: the model's weights under "model/", and optionally the optimizers' tensors under
"optim/<name>/", the RNG state under "rng/", the live weights of a run that averages its weights
under "raw/" (the "model/" weights are then the average; engines.training.trainer), saved attribute vectors under "vector/" and the training
timeline's float16 decoder snapshots under "timeline/<i>/" (engines.timeline).
Metadata: one JSON document under the header key "latent_explorer" (kind, config, dataset, image
shape, label names, training summary, metrics, optimizer layout).

Loading never unpickles: safetensors holds raw tensors and JSON only. A file is taken for a
checkpoint when its header parses as safetensors (a positive test: a header length whose low byte
is 0x80 is no pickle); only otherwise are its first bytes matched against pickle/zip signatures, for
the message. Before anything is built, the metadata is checked against a schema (types, required
keys, bounds on every size, the memory the model needs) and every tensor's declared shape against
the model's; the tensors' bytes are checked against the SHA-256 stored in the metadata (files
written before hashes existed open unverified). Every failure raises CheckpointError with a
one-line reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from .data.spec import DatasetError, DataSpec
from .memory import MemoryEstimateError, check_model_size, state_shapes
from .models import MODEL_CLASSES, GenerativeModel, build_model, make_config
from .timeline import PREFIX as TIMELINE

FORMAT = "latent-explorer/1"
META_KEY = "latent_explorer"
SUFFIX = ".safetensors"
HASH_KEY = "content_sha256"  # metadata key: SHA-256 of the file's tensor bytes (everything after the header)
_HEADER_LIMIT = 100 * 2**20  # safetensors' own limit on the JSON header


class CheckpointError(Exception):
    """A checkpoint could not be read or written: missing, truncated, corrupted, foreign, pickled or
    not matching its own config. The message is one line, fit to show a user."""


@dataclass
class Checkpoint:
    model: GenerativeModel
    path: Path | None = None
    dataset: dict[str, Any] = field(default_factory=dict)  # DataSpec.to_dict() of the training data
    label_names: list[str] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)  # summary: step, epoch, seconds, device...
    metrics: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # saved latent attribute vectors
    train_state: dict[str, Any] | None = None  # optimizers, step, RNG: present in resumable files
    stored_dtype: torch.dtype = torch.float32  # of the weights in the file (bundled files use float16)
    # A held-out sample carried in the file (engines.data.sample): images, labels, label_names, label_kinds
    sample: dict[str, Any] | None = None
    nonfinite: list[str] = field(default_factory=list)  # weight tensors holding NaN or inf
    verified: bool = True  # False: written before content hashes, so the tensors' bytes are unchecked
    format: str = "safetensors"  # or "onnx", or "plugin:<name>" (engines.foreign)
    files: list[Path] = field(default_factory=list)  # every file the model was read from (path first); [] = [path]
    # The training timeline (engines.timeline): {"every", "steps", "snapshots": [{weight name: float16}]}
    timeline: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def has_labels(self) -> bool:
        """The training data has label columns (classes, attributes): what label vectors and a
        coloured scatter need (a folder of images has none)."""
        return bool(self.label_names)


# --- saving ----------------------------------------------------------------------------------------
def _flatten_optimizer(name: str, state: dict, tensors: dict[str, torch.Tensor]) -> dict:
    """Split an optimizer state_dict into tensors (into `tensors`) and a JSON-able skeleton."""
    skeleton: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for param_id, values in state["state"].items():
        entry = {}
        for key, value in values.items():
            if torch.is_tensor(value):
                tensor_key = f"optim/{name}/{param_id}/{key}"
                tensors[tensor_key] = value.detach().cpu().contiguous()
                entry[key] = {"tensor": tensor_key}
            else:
                entry[key] = {"value": value}
        skeleton["state"][str(param_id)] = entry
    return skeleton


def _unflatten_optimizer(skeleton: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state = {}
    for param_id, entry in skeleton["state"].items():
        state[int(param_id)] = {
            key: tensors[spec["tensor"]] if "tensor" in spec else spec["value"] for key, spec in entry.items()
        }
    return {"state": state, "param_groups": skeleton["param_groups"]}


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync, then rename over it: a crash at any moment leaves
    the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make the file unreadable to other users
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: str | os.PathLike,
    model: GenerativeModel,
    *,
    dataset: dict[str, Any] | None = None,
    label_names: list[str] | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    vectors: dict[str, np.ndarray] | None = None,
    train_state: dict[str, Any] | None = None,
    sample: dict[str, Any] | None = None,
    timeline: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically: a temp file in the same folder, fsync, then rename over `path`.

    `train_state` (optional) holds {"step": int, "optimizers": {name: state_dict}, "rng": {name:
    uint8 tensor}, "extra": JSON-able dict, and optionally "raw": {weight name: tensor}, the live weights
    of a run whose `model` holds averaged ones} for resuming a run. `sample` (optional) is a held-out
    sample from engines.data.sample.take_sample.
    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for name, vec in (vectors or {}).items():
        tensors[f"vector/{name}"] = torch.as_tensor(np.asarray(vec, dtype=np.float32))
    meta: dict[str, Any] = {
        "format": FORMAT,
        "kind": model.kind,
        "config": model.config_dict(),
        "image_shape": list(model.image_shape),
        "dataset": dataset or {},
        "label_names": list(label_names or []),
        "training": training or {},
        "metrics": metrics or {},
        "vectors": sorted((vectors or {}).keys()),
    }
    if sample is not None:
        tensors["sample/images"] = torch.as_tensor(sample["images"], dtype=torch.uint8).contiguous()
        tensors["sample/labels"] = torch.as_tensor(sample["labels"], dtype=torch.float32).contiguous()
        meta["sample"] = {
            "count": int(tensors["sample/images"].shape[0]),
            "label_names": list(sample["label_names"]),
            "label_kinds": dict(sample["label_kinds"]),
        }
    if timeline is not None and timeline.get("steps"):
        keys = sorted(timeline["snapshots"][0])
        meta["timeline"] = {"every": int(timeline["every"]), "steps": [int(s) for s in timeline["steps"]], "keys": keys}
        for i, snapshot in enumerate(timeline["snapshots"]):
            for key in keys:
                tensors[f"{TIMELINE}{i}/{key}"] = snapshot[key].detach().cpu().contiguous()
    if train_state is not None:
        meta["train_state"] = {
            "step": int(train_state["step"]),
            "extra": train_state.get("extra", {}),
            "optimizers": {
                name: _flatten_optimizer(name, state, tensors) for name, state in train_state["optimizers"].items()
            },
            "rng": sorted(train_state.get("rng", {})),
            "raw": sorted(train_state.get("raw", {})),
        }
        for name, rng in train_state.get("rng", {}).items():
            tensors[f"rng/{name}"] = rng.detach().cpu().contiguous()
        for key, weight in train_state.get("raw", {}).items():
            tensors[f"raw/{key}"] = weight.detach().cpu().contiguous()
    try:
        # The tensor bytes do not depend on the metadata, so a first serialisation gives their hash.
        draft = safetensors_bytes(tensors, metadata={META_KEY: json.dumps(meta)})
        meta[HASH_KEY] = hashlib.sha256(memoryview(draft)[_data_start(draft) :]).hexdigest()
        payload = safetensors_bytes(tensors, metadata={META_KEY: json.dumps(meta)})
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"cannot save {path.name}: {error}") from error
    # What is written must open: the reader's checks run on the payload before it touches the disk.
    header = json.loads(bytes(memoryview(payload)[8 : _data_start(payload)]))
    header.pop("__metadata__", None)
    _validate(meta, header, path.name)

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, payload)
    # Temp files of earlier writes that were killed (kill -9, power loss) are garbage now.
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    return path


# --- loading ---------------------------------------------------------------------------------------
def _data_start(payload: bytes) -> int:
    """Offset of the tensor bytes in a safetensors payload: 8 bytes of header length, then the header."""
    return 8 + int.from_bytes(payload[:8], "little")


def _read_header(path: Path) -> tuple[int, dict[str, Any]] | None:
    """The safetensors header (its byte length and its JSON), or None when the file is not safetensors."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        if size < 8 or not 2 <= length <= min(_HEADER_LIMIT, size - 8):
            return None
        raw = f.read(length)
    if not raw.startswith(b"{"):
        return None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return (length, header) if isinstance(header, dict) else None


PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".pt2", ".bin", ".jit", ".torchscript")
# The one-line way out for a file that is never opened: export the decoder to ONNX, or write a plugin.
EXPORT_HINT = (
    "export its decoder to ONNX in one line, torch.onnx.export(decoder.eval(), (torch.randn(1, latent_dim),), "
    "'decoder.onnx', dynamic_shapes=({0: 'batch'},)), and open that, or load it with a plugin "
    "(README: Open your own model)"
)


def _pickle_kind(path: Path, head: bytes) -> str | None:
    """What kind of PyTorch file this is, from its first bytes and its zip directory (no member is read), or
    None when it is not one."""
    if head.startswith(b"\x80"):
        return "a pickle"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()[:10_000]
        except (zipfile.BadZipFile, OSError, ValueError):
            names = []
        if path.suffix.lower() == ".pt2" or any(
            n.endswith(("serialized_exported_program.json", "models/model.json")) or "/archive_format" in n
            for n in names
        ):
            return "a torch.export archive (.pt2)"
        if any(n.endswith(("/code/", ".py")) or "/code/" in n for n in names):
            return "a TorchScript archive"
        return "a PyTorch zip (pickle) archive"
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return f"a {path.suffix} file"
    return None


def _foreign_reason(path: Path) -> str:
    """Why a file that is not safetensors (nor ONNX) was refused, from its first bytes and zip directory
    (no pickle is ever read), with the way to open such a model."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        return f"{path.name} is empty or truncated ({path.stat().st_size} bytes)"
    kind = _pickle_kind(path, head)
    if kind is not None:
        return (
            f"{path.name} is {kind}, which Latent Explorer never opens (loading it can run arbitrary code): "
            f"{EXPORT_HINT}"
        )
    return (
        f"{path.name} is not a Latent Explorer checkpoint or ONNX model (no safetensors header, not an ONNX "
        "graph: corrupted, truncated or another format)"
    )


def is_pickle_like(path: Path) -> bool:
    """A PyTorch pickle, zip archive (TorchScript, .pt2) or a file named like one: refused unread."""
    with open(path, "rb") as f:
        head = f.read(8)
    return _pickle_kind(path, head) is not None


def _expect(ok: bool, name: str, what: str) -> None:
    if not ok:
        raise CheckpointError(f"{name}: its metadata is invalid ({what})")


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) <= 10_000 and all(isinstance(v, str) for v in value)


# Types of the training summary's keys that the app reads; other keys are kept as they are.
_TRAINING_TYPES: dict[str, Any] = {
    "step": _is_int,
    "total_steps": _is_int,
    "processes": lambda v: _is_int(v, 1),
    "epoch": _is_number,
    "seconds": _is_number,
    "command": lambda v: isinstance(v, str),
    "device": lambda v: isinstance(v, str),
    "machine": lambda v: isinstance(v, str),
    "precision": lambda v: isinstance(v, str),
    "train_config": lambda v: isinstance(v, dict),
    "resumed_with": _is_str_list,
    "history": lambda v: isinstance(v, list) and all(isinstance(h, dict) for h in v),
    "validation": lambda v: isinstance(v, dict),  # engines.data.split: which images were held out
}


def _validate(meta: Any, tensors: dict[str, Any], name: str) -> None:
    """Check the metadata and the header's tensor declarations before anything is built or loaded.

    `tensors` maps each tensor name to its header entry ({"dtype", "shape", "data_offsets"}).
    """
    _expect(isinstance(meta, dict), name, "not a JSON object")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{name} has an unknown checkpoint format {meta.get('format')!r:.60}")
    kind = meta.get("kind")
    if not isinstance(kind, str) or kind not in MODEL_CLASSES:
        raise CheckpointError(f"{name} holds an unknown model kind {kind!r:.60}")
    config = meta.get("config")
    _expect(isinstance(config, dict), name, "config is missing or not an object")
    try:
        built = make_config(kind, config)
        check_model_size(kind, config)
    except (TypeError, ValueError) as error:  # MemoryEstimateError is a ValueError
        prefix = "" if isinstance(error, MemoryEstimateError) else "config: "
        raise CheckpointError(f"{name} has a config this version cannot build ({prefix}{error})") from error
    image_shape = [built.channels, built.image_size, built.image_size]
    _expect(meta.get("image_shape", image_shape) == image_shape, name, "image_shape does not match the config")
    dataset = meta.get("dataset", {})
    _expect(isinstance(dataset, dict), name, "dataset is not an object")
    if dataset:
        try:
            DataSpec.from_dict(dataset)
        except (DatasetError, TypeError) as error:
            raise CheckpointError(f"{name}: its metadata is invalid (dataset: {error})") from error
    _expect(_is_str_list(meta.get("label_names", [])), name, "label_names is not a list of strings")
    training = meta.get("training", {})
    _expect(isinstance(training, dict), name, "training is not an object")
    for key, check in _TRAINING_TYPES.items():
        _expect(key not in training or check(training[key]), name, f"training.{key} has the wrong type")
    _expect(isinstance(meta.get("metrics", {}), dict), name, "metrics is not an object")
    _expect(isinstance(meta.get(HASH_KEY, ""), str), name, f"{HASH_KEY} is not a string")

    # Every tensor the model needs, with the shape the config gives it; nothing is allocated here.
    expected = {f"model/{k}": list(shape) for k, shape in state_shapes(kind, config).items()}
    declared = {k: v.get("shape") for k, v in tensors.items() if k.startswith("model/") and isinstance(v, dict)}
    missing, unexpected = sorted(expected.keys() - declared.keys()), sorted(declared.keys() - expected.keys())
    if missing or unexpected:
        raise CheckpointError(
            f"{name}: weights do not match the model's config (missing {missing[:2]}, unexpected {unexpected[:2]})"
        )
    wrong = [k for k in expected if declared[k] != expected[k]]
    if wrong:
        raise CheckpointError(
            f"{name}: weights do not match the model's config ({wrong[0]} is {declared[wrong[0]]}, expected {expected[wrong[0]]})"
        )
    _expect(
        all(tensors[k].get("dtype") in ("F32", "F16", "BF16", "F64", "I64") for k in expected),
        name,
        "weights of an unknown type",
    )

    vectors = meta.get("vectors", [])
    _expect(_is_str_list(vectors), name, "vectors is not a list of names")
    latent = getattr(built, "latent_dim", None)
    for vec in vectors:
        _expect(
            tensors.get(f"vector/{vec}", {}).get("shape") == [latent],
            name,
            f"vector {vec!r:.40} does not have the latent size",
        )
    if "sample" in meta:
        sample = meta["sample"]
        _expect(
            isinstance(sample, dict)
            and _is_int(sample.get("count"))
            and _is_str_list(sample.get("label_names"))
            and isinstance(sample.get("label_kinds"), dict)
            and all(isinstance(v, str) for v in sample["label_kinds"].values()),
            name,
            "sample",
        )
        n = sample["count"]
        _expect(
            tensors.get("sample/images", {}).get("shape") == [n, *image_shape]
            and tensors["sample/images"].get("dtype") == "U8",
            name,
            "sample images do not match the image shape",
        )
        _expect(tensors.get("sample/labels", {}).get("shape") == [n, len(sample["label_names"])], name, "sample labels")
    _validate_timeline(meta, tensors, name, kind, config)
    if "train_state" in meta:
        ts = meta["train_state"]
        _expect(
            isinstance(ts, dict)
            and _is_int(ts.get("step"))
            and isinstance(ts.get("extra", {}), dict)
            and isinstance(ts.get("optimizers"), dict)
            and _is_str_list(ts.get("rng", []))
            and _is_str_list(ts.get("raw", [])),
            name,
            "train_state",
        )
        for key in ts.get("raw", []):  # live weights: the shape of the model's own
            _expect(
                f"model/{key}" in expected and tensors.get(f"raw/{key}", {}).get("shape") == expected[f"model/{key}"],
                name,
                f"train_state.raw {key!r:.60}",
            )
        for opt in ts["optimizers"].values():
            _expect(
                isinstance(opt, dict)
                and isinstance(opt.get("param_groups"), list)
                and isinstance(opt.get("state"), dict),
                name,
                "train_state.optimizers",
            )


def _validate_timeline(meta: dict, tensors: dict[str, Any], name: str, kind: str, config: dict) -> None:
    """The timeline's snapshots: at most 64, each holding exactly the declared decoder weights, with the
    model's shapes, as float16 (integer buffers: int64); no other tensor under the prefix."""
    stored = sorted(k for k in tensors if k.startswith(TIMELINE))
    if "timeline" not in meta:
        _expect(not stored, name, "timeline tensors without a timeline")
        return
    tl = meta["timeline"]
    shapes = state_shapes(kind, config)
    _expect(
        isinstance(tl, dict)
        and _is_int(tl.get("every"), 1)
        and isinstance(tl.get("steps"), list)
        and 1 <= len(tl["steps"]) <= 64
        and all(_is_int(s) for s in tl["steps"])
        and _is_str_list(tl.get("keys"))
        and tl["keys"]
        and all(k in shapes for k in tl["keys"]),
        name,
        "timeline",
    )
    expected = {f"{TIMELINE}{i}/{k}": k for i in range(len(tl["steps"])) for k in tl["keys"]}
    _expect(sorted(expected) == stored, name, "timeline snapshots do not match their list")
    for tensor_name, key in expected.items():
        entry = tensors[tensor_name]
        _expect(
            isinstance(entry, dict)
            and entry.get("shape") == list(shapes[key])
            and entry.get("dtype") in ("F16", "I64"),
            name,
            f"timeline snapshot {tensor_name!r:.60} does not fit the model",
        )


def is_safetensors(path: str | os.PathLike) -> bool:
    """The file's header parses as safetensors (a Latent Explorer checkpoint or another safetensors file)."""
    path = Path(path)
    return path.is_file() and _read_header(path) is not None


def _inspect(path: Path) -> tuple[dict[str, Any], int]:
    """The validated metadata of a checkpoint and the length of its header, without loading tensors."""
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    parsed = _read_header(path)
    if parsed is None:
        if path.suffix.lower() == ".onnx":
            raise CheckpointError(
                f"{path.name} is an ONNX model, not a training checkpoint: it has no Latent Explorer "
                "metadata to read or update (it opens in the app, `sample` and `eval`)"
            )
        raise CheckpointError(_foreign_reason(path))
    length, header = parsed
    header_meta = header.pop("__metadata__", None) or {}
    if not isinstance(header_meta, dict) or META_KEY not in header_meta:
        raise CheckpointError(f"{path.name} is a safetensors file but not a Latent Explorer checkpoint (no metadata)")
    try:
        meta = json.loads(header_meta[META_KEY], parse_constant=lambda c: math.nan)
    except (TypeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path.name} has corrupted metadata ({error})") from error
    _validate(meta, header, path.name)
    return meta, length


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, validated, without loading its tensors."""
    return _inspect(Path(path))[0]


def _data_sha256(path: Path, header_length: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(8 + header_length)
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu", with_train_state: bool = False
) -> Checkpoint:
    """Open any model file, in eval mode on `device`: what the file is decides how.

    - a safetensors header that parses: one of our checkpoints (the model rebuilt from the file alone);
    - a suffix an installed plugin claims (entry points `latent_explorer.models`): that plugin's loader;
    - a PyTorch pickle, zip archive or .pt/.pth/.pkl/.pt2 name: refused unread, saying how to export it;
    - a graph that parses as ONNX (or a .onnx name): engines.foreign.onnx_model, validated first.

    Raises CheckpointError (or its OnnxError) for a missing, truncated, corrupted, pickled, foreign,
    lying or mismatched file, with a one-line reason. Non-finite weights load (so the user can see
    them) and are listed in `nonfinite`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}" + (": it is a folder" if path.is_dir() else ""))
    if _read_header(path) is None:
        from .foreign import open_foreign  # ONNX and plugins: imported only when such a file is opened

        return open_foreign(path, device)
    meta, header_length = _inspect(path)
    stored_hash = meta.get(HASH_KEY)
    if stored_hash is not None and _data_sha256(path, header_length) != stored_hash:
        raise CheckpointError(f"{path.name} is corrupted: its tensors do not match the checksum stored in the file")
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"{path.name} is corrupted or truncated: {str(error).splitlines()[0] if str(error) else error!r}"
        ) from error

    model = build_model(meta["kind"], meta["config"])  # validated: builds, and fits the declared shapes
    weights = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0] if str(error) else "mismatch"
        raise CheckpointError(f"{path.name}: weights do not match the model's config ({first})") from error
    model.to(device).eval()

    train_state = None
    if with_train_state and "train_state" in meta:
        ts = meta["train_state"]
        try:
            train_state = {
                "step": ts["step"],
                "extra": ts.get("extra", {}),
                "optimizers": {name: _unflatten_optimizer(sk, tensors) for name, sk in ts["optimizers"].items()},
                "rng": {name: tensors[f"rng/{name}"] for name in ts.get("rng", [])},
                "raw": {key: tensors[f"raw/{key}"] for key in ts.get("raw", [])},
            }
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise CheckpointError(f"{path.name}: resumable state is incomplete or invalid ({error!r:.80})") from error
    vectors = {k.removeprefix("vector/"): v.numpy() for k, v in tensors.items() if k.startswith("vector/")}
    stored = next((w.dtype for w in weights.values() if w.is_floating_point()), torch.float32)
    sample = None
    if "sample" in meta:
        sample = {
            "images": tensors["sample/images"],
            "labels": tensors["sample/labels"],
            "label_names": meta["sample"]["label_names"],
            "label_kinds": meta["sample"]["label_kinds"],
        }
    timeline = None
    if "timeline" in meta:
        tl = meta["timeline"]
        timeline = {
            "every": tl["every"],
            "steps": list(tl["steps"]),
            "snapshots": [{k: tensors[f"{TIMELINE}{i}/{k}"] for k in tl["keys"]} for i in range(len(tl["steps"]))],
        }
    nonfinite = [k for k, w in weights.items() if w.is_floating_point() and not bool(torch.isfinite(w).all())]
    return Checkpoint(
        model=model,
        path=path,
        dataset=meta.get("dataset", {}),
        label_names=meta.get("label_names", []),
        training=meta.get("training", {}),
        metrics=meta.get("metrics", {}),
        vectors=vectors,
        train_state=train_state,
        stored_dtype=stored,
        sample=sample,
        nonfinite=nonfinite,
        verified=stored_hash is not None,
        timeline=timeline,
    )


def update_checkpoint(
    path: str | os.PathLike, *, metrics: dict[str, Any] | None = None, vectors: dict[str, np.ndarray] | None = None
) -> Checkpoint:
    """Merge new metrics and attribute vectors into an existing checkpoint, keeping its train state."""
    ckpt = load_checkpoint(path, with_train_state=True)
    ckpt.metrics.update(metrics or {})
    ckpt.vectors.update(vectors or {})
    model = ckpt.model.to(ckpt.stored_dtype)  # keep the file's precision (float16 for bundled files)
    save_checkpoint(
        path,
        model,
        dataset=ckpt.dataset,
        label_names=ckpt.label_names,
        training=ckpt.training,
        metrics=ckpt.metrics,
        vectors=ckpt.vectors,
        train_state=ckpt.train_state,
        sample=ckpt.sample,
        timeline=ckpt.timeline,
    )
    return ckpt
