"""The main window and the Explore tab, driven through real widgets (offscreen)."""

from __future__ import annotations

import json
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLabel

from engines.checkpoint import load_checkpoint, save_checkpoint
from engines.images import unit_to_uint8
from engines.projection import image_to_tensor
from explorer import app as app_module
from explorer import settings
from explorer.decoder import LatentDecoder
from explorer.panels import explore as explore_module
from explorer.workers import running_jobs

WAIT = 10_000  # ms; generous because the test machine may be busy


def decoded_current(window) -> bool:
    z = window.explore.last_decoded_z
    return z is not None and np.array_equal(z, window.state.z)


def drop_file(widget, path: Path) -> None:
    """Drag a file over `widget` and drop it (the widget's handlers are called directly: offscreen
    Qt delivers no drop events without a real drag in progress)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with warnings.catch_warnings():  # PySide marks the only Qt 6 constructor deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(10, 10), *args)
    enter.ignore()
    widget.dragEnterEvent(enter)
    assert enter.isAccepted(), f"{type(widget).__name__} refuses {path.name}"
    widget.dropEvent(QDropEvent(QPointF(10, 10), *args))


# --- exploring ---------------------------------------------------------------------------------------
def test_dragging_a_slider_changes_the_pixels_and_is_one_undo_step(make_window, vae_checkpoint, qtbot):
    window = make_window(vae_checkpoint)
    window.resize(900, 600)
    view, slider = window.explore.image_view, window.explore.sliders.slider(0)
    qtbot.waitUntil(lambda: decoded_current(window), timeout=WAIT)
    before = view.grab().toImage()

    slider.setSliderDown(True)  # what a mouse press on the handle does: emits sliderPressed
    for position in (50, 120, 200, 300):  # moving the handle: valueChanged while dragging
        slider.setSliderPosition(position)
        assert window.state.z[0] == pytest.approx(position / 100)
    qtbot.waitUntil(lambda: decoded_current(window), timeout=WAIT)  # the image follows during the drag
    slider.setSliderDown(False)  # release: emits sliderReleased
    after = view.grab().toImage()
    assert after != before
    assert window.explore.sliders.value_label(0).text() == "3.00"

    window.undo_action.trigger()  # the whole drag is one step
    assert np.array_equal(window.state.z, np.zeros(4, dtype=np.float32))
    assert not window.state.can_undo()
    qtbot.waitUntil(lambda: decoded_current(window), timeout=WAIT)
    assert view.grab().toImage() == before
    assert slider.value() == 0  # the slider followed the state, without echoing back
    window.redo_action.trigger()
    assert window.state.z[0] == pytest.approx(3.0)


def test_undo_and_redo_of_random_draws(make_window, vae_checkpoint):
    window = make_window(vae_checkpoint)
    state = window.state
    assert not window.undo_action.isEnabled()
    window.randomize_action.trigger()
    first = state.z.copy()
    window.randomize_action.trigger()
    second = state.z.copy()
    assert state.seed == 2 and window.explore.seed_spin.value() == 2
    assert not np.array_equal(first, second) and np.any(first != 0)
    window.undo_action.trigger()
    assert np.array_equal(state.z, first)
    window.undo_action.trigger()
    assert np.array_equal(state.z, np.zeros(4, dtype=np.float32))
    assert not window.undo_action.isEnabled() and window.redo_action.isEnabled()
    window.redo_action.trigger()
    window.redo_action.trigger()
    assert np.array_equal(state.z, second)
    window.reset_action.trigger()
    assert not np.any(state.z)


def test_editing_the_seed_redraws_that_z(make_window, vae_checkpoint):
    window = make_window(vae_checkpoint)
    window.randomize_action.trigger()
    drawn = window.state.z.copy()  # seed 1
    window.randomize_action.trigger()
    window.explore.seed_spin.setValue(1)  # typing a seed and pressing Enter
    assert np.array_equal(window.state.z, drawn)
    window.explore.temperature_spin.setValue(0.5)
    np.testing.assert_allclose(window.state.z, drawn * 0.5, rtol=1e-6)


def test_stale_decode_requests_are_dropped(state_with_vae, qtbot):
    decoder = LatentDecoder()
    decoder.set_model(state_with_vae.model)
    shown: list[tuple[np.ndarray, np.ndarray]] = []
    decoder.decoded.connect(lambda z, image: shown.append((z, image)))
    zs = [np.full(4, i / 10.0, dtype=np.float32) for i in range(50)]
    for z in zs:  # as fast as a slider can emit: the GUI thread never waits
        decoder.request(z)
    qtbot.waitUntil(lambda: bool(shown) and np.array_equal(shown[-1][0], zs[-1]), timeout=WAIT)
    qtbot.wait(100)  # nothing older may arrive after the newest
    assert decoder.request_count == 50
    assert decoder.decode_count <= 10, decoder.decode_count  # the queue was drained to the latest
    assert np.array_equal(shown[-1][0], zs[-1])
    np.testing.assert_allclose(shown[-1][1], state_with_vae.decode(zs[-1])[0], atol=1e-6)
    assert decoder.stop()


def test_principal_direction_sliders_for_a_12_dim_vae(make_window, vae12_checkpoint, qtbot):
    window = make_window(vae12_checkpoint)
    explore = window.explore
    qtbot.waitUntil(lambda: explore.stats is not None, timeout=WAIT)
    assert explore.mode_combo.isEnabled()
    explore.mode_combo.setCurrentIndex(1)
    sliders = explore.sliders
    assert sliders.count() == 12 and sliders.name(0) == "PC1"
    mean, directions, std = explore.stats["pca"]
    start = window.state.z.copy()
    sliders.slider(0).setValue(100)  # +1 standard deviation along the first principal direction
    moved = window.state.z - start
    np.testing.assert_allclose(moved / np.linalg.norm(moved), directions[:, 0], atol=1e-4)
    assert float(sliders.coordinates(window.state.z)[0]) == pytest.approx(1.0, abs=1e-4)


def test_gan_has_isotropic_prior_and_raw_axes(make_window, gan_checkpoint):
    window = make_window(gan_checkpoint)
    explore = window.explore
    assert explore.sliders.count() == 16 and explore.sliders.name(0) == "z0"
    assert not explore.mode_combo.isEnabled() and "isotropic" in explore.mode_combo.toolTip()
    assert explore.encode_button.text() == "Project image…"
    assert explore.temperature_label.text() == "Truncation ψ"


def test_kl_indicators_grey_out_a_collapsed_dimension(make_window, vae_checkpoint, tmp_path, qtbot):
    ckpt = load_checkpoint(vae_checkpoint)
    head = ckpt.model.encoder[-1]  # Linear(fc, 2D): rows 0..D-1 are mu, D..2D-1 log-variance
    with torch.no_grad():
        for row in (2, 4 + 2):  # dim 2: mu = 0, logvar = 0 for every image -> KL exactly 0
            head.weight[row].zero_()
            head.bias[row].zero_()
    path = save_checkpoint(tmp_path / "collapsed.safetensors", ckpt.model, dataset=ckpt.dataset)
    window = make_window(path)
    explore = window.explore
    qtbot.waitUntil(lambda: explore.stats is not None, timeout=WAIT)
    assert explore.stats["kl"][2] == pytest.approx(0.0, abs=1e-6)
    sliders = explore.sliders
    assert not sliders.is_active(2)
    assert not sliders.indicator(2).active and sliders.indicator(2).isVisibleTo(sliders)
    assert any(sliders.is_active(d) for d in (0, 1, 3))
    assert "inactive" in sliders.indicator(2).toolTip()
    assert f"{sum(sliders.is_active(d) for d in range(4))} of 4 dimensions active" in explore.stats_label.text()


# --- image -> latent ---------------------------------------------------------------------------------
def test_vae_encodes_a_dropped_image_and_a_dataset_image(make_window, vae_checkpoint, tmp_path, qtbot):
    window = make_window(vae_checkpoint)
    state = window.state
    picture = np.zeros((28, 28), dtype=np.uint8)
    picture[8:20, 8:20] = 255
    Image.fromarray(picture).save(tmp_path / "square.png")
    drop_file(window.explore.image_view, tmp_path / "square.png")
    qtbot.waitUntil(lambda: np.any(state.z != 0), timeout=WAIT)
    with torch.no_grad():
        mu, _ = state.model.encode(image_to_tensor(tmp_path / "square.png", 28, 1).unsqueeze(0))
    np.testing.assert_allclose(state.z, mu[0].numpy(), atol=1e-5)

    encoded = state.z.copy()
    window.explore.dataset_button.click()
    qtbot.waitUntil(lambda: not np.array_equal(state.z, encoded), timeout=WAIT)
    window.undo_action.trigger()
    assert np.array_equal(state.z, encoded)


def test_gan_projection_can_be_cancelled_and_leaves_no_thread(
    make_window, gan_checkpoint, tmp_path, qtbot, monkeypatch
):
    monkeypatch.setattr(explore_module, "PROJECTION_STEPS", 100_000)  # far too long to finish by itself
    window = make_window(gan_checkpoint)
    explore = window.explore
    Image.fromarray(np.full((28, 28), 200, dtype=np.uint8)).save(tmp_path / "grey.png")
    explore.encode_file(str(tmp_path / "grey.png"))
    job = explore.image_job()
    assert job is not None and explore.cancel_button.isVisibleTo(window)
    qtbot.waitUntil(lambda: explore.progress.value() >= 3, timeout=WAIT)  # it is running
    with qtbot.waitSignal(job.finished, timeout=WAIT):
        qtbot.mouseClick(explore.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=WAIT)  # finished is emitted just before the thread ends
    qtbot.waitUntil(lambda: running_jobs() == [], timeout=WAIT)  # (the decoder's threads are jobs too)
    assert not np.any(window.state.z)  # a cancelled projection changes nothing
    assert explore.image_job() is None and not explore.cancel_button.isVisibleTo(window)
    assert "Cancelled" in window.statusBar().currentMessage()


def test_gan_projection_sets_z(make_window, gan_checkpoint, tmp_path, qtbot, monkeypatch):
    monkeypatch.setattr(explore_module, "PROJECTION_STEPS", 30)
    window = make_window(gan_checkpoint)
    Image.fromarray(np.full((28, 28), 200, dtype=np.uint8)).save(tmp_path / "grey.png")
    window.open_path(tmp_path / "grey.png")  # what dropping an image on the window does
    qtbot.waitUntil(lambda: np.any(window.state.z != 0), timeout=WAIT)
    assert "Projected" in window.statusBar().currentMessage()
    assert window.state.can_undo()


# --- files: open, recent, drop, errors ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["random bytes", "truncated", "pickle", "foreign json"])
def test_a_bad_checkpoint_shows_a_message_and_keeps_the_model(make_window, vae_checkpoint, tmp_path, qtbot, kind):
    window = make_window(vae_checkpoint)
    bad = tmp_path / "bad.safetensors"
    if kind == "random bytes":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "truncated":
        bad.write_bytes(vae_checkpoint.read_bytes()[:3000])
    elif kind == "pickle":
        bad = tmp_path / "model.pt"
        bad.write_bytes(pickle.dumps({"state_dict": [1, 2, 3]}))
    else:
        bad.write_text(json.dumps({"not": "a checkpoint"}))
    assert window.open_checkpoint(bad) is False

    box = window.message_box
    assert box is not None and box.isVisible() and bad.name in box.text()
    assert bad.name in window.banner.text() and bad.name in window.statusBar().currentMessage()
    if kind == "pickle":
        assert "pickle" in box.text().lower()
    box.close()
    assert window.state.checkpoint_path == vae_checkpoint and window.state.kind == "vae"
    window.randomize_action.trigger()  # still usable
    qtbot.waitUntil(lambda: decoded_current(window), timeout=WAIT)
    assert np.any(window.state.z != 0)


def test_dropping_a_checkpoint_opens_it_and_recent_files_update(make_window, vae_checkpoint, gan_checkpoint, qtbot):
    window = make_window(vae_checkpoint)
    assert settings.recent_files() == [str(vae_checkpoint.resolve())]
    drop_file(window, gan_checkpoint)
    qtbot.waitUntil(lambda: window.state.kind == "gan", timeout=WAIT)
    assert window.state.checkpoint_path == gan_checkpoint
    assert gan_checkpoint.name in window.windowTitle()
    assert settings.recent_files() == [str(gan_checkpoint.resolve()), str(vae_checkpoint.resolve())]
    window.recent_menu.aboutToShow.emit()  # what opening the menu does
    entries = [a for a in window.recent_menu.actions() if a.text().startswith("&")]
    assert [a.toolTip() for a in entries] == settings.recent_files()
    entries[1].trigger()  # File > Open Recent > the VAE
    assert window.state.kind == "vae"
    assert settings.recent_files()[0] == str(vae_checkpoint.resolve())


def test_info_panel_describes_the_model(make_window, vae_checkpoint):
    window = make_window(vae_checkpoint)
    text = window.info.plain_text()
    for expected in (
        "VAE",
        "shapes",
        "28 × 28 × 1",
        "4 dimensions",
        "Steps",
        "30",
        "Trained on",
        "cpu",
        "test_neg_elbo",
        "123.4",
    ):
        assert expected in text, expected
    assert window.device_combo.currentText() == "cpu"


def test_info_panel_shows_nested_metrics_one_per_row(make_window, vae_checkpoint, tmp_path):
    from engines.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(vae_checkpoint)
    path = save_checkpoint(
        tmp_path / "m.safetensors",
        ckpt.model,
        dataset=ckpt.dataset,
        metrics={
            "eval": {"iw_nll": 87.3879, "split": "test", "classifier_test": {"acc": 0.99}, "per_epoch": list(range(9))}
        },
    )
    window = make_window(path)
    cells = window.info.plain_text().splitlines()  # a table's plain text: one cell a line
    pairs = set(zip(cells, cells[1:]))
    for row in (
        ("eval", "iw_nll"),
        ("iw_nll", "87.39"),
        ("split", "test"),
        ("eval › classifier_test", "acc"),
        ("acc", "0.99"),
        ("per_epoch", "9 entries"),
    ):
        assert row in pairs, (row, cells)


# --- sessions and export ---------------------------------------------------------------------------------
class FakeInterpolationPanel:
    def __init__(self) -> None:
        self.data = {"a": 1, "frames": [0.0, 0.5]}
        self.loaded = None

    def session_data(self) -> dict:
        return self.data

    def load_session_data(self, data: dict) -> None:
        self.loaded = data


def test_session_round_trip(make_window, vae_checkpoint, tmp_path):
    window = make_window(vae_checkpoint)
    panel = FakeInterpolationPanel()
    window.extra_panels["interpolation"] = panel
    state = window.state
    state.randomize(7)
    state.add_bookmark("first")
    state.randomize(8)
    state.add_bookmark()
    state.set_vector("smile", np.arange(4, dtype=np.float32))
    state.set_z(np.array([0.1, -0.2, 0.3, -0.4], dtype=np.float32))
    saved_z = state.z.copy()
    marks = [(m.name, m.z.copy()) for m in state.bookmarks]
    path = tmp_path / "session.json"
    assert window.save_session(path)
    doc = json.loads(path.read_text())
    assert doc["interpolation"] == panel.data and doc["sha256"] == state.checkpoint_sha256()

    state.reset()
    state.remove_bookmark(0)
    state.remove_vector("smile")
    state.set_seed(0)
    assert window.load_session(path)
    np.testing.assert_array_equal(state.z, saved_z)
    assert state.seed == 8 and window.explore.seed_spin.value() == 8
    assert [(m.name, m.z.tolist()) for m in state.bookmarks] == [(n, z.tolist()) for n, z in marks]
    np.testing.assert_array_equal(state.vectors["smile"], np.arange(4, dtype=np.float32))
    assert panel.loaded == panel.data
    assert window.bookmarks.list.count() == 2
    assert window.message_box is None  # same checkpoint: no warning


def test_loading_a_session_of_a_changed_checkpoint_warns(make_window, vae_checkpoint, tmp_path):
    copy = tmp_path / "model.safetensors"
    shutil.copy(vae_checkpoint, copy)
    window = make_window(copy)
    window.state.randomize(3)
    assert window.save_session(tmp_path / "s.json")
    ckpt = load_checkpoint(copy)
    save_checkpoint(copy, ckpt.model, dataset=ckpt.dataset, metrics={"changed": 1.0})  # same shape, new bytes
    window.state.reset()
    assert window.load_session(tmp_path / "s.json")
    assert "sha256" in window.banner.text() and window.message_box is not None
    window.message_box.close()
    assert window.state.seed == 3  # applied anyway


def test_bookmark_strip_adds_jumps_and_deletes(make_window, vae_checkpoint, qtbot):
    window = make_window(vae_checkpoint)
    state, strip = window.state, window.bookmarks
    state.randomize(1)
    window.bookmark_action.trigger()
    marked = state.z.copy()
    state.randomize(2)
    strip.add_button.click()
    assert strip.list.count() == 2  # at once; the thumbnails follow from a worker
    qtbot.waitUntil(lambda: strip.thumbnail_count() == 2, timeout=WAIT)
    strip.list.itemClicked.emit(strip.list.item(0))
    np.testing.assert_array_equal(state.z, marked)
    strip.list.setCurrentRow(0)
    strip.delete_button.click()
    assert strip.list.count() == 1 and len(state.bookmarks) == 1
    assert strip.thumbnail_count() == 1  # the one left keeps its thumbnail: nothing decoded again
    state.rename_bookmark(0, "renamed")
    assert strip.list.item(0).text() == "renamed" and strip.thumbnail_count() == 1


def test_export_png_at_4x_and_latent_round_trip(make_window, vae_checkpoint, tmp_path):
    window = make_window(vae_checkpoint)
    window.state.randomize(5)
    assert window.export_image(tmp_path / "x.png", scale=4)
    with Image.open(tmp_path / "x.png") as png:
        assert png.size == (28 * 4, 28 * 4)
        big = np.asarray(png)
    small = (np.clip(window.state.decode(window.state.z)[0, :, :, 0], 0, 1) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(big, np.kron(small, np.ones((4, 4), dtype=np.uint8)))  # nearest neighbour

    assert window.export_latent(tmp_path / "z.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), window.state.z)
    assert window.export_latent(tmp_path / "z.json")
    assert json.loads((tmp_path / "z.json").read_text())["z"] == pytest.approx(window.state.z.tolist())


# --- app start ------------------------------------------------------------------------------------------
def test_build_window_opens_the_checkpoint_given(make_window, vae_checkpoint):
    window = make_window(vae_checkpoint)
    assert window.state.kind == "vae" and vae_checkpoint.name in window.windowTitle()
    assert window.explore.pages.currentWidget() is window.explore.latent_page
    assert window.tabs.tabText(0) == "Explore"


def test_without_arguments_the_first_repository_checkpoint_opens(make_window, gan_checkpoint, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setattr(app_module, "DEFAULT_CHECKPOINT_DIR", folder)
    empty = make_window()
    assert empty.state.checkpoint is None
    assert empty.explore.gate.currentIndex() == 0  # the message page, not the content
    assert "File > Open a checkpoint" in empty.explore.gate.message.text()
    shutil.copy(gan_checkpoint, folder / "b.safetensors")
    assert make_window().state.checkpoint_path == folder / "b.safetensors"


def test_help_mentions_the_subcommands(capsys):
    assert app_module.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(word in out for word in ("train", "eval", "sample", "--device"))
    assert app_module.main(["--device", "no-such-device"]) == 2


def test_pixelcnn_window_samples(make_window, pixelcnn_checkpoint, qtbot):
    window = make_window(pixelcnn_checkpoint)
    explore = window.explore
    assert explore.pages.currentWidget() is explore.pixel_page
    assert "no latent" in explore.pixel_page.findChildren(QLabel)[0].text()
    assert not window.bookmark_action.isEnabled() and window.randomize_action.isEnabled()
    explore.sample_button.click()
    job = explore.sample_job()
    with qtbot.waitSignal(job.finished, timeout=30_000):
        pass
    image = explore.pixel_view.array()
    assert image is not None and image.shape == (28, 28, 1) and set(np.unique(image)) <= {0, 255}
    assert window.state.seed == 1
    expected = window.state.model.sample(1, generator=torch.Generator().manual_seed(1))[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(image, unit_to_uint8(expected))  # the model's own sample for the seed


def test_window_layout_is_remembered(make_window, vae_checkpoint, qtbot):
    first = make_window(vae_checkpoint)
    first.show()
    qtbot.waitExposed(first)
    first.bookmarks_dock.hide()
    first.close()
    store = settings.app_settings()
    assert store.value("window/geometry") and store.value("window/state") and store.value("explore/splitter")
    second = make_window(vae_checkpoint)
    second.show()
    qtbot.waitExposed(second)
    # (the size itself is not compared: offscreen Qt clamps restored geometry to its 800x600 screen)
    assert second.bookmarks_dock.isHidden() and not second.info_dock.isHidden()


def test_keyboard_shortcuts(make_window, vae_checkpoint, qtbot):
    window = make_window(vae_checkpoint)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=WAIT)  # shortcuts go to the active window
    target = window.explore.image_view  # focus on a widget that does not take the keys itself
    target.setFocus()
    qtbot.keyClick(target, Qt.Key.Key_R)
    assert window.state.seed == 1 and np.any(window.state.z != 0)
    qtbot.keyClick(target, Qt.Key.Key_B)
    assert len(window.state.bookmarks) == 1
    qtbot.keyClick(target, Qt.Key.Key_0)
    assert not np.any(window.state.z)
    qtbot.keyClick(target, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.state.seed == 1 and np.any(window.state.z != 0)
    qtbot.keyClick(target, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert not np.any(window.state.z)


def test_extra_panels_are_added_if_importable(make_window, vae_checkpoint, monkeypatch, caplog, tmp_path):
    import sys
    import types

    from explorer import main_window

    class DemoPanel(QLabel):
        def __init__(self, state, parent=None):
            super().__init__("demo", parent)
            self.state = state

        def session_data(self) -> dict:
            return {"z0": float(self.state.z[0])}

    module = types.ModuleType("demo_panel_module")
    module.DemoPanel = DemoPanel
    monkeypatch.setitem(sys.modules, "demo_panel_module", module)
    monkeypatch.setattr(
        main_window,
        "EXTRA_PANELS",
        [("Missing", "explorer.panels.no_such_panel", "Nope"), ("Demo", "demo_panel_module", "DemoPanel")],
    )
    window = make_window(vae_checkpoint)
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Explore", "Demo"]
    assert "Missing" in caplog.text and "skipped" in caplog.text
    panel = window.extra_panels["demo_panel_module"]
    assert isinstance(panel, DemoPanel) and panel.state is window.state
    window.state.set_z(np.array([0.5, 0, 0, 0], dtype=np.float32))
    window.save_session(tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text())["demo_panel_module"] == {"z0": 0.5}


def test_a_damaged_session_file_is_reported(make_window, vae_checkpoint, tmp_path):
    window = make_window(vae_checkpoint)
    (tmp_path / "bad.json").write_text('{"format": "latent-explorer-session/1", "z": "oops"}')
    window.state.randomize(4)
    before = window.state.z.copy()
    assert window.load_session(tmp_path / "bad.json") is False
    assert "bad.json" in window.banner.text()
    window.message_box.close()
    np.testing.assert_array_equal(window.state.z, before)
    (tmp_path / "short.json").write_text(json.dumps({"format": "latent-explorer-session/1", "z": [1.0, 2.0]}))
    assert window.load_session(tmp_path / "short.json") is False  # 2 values for a 4-dim latent
    assert "4" in window.banner.text()
    np.testing.assert_array_equal(window.state.z, before)
