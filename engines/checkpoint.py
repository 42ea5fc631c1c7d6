"""One checkpoint format for every model: a single .safetensors file.

Tensors: the model's weights under "model/", and optionally the optimizers' tensors under
"optim/<name>/", the RNG state under "rng/" and saved attribute vectors under "vector/".
Metadata: one JSON document under the header key "latent_explorer" (kind, config, dataset, image
shape, label names, training summary, metrics, optimizer layout).

Loading never unpickles: safetensors holds raw tensors and JSON only, and pickle files (.pt, .pth,
.pkl) are refused without being read. Every failure raises CheckpointError with a one-line reason.
"""

from __future__ import annotations

import json
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

from .models import MODEL_CLASSES, GenerativeModel, build_model

FORMAT = "latent-explorer/1"
META_KEY = "latent_explorer"
SUFFIX = ".safetensors"
_PICKLE_MAGIC = (b"\x80",)  # pickle protocol 2+ starts with PROTO (0x80)


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

    @property
    def kind(self) -> str:
        return self.model.kind


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
) -> Path:
    """Write a checkpoint atomically: a temp file in the same folder, fsync, then rename over `path`.

    `train_state` (optional) holds {"step": int, "optimizers": {name: state_dict}, "rng": {name:
    uint8 tensor}, "extra": JSON-able dict} for resuming a run. `sample` (optional) is a held-out
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
        meta["sample"] = {"count": int(tensors["sample/images"].shape[0]), "label_names": list(sample["label_names"]),
                          "label_kinds": dict(sample["label_kinds"])}
    if train_state is not None:
        meta["train_state"] = {
            "step": int(train_state["step"]),
            "extra": train_state.get("extra", {}),
            "optimizers": {
                name: _flatten_optimizer(name, state, tensors) for name, state in train_state["optimizers"].items()
            },
            "rng": sorted(train_state.get("rng", {})),
        }
        for name, rng in train_state.get("rng", {}).items():
            tensors[f"rng/{name}"] = rng.detach().cpu().contiguous()
    try:
        payload = safetensors_bytes(tensors, metadata={META_KEY: json.dumps(meta)})
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"cannot save {path.name}: {error}") from error

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would make checkpoints unreadable to other users
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Temp files of earlier writes that were killed (kill -9, power loss) are garbage now.
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    return path


# --- loading ---------------------------------------------------------------------------------------
def _refuse_foreign(path: Path) -> None:
    """Refuse pickles and other formats by their first bytes, before anything parses them."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise CheckpointError(f"{path.name} is empty or truncated ({path.stat().st_size} bytes)")
    if head.startswith(_PICKLE_MAGIC) or zipfile.is_zipfile(path) or path.suffix.lower() in (".pt", ".pth", ".pkl", ".ckpt"):
        raise CheckpointError(
            f"{path.name} is a PyTorch/pickle file; Latent Explorer opens only {SUFFIX} checkpoints, "
            "because unpickling a file can run arbitrary code"
        )


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without loading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    _refuse_foreign(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path.name} is not a readable safetensors file (corrupted or truncated): {error}") from error
    if META_KEY not in header:
        raise CheckpointError(f"{path.name} is a safetensors file but not a Latent Explorer checkpoint (no metadata)")
    try:
        meta = json.loads(header[META_KEY])
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path.name} has corrupted metadata: {error}") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} has an unknown checkpoint format {meta.get('format') if isinstance(meta, dict) else meta!r}")
    if meta.get("kind") not in MODEL_CLASSES:
        raise CheckpointError(f"{path.name} holds an unknown model kind {meta.get('kind')!r}")
    return meta


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu", with_train_state: bool = False) -> Checkpoint:
    """Rebuild the model from the file alone, in eval mode on `device`.

    Raises CheckpointError for a missing, truncated, corrupted, pickled, foreign or mismatched file.
    """
    path = Path(path)
    meta = read_metadata(path)
    try:
        tensors: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path.name} is corrupted or truncated: {error}") from error

    try:
        model = build_model(meta["kind"], meta["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path.name} has a config this version cannot build: {error}") from error
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
            }
        except KeyError as error:
            raise CheckpointError(f"{path.name}: resumable state is incomplete (missing {error})") from error
    vectors = {k.removeprefix("vector/"): v.numpy() for k, v in tensors.items() if k.startswith("vector/")}
    stored = next((w.dtype for w in weights.values() if w.is_floating_point()), torch.float32)
    sample = None
    if "sample" in meta:
        try:
            sample = {"images": tensors["sample/images"], "labels": tensors["sample/labels"],
                      "label_names": meta["sample"]["label_names"], "label_kinds": meta["sample"]["label_kinds"]}
        except KeyError as error:
            raise CheckpointError(f"{path.name}: its held-out sample is incomplete (missing {error})") from error
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
    )


def update_checkpoint(path: str | os.PathLike, *, metrics: dict[str, Any] | None = None, vectors: dict[str, np.ndarray] | None = None) -> Checkpoint:
    """Merge new metrics and attribute vectors into an existing checkpoint, keeping its train state."""
    ckpt = load_checkpoint(path, with_train_state=True)
    ckpt.metrics.update(metrics or {})
    ckpt.vectors.update(vectors or {})
    model = ckpt.model.to(ckpt.stored_dtype)  # keep the file's precision (float16 for bundled files)
    save_checkpoint(
        path, model, dataset=ckpt.dataset, label_names=ckpt.label_names, training=ckpt.training,
        metrics=ckpt.metrics, vectors=ckpt.vectors, train_state=ckpt.train_state, sample=ckpt.sample,
    )
    return ckpt
