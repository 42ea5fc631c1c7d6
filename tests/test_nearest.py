"""Memorization check: exact nearest training images in pixel and feature space, the on-disk cache, and the
Nearest tab on the bundled MNIST models (skipped without MNIST) and on a model of a folder of photos."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from engines.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from engines.data import DataSpec, ShapesDataset, load_splits  # noqa: E402
from engines.models.classifier import config_for_dataset  # noqa: E402
from engines.nearest import SpaceIndex, build_index, checkpoint_index, percentile_of  # noqa: E402
from engines.training import create_model  # noqa: E402
from tests.helpers import TINY  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "datasets"
HAVE_MNIST = (MNIST / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
CIFAR_MINI = Path(__file__).parent / "data" / "cifar-mini"
FOLDER = {"name": "folder", "root": str(CIFAR_MINI), "image_size": 32, "channels": 3}
WAIT = 120_000


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache folder for the module (the tab reads $LATENT_EXPLORER_CACHE), so MNIST is indexed once."""
    folder = tmp_path_factory.mktemp("cache")
    old = os.environ.get("LATENT_EXPLORER_CACHE")
    os.environ["LATENT_EXPLORER_CACHE"] = str(folder)
    yield folder
    if old is None:
        del os.environ["LATENT_EXPLORER_CACHE"]
    else:
        os.environ["LATENT_EXPLORER_CACHE"] = old


def test_search_is_exact_and_a_training_image_is_its_own_nearest_at_distance_0() -> None:
    rng = np.random.default_rng(0)
    data = torch.from_numpy(rng.integers(0, 256, (700, 3, 8, 8), dtype=np.uint8))
    index = SpaceIndex(data)
    rows = data.reshape(700, -1).numpy().astype(np.float64) / 255
    queries = np.concatenate([rng.random((20, 192)), rows[:30]])
    d, i = index.search(torch.from_numpy(queries).float(), 5)
    brute = np.sqrt(((queries[:, None, :] - rows[None]) ** 2).sum(-1))
    assert np.array_equal(i, np.argsort(brute, axis=1)[:, :5])
    assert np.allclose(d, np.sort(brute, axis=1)[:, :5], atol=1e-5)
    assert np.array_equal(i[20:, 0], np.arange(30)) and np.all(d[20:, 0] == 0.0)
    features = SpaceIndex(torch.from_numpy(rows[:, :10]).float())
    fd, fi = features.search(torch.from_numpy(rows[:50, :10]).float(), 3)
    assert np.array_equal(fi[:, 0], np.arange(50)) and np.all(fd[:, 0] == 0.0)
    assert percentile_of(0.0, np.array([1.0, 2.0])) == 0 and percentile_of(3.0, np.array([1.0, 2.0])) == 100


def test_a_folder_index_is_cached_on_disk_in_safe_files(tmp_path: Path) -> None:
    splits = load_splits(DataSpec.from_dict(FOLDER))
    first = build_index(splits.train, splits.val, {"spec": FOLDER}, cache_dir=tmp_path)
    assert not first.cached and len(first) == 144
    files = sorted(p.name for p in next(tmp_path.iterdir()).iterdir())
    assert files == ["meta.json", "ref_pixels.npy"]
    ref = np.load(next(tmp_path.glob("*/ref_pixels.npy")), allow_pickle=False)
    assert ref.shape == (16,) and np.all(ref > 0)  # held-out photos are not in the training set
    again = build_index(splits.train, splits.val, {"spec": FOLDER}, cache_dir=tmp_path)
    assert again.cached and np.array_equal(again.reference["pixels"], first.reference["pixels"])
    result = again.query(again.image(17), k=4)["pixels"]
    assert result.indices[0] == 17 and result.distances[0] == 0.0 and result.percentile == 0.0
    assert np.all(np.diff(result.distances) >= 0) and "0th percentile of 16 real held-out" in result.sentence()
    # A held-out photo's nearest distance is one of the reference distances: a middling percentile.
    held = splits.val.get_batch([0])[0][0].numpy()
    assert 0 < again.query(held)["pixels"].percentile < 100
    # Different data (another split) is another cache entry, never a stale one.
    other = build_index(splits.val, splits.train, {"spec": FOLDER}, cache_dir=tmp_path)
    assert not other.cached and len(list(tmp_path.iterdir())) == 2


