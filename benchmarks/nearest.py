"""Memorization check: the k = 8 nearest training images of one image, on MNIST (60,000 x 784) and
CIFAR-10 (50,000 x 3072, the JPEG folder of ../shared/datasets/cifar10-jpg.tar.gz unpacked to a temp
folder, or $CIFAR10_FOLDER), in pixel space (engines.nearest: a bfloat16 product proposes 64
candidates, exact float32 distances rank them) and, for MNIST, in lenet-mnist's feature space.

Queries are held-out images (the test split), one at a time, as the Nearest tab asks. Baseline (same
run): exact float32 brute force, the whole (N, D) matrix times the query. Each answer is checked
against the baseline's (same nearest image). Also timed: building the index (features and the
reference distances of 1,000 test images) and loading it from the cache. Datasets that are not
there are skipped, saying so.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from . import MNIST_ROOT, Row, module_main, p50_p95, percentile, timed

TARGET_S = 0.100


def _cifar_folder() -> Path | None:
    if os.environ.get("CIFAR10_FOLDER"):
        return Path(os.environ["CIFAR10_FOLDER"])
    if Path("/tmp/cifar10/train").is_dir():
        return Path("/tmp/cifar10/train")
    archive = MNIST_ROOT / "cifar10-jpg.tar.gz"
    if not archive.is_file():
        return None
    folder = Path(tempfile.mkdtemp(prefix="bench-cifar10-"))
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder / "train"


def cases():
    from engines.data import DataSpec, load_dataset

    if (MNIST_ROOT / "MNIST" / "raw").is_dir():
        spec = DataSpec("mnist", root=str(MNIST_ROOT))
        yield "MNIST", spec, load_dataset(spec, True), load_dataset(spec, False), "lenet-mnist.safetensors"
    folder = _cifar_folder()
    if folder is not None:
        spec = DataSpec("folder", root=str(folder), image_size=32, channels=3)
        test = DataSpec("folder", root=str(folder.parent / "test"), image_size=32, channels=3)
        yield "CIFAR-10", spec, load_dataset(spec, True), load_dataset(test, True), None


def measure(name, spec, train, test, classifier_file, repeat: int) -> list[Row]:
    import torch

    from engines.checkpoint import load_checkpoint
    from engines.nearest import build_index

    classifier = None
    if classifier_file:
        classifier = load_checkpoint(Path(__file__).resolve().parents[1] / "checkpoints" / classifier_file).model.eval()
    cache = Path(tempfile.mkdtemp(prefix="bench-nearest-"))
    t0 = time.perf_counter()
    index = build_index(train, test, {"spec": spec.to_dict()}, classifier, classifier_file or "", cache)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = build_index(train, test, {"spec": spec.to_dict()}, classifier, classifier_file or "", cache)
    load = time.perf_counter() - t0
    assert again.cached
    queries = [test.get_batch([i])[0][0].numpy() for i in range(repeat)]
    full = index.pixels.reshape(len(index), -1).to(torch.float32) / 255.0
    norms = (full * full).sum(1)

    def brute(q: np.ndarray) -> int:
        x = torch.from_numpy(q).reshape(1, -1)
        return int((norms - 2 * (full @ x.T)[:, 0]).argmin())

    answers = iter(queries)
    ours = timed(lambda: index.query(next(answers), k=8), repeat)
    answers = iter(queries)
    base = timed(lambda: brute(next(answers)), repeat)
    same = all(int(index.query(q, 1)["pixels"].indices[0]) == brute(q) for q in queries[:10])
    n, d = full.shape
    features = "features" in index.spaces
    ratio = f"{percentile(ours, 50) / percentile(base, 50):.2f}x brute force (p50)"
    return [
        Row(
            "Nearest training images",
            f"{name}, {n:,} x {d}, k = 8, pixels" + (" + LeNet features" if features else "") + f"; {repeat} queries",
            p50_p95(ours),
            f"{p50_p95(base)} (float32 brute force, pixels only)",
            ratio + ("" if same else " (ANSWERS DIFFER)"),
            "p95 <= 100 ms",
            percentile(ours, 95) <= TARGET_S and same,
        ),
        Row(
            "Nearest index",
            f"{name}: build ({'features, ' if features else ''}nearest distances of 1,000 test images) / load from the disk cache",
            f"build {build:.1f} s, cached {load:.2f} s",
            "",
            "",
        ),
    ]


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    rows = []
    for case in cases():
        rows += measure(*case, repeat=20 if quick else 60)
    if not rows:
        rows.append(Row("Nearest training images", "skipped: neither MNIST nor CIFAR-10 is here", "", "", ""))
    return rows


if __name__ == "__main__":
    raise SystemExit(module_main("nearest", run))
