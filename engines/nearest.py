"""Memorization check: the nearest training images of any image, in pixel space and in a classifier's
feature space, beside the distances real held-out images have to the training set.

Search is exact L2. In pixel space a bfloat16 matrix product over all training images proposes
`CANDIDATES` candidates (half the memory and time of float32: 20 ms for CIFAR-10's 50,000 x 3072 on
one 2-core CPU), and exact float32 distances from the uint8 pixels rank them; so a training image's
nearest neighbour is itself at distance 0. Features (a few dozen per image) are searched in float32.

What is slow to make is cached on disk, keyed by the dataset spec, its split and a SHA-256 of its
pixels (and the classifier file's): the classifier's features of every training image and the
reference distances (each held-out image's nearest training distance). Safe formats only: .npy
read with allow_pickle=False, and JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import write_atomically

log = logging.getLogger(__name__)

CACHE_ENV = "LATENT_EXPLORER_CACHE"
CANDIDATES = 64  # proposed by the bfloat16 product, ranked exactly
REFERENCE_COUNT = 1000  # held-out images whose nearest distances make the reference distribution
VERSION = 1  # of the cache's contents
_CHUNK = 4096


def cache_root() -> Path:
    """$LATENT_EXPLORER_CACHE, else ~/.cache/latent-explorer; the index lives in its nearest/."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "latent-explorer") / "nearest"


