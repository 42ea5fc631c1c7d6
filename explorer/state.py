"""The one object that owns what the user is exploring: the model, the current latent z, undo
history, bookmarks and attribute vectors. Widgets are views: they write here and redraw on signals."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal

from engines.checkpoint import Checkpoint, load_checkpoint
from engines.data import DatasetError, DataSpec, load_dataset
from engines.data.sample import heldout_or_sample
from engines.device import pick_device
from engines.latent import decode_latents
from engines.models.conditional import ClassView
from engines.styles import available_spaces, space_model

from .workers import thaw_long_lived


@dataclass
class Bookmark:
    name: str
    z: np.ndarray


def file_sha256(path: str | Path, *more: str | Path) -> str:
    """SHA-256 of a file; of several (an ONNX model's graph, external data, encoder and sidecar), of their
    bytes one after the other."""
    h = hashlib.sha256()
    for name in (path, *more):
        with open(name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class _Capability:
    """A read-only attribute of the state: the open model's capability of the same name (False
    without a model)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, state: ExplorerState | None, owner: type | None = None):
        if state is None:
            return self
        return state.model is not None and bool(getattr(state.model, self.name))


class ExplorerState(QObject):
    modelChanged = Signal()  # a checkpoint was opened (or the device changed)
    latentChanged = Signal()  # z changed; read state.z
    historyChanged = Signal()  # undo/redo availability changed
    bookmarksChanged = Signal()
    vectorsChanged = Signal()
    seedChanged = Signal(int)  # the visible random seed changed; read state.seed
    spaceChanged = Signal()  # the latent space (Z, W, W+) or its truncation psi changed; read state.space
    classChanged = Signal()  # a conditional model's class blend changed; read state.class_mix

    MAX_HISTORY = 200

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.checkpoint: Checkpoint | None = None
        self.device = torch.device("cpu")
        self.z = np.zeros(0, dtype=np.float32)
        self.seed = 0
        self.bookmarks: list[Bookmark] = []
        self.vectors: dict[str, np.ndarray] = {}
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self._edit_start: np.ndarray | None = None  # z before a continuous edit (a slider drag)
        self._sha256: tuple[Path, float, str] | None = None  # (path, mtime, hash) of the open file
        self._datasets: dict[bool, object] = {}  # train flag -> dataset of the open checkpoint
        self._dataset_lock = threading.Lock()  # datasets are loaded from worker threads
        # The latent space the user works in (engines.styles): "Z", or for a style model "W" / "W+", where
        # `model` is a StyleSpace over the checkpoint's model; each space keeps its own z, bookmarks, vectors.
        self.space = "Z"
        self.psi = 1.0
        self._space_model = None
        self._stash: dict[str, tuple[np.ndarray, list[Bookmark], dict[str, np.ndarray]]] = {}
        # A conditional model's class blend (K,) (one-hot: one class); `_class_view` draws with it
        # (engines.models.conditional.ClassView): the views decode that, never the model with a class set on it.
        self.class_mix = np.zeros(0, np.float32)
        self._class_view = None

    # --- model ---------------------------------------------------------------------------------
    @property
    def model(self):
        """The model the views drive: the checkpoint's, or in W / W+ a StyleSpace over it."""
        if self._space_model is not None:
            return self._space_model
        if self._class_view is not None:
            return self._class_view
        return self.checkpoint.model if self.checkpoint else None

    @property
    def base_model(self):
        """The checkpoint's own model, whatever the space."""
        return self.checkpoint.model if self.checkpoint else None

    def spaces(self) -> tuple[str, ...]:
        """The latent spaces the open model offers: Z, and W and W+ for a style-based generator."""
        return available_spaces(self.base_model) if self.checkpoint else ()

    def set_space(self, space: str, psi: float | None = None) -> None:
        """Work in `space` (Z, W or W+) with decode-time truncation `psi` (W and W+; None: keep it).

        The current latent is carried over where it can be: Z -> W / W+ through the mapping, W <-> W+
        (W+ -> W takes the mean of the layers); back to Z returns the z last used there (the mapping
        cannot be inverted). Bookmarks and vectors belong to their space: leaving one stashes them, and
        entering W or W+ for the first time maps Z's bookmarks there. Undo history starts afresh (its
        latents have another size). Every view redraws (modelChanged). Raises ValueError for a space
        the model does not have or a psi outside [0, 2].
        """
        if space not in self.spaces():
            raise ValueError(f"the open model has no {space} space (it offers {', '.join(self.spaces()) or 'none'})")
        psi = self.psi if psi is None else float(psi)
        if not 0.0 <= psi <= 2.0:
            raise ValueError(f"psi must be between 0 and 2, not {psi}")
        if space == self.space and psi == self.psi:
            return
        old_space, old_model, base = self.space, self.model, self.base_model
        if space == old_space:  # psi only: the same latents, redrawn
            self.psi = psi
            if self._space_model is not None:
                self._space_model.psi = psi
            self.spaceChanged.emit()
            self.modelChanged.emit()
            self.latentChanged.emit()
            return
        self._stash[old_space] = (self.z.copy(), list(self.bookmarks), dict(self.vectors))
        new_model = space_model(base if self._class_view is None else self._class_view, space, psi)
        with torch.no_grad():
            z = torch.as_tensor(self.z[None], device=self.device)
            if space == "Z":
                new_z = self._stash[space][0] if space in self._stash else np.zeros(self.latent_dim, np.float32)
            elif old_space == "Z":
                new_z = new_model.from_z(z).cpu().numpy()[0]
            else:
                new_z = new_model.from_w(old_model.to_w(z)).cpu().numpy()[0]
            if space in self._stash:
                _, bookmarks, vectors = self._stash[space]
            elif old_space == "Z":
                zs = np.stack([m.z for m in self.bookmarks]) if self.bookmarks else np.zeros((0, base.latent_dim))
                mapped = new_model.from_z(torch.as_tensor(zs, dtype=torch.float32, device=self.device)).cpu().numpy()
                bookmarks, vectors = [Bookmark(m.name, u) for m, u in zip(self.bookmarks, mapped)], {}
            else:
                bookmarks, vectors = [], {}
        self.space, self.psi = space, psi
        self._space_model = None if space == "Z" else new_model
        self.z = np.asarray(new_z, np.float32).copy()
        self.bookmarks, self.vectors = list(bookmarks), dict(vectors)
        self._undo.clear()
        self._redo.clear()
        self._edit_start = None
        self.spaceChanged.emit()
        self.modelChanged.emit()
        self.vectorsChanged.emit()
        self.bookmarksChanged.emit()
        self.historyChanged.emit()
        self.latentChanged.emit()

    @property
    def kind(self) -> str | None:
        return self.checkpoint.kind if self.checkpoint else None

    @property
    def latent_dim(self) -> int:
        model = self.model
        return int(model.latent_dim) if model is not None else 0

    # What the open model can do (engines.models capabilities; False without a model). Views ask
    # these, never the kind, so a model of any kind with the same capabilities works in every tab.
    has_latent = _Capability()  # z -> image (decode): the latent tabs work
    has_encoder = _Capability()  # image -> z (encode): dataset images have latents
    can_project = _Capability()  # a differentiable decode: an image can be projected to a z
    is_autoregressive = _Capability()  # draws pixel by pixel (sample_steps): Replay and the pixel sampler

    @property
    def has_labels(self) -> bool:
        """The checkpoint's dataset has label columns (classes, attributes) to colour and build vectors by."""
        return self.checkpoint is not None and self.checkpoint.has_labels

    def open_checkpoint(self, path: str | Path, device: str | None = None) -> None:
        """Load a checkpoint (raises engines.checkpoint.CheckpointError) and reset z to the origin."""
        target = pick_device(device) if device else self.device
        self.set_checkpoint(load_checkpoint(path, device=target), target)

    def load_checkpoint(self, path: str | Path) -> Checkpoint:
        """Load a checkpoint onto this state's device without making it current (raises CheckpointError)."""
        return load_checkpoint(path, device=self.device)

    def set_checkpoint(self, checkpoint: Checkpoint, device: torch.device | None = None) -> None:
        """Make a loaded checkpoint current (its model on `device`, default this state's) and reset z."""
        thaw_long_lived()  # the model replaced here may sit in reference cycles: see explorer.workers
        self.checkpoint, self.device = checkpoint, device if device is not None else self.device
        self.space, self.psi, self._space_model, self._stash = "Z", 1.0, None, {}
        k = checkpoint.model.num_classes
        self.class_mix = np.eye(k, dtype=np.float32)[0] if k else np.zeros(0, np.float32)
        self._class_view = ClassView(checkpoint.model, torch.from_numpy(self.class_mix)) if k else None
        with self._dataset_lock:
            self._datasets = {}
        self._sha256 = None
        self.vectors = dict(checkpoint.vectors)
        self.bookmarks = []
        self.spaceChanged.emit()
        self._undo.clear()
        self._redo.clear()
        self.z = np.zeros(self.latent_dim, dtype=np.float32)
        self.modelChanged.emit()
        self.vectorsChanged.emit()
        self.bookmarksChanged.emit()
        self.historyChanged.emit()
        self.latentChanged.emit()

    # --- the class of a conditional model ---------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """The open model's classes (0: unconditional, or no model)."""
        return self.base_model.num_classes if self.checkpoint is not None else 0

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.base_model.class_names if self.checkpoint is not None else ()

    def set_class_mix(self, mix: np.ndarray) -> None:
        """Draw with the class blend `mix` (K,) from now on: non-negative weights, normalised to sum 1 (a
        one-hot row is one class). Every view redraws the same latents (z is kept; classChanged, then
        latentChanged). Raises ValueError, changing nothing, for a model without classes or a bad blend."""
        k = self.num_classes
        mix = np.asarray(mix, np.float32).reshape(-1)
        if not k:
            raise ValueError("the open model is not class-conditional")
        if mix.shape != (k,) or not np.all(np.isfinite(mix)) or (mix < 0).any() or mix.sum() <= 0:
            raise ValueError(f"a class blend is {k} non-negative weights, not all zero")
        mix = mix / mix.sum()
        if np.array_equal(mix, self.class_mix):
            return
        self.class_mix = mix
        self._class_view = ClassView(self.base_model, torch.from_numpy(mix.copy()))
        if self._space_model is not None:  # W / W+ map z with the class
            self._space_model = space_model(self._class_view, self.space, self.psi)
        self.classChanged.emit()
        self.latentChanged.emit()

    def set_class(self, index: int, other: int | None = None, t: float = 0.0) -> None:
        """One class (`index`), or with `other` the blend (1 - t) index + t other: class interpolation."""
        k = self.num_classes
        if not k:
            raise ValueError("the open model is not class-conditional")
        mix = np.zeros(k, np.float32)
        if not (0 <= index < k and (other is None or 0 <= other < k) and 0.0 <= t <= 1.0):
            raise ValueError(f"classes are 0..{k - 1} and the blend t is in [0, 1]")
        mix[index] += 1.0 - (t if other is not None else 0.0)
        if other is not None:
            mix[other] += t
        self.set_class_mix(mix)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.checkpoint.path if self.checkpoint else None

    def checkpoint_sha256(self) -> str | None:
        """sha256 of the open checkpoint file (cached while the file is unchanged); None if none is open
        or the file has gone."""
        path = self.checkpoint_path
        files = [Path(f) for f in (self.checkpoint.files or [path])] if path is not None else []
        if not files or not all(f.is_file() for f in files):
            return None
        mtime = max(f.stat().st_mtime for f in files)
        if self._sha256 is None or self._sha256[:2] != (Path(path), mtime):
            self._sha256 = (Path(path), mtime, file_sha256(*files))
        return self._sha256[2]

    def dataset(self, train: bool = False):
        """The open model's dataset split (loaded once, cached; safe to call from worker threads).

        The held-out split falls back on the sample a bundled checkpoint carries when the dataset's
        files are missing (engines.data.sample). Raises engines.data.DatasetError (e.g. MNIST files
        missing, nothing carried) or RuntimeError without a model.
        """
        checkpoint = self.checkpoint
        if checkpoint is None:
            raise RuntimeError("no checkpoint is open")
        with self._dataset_lock:
            if checkpoint is not self.checkpoint:
                raise RuntimeError("the checkpoint changed while its dataset was loading")
            if train not in self._datasets:
                if not checkpoint.dataset:
                    raise DatasetError("the checkpoint does not say which dataset it was trained on")
                if train:
                    self._datasets[train] = load_dataset(DataSpec.from_dict(checkpoint.dataset), train=True)
                else:  # a bundled model carries a few test images for machines without the dataset
                    self._datasets[train] = heldout_or_sample(checkpoint.dataset, checkpoint.sample)
            return self._datasets[train]

    def set_output_range(self, value: tuple[float, float]) -> None:
        """Say which range the open (ONNX) model's images are in, [0, 1] or [-1, 1]: every view redraws,
        z is kept (like a device change). Raises ValueError for a model without a switchable range."""
        model = self.model
        if model is None or not hasattr(model, "set_output_range"):
            raise ValueError("the open model has no output range to set")
        model.set_output_range(value)
        self.modelChanged.emit()
        self.latentChanged.emit()

    def set_device(self, device: str) -> None:
        target = pick_device(device)
        self.device = target
        if self.checkpoint is not None:
            self.checkpoint.model.to(target)
        self.modelChanged.emit()
        self.latentChanged.emit()

    # --- the current latent, with undo ---------------------------------------------------------
    def set_z(self, z: np.ndarray, record: bool = True) -> None:
        """Make `z` current. `record=False` is for the middle of a continuous edit (see begin_edit).
        Raises ValueError, changing nothing, for the wrong size or a NaN/inf value."""
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        if z.shape != (self.latent_dim,):
            raise ValueError(f"z must have {self.latent_dim} values, not {z.shape[0]}")
        if not np.all(np.isfinite(z)):
            raise ValueError("z must hold finite numbers (it holds NaN or inf)")
        if np.array_equal(z, self.z):
            return
        if record and self._edit_start is None:
            self._push_undo(self.z)
        self.z = z.copy()
        self.latentChanged.emit()

    def begin_edit(self) -> None:
        """Start a continuous edit (slider or marker drag): it becomes one undo step."""
        if self._edit_start is None:
            self._edit_start = self.z.copy()

    def end_edit(self) -> None:
        start, self._edit_start = self._edit_start, None
        if start is not None and not np.array_equal(start, self.z):
            self._push_undo(start)

    def _push_undo(self, z: np.ndarray) -> None:
        self._undo.append(z.copy())
        del self._undo[: -self.MAX_HISTORY]
        self._redo.clear()
        self.historyChanged.emit()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_depth(self) -> int:
        """How many undo steps there are (a continuous edit in progress is not one yet)."""
        return len(self._undo)

    def undo(self) -> None:
        if self._undo:
            self._redo.append(self.z.copy())
            self.z = self._undo.pop()
            self.historyChanged.emit()
            self.latentChanged.emit()

    def redo(self) -> None:
        if self._redo:
            self._undo.append(self.z.copy())
            self.z = self._redo.pop()
            self.historyChanged.emit()
            self.latentChanged.emit()

    def randomize(self, seed: int | None = None, temperature: float = 1.0) -> None:
        """z ~ N(0, temperature^2 I) from a visible seed (the next one when none is given). In W / W+ the
        same seed's z is mapped (the same image as in Z) and `temperature` is the truncation psi of
        the draw: u = psi * mapped z, toward the mean-w image."""
        self.set_seed(self.seed + 1 if seed is None else int(seed))
        rng = np.random.default_rng(self.seed)
        if self._space_model is not None:
            z = rng.standard_normal(self.base_model.latent_dim).astype(np.float32)
            with torch.no_grad():
                u = self._space_model.from_z(torch.as_tensor(z[None], device=self.device)).cpu().numpy()[0]
            self.set_z(u * temperature)
            return
        self.set_z(rng.standard_normal(self.latent_dim).astype(np.float32) * temperature)

    def set_seed(self, seed: int) -> None:
        """Set the visible seed without drawing (e.g. from a saved session)."""
        seed = int(seed)
        if seed != self.seed:
            self.seed = seed
            self.seedChanged.emit(seed)

    def reset(self) -> None:
        self.set_z(np.zeros(self.latent_dim, dtype=np.float32))

    # --- bookmarks and vectors -----------------------------------------------------------------
    def add_bookmark(self, name: str | None = None) -> Bookmark:
        mark = Bookmark(name or f"#{len(self.bookmarks) + 1}", self.z.copy())
        self.bookmarks.append(mark)
        self.bookmarksChanged.emit()
        return mark

    def remove_bookmark(self, index: int) -> None:
        del self.bookmarks[index]
        self.bookmarksChanged.emit()

    def rename_bookmark(self, index: int, name: str) -> None:
        self.bookmarks[index].name = name
        self.bookmarksChanged.emit()

    def restore(self, z: np.ndarray, seed: int, bookmarks: list[Bookmark], vectors: dict[str, np.ndarray]) -> None:
        """Replace z (one undo step), seed, bookmarks and vectors at once, as a saved session does.

        Raises ValueError, changing nothing, if any latent does not fit the open model."""
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        checked = {name: np.asarray(v, dtype=np.float32).reshape(-1) for name, v in vectors.items()}
        for what, value in [("z", z), *((f"bookmark {m.name!r}", m.z) for m in bookmarks), *checked.items()]:
            if np.asarray(value).size != self.latent_dim:
                raise ValueError(
                    f"{what} has {np.asarray(value).size} values; the model's latent has {self.latent_dim}"
                )
        self.bookmarks = [Bookmark(m.name, np.asarray(m.z, dtype=np.float32).reshape(-1).copy()) for m in bookmarks]
        self.vectors = checked
        self.set_seed(seed)
        self.bookmarksChanged.emit()
        self.vectorsChanged.emit()
        self.set_z(z)

    def set_vector(self, name: str, vector: np.ndarray) -> None:
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape != (self.latent_dim,):
            raise ValueError(f"vector {name!r} has {vector.shape[0]} values; the model's latent has {self.latent_dim}")
        self.vectors[name] = vector
        self.vectorsChanged.emit()

    def remove_vector(self, name: str) -> None:
        self.vectors.pop(name, None)
        self.vectorsChanged.emit()

    # --- decoding ------------------------------------------------------------------------------
    def decode(self, z: np.ndarray) -> np.ndarray:
        """(D,) or (N, D) latents -> (N, H, W, C) float32 images in [0, 1] (engines.latent.decode_latents)."""
        return decode_latents(self.model, z)
