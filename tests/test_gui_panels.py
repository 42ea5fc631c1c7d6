"""The Maps, Interpolate and Arithmetic panels, driven through their real widgets (pytest-qt).

Checkpoints are made here (tiny models on the procedural shapes set), so these tests need no
fixture from conftest.py.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engines import latent  # noqa: E402
from engines.checkpoint import save_checkpoint  # noqa: E402
from engines.data import DataSpec, load_dataset  # noqa: E402
from engines.export import mp4_writer, sidecar_paths  # noqa: E402
from engines.training import create_model  # noqa: E402
from explorer.panels import EXTRA_PANELS  # noqa: E402
from explorer.panels.arithmetic import ArithmeticPanel, load_vectors, save_vectors  # noqa: E402
from explorer.panels.interpolation import InterpolationPanel  # noqa: E402
from explorer.panels.maps import MapPanel  # noqa: E402
from explorer.pixels import to_uint8  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402
from explorer.workers import running_jobs, stop_all_jobs  # noqa: E402

SPEC = DataSpec("shapes", image_size=28, channels=1)
WAIT_MS = 15000


# --- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def panel_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A lightly trained 4-D VAE, an untrained 6-D GAN and an untrained PixelCNN, on shapes 28x28x1."""
    folder = tmp_path_factory.mktemp("panel_ckpts")
    ds = load_dataset(SPEC)
    vae = create_model("vae", {"latent_dim": 4, "width": 8, "fc_dim": 32}, seed=0)
    # A few ELBO steps by hand (not the Trainer, so these tests only lean on the model's own API).
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for step in range(8):
        images, _ = ds.get_batch(np.arange(32 * step, 32 * (step + 1)))
        loss = vae.elbo(images, generator=gen).loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    paths = {
        "vae": folder / "vae.safetensors",
        "gan": folder / "gan.safetensors",
        "pixelcnn": folder / "pcnn.safetensors",
    }
    save_checkpoint(paths["vae"], vae.eval(), dataset=SPEC.to_dict(), label_names=ds.label_names)
    gan = create_model("gan", {"latent_dim": 6, "g_width": 8, "d_width": 8}, seed=0)
    save_checkpoint(paths["gan"], gan.eval(), dataset=SPEC.to_dict(), label_names=ds.label_names)
    pcnn = create_model("pixelcnn", {"hidden": 8, "n_layers": 1}, seed=0)
    save_checkpoint(paths["pixelcnn"], pcnn.eval(), dataset=SPEC.to_dict(), label_names=ds.label_names)
    return paths


@pytest.fixture(autouse=True)
def no_jobs_left():
    yield
    assert stop_all_jobs()
    assert not running_jobs()


def open_state(path: Path, seed: int = 7) -> ExplorerState:
    state = ExplorerState()
    state.open_checkpoint(path)
    state.randomize(seed)
    return state


def show(qtbot, panel, size=(900, 620)):
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


# --- pointer helpers: real mouse events on the plot's viewport ----------------------------------
def view_to_widget(panel: MapPanel, a: float, b: float) -> QPoint:
    scene = panel.vb.mapViewToScene(QPointF(a, b))
    return panel.plot.mapFromScene(scene)


