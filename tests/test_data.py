"""Tests for engines.data: CPU only, no downloads, no real datasets needed (one test uses real MNIST if present)."""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engines.data import (
    DATASET_NAMES,
    CelebADataset,
    DatasetError,
    DataSpec,
    FacesDataset,
    ShapesDataset,
    default_shape,
    load_dataset,
)
from engines.data.faces import CX, EYE_DX, EYE_Y, LENS_R, MOUTH_Y

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


# --------------------------------------------------------------------------- helpers


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write MNIST-format IDX files (big-endian header, then raw uint8)."""
    folder.mkdir(parents=True, exist_ok=True)
    n, rows, cols = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 2051, n, rows, cols) + images.astype(np.uint8).tobytes()
    )
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes()
    )


@pytest.fixture
def fake_mnist(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    train_x = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    train_y = np.arange(20) % 10
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw, "train", train_x, train_y)
    write_idx(raw, "t10k", rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8), np.arange(7) % 10)
    return tmp_path, train_x, train_y


def assert_batch_matches_items(ds, indices) -> None:
    images, labels = ds.get_batch(torch.as_tensor(indices))
    items = [ds[i] for i in indices]
    assert images.dtype == torch.float32 and labels.dtype == torch.float32
    assert torch.equal(images, torch.stack([x for x, _ in items]))
    assert torch.equal(labels, torch.stack([y for _, y in items]))
    # Lists give the same as tensors.
    images2, labels2 = ds.get_batch(list(indices))
    assert torch.equal(images, images2) and torch.equal(labels, labels2)


# --------------------------------------------------------------------------- spec


def test_spec_round_trips_through_json() -> None:
    spec = DataSpec("faces", root=None, image_size=32, channels=1, binarize="stochastic")
    again = DataSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    # Keys from a future version are ignored.
    assert DataSpec.from_dict({**spec.to_dict(), "extra": 1}) == spec


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(name="imagenet"),
        dict(name="mnist", image_size=30),
        dict(name="mnist", channels=2),
        dict(name="mnist", binarize="random"),
    ],
)
def test_spec_rejects_bad_values(kwargs) -> None:
    with pytest.raises(DatasetError):
        DataSpec(**kwargs)


def test_default_shapes() -> None:
    assert default_shape("mnist") == (28, 1)
    assert default_shape("cifar10") == (32, 3)
    assert default_shape("faces") == (64, 3)
    assert all(default_shape(n)[0] in (28, 32, 64) for n in DATASET_NAMES)
    with pytest.raises(DatasetError, match="Unknown dataset"):
        default_shape("nope")


# --------------------------------------------------------------------------- procedural


@pytest.mark.parametrize("cls,name", [(ShapesDataset, "shapes"), (FacesDataset, "faces")])
def test_procedural_is_deterministic_and_varied(cls, name) -> None:
    spec = DataSpec(name, image_size=32, channels=3)
    a, b = cls(spec, length=50), cls(spec, length=50)
    # Different access order on the two instances: an image must not depend on what was rendered before.
    xb, yb = b[17]
    xa, ya = a[17]
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[3][0], a[4][0])
    # Test split differs from train split at the same index.
    test = cls(spec, train=False, length=50)
    assert not torch.equal(test[17][0], xa)
    # Default lengths.
    assert len(load_dataset(spec)) == 50_000 and len(load_dataset(spec, train=False)) == 10_000
    # No global RNG consumed.
    state = np.random.get_state()[1].copy()
    torch_state = torch.random.get_rng_state()
    cls(spec, length=10).get_batch(range(10))
    assert np.array_equal(np.random.get_state()[1], state) and torch.equal(torch.random.get_rng_state(), torch_state)


@pytest.mark.parametrize("name", ["shapes", "faces"])
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 1)])
def test_procedural_shapes_and_ranges(name, size, channels) -> None:
    ds = load_dataset(DataSpec(name, image_size=size, channels=channels))
    x, y = ds.get_batch(torch.arange(40))
    assert x.shape == (40, channels, size, size)
    assert y.shape == (40, len(ds.label_names)) == (40, 6)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x.std() > 0.05
    assert set(ds.attribute_kinds) == set(ds.label_names)
    assert ds.skipped == {} and ds.skipped_files == []
    assert_batch_matches_items(ds, [5, 0, 39, 5])


def test_shapes_attributes() -> None:
    ds = ShapesDataset(DataSpec("shapes", image_size=32, channels=3), length=300)
    assert ds.label_names == ["shape", "color", "size", "x", "y", "rotation"]
    assert ds.attribute_kinds["shape"] == "categorical"
    _, y = ds.get_batch(torch.arange(300))
    assert set(y[:, 0].tolist()) == {0.0, 1.0, 2.0}
    cont = y[:, 1:]
    assert cont.min() >= 0 and cont.max() <= 1 and (cont.max(0).values - cont.min(0).values > 0.8).all()
    # Position is visible: mean brightness lies on the left half when x < 0.5.
    x, y = ds.get_batch(torch.arange(300))
    background = x.permute(1, 0, 2, 3).reshape(3, -1).median(1).values.view(1, 3, 1, 1)
    fg = (x - background).abs().sum(1)  # difference from the plain background
    left = fg[y[:, 3] < 0.3].mean(0)
    assert left[:, :16].sum() > 3 * left[:, 16:].sum()


def test_faces_attributes_are_binary_continuous_and_independent() -> None:
    ds = FacesDataset(DataSpec("faces", image_size=32, channels=1), length=400)
    assert ds.label_names == ["smiling", "glasses", "hair_color", "face_width", "skin_tone", "eye_size"]
    _, y = ds.get_batch(torch.arange(400))
    assert set(y[:, :2].unique().tolist()) == {0.0, 1.0}
    assert 0.35 < y[:, 0].mean() < 0.65 and 0.35 < y[:, 1].mean() < 0.65
    corr = torch.corrcoef(y.T)
    off_diag = corr - torch.diag(torch.diag(corr))
    assert off_diag.abs().max() < 0.2


def _region(size: int, cx: float, cy: float, half_w: float, half_h: float) -> tuple[slice, slice]:
    r = lambda v: int(round(v * size))  # noqa: E731
    return slice(r(cy - half_h), r(cy + half_h)), slice(r(cx - half_w), r(cx + half_w))


@pytest.mark.parametrize("size,channels", [(64, 3), (32, 1)])
def test_faces_attributes_are_visible(size, channels) -> None:
    ds = FacesDataset(DataSpec("faces", image_size=size, channels=channels), length=240)
    x, y = ds.get_batch(torch.arange(240))
    gray = x.mean(1)  # (N, S, S)

    def diff(col: int) -> torch.Tensor:
        on = y[:, col] == 1
        return gray[on].mean(0) - gray[~on].mean(0)

    eyes = _region(size, CX, EYE_Y, EYE_DX + LENS_R, LENS_R)
    mouth = _region(size, CX, MOUTH_Y, 0.14, 0.09)
    corner = _region(size, 0.1, 0.1, 0.08, 0.08)
    glasses, smile = diff(1), diff(0)
    # Glasses are dark frames round the eyes: clearly darker there, nothing changes in the background.
    assert glasses[eyes].mean() < -0.04 and glasses[eyes].min() < -0.25
    assert glasses[corner].abs().max() < 1e-6
    assert glasses[mouth].abs().mean() < 0.02
    # The smile changes the mouth region and nothing around the eyes.
    assert smile[mouth].abs().max() > 0.25
    assert smile[eyes].abs().mean() < 0.02


def test_binarize_threshold_and_stochastic() -> None:
    base = DataSpec("faces", image_size=28, channels=1)
    gray, _ = FacesDataset(base, length=30).get_batch(range(30))
    thr, _ = FacesDataset(DataSpec("faces", image_size=28, channels=1, binarize="threshold"), length=30).get_batch(
        range(30)
    )
    assert set(thr.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(thr, (gray > 0.5).float())

    spec = DataSpec("faces", image_size=28, channels=1, binarize="stochastic")
    s1 = FacesDataset(spec, length=30)
    s2 = FacesDataset(spec, length=30)
    a, _ = s1.get_batch(range(30))
    b = torch.stack([s2[i][0] for i in reversed(range(30))]).flip(0)
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(a, b)  # reproducible, independent of order and instance
    assert torch.equal(a, s1.get_batch(range(30))[0])  # sampled once, not per access
    assert not torch.equal(a, thr)
    assert abs(a.mean().item() - gray.mean().item()) < 0.02  # Bernoulli(x) has mean x
    # Pixels at exactly 0 / 1 stay 0 / 1.
    assert (a[gray == 0] == 0).all() and (a[gray == 1] == 1).all()


def test_index_errors() -> None:
    ds = ShapesDataset(DataSpec("shapes"), length=5)
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(IndexError):
        ds.get_batch([0, 7])
    assert torch.equal(ds[-1][0], ds[4][0])
    assert ds.get_batch([])[0].shape == (0, 1, 28, 28)
    assert len(list(iter(ds))) == 5  # the legacy iteration protocol stops on IndexError


# --------------------------------------------------------------------------- torchvision


def test_procedural_pickles_without_cache_and_works_with_dataloader() -> None:
    ds = FacesDataset(DataSpec("faces", image_size=64, channels=3), length=1000)
    x0 = ds.get_batch(range(8))[0]
    blob = pickle.dumps(ds)
    assert len(blob) < 100_000  # the 1000x3x64x64 cache is not shipped to workers
    assert torch.equal(pickle.loads(blob).get_batch(range(8))[0], x0)
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=8)))
    assert torch.equal(x, x0) and y.shape == (8, 6)


def test_fake_mnist_round_trip(fake_mnist) -> None:
    root, train_x, train_y = fake_mnist
    ds = load_dataset(DataSpec("mnist", root=str(root)))
    assert len(ds) == 20 and len(load_dataset(DataSpec("mnist", root=str(root)), train=False)) == 7
    assert ds.label_names == [str(d) for d in range(10)]
    assert all(ds.attribute_kinds[n] == "class" for n in ds.label_names)
    x, y = ds[13]
    assert x.shape == (1, 28, 28)
    assert torch.equal(x[0], torch.from_numpy(train_x[13]).float() / 255)
    assert y.shape == (10,) and y.sum() == 1 and y[train_y[13]] == 1
    assert_batch_matches_items(ds, [0, 19, 13])


def test_mnist_resize_and_rgb(fake_mnist) -> None:
    root, train_x, _ = fake_mnist
    base = load_dataset(DataSpec("mnist", root=str(root)))
    for size in (32, 64):
        ds = load_dataset(DataSpec("mnist", root=str(root), image_size=size, channels=3))
        x, _ = ds[2]
        assert x.shape == (3, size, size)
        assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])  # gray replicated
        # Resizing keeps the content: mean brightness is preserved (to within rounding).
        assert abs(x.mean().item() - base[2][0].mean().item()) < 0.01
        assert_batch_matches_items(ds, [1, 2, 3])
    bin_ds = load_dataset(DataSpec("mnist", root=str(root), binarize="stochastic"))
    assert set(bin_ds.get_batch(range(20))[0].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(
        bin_ds.get_batch(range(20))[0],
        load_dataset(DataSpec("mnist", root=str(root), binarize="stochastic")).get_batch(range(20))[0],
    )


def test_fake_fashion_mnist(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for prefix, n in (("train", 12), ("t10k", 4)):
        write_idx(tmp_path / "FashionMNIST" / "raw", prefix, rng.integers(0, 256, (n, 28, 28)), np.arange(n) % 10)
    ds = load_dataset(DataSpec("fashion-mnist", root=str(tmp_path), image_size=32))
    assert len(ds) == 12 and ds.label_names[0] == "T-shirt/top" and len(ds.label_names) == 10
    assert ds[0][0].shape == (1, 32, 32) and ds[3][1][3] == 1


class _FakeCIFAR10:
    """Stands in for torchvision's CIFAR10, which checks MD5s of the real archive files."""

    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    calls: list[dict] = []

    def __init__(self, root: str, train: bool, download: bool) -> None:
        self.calls.append({"root": root, "train": train, "download": download})
        n = 6 if train else 2
        self.data = np.zeros((n, 32, 32, 3), dtype=np.uint8)
        self.data[..., 0] = 255  # pure red
        self.data[1, ..., 1] = 255  # yellow
        self.targets = list(range(n))