class SpaceIndex:
    """Exact L2 nearest neighbours among N vectors: uint8 pixels (scaled to [0, 1]) or float32 features.
    A matrix product proposes candidates (bfloat16 for pixels), exact distances rank them."""

    def __init__(self, vectors: torch.Tensor) -> None:
        self.pixels = vectors.dtype == torch.uint8
        self.exact = vectors.reshape(vectors.shape[0], -1).contiguous()
        values = self._values(self.exact)
        self.norms = (values * values).sum(1)
        # Pixels: a bfloat16 copy proposes candidates; features are small enough to search exactly.
        self.coarse = values.to(torch.bfloat16) if self.pixels else values

    def __len__(self) -> int:
        return self.exact.shape[0]

    def _values(self, rows: torch.Tensor) -> torch.Tensor:
        return rows.to(torch.float32) / 255.0 if self.pixels else rows.to(torch.float32)

    @torch.no_grad()
    def search(self, queries: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices), each (Q, k), nearest first, for queries (Q, D) float32 (pixels in [0, 1])."""
        queries = queries.reshape(queries.shape[0], -1).to(torch.float32)
        k = min(k, len(self))
        pool = min(len(self), max(CANDIDATES, 4 * k))
        out_d, out_i = [], []
        for start in range(0, queries.shape[0], 256):
            q = queries[start : start + 256]
            score = self.norms[None, :] - 2.0 * (q.to(self.coarse.dtype) @ self.coarse.T).to(torch.float32)
            cand = score.topk(pool, dim=1, largest=False).indices  # (q, pool)
            # Exact distances of the candidates, from the stored rows (the product's expansion is not).
            rows = self._values(self.exact[cand.reshape(-1)]).view(*cand.shape, -1)
            dist = (rows - q[:, None, :]).pow(2).sum(-1).sqrt()
            order = dist.argsort(dim=1)[:, :k]
            out_d.append(dist.gather(1, order))
            out_i.append(cand.gather(1, order))
        return torch.cat(out_d).numpy(), torch.cat(out_i).numpy()


@dataclass(frozen=True)
class Neighbours:
    """The k nearest training images of one image in one space."""

    space: str  # "pixels" or "features"
    indices: np.ndarray  # (k,) into the index's training images
    distances: np.ndarray  # (k,) L2, nearest first
    percentile: float  # of the nearest distance among the reference distances (0-100)
    reference: np.ndarray  # sorted nearest distances of real held-out images to the training set

    def sentence(self) -> str:
        """e.g. "nearest 4.21: at the 3rd percentile of real held-out images' nearest distances (median 6.0)"."""
        median = float(np.median(self.reference)) if len(self.reference) else float("nan")
        return (
            f"nearest {self.distances[0]:.3g}: at the {ordinal(self.percentile)} percentile of {len(self.reference)} "
            f"real held-out images' nearest distances (median {median:.3g})"
        )


def ordinal(p: float) -> str:
    n = int(round(p))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def percentile_of(value: float, reference: np.ndarray) -> float:
    """Percent of the reference below `value` (ties count half)."""
    if len(reference) == 0:
        return float("nan")
    below = np.searchsorted(reference, value, side="left")
    upto = np.searchsorted(reference, value, side="right")
    return 100.0 * (below + upto) / (2 * len(reference))


def _uint8_pixels(dataset, should_stop: Callable[[], bool] | None = None) -> torch.Tensor:
    """Every image of `dataset` as uint8 (N, C, H, W), as the model saw it (binarized, channels expanded)."""
    n = len(dataset)
    out = None
    for start in range(0, n, _CHUNK):
        if should_stop is not None and should_stop():
            raise InterruptedError("stopped")
        images, _ = dataset.get_batch(np.arange(start, min(n, start + _CHUNK)))
        chunk = (images * 255.0).round_().to(torch.uint8)
        if out is None:
            out = torch.empty((n, *chunk.shape[1:]), dtype=torch.uint8)
        out[start : start + chunk.shape[0]] = chunk
    return out


@torch.no_grad()
def _features(classifier, images: torch.Tensor) -> torch.Tensor:
    """float32 (N, F) features of uint8 or float images, in chunks."""
    was = classifier.training
    classifier.eval()
    try:
        parts = []
        for start in range(0, images.shape[0], 1024):
            x = images[start : start + 1024]
            x = x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32)
            parts.append(classifier.features(x.to(classifier.device)).float().cpu())
        return torch.cat(parts)
    finally:
        classifier.train(was)


def _load_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _save_npy(path: Path, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    write_atomically(path, buffer.getvalue())


class NearestIndex:
    """The training images of a dataset, searchable in pixel space (and in feature space with a
    classifier), with the reference distribution of real held-out images' nearest distances."""

    def __init__(
        self,
        pixels: torch.Tensor,
        reference: dict[str, np.ndarray],
        classifier=None,
        features: torch.Tensor | None = None,
        key: str = "",
        cached: bool = False,
    ) -> None:
        self.pixels = pixels  # uint8 (N, C, H, W)
        self.spaces = {"pixels": SpaceIndex(pixels)}
        self.classifier = classifier
        if classifier is not None and features is not None:
            self.spaces["features"] = SpaceIndex(features)
        self.reference = {name: np.sort(np.asarray(r, dtype=np.float32)) for name, r in reference.items()}
        self.key, self.cached = key, cached

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.pixels.shape[1:])

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def query(self, image: np.ndarray | torch.Tensor, k: int = 8) -> dict[str, Neighbours]:
        """The k nearest training images of `image` (C, H, W) in [0, 1], per space."""
        x = torch.as_tensor(np.asarray(image, dtype=np.float32))
        if tuple(x.shape) != self.image_shape:
            raise ValueError(f"the image is {tuple(x.shape)}, the training images {self.image_shape}")
        queries = {"pixels": x.reshape(1, -1)}
        if "features" in self.spaces:
            queries["features"] = _features(self.classifier, x[None])
        out = {}
        for name, q in queries.items():
            d, i = self.spaces[name].search(q, k)
            ref = self.reference.get(name, np.zeros(0, np.float32))
            out[name] = Neighbours(name, i[0], d[0], percentile_of(float(d[0, 0]), ref), ref)
        return out

    def image(self, index: int) -> np.ndarray:
        """Training image `index` as float32 (C, H, W) in [0, 1]."""
        return self.pixels[int(index)].numpy().astype(np.float32) / 255.0