def test_feature_space_uses_the_classifier_features(tmp_path: Path) -> None:
    train = ShapesDataset(DataSpec("shapes", image_size=28, channels=1), True, length=300)
    held = ShapesDataset(DataSpec("shapes", image_size=28, channels=1), False, length=40)
    classifier = create_model(
        "classifier", config_for_dataset(train, width=8, hidden=32, feature_dim=16), seed=0
    ).eval()
    index = build_index(train, held, {"spec": "shapes-300"}, classifier, "tiny", cache_dir=tmp_path)
    assert set(index.spaces) == {"pixels", "features"} and len(index.reference["features"]) == 40
    result = index.query(index.image(5), k=3)
    assert result["pixels"].indices[0] == 5 and result["pixels"].distances[0] == 0
    assert result["features"].indices[0] == 5 and result["features"].distances[0] < 1e-4
    with torch.no_grad():
        want = classifier.features(torch.from_numpy(index.image(5))[None])[0].numpy()
    got = index.spaces["features"].exact[result["features"].indices[1]].numpy()
    assert np.isclose(result["features"].distances[1], np.linalg.norm(want - got), atol=1e-4)


@pytest.mark.skipif(not HAVE_MNIST, reason="needs MNIST in ../shared/datasets")
def test_bundled_mnist_models_search_pixels_and_lenet_features(cache, monkeypatch) -> None:
    monkeypatch.setenv("LATENT_EXPLORER_DATA", str(MNIST))
    ckpt = load_checkpoint(REPO / "checkpoints" / "vae-mnist-2d.safetensors")
    index, text = checkpoint_index(ckpt)
    assert "60,000 training images; pixels and classifier features; reference: 1,000 test images" == text
    result = index.query(index.image(59_999), k=5)
    assert result["pixels"].indices[0] == 59_999 and result["pixels"].distances[0] == 0.0
    assert result["features"].indices[0] == 59_999 and result["features"].distances[0] < 1e-3
    assert np.median(index.reference["pixels"]) > 1.0  # real test digits are not copies of training digits


@pytest.mark.skipif(not HAVE_MNIST, reason="needs MNIST in ../shared/datasets")
def test_nearest_tab_on_the_bundled_mnist_vae(qtbot, cache, monkeypatch) -> None:
    from explorer.panels.nearest import NearestPanel
    from explorer.state import ExplorerState

    monkeypatch.setenv("LATENT_EXPLORER_DATA", str(MNIST))
    state = ExplorerState()
    state.open_checkpoint(REPO / "checkpoints" / "vae-mnist-2d.safetensors", device="cpu")
    panel = NearestPanel(state)
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    qtbot.waitUntil(lambda: bool(panel.results), timeout=WAIT)
    pixels, features = panel.space_views["pixels"], panel.space_views["features"]
    assert pixels.thumbs.count() == 8 and features.thumbs.count() == 8 and features.isVisible()
    assert np.all(np.diff(pixels.distances) >= 0) and "percentile of 1000 real held-out" in pixels.sentence.text()
    first = panel.results["pixels"].distances[0]
    state.set_z(np.array([2.5, -2.5], np.float32))  # another image: new neighbours
    panel.k_spin.setValue(3)
    qtbot.waitUntil(lambda: pixels.thumbs.count() == 3 and panel.results["pixels"].distances[0] != first, timeout=WAIT)
    assert float(pixels.line.value()) == pytest.approx(panel.results["pixels"].distances[0])


def test_nearest_tab_on_a_folder_model_shows_pixels_only_and_says_when_data_is_gone(
    qtbot, cache, tmp_path: Path
) -> None:
    from explorer.panels.nearest import NearestPanel
    from explorer.state import ExplorerState

    model = create_model("vae", {**TINY["vae"], "image_size": 32, "channels": 3, "likelihood": "gaussian"})
    validation = load_splits(DataSpec.from_dict(FOLDER)).record
    path = save_checkpoint(
        tmp_path / "folder.safetensors", model.eval(), dataset=FOLDER, training={"validation": validation}
    )
    state = ExplorerState()
    state.open_checkpoint(path, device="cpu")
    panel = NearestPanel(state)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitUntil(lambda: bool(panel.results), timeout=WAIT)
    assert set(panel.results) == {"pixels"} and not panel.space_views["features"].isVisible()
    assert "144 training images; pixels only" in panel.status.text() and "16 validation images" in panel.status.text()
    gone = save_checkpoint(
        tmp_path / "gone.safetensors", model.eval(), dataset={**FOLDER, "root": str(tmp_path / "nowhere")}
    )
    state.open_checkpoint(gone, device="cpu")
    qtbot.waitUntil(lambda: "No nearest neighbours" in panel.status.text(), timeout=WAIT)
    assert "does not exist" in panel.status.text()