def test_cifar10_path(monkeypatch) -> None:
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _FakeCIFAR10)
    rgb = load_dataset(DataSpec("cifar10", root="unused", image_size=32, channels=3))
    assert len(rgb) == 6 and rgb.label_names == _FakeCIFAR10.classes
    x, y = rgb[1]
    assert torch.equal(x[:, 5, 5], torch.tensor([1.0, 1.0, 0.0])) and y.argmax() == 1
    gray = load_dataset(DataSpec("cifar10", root="unused", image_size=28, channels=1), train=False)
    x, _ = gray[0]
    assert x.shape == (1, 28, 28) and abs(x[0, 14, 14].item() - 76 / 255) < 1e-6  # round(0.299 * 255) = 76
    assert_batch_matches_items(gray, [1, 0])
    load_dataset(DataSpec("cifar10", download=True, image_size=32, channels=3))
    assert _FakeCIFAR10.calls[-1] == {"root": "./data", "train": True, "download": True}  # passed through


def test_celeba_loader_path(monkeypatch, tmp_path: Path) -> None:
    import torchvision.datasets

    (tmp_path / "celeba" / "img_align_celeba").mkdir(parents=True)
    Image.new("RGB", (178, 218), (10, 200, 30)).save(tmp_path / "celeba" / "img_align_celeba" / "000001.jpg")

    class FakeCelebA:
        base_folder = "celeba"

        def __init__(self, root: str, split: str, target_type: str, download: bool) -> None:
            assert target_type == "attr" and split in ("train", "test")
            self.root, self.filename = root, ["000001.jpg"]
            self.attr = torch.tensor([[1, 0]])
            self.attr_names = ["Smiling", "Eyeglasses", ""]

    monkeypatch.setattr(torchvision.datasets, "CelebA", FakeCelebA)
    ds = load_dataset(DataSpec("celeba", root=str(tmp_path), image_size=64, channels=3))
    assert ds.label_names == ["Smiling", "Eyeglasses"]
    x, y = ds[0]
    assert x.shape == (3, 64, 64) and torch.equal(y, torch.tensor([1.0, 0.0])) and x[1].mean() > 0.7


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "celeba"])
def test_missing_torchvision_files(tmp_path: Path, name: str) -> None:
    root = tmp_path / "empty"
    with pytest.raises(DatasetError) as info:
        load_dataset(DataSpec(name, root=str(root)))
    msg = str(info.value)
    assert str(root) in msg and "download=True" in msg and "--data-root" in msg