def build_index(
    train,
    heldout,
    description: dict[str, Any],
    classifier=None,
    classifier_id: str = "",
    cache_dir: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> NearestIndex:
    """The index of `train`'s images, with the reference distances of (up to REFERENCE_COUNT of)
    `heldout`'s; features when a classifier is given whose input shape fits. `description` (dataset
    spec and split, JSON-able) and the pixels' SHA-256 key the cache in `cache_dir` (default
    cache_root())."""
    pixels = _uint8_pixels(train, should_stop)
    if classifier is not None and tuple(classifier.image_shape) != tuple(pixels.shape[1:]):
        log.info("classifier reads %s images, the data is %s: pixel space only", classifier.image_shape, pixels.shape)
        classifier, classifier_id = None, ""
    digest = hashlib.sha256(memoryview(pixels.numpy()).cast("B")).hexdigest()
    key_text = json.dumps(
        {"v": VERSION, "data": description, "pixels": digest, "classifier": classifier_id, "n": REFERENCE_COUNT},
        sort_keys=True,
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()[:32]
    folder = (cache_dir or cache_root()) / key
    names = ["pixels"] + (["features"] if classifier is not None else [])
    files = {f"ref_{n}": folder / f"ref_{n}.npy" for n in names}
    if classifier is not None:
        files["features"] = folder / "features.npy"
    try:
        if all(f.is_file() for f in files.values()):
            loaded = {name: _load_npy(path) for name, path in files.items()}
            features = torch.from_numpy(loaded["features"]) if classifier is not None else None
            if features is None or features.shape[0] == pixels.shape[0]:
                reference = {n: loaded[f"ref_{n}"] for n in names}
                return NearestIndex(pixels, reference, classifier, features, key, cached=True)
    except (OSError, ValueError) as error:  # a damaged cache is rebuilt
        log.warning("nearest-neighbour cache %s unreadable (%s): rebuilding it", folder, error)

    features = _features(classifier, pixels) if classifier is not None else None
    index = NearestIndex(pixels, {}, classifier, features, key)
    count = min(REFERENCE_COUNT, len(heldout)) if heldout is not None else 0
    reference: dict[str, np.ndarray] = {}
    if count:
        held = _uint8_pixels(_First(heldout, count), should_stop)
        values = held.to(torch.float32) / 255.0
        reference["pixels"] = index.spaces["pixels"].search(values.reshape(count, -1), 1)[0][:, 0]
        if features is not None:
            reference["features"] = index.spaces["features"].search(_features(classifier, held), 1)[0][:, 0]
    index.reference = {n: np.sort(r) for n, r in reference.items()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            _save_npy(files[f"ref_{name}"], index.reference.get(name, np.zeros(0, np.float32)))
        if features is not None:
            _save_npy(files["features"], features.numpy())
        write_atomically(folder / "meta.json", key_text.encode())
    except OSError as error:  # a read-only home: the index works, uncached
        log.warning("could not cache the nearest-neighbour index in %s: %s", folder, error)
    return index


class _First:
    """The first n images of a dataset (its get_batch)."""

    def __init__(self, dataset, n: int) -> None:
        self.dataset, self.n = dataset, n

    def __len__(self) -> int:
        return self.n

    def get_batch(self, indices):
        return self.dataset.get_batch(indices)


def checkpoint_index(
    ckpt, cache_dir: Path | None = None, should_stop: Callable[[], bool] | None = None, with_classifier: bool = True
) -> tuple[NearestIndex, str]:
    """The index of the images a checkpoint's model trained on, and a line saying what it searches.

    Training images: the training part of the run's recorded split (engines.data.split), else the whole
    training split (runs from before validation splits). Reference: the test split (the carried test
    images where its files are missing), else the validation images (a folder). Features: the dataset's
    bundled classifier (lenet-mnist, attributes-faces), when there is one. Raises DatasetError when the
    training images cannot be loaded.
    """
    from .checkpoint import CheckpointError, load_checkpoint
    from .data import DatasetError, DataSpec, load_dataset, load_splits
    from .data.sample import heldout_or_sample
    from .evaluation import find_classifier

    if not ckpt.dataset:
        raise DatasetError("the checkpoint does not say which dataset it was trained on")
    spec = DataSpec.from_dict(ckpt.dataset)
    record = (ckpt.training or {}).get("validation")
    if record:
        splits = load_splits(spec, record)
        train, val = splits.train, splits.val
    else:
        train, val = load_dataset(spec, train=True), None
    heldout, held_name = None, "no held-out images"
    if spec.name != "folder":
        try:
            heldout = heldout_or_sample(ckpt.dataset, ckpt.sample)
            held_name = "carried test images" if getattr(heldout, "is_sample", False) else "test images"
        except DatasetError:
            heldout = None
    if heldout is None and val is not None:
        heldout, held_name = val, "validation images"
    classifier, classifier_id = None, ""
    if with_classifier:
        try:
            path = find_classifier(spec.name, data=ckpt.dataset, labels=ckpt.label_names)
            classifier = load_checkpoint(path).model.eval()
            classifier_id = f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
        except (ValueError, CheckpointError, OSError):
            classifier = None
    index = build_index(
        train, heldout, {"spec": ckpt.dataset, "validation": record}, classifier, classifier_id, cache_dir, should_stop
    )
    spaces = "pixels and classifier features" if "features" in index.spaces else "pixels only (no classifier fits)"
    count = len(next(iter(index.reference.values()), []))
    text = f"{len(index):,} training images; {spaces}; reference: {count:,} {held_name}"
    return index, text
