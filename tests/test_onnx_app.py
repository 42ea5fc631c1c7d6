"""The real app on models from elsewhere (pytest-qt): a plain-PyTorch MLP VAE exported to ONNX drives
every tab, an ONNX generator projects images, a plugin installed in a temporary site directory opens
its model, and bad files give one line while the app keeps its model."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from engines import latent  # noqa: E402
from engines.cli import main as cli_main  # noqa: E402
from engines.data import load_dataset  # noqa: E402
from engines.device import available_devices  # noqa: E402
from engines.export import sidecar_paths  # noqa: E402
from engines.projection import image_to_tensor  # noqa: E402
from explorer import panels  # noqa: E402
from explorer.panels import explore as explore_module  # noqa: E402
from explorer.pixels import mosaic, to_uint8  # noqa: E402
from explorer.state import file_sha256  # noqa: E402
from tests.onnx_helpers import SPEC_28, export_mlp_vae, readme_block, train_mlp_vae  # noqa: E402

WAIT = 20_000


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    vae = train_mlp_vae()
    return vae, export_mlp_vae(vae, tmp_path_factory.mktemp("mlp-app"))


def decode(vae, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return vae.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)).permute(0, 2, 3, 1).numpy()


def means(vae, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return vae.encode(images)[0].numpy()


def decoded_current(window) -> bool:
    z = window.explore.last_decoded_z
    return z is not None and np.array_equal(z, window.state.z)


def tab(window, key: str):
    panel = window.extra_panels[key]
    for i in range(window.tabs.count()):
        widget = window.tabs.widget(i)
        if widget is panel or getattr(widget, "widget", lambda: None)() is panel:
            window.tabs.setCurrentIndex(i)
    return panel


def test_every_tab_works_on_an_exported_plain_pytorch_vae(make_window, mlp, qtbot, tmp_path):
    vae, path = mlp
    window = make_window(path)
    window.resize(1200, 800)
    window.show()
    state, explore = window.state, window.explore
    assert state.checkpoint.format == "onnx" and window.banner.text() == ""
    assert state.latent_dim == 20 and state.has_encoder and state.can_project
    assert "decoder.onnx" in window.windowTitle()
    dock = window.info.plain_text()
    assert "ONNX" in dock and "onnxruntime (CPU)" in dock and "encoder.onnx: mean and log-variance" in dock

    # Explore: the sliders move z, the image is the model's decode, principal directions of the encoded data.
    qtbot.waitUntil(lambda: explore.stats is not None, timeout=WAIT)
    assert "of 20 dimensions active" in explore.stats_label.text()
    explore.sliders.slider(3).setValue(150)
    assert state.z[3] == pytest.approx(1.5)
    qtbot.waitUntil(lambda: decoded_current(window), timeout=WAIT)
    np.testing.assert_allclose(explore.current_image(), decode(vae, state.z)[0], atol=1e-5)
    explore.mode_combo.setCurrentIndex(1)
    assert explore.sliders.name(0) == "PC1"
    mean, directions, _std = explore.stats["pca"]
    state.set_z(mean)  # every slider at 0
    explore.sliders.slider(0).setValue(100)  # +1 standard deviation along the first principal direction
    moved = state.z - mean
    np.testing.assert_allclose(moved / np.linalg.norm(moved), directions[:, 0], atol=1e-4)
    explore.mode_combo.setCurrentIndex(0)

    # An image file: its latent is the encoder's mean.
    data = load_dataset(SPEC_28, train=False)
    picture = (data.get_batch([3])[0][0, 0].numpy() * 255).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "three.png")
    window.open_path(tmp_path / "three.png")
    expected = means(vae, image_to_tensor(tmp_path / "three.png", 28, 1).unsqueeze(0))[0]
    qtbot.waitUntil(lambda: np.allclose(state.z, expected, atol=1e-4), timeout=WAIT)

    # Maps: tiles are the model's images of the plane's grid; the scatter is the encoder's means.
    maps = tab(window, "maps")
    maps.res_spin.setValue(4)
    qtbot.waitUntil(lambda: maps.tiles is not None and maps.tiles.resolution == 4 and not maps.busy(), timeout=WAIT)
    qtbot.waitUntil(
        lambda: maps.encoded.data is not None and len(maps.scatter_rows) == len(maps.encoded.data.indices) > 0,
        timeout=WAIT,
    )
    picture = np.ascontiguousarray(to_uint8(mosaic(decode(vae, maps.tiles.grid), 4, 4))[::-1])[..., 0]
    assert np.abs(maps.image_item.image.astype(int) - picture.astype(int)).max() <= 1
    encoded = maps.encoded.data
    images, _ = data.get_batch(encoded.indices[:200])
    np.testing.assert_allclose(encoded.latents[:200], means(vae, images), atol=1e-4)

    # Interpolate: the exported strip's frames are the model's images of the path.
    interp = tab(window, "interpolation")
    interp.frames_spin.setValue(5)
    job = interp.export("png", tmp_path / "walk.png")
    with qtbot.waitSignal(job.finished, timeout=WAIT):
        pass
    path_latents = np.load(sidecar_paths(tmp_path / "walk.png")[0])
    strip = np.asarray(Image.open(tmp_path / "walk.png"))
    frames = to_uint8(decode(vae, path_latents))[..., 0]
    assert strip.shape == (28, 5 * 28)
    assert max(np.abs(strip[:, 28 * i : 28 * (i + 1)].astype(int) - frames[i].astype(int)).max() for i in range(5)) <= 1

    # Arithmetic: a label vector from encoded dataset images, and exemplar arithmetic from the gallery.
    arith = tab(window, "arithmetic")
    qtbot.waitUntil(lambda: arith.attribute_combo.count() > 0 and arith.encoded.data is not None, timeout=WAIT)
    arith.attribute_combo.setCurrentText("size (high vs low)")
    arith.save_label_button.click()
    rows = arith.encoded.data
    size = rows.label_names.index("size")
    np.testing.assert_allclose(
        state.vectors["size"], latent.attribute_vector(rows.latents, rows.labels[:, size]), atol=1e-6
    )
    qtbot.waitUntil(lambda: arith.gallery.count() == 24, timeout=WAIT)
    g = arith.gallery_latents.copy()
    for slot, row in (("A", 0), ("B", 1), ("C", 2)):
        arith.gallery.clearSelection()
        arith.gallery.item(row).setSelected(True)
        arith.add_buttons[slot].click()
    np.testing.assert_allclose(arith.result, g[0] - g[1] + g[2], atol=1e-5)

    # Bookmarks, and a session that records the hash of every file of the model.
    window.bookmark_action.trigger()
    assert len(state.bookmarks) == 1
    saved = state.z.copy()
    assert window.save_session(tmp_path / "session.json")
    doc = json.loads((tmp_path / "session.json").read_text())
    files = [
        path,
        path.with_name("decoder.onnx.data"),
        path.with_name("encoder.onnx"),
        path.with_name("encoder.onnx.data"),
        path.with_name("decoder.json"),
    ]
    assert doc["checkpoint"] == str(path.resolve()) and doc["sha256"] == file_sha256(*files)
    state.reset()
    assert window.load_session(tmp_path / "session.json")
    np.testing.assert_array_equal(state.z, saved)
    assert window.message_box is None

    # The output range, switched in the Model dock: the images follow, z stays.
    window.tabs.setCurrentIndex(0)
    assert window.info.range_row.isVisibleTo(window)
    window.info.range_combo.textActivated.emit("[-1, 1]")
    qtbot.waitUntil(lambda: decoded_current(window), timeout=WAIT)
    np.testing.assert_allclose(explore.current_image(), (decode(vae, state.z)[0] + 1) / 2, atol=1e-5)
    np.testing.assert_array_equal(state.z, saved)
    assert "set by the user" in window.info.plain_text()
    window.info.range_combo.textActivated.emit("[0, 1]")

    # Every device present (CUDA where there is one): the same images.
    for device in available_devices():
        window.set_device(device)
        assert state.model.device.type == device
        np.testing.assert_allclose(state.decode(state.z)[0], decode(vae, state.z)[0], atol=1e-4)
    window.set_device("cpu")


def test_projection_through_an_onnx_generator_in_the_app(
    make_window, gan_checkpoint, qtbot, tmp_path, monkeypatch, capsys
):
    assert cli_main(["export", str(gan_checkpoint), "--onnx", str(tmp_path)]) == 0
    monkeypatch.setattr(explore_module, "PROJECTION_STEPS", 30)
    window = make_window(tmp_path / f"{gan_checkpoint.stem}.onnx")
    assert window.state.can_project and not window.state.has_encoder
    assert window.explore.encode_button.text() == "Project image…" and window.explore.encode_button.isEnabled()
    Image.fromarray(np.full((28, 28), 200, dtype=np.uint8)).save(tmp_path / "grey.png")
    window.open_path(tmp_path / "grey.png")
    qtbot.waitUntil(lambda: np.any(window.state.z != 0), timeout=WAIT)
    assert "Projected" in window.statusBar().currentMessage()


def test_dropping_a_sidecar_opens_its_model_and_bad_onnx_keeps_the_open_one(make_window, mlp, vae_checkpoint, tmp_path):
    _vae, path = mlp
    window = make_window(vae_checkpoint)
    window.open_path(path.with_name("decoder.json"))
    assert window.state.checkpoint_path == path
    (tmp_path / "broken.onnx").write_bytes(path.read_bytes()[:1000])
    assert not window.open_checkpoint(tmp_path / "broken.onnx")
    assert window.state.checkpoint_path == path
    assert "broken.onnx is not an ONNX model" in window.banner.text() and "\n" not in window.banner.text()


# --- plugins ---------------------------------------------------------------------------------------------


@pytest.fixture
def blob_plugin(tmp_path, monkeypatch):
    """README's example plugin: a package with a `latent_explorer.models` entry point, installed into a
    temporary site directory."""
    site = tmp_path / "site"
    (site / "blob_plugin").mkdir(parents=True)
    (site / "blob_plugin" / "__init__.py").write_text(readme_block("# blob_plugin/__init__.py"))  # README's own
    dist = site / "blob_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: blob-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[latent_explorer.models]\nblob = blob_plugin:loader\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    import sys

    sys.modules.pop("blob_plugin", None)


def test_a_plugin_installed_in_a_site_directory_opens_its_model_in_the_app(make_window, blob_plugin, tmp_path, qtbot):
    from explorer.main_window import open_filters

    (tmp_path / "small.blob").write_text(json.dumps({"sigma": 0.2}))
    window = make_window(tmp_path / "small.blob")
    window.show()
    state = window.state
    assert window.banner.text() == "" and state.checkpoint.format == "plugin:blob"
    assert state.latent_dim == 2 and state.can_project and not state.has_encoder
    assert "plugin Blob models — Blob" in window.info.plain_text() and "blob_plugin:loader" in window.info.plain_text()
    assert "Blob models (*.blob)" in open_filters()
    state.set_z(np.array([0.5, -0.3], np.float32))
    qtbot.waitUntil(lambda: decoded_current(window), timeout=WAIT)
    image = window.explore.current_image()[..., 0]
    row, col = np.unravel_index(np.argmax(image), image.shape)
    grid = np.linspace(-1, 1, 28)
    assert grid[col] == pytest.approx(np.tanh(0.5), abs=0.08) and grid[row] == pytest.approx(np.tanh(-0.3), abs=0.08)
    maps = tab(window, "maps")
    maps.res_spin.setValue(3)
    qtbot.waitUntil(lambda: maps.tiles is not None and maps.tiles.resolution == 3, timeout=WAIT)
    assert len(panels.EXTRA_PANELS) >= 3

    # A file the plugin cannot read: one line, and the model stays.
    (tmp_path / "bad.blob").write_text("{}")
    assert not window.open_checkpoint(tmp_path / "bad.blob")
    message = window.banner.text()
    assert "the plugin Blob models could not open bad.blob: KeyError: 'sigma'" in message
    assert "\n" not in message and state.checkpoint_path == tmp_path / "small.blob"