def test_celeba_dataset_crops_and_labels(tmp_path: Path) -> None:
    # torchvision's CelebA checks MD5s of the real files, so test our lazy reader directly.
    names = ["img0.jpg", "img1.jpg"]
    for k, n in enumerate(names):
        a = np.zeros((218, 178, 3), dtype=np.uint8)
        a[20:198] = 200 if k == 0 else 60  # the central 178x178 square; the strips above/below stay black
        Image.fromarray(a).save(tmp_path / n, quality=95)
    attrs = torch.tensor([[0, 1, 1], [1, 0, 0]])
    spec = DataSpec("celeba", image_size=32, channels=3)
    ds = CelebADataset(spec, str(tmp_path), names, attrs, ["A", "B", "C"])
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and torch.equal(y, torch.tensor([0.0, 1.0, 1.0]))
    assert (x - 200 / 255).abs().max() < 0.03  # the crop removed the black strips
    assert ds.attribute_kinds == {"A": "binary", "B": "binary", "C": "binary"}
    assert_batch_matches_items(ds, [1, 0])


@pytest.mark.skipif(
    not (SHARED_DATASETS / "MNIST" / "raw").is_dir(), reason=f"real MNIST not present at {SHARED_DATASETS}"
)
def test_real_mnist() -> None:
    train = load_dataset(DataSpec("mnist", root=str(SHARED_DATASETS)))
    test = load_dataset(DataSpec("mnist", root=str(SHARED_DATASETS)), train=False)
    assert (len(train), len(test)) == (60_000, 10_000)
    x, y = train.get_batch(torch.arange(0, 60_000, 600))
    assert x.shape == (100, 1, 28, 28) and 0.08 < x.mean() < 0.2
    assert torch.equal(y.sum(1), torch.ones(100))