def send_mouse(widget, kind: QEvent.Type, pos: QPoint, buttons: Qt.MouseButton) -> None:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    local = QPointF(pos)
    event = QMouseEvent(kind, local, widget.mapToGlobal(local), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def click(panel: MapPanel, a: float, b: float) -> None:
    viewport = panel.plot.viewport()
    pos = view_to_widget(panel, a, b)
    send_mouse(viewport, QEvent.Type.MouseButtonPress, pos, Qt.MouseButton.LeftButton)
    send_mouse(viewport, QEvent.Type.MouseButtonRelease, pos, Qt.MouseButton.NoButton)


def wait_tiles(qtbot, panel: MapPanel, resolution: int, span: float) -> None:
    qtbot.waitUntil(
        lambda: (
            panel.tiles is not None
            and panel.tiles.resolution == resolution
            and panel.tiles.span == span
            and not panel.busy()
        ),
        timeout=WAIT_MS,
    )


# --- maps ---------------------------------------------------------------------------------------
def test_clicking_a_tile_sets_z_to_that_tiles_latent(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["vae"])
    panel = MapPanel(state)
    panel.scatter_check.setChecked(False)
    panel.res_spin.setValue(6)
    panel.span_spin.setValue(2.0)
    show(qtbot, panel)
    wait_tiles(qtbot, panel, 6, 2.0)
    z0 = state.z.copy()
    e = np.eye(4, dtype=np.float32)
    expected_grid = latent.plane_grid(latent.plane_origin(z0, np.zeros(4), e[0], e[1]), e[0], e[1], 2.0, 6)
    axis = np.linspace(-2.0, 2.0, 6)
    row, col = 1, 4  # row 0 is the top (+v)
    click(panel, axis[col] + 0.1, axis[::-1][row] - 0.1)  # inside the tile, off its centre
    np.testing.assert_allclose(state.z, expected_grid[row * 6 + col], atol=1e-6)
    np.testing.assert_array_equal(state.z[2:], z0[2:])  # a raw-dims plane keeps the other dims
    state.undo()
    np.testing.assert_array_equal(state.z, z0)


def test_dragging_the_marker_moves_z_as_one_undo_step(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["vae"])
    panel = MapPanel(state)
    panel.scatter_check.setChecked(False)
    panel.res_spin.setValue(4)
    show(qtbot, panel)
    wait_tiles(qtbot, panel, 4, 3.0)
    z0 = state.z.copy()
    depth = state.undo_depth()
    changes = []
    state.latentChanged.connect(lambda: changes.append(state.z.copy()))
    viewport = panel.plot.viewport()
    start = view_to_widget(panel, float(z0[0]), float(z0[1]))
    send_mouse(viewport, QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton)
    for k in range(1, 6):
        pos = start + QPoint(12 * k, -8 * k)
        event = QMouseEvent(
            QEvent.Type.MouseMove,
            QPointF(pos),
            viewport.mapToGlobal(QPointF(pos)),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
        QApplication.sendEvent(viewport, event)
        qtbot.wait(15)  # pyqtgraph ignores moves closer together than its mouse rate limit
    end = start + QPoint(60, -40)
    send_mouse(viewport, QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)
    assert len(changes) >= 3, "the image should follow the drag, not only the drop"
    target = panel.vb.mapSceneToView(panel.plot.mapToScene(end))
    assert state.z[0] == pytest.approx(target.x(), abs=0.05)
    assert state.z[1] == pytest.approx(target.y(), abs=0.05)
    assert state.z[0] > z0[0] and state.z[1] > z0[1]  # right and up on screen
    np.testing.assert_array_equal(state.z[2:], z0[2:])
    marker = panel.marker.pos()
    assert (marker.x(), marker.y()) == pytest.approx((state.z[0], state.z[1]), abs=1e-5)
    assert state.undo_depth() == depth + 1  # the whole drag is one undo step
    state.undo()
    np.testing.assert_array_equal(state.z, z0)


def test_scatter_click_jumps_to_the_encoded_latent_and_hover_shows_the_image(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["vae"])
    panel = MapPanel(state)
    panel.count_spin.setValue(150)
    panel.tiles_check.setChecked(False)
    show(qtbot, panel)
    qtbot.waitUntil(lambda: len(panel.scatter_rows) == 150, timeout=WAIT_MS)
    data = panel.encoded.data
    # An isolated point, so the click cannot land on a neighbour.
    px, py = panel.vb.viewPixelSize()
    pts = panel.scatter_rows / np.array([px, py])
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2) + np.eye(len(pts)) * 1e9
    inside = (np.abs(panel.scatter_rows) < 2.5).all(axis=1)
    row = int(np.argmax(np.where(inside, d.min(axis=1), -1)))
    a, b = panel.scatter_rows[row]
    viewport = panel.plot.viewport()

    def hovered() -> bool:  # pyqtgraph drops mouse moves that come too fast (its mouseRateLimit): resend
        send_mouse(viewport, QEvent.Type.MouseMove, view_to_widget(panel, float(a), float(b)), Qt.MouseButton.NoButton)
        return f"#{int(data.indices[row])}" in panel.preview_caption.text()

    qtbot.waitUntil(hovered, timeout=5000)
    assert panel.preview.pixmap() is not None and not panel.preview.pixmap().isNull()
    click(panel, float(a), float(b))
    np.testing.assert_allclose(state.z, data.latents[row], atol=1e-6)
    images, _ = load_dataset(SPEC, train=False).get_batch([int(data.indices[row])])
    with torch.no_grad():
        mu, _ = state.model.encode(images)
    np.testing.assert_allclose(state.z, mu[0].numpy(), atol=1e-5)  # the encoder mean of that image


def test_map_planes_pca_three_points_and_gan(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["vae"])
    panel = MapPanel(state)
    panel.count_spin.setValue(150)
    panel.res_spin.setValue(3)
    show(qtbot, panel)
    panel.mode_combo.setCurrentIndex(1)  # principal directions of the encoded set
    qtbot.waitUntil(
        lambda: (
            panel.plane is not None and panel.plane.anchor is not None and panel.pca is not None and panel.mode == "pca"
        ),
        timeout=WAIT_MS,
    )
    mean, comps, _ = latent.principal_directions(panel.encoded.data.latents)
    qtbot.waitUntil(lambda: np.array_equal(panel.plane.u, comps[0]), timeout=WAIT_MS)
    a, b = latent.plane_coordinates(state.z, panel.plane.center, comps[0], comps[1])[0]
    assert a == pytest.approx((state.z - mean) @ comps[0], abs=1e-4)
    state.add_bookmark("p1")
    state.randomize(11)
    state.add_bookmark("p2")
    state.randomize(12)
    panel.point_combos[1].setCurrentIndex(1)
    panel.point_combos[2].setCurrentIndex(2)
    panel.mode_combo.setCurrentIndex(2)
    wait_tiles(qtbot, panel, 3, panel.span_spin.value())
    np.testing.assert_allclose(
        panel.plane.points, latent.plane_through(state.z, *[m.z for m in state.bookmarks])[3], atol=1e-5
    )

    gan_state = open_state(panel_checkpoints["gan"])
    gan_panel = show(qtbot, MapPanel(gan_state))
    gan_panel.mode_combo.setCurrentIndex(1)
    qtbot.waitUntil(lambda: gan_panel.plane is not None and gan_panel.tiles is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(gan_panel.plane.u, np.eye(6)[0])  # the prior's principal axes
    assert not gan_panel.scatter_check.isEnabled()


def test_missing_dataset_is_reported_once_not_retried_on_every_move(qtbot, panel_checkpoints, tmp_path):
    from engines.checkpoint import load_checkpoint

    ckpt = load_checkpoint(panel_checkpoints["vae"])
    path = save_checkpoint(
        tmp_path / "elsewhere.safetensors",
        ckpt.model,
        dataset={"name": "mnist", "root": str(tmp_path / "no-such-folder")},
    )
    state = open_state(path)
    panel = show(qtbot, MapPanel(state))
    qtbot.waitUntil(lambda: "unavailable" in panel.scatter_status.text(), timeout=WAIT_MS)
    assert "mnist" in panel.scatter_status.text().lower()
    for seed in range(3):
        state.randomize(seed)
        assert not panel.encoded.busy()  # no new attempt per z change
    qtbot.waitUntil(lambda: panel.tiles is not None, timeout=WAIT_MS)  # the tiles still work
    assert "unavailable" in panel.scatter_status.text()


def test_without_the_dataset_files_the_scatter_uses_the_sample_the_model_carries(qtbot, panel_checkpoints, tmp_path):
    from engines.checkpoint import load_checkpoint
    from engines.data.sample import take_sample

    ckpt = load_checkpoint(panel_checkpoints["vae"])
    carried = take_sample(load_dataset(SPEC, train=False), 60)
    path = save_checkpoint(
        tmp_path / "bundled.safetensors",
        ckpt.model,
        sample=carried,
        dataset={"name": "mnist", "root": str(tmp_path / "no-such-folder")},
    )
    state = open_state(path)
    panel = MapPanel(state)
    panel.tiles_check.setChecked(False)
    show(qtbot, panel)
    qtbot.waitUntil(lambda: "carried in the model file" in panel.scatter_status.text(), timeout=WAIT_MS)
    assert len(panel.scatter_rows) == 60 and "60 of the 60 test images" in panel.scatter_status.text()
    with torch.no_grad():
        mu, _ = state.model.encode(carried["images"].float() / 255)
    order = panel.encoded.data.indices
    np.testing.assert_allclose(panel.encoded.data.latents, mu[order].numpy(), atol=1e-5)


# --- interpolation ------------------------------------------------------------------------------
def test_interpolation_png_export_latents_decode_to_the_written_frames(qtbot, panel_checkpoints, tmp_path):
    state = open_state(panel_checkpoints["vae"])
    panel = show(qtbot, InterpolationPanel(state))
    assert len(panel.keyframes) == 2
    qtbot.mouseClick(panel.add_current_button, Qt.MouseButton.LeftButton)
    panel.mode_combo.setCurrentText("spherical")
    panel.frames_spin.setValue(9)
    qtbot.waitUntil(lambda: panel.images is not None and len(panel.images) == 9, timeout=WAIT_MS)
    assert panel.strip.count() == 9
    job = panel.export("png", tmp_path / "walk.png")
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        pass
    npy, js = sidecar_paths(tmp_path / "walk.png")
    latents = np.load(npy)
    meta = json.loads(js.read_text())
    assert latents.shape == (9, 4) and meta["mode"] == "spherical" and meta["frames"] == 9
    keys = np.array([k["z"] for k in meta["keyframes"]], np.float32)
    np.testing.assert_array_equal(keys[2], state.z)
    np.testing.assert_allclose(latents, latent.interpolate_path(keys, 9, "spherical"), atol=1e-6)
    strip = np.asarray(Image.open(tmp_path / "walk.png"))
    assert strip.shape == (28, 9 * 28)
    expected = to_uint8(state.decode(latents))[..., 0]
    for i in range(9):
        diff = np.abs(strip[:, 28 * i : 28 * (i + 1)].astype(int) - expected[i].astype(int))
        assert diff.max() <= 1, f"frame {i} differs by {diff.max()} / 255"
    # "Go to frame" sends the shown frame's z to the state.
    panel.frame_slider.setValue(4)
    qtbot.mouseClick(panel.goto_button, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(state.z, latents[4], atol=1e-6)


def test_gif_export_has_one_frame_per_path_frame(qtbot, panel_checkpoints, tmp_path):
    state = open_state(panel_checkpoints["vae"])
    panel = show(qtbot, InterpolationPanel(state))
    panel.seed_spin.setValue(40)
    qtbot.mouseClick(panel.add_random_button, Qt.MouseButton.LeftButton)
    panel.frames_spin.setValue(7)
    job = panel.export("gif", tmp_path / "anim.gif")
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        pass
    with Image.open(tmp_path / "anim.gif") as gif:
        assert gif.n_frames == 7
    assert np.load(sidecar_paths(tmp_path / "anim.gif")[0]).shape == (7, 4)
    assert panel.mp4_button.isEnabled() == (mp4_writer() is not None)


def test_interpolation_session_round_trip_and_keyframe_editing(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["vae"])
    panel = show(qtbot, InterpolationPanel(state))
    state.add_bookmark("here")
    panel.bookmark_combo.setCurrentIndex(0)
    qtbot.mouseClick(panel.add_bookmark_button, Qt.MouseButton.LeftButton)
    panel.key_list.setCurrentRow(2)
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    assert [k.label for k in panel.keyframes] == ["random (seed 1)", "bookmark here", "random (seed 2)"]
    panel.index_spin.setValue(5)
    qtbot.mouseClick(panel.add_image_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.keyframes) == 4, timeout=WAIT_MS)
    z5 = latent.encode_indices(state.model, load_dataset(SPEC, train=False), np.array([5])).latents
    np.testing.assert_allclose(panel.keyframes[3].z, z5[0], atol=1e-6)
    panel.frames_spin.setValue(12)
    data = json.loads(json.dumps(panel.session_data()))
    other = show(qtbot, InterpolationPanel(state))
    other.load_session_data(data)
    assert [k.label for k in other.keyframes] == [k.label for k in panel.keyframes]
    assert other.frames_spin.value() == 12 and other.mode == panel.mode
    np.testing.assert_array_equal(np.stack([k.z for k in other.keyframes]), np.stack([k.z for k in panel.keyframes]))


def test_playback_follows_in_the_main_view_as_one_undo_step(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["vae"])
    panel = show(qtbot, InterpolationPanel(state))
    panel.frames_spin.setValue(5)
    qtbot.waitUntil(lambda: panel.images is not None and len(panel.images) == 5, timeout=WAIT_MS)
    z0, depth = state.z.copy(), state.undo_depth()
    panel.fps_spin.setValue(60)
    panel.follow_check.setChecked(True)
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.frame_slider.value() >= 3, timeout=WAIT_MS)
    qtbot.mouseClick(panel.play_button, Qt.MouseButton.LeftButton)  # pause
    np.testing.assert_allclose(state.z, panel.path[panel.frame_slider.value()], atol=1e-6)
    assert state.undo_depth() == depth + 1
    state.undo()
    np.testing.assert_array_equal(state.z, z0)


def test_map_session_round_trip(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["vae"])
    panel = MapPanel(state)
    panel.scatter_check.setChecked(False)
    show(qtbot, panel)
    panel.y_spin.setValue(3)
    panel.span_spin.setValue(1.5)
    panel.res_spin.setValue(5)
    data = json.loads(json.dumps(panel.session_data()))
    other = MapPanel(state)
    other.load_session_data(data)
    show(qtbot, other)
    assert other.session_data() == data
    wait_tiles(qtbot, other, 5, 1.5)
    np.testing.assert_array_equal(other.plane.v, np.eye(4)[3])


# --- arithmetic ---------------------------------------------------------------------------------
def test_exemplar_arithmetic_result_and_go_to_result(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["gan"])
    panel = show(qtbot, ArithmeticPanel(state))
    qtbot.waitUntil(lambda: panel.gallery.count() == 24, timeout=WAIT_MS)
    assert not panel.save_label_button.isEnabled() and "no encoder" in panel.labels_note.text()
    g = panel.gallery_latents.copy()
    picks = {"A": [0, 3], "B": [5], "C": [7, 8, 9]}
    for slot, rows in picks.items():
        for r in rows:
            panel.gallery.item(r).setSelected(True)
        qtbot.mouseClick(panel.add_buttons[slot], Qt.MouseButton.LeftButton)
    expected = g[picks["A"]].mean(0) - g[picks["B"]].mean(0) + g[picks["C"]].mean(0)
    np.testing.assert_allclose(panel.result, expected, atol=1e-5)
    qtbot.mouseClick(panel.goto_result_button, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(state.z, expected, atol=1e-5)
    panel.vector_name_edit.setText("a_minus_b")
    qtbot.mouseClick(panel.save_ab_button, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(state.vectors["a_minus_b"], g[picks["A"]].mean(0) - g[picks["B"]].mean(0), atol=1e-5)
    qtbot.waitUntil(lambda: not panel.operand_views["result"].pixmap().isNull(), timeout=WAIT_MS)  # decoded in a worker


def test_label_vector_equals_attribute_vector_of_the_encoded_latents(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["vae"])
    panel = ArithmeticPanel(state)
    panel.count_spin.setValue(200)
    show(qtbot, panel)
    qtbot.waitUntil(lambda: panel.attribute_combo.count() > 0, timeout=WAIT_MS)
    data = panel.encoded.data
    assert data.latents.shape == (200, 4)
    names = [panel.attribute_combo.itemText(i) for i in range(panel.attribute_combo.count())]
    assert "shape = circle" in names and "size (high vs low)" in names
    panel.attribute_combo.setCurrentText("size (high vs low)")
    qtbot.mouseClick(panel.save_label_button, Qt.MouseButton.LeftButton)
    size = data.label_names.index("size")
    np.testing.assert_allclose(
        state.vectors["size"], latent.attribute_vector(data.latents, data.labels[:, size]), atol=1e-6
    )
    panel.attribute_combo.setCurrentText("shape = circle")
    qtbot.mouseClick(panel.save_label_button, Qt.MouseButton.LeftButton)
    circle = data.labels[:, data.label_names.index("shape")] == 1
    np.testing.assert_allclose(state.vectors["shape_circle"], latent.attribute_vector(data.latents, circle), atol=1e-6)


def test_applying_a_vector_with_the_strength_slider(qtbot, panel_checkpoints):
    state = open_state(panel_checkpoints["vae"])
    panel = show(qtbot, ArithmeticPanel(state))
    v = np.array([1.0, -0.5, 0.25, 2.0], np.float32)
    state.set_vector("test", v)
    panel.vector_combo.setCurrentText("test")
    z0 = state.z.copy()
    undo_depth = state.undo_depth()
    slider = panel.strength_slider
    slider.setSliderDown(True)  # a drag: pressed, moved, released
    for value in (50, 100, 150):
        slider.setValue(value)
    slider.setSliderDown(False)
    np.testing.assert_allclose(state.z, z0 + 1.5 * v, atol=1e-6)
    assert state.undo_depth() == undo_depth + 1
    slider.setSliderDown(True)
    slider.setValue(0)
    slider.setSliderDown(False)
    np.testing.assert_array_equal(state.z, z0)
    slider.setValue(-100)  # a keyboard-like step, without a drag
    np.testing.assert_allclose(state.z, z0 - v, atol=1e-6)
    state.set_z(np.zeros(4, np.float32))  # z changed elsewhere: the new base, slider back at 0
    assert slider.value() == 0
    slider.setValue(200)
    np.testing.assert_allclose(state.z, 2 * v, atol=1e-6)


def test_vectors_save_and_load_npz_and_json(qtbot, panel_checkpoints, tmp_path):
    state = open_state(panel_checkpoints["vae"])
    panel = show(qtbot, ArithmeticPanel(state))
    vectors = {"a": np.arange(4, dtype=np.float32), "b": -np.ones(4, np.float32)}
    for suffix in (".npz", ".json"):
        save_vectors(tmp_path / f"v{suffix}", vectors)
        loaded = load_vectors(tmp_path / f"v{suffix}")
        assert set(loaded) == {"a", "b"}
        np.testing.assert_allclose(loaded["a"], vectors["a"])
    (tmp_path / "wrong.json").write_text(json.dumps({"c": [1.0, 2.0], "d": [0, 0, 0, 1]}))
    assert panel.load_vectors_file(tmp_path / "wrong.json") == ["d"]
    assert "skipped 1" in panel.vectors_status.text()
    assert panel.load_vectors_file(tmp_path / "v.npz") == ["a", "b"]
    np.testing.assert_array_equal(state.vectors["b"], vectors["b"])


# --- every panel --------------------------------------------------------------------------------
LATENT_PANELS = [p for p in EXTRA_PANELS if p[1] not in ("explorer.panels.training", "explorer.panels.replay")]


@pytest.mark.parametrize("title, module, cls", LATENT_PANELS)
def test_panels_explain_a_pixelcnn_and_rebuild_for_a_new_model(qtbot, panel_checkpoints, title, module, cls):
    import importlib

    state = ExplorerState()
    panel = show(qtbot, getattr(importlib.import_module(module), cls)(state))
    assert panel.gate.currentIndex() == 0 and "checkpoint" in panel.gate.message.text()
    state.open_checkpoint(panel_checkpoints["pixelcnn"])
    assert panel.gate.currentIndex() == 0 and "VAE or GAN" in panel.gate.message.text()
    state.open_checkpoint(panel_checkpoints["gan"])
    assert panel.gate.currentIndex() == 1
    state.open_checkpoint(panel_checkpoints["vae"])
    assert panel.gate.currentIndex() == 1
    state.randomize(3)
    qtbot.wait(50)
    if hasattr(panel, "session_data"):
        json.dumps(panel.session_data())