# --------------------------------------------------------------------------- folder


def _png_bytes(color, size=(40, 30), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes(size=(50, 50)) -> bytes:
    rng = np.random.default_rng(0)  # noisy content so the JPEG has real data to truncate
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def test_folder_loads_good_images_and_counts_skips(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "a.png").write_bytes(_png_bytes((255, 0, 0)))
    (root / "b.jpg").write_bytes(_jpeg_bytes())
    (root / "gray.png").write_bytes(_png_bytes(128, mode="L"))
    (root / "alpha.png").write_bytes(_png_bytes((0, 255, 0, 255), mode="RGBA"))
    (root / "nested" / "deeper" / "c.png").write_bytes(_png_bytes((0, 0, 255), size=(10, 80)))
    (root / "notes.png").write_text("this is not a picture\n")
    (root / "readme.txt").write_text("hello\n")
    jpeg = _jpeg_bytes((120, 120))
    (root / "nested" / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / ".hidden.png").write_bytes(_png_bytes((1, 2, 3)))  # hidden: ignored silently
    (root / ".cache").mkdir()
    (root / ".cache" / "x.png").write_bytes(_png_bytes((1, 2, 3)))

    ds = load_dataset(DataSpec("folder", root=str(root), image_size=32, channels=3))
    assert len(ds) == 5
    assert ds.skipped == {"not an image": 2, "truncated": 1}
    assert sorted(Path(p).name for p, _ in ds.skipped_files) == ["cut.jpg", "notes.png", "readme.txt"]
    assert dict((Path(p).name, r) for p, r in ds.skipped_files)["cut.jpg"] == "truncated"
    assert ds.label_names == [] and ds.attribute_kinds == {}
    x, y = ds.get_batch(torch.arange(5))
    assert x.shape == (5, 3, 32, 32) and y.shape == (5, 0)
    # Sorted walk: a.png comes first and is pure red.
    assert torch.allclose(x[0, :, 16, 16], torch.tensor([1.0, 0.0, 0.0]))
    assert_batch_matches_items(ds, [4, 0, 2])
    # No split: the "test" set is the same images.
    assert torch.equal(
        load_dataset(DataSpec("folder", root=str(root), image_size=32, channels=3), train=False).get_batch(range(5))[0],
        x,
    )
    # Grayscale output uses ITU-R 601 luma: red -> 0.299.
    g = load_dataset(DataSpec("folder", root=str(root), image_size=28, channels=1))
    assert g[0][0].shape == (1, 28, 28) and abs(g[0][0][0, 14, 14].item() - 0.299) < 0.005


def test_a_folder_of_class_folders_labels_each_image_with_its_folder(tmp_path: Path) -> None:
    # torchvision's ImageFolder layout (CIFAR-10's JPEGs come so): root/<class>/..., classes sorted.
    root = tmp_path / "photos"
    for name, colour in (("dog", (255, 0, 0)), ("cat", (0, 255, 0)), ("ship", (0, 0, 255))):
        (root / name / "more").mkdir(parents=True)
        (root / name / "1.png").write_bytes(_png_bytes(colour))
        (root / name / "more" / "2.png").write_bytes(_png_bytes(colour))
    (root / "ship" / "broken.png").write_text("not a picture")  # skipped files take no label
    ds = load_dataset(DataSpec("folder", root=str(root), image_size=28, channels=3))
    assert ds.label_names == ["cat", "dog", "ship"] and set(ds.attribute_kinds.values()) == {"class"}
    x, y = ds.get_batch(torch.arange(len(ds)))
    assert len(ds) == 6 and y.sum(dim=1).tolist() == [1.0] * 6
    # each image's label is its folder: the colour of the image says which folder it came from
    colour_of = {"cat": 1, "dog": 0, "ship": 2}
    for image, label in zip(x, y):
        assert int(image[:, 14, 14].argmax()) == colour_of[ds.label_names[int(label.argmax())]]
    # an image in the root itself, or a single folder, means no classes
    (root / "loose.png").write_bytes(_png_bytes((9, 9, 9)))
    assert load_dataset(DataSpec("folder", root=str(root), image_size=28, channels=3)).label_names == []
    assert load_dataset(DataSpec("folder", root=str(root / "dog"), image_size=28, channels=3)).label_names == []


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(DataSpec("folder", root=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no files"):
        load_dataset(DataSpec("folder", root=str(tmp_path / "empty")))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_text("nope")
    (junk / "b.txt").write_text("nope")
    with pytest.raises(DatasetError, match="2 not an image"):
        load_dataset(DataSpec("folder", root=str(junk)))
    with pytest.raises(DatasetError, match="needs a root"):
        load_dataset(DataSpec("folder"))


# --------------------------------------------------------------------------- hygiene


def test_engines_do_not_import_qt() -> None:
    # At run time, in a fresh interpreter (pytest-qt may already have imported PySide6 here); the static
    # rule for every module is the import-linter contract (tests/test_layering.py).
    code = (
        "import sys, engines, engines.data, engines.models, engines.training, engines.checkpoint, "
        "engines.evaluation, engines.cli; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'explorer')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
