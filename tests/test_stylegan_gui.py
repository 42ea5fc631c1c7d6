"""The explorer with a style-based generator, driven through its real widgets (pytest-qt): the Explore
tab's space selector (Z / W / W+), truncation psi and W+ layer selector; the Styles tab's style mixing
and export; its layer view for every generator kind; sessions that record the space."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from explorer.panels.explore import ExplorePanel  # noqa: E402
from explorer.panels.styles import StylesPanel  # noqa: E402
from explorer.session import Session  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402

WAIT = 30_000


def open_state(path) -> ExplorerState:
    state = ExplorerState()
    state.open_checkpoint(path, device="cpu")
    return state


def show(qtbot, panel):
    qtbot.addWidget(panel)
    panel.resize(1100, 700)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def idle(qtbot, panel) -> None:
    qtbot.waitUntil(lambda: not panel.busy(), timeout=WAIT)


def decoded(state: ExplorerState) -> np.ndarray:
    return state.decode(state.z)[0]


def test_space_selector_keeps_the_image_and_sliders_edit_w(qtbot, stylegan_checkpoint):
    state = open_state(stylegan_checkpoint)
    panel = show(qtbot, ExplorePanel(state))
    assert panel.space_box.isVisible() and [panel.space_combo.itemText(i) for i in range(3)] == ["Z", "W", "W+"]
    state.randomize(5)
    in_z = decoded(state)
    panel.space_combo.setCurrentText("W")
    assert state.space == "W" and state.latent_dim == 16 and panel.sliders.count() == 16
    np.testing.assert_allclose(decoded(state), in_z, atol=1e-5)  # the same image, now from w
    assert panel.psi_slider.isVisible() and not panel.layer_combo.isVisible()
    before = state.z.copy()
    panel.sliders.slider(3).setValue(250)  # w coordinate 3 to 2.5
    assert state.z[3] == np.float32(2.5) and np.array_equal(np.delete(state.z, 3), np.delete(before, 3))
    assert not np.allclose(decoded(state), in_z, atol=1e-4)
    state.randomize(5)  # the same seed draws the same face in W as in Z
    np.testing.assert_allclose(decoded(state), in_z, atol=1e-5)
    panel.space_combo.setCurrentText("Z")  # back: the z last used there
    assert state.space == "Z" and state.latent_dim == 8
    np.testing.assert_allclose(decoded(state), in_z, atol=1e-5)


def test_psi_zero_gives_the_mean_w_image_in_every_view(qtbot, stylegan_checkpoint):
    state = open_state(stylegan_checkpoint)
    panel = show(qtbot, ExplorePanel(state))
    panel.space_combo.setCurrentText("W")
    state.randomize(2)
    varied = decoded(state)
    panel.psi_slider.setValue(0)  # released at 0
    assert state.psi == 0.0 and panel.psi_label.text() == "ψ 0.00"
    base = state.base_model
    with torch.no_grad():
        mean_image = base.decode_w(base.mean_w[None])[0].permute(1, 2, 0).clamp(0, 1).numpy()
    np.testing.assert_allclose(decoded(state), mean_image, atol=1e-5)
    state.randomize(9)
    np.testing.assert_allclose(decoded(state), mean_image, atol=1e-5)
    qtbot.waitUntil(
        lambda: panel.last_decoded_z is not None and np.array_equal(panel.last_decoded_z, state.z), timeout=WAIT
    )
    shown = panel.image_view.array()
    assert np.abs(shown.astype(float) / 255 - mean_image).max() < 1 / 255 + 1e-6
    panel.psi_slider.setValue(100)
    state.randomize(2)
    np.testing.assert_allclose(decoded(state), varied, atol=1e-5)


def test_w_plus_layer_selector_moves_one_layer(qtbot, stylegan_checkpoint):
    state = open_state(stylegan_checkpoint)
    panel = show(qtbot, ExplorePanel(state))
    state.randomize(1)
    panel.space_combo.setCurrentText("W+")
    assert state.latent_dim == 8 * 16 and panel.layer_combo.isVisible()
    panel.set_layer(6)
    assert panel.sliders.count() == 16 and panel.sliders.name(0) == "w6.0"
    before = state.z.copy()
    panel.sliders.slider(0).setValue(-200)
    changed = np.flatnonzero(state.z != before)
    assert changed.tolist() == [6 * 16]  # layer 6's w, coordinate 0, and nothing else
    panel.set_layer(None)  # all layers: one slider moves every layer's coordinate alike
    before = state.z.copy()
    panel.sliders.slider(1).setValue(150)
    delta = (state.z - before).reshape(8, 16)
    assert np.allclose(delta[:, 1], delta[0, 1]) and np.abs(np.delete(delta, 1, axis=1)).max() == 0


def test_style_mixing_grid_follows_the_crossover_and_exports(qtbot, stylegan_checkpoint, tmp_path):
    state = open_state(stylegan_checkpoint)
    panel = show(qtbot, StylesPanel(state))
    idle(qtbot, panel)
    assert panel.mixing_controls.isVisible() and panel.mosaic is not None
    panel.a_count.setValue(2)
    panel.b_count.setValue(3)
    panel.set_crossover(0, 8)  # every layer from B
    qtbot.waitUntil(lambda: panel.mixed is not None and panel.mixed["cells"].shape[:2] == (2, 3), timeout=WAIT)
    idle(qtbot, panel)
    cells, b = panel.mixed["cells"], panel.mixed["b"]
    np.testing.assert_allclose(cells, np.broadcast_to(b[None], cells.shape), atol=1e-5)
    panel.set_crossover(8, 8)  # none: every cell is its A
    qtbot.waitUntil(lambda: panel.crossover() == (8, 8) and not panel.busy(), timeout=WAIT)
    qtbot.wait(200)  # the debounce timer starts the job
    idle(qtbot, panel)
    cells, a = panel.mixed["cells"], panel.mixed["a"]
    np.testing.assert_allclose(cells, np.broadcast_to(a[:, None], cells.shape), atol=1e-5)
    panel.preset_combo.setCurrentText("coarse")
    assert panel.crossover() == (0, 3) and "layers 0..2" in panel.range_label.text()
    path = panel.export_png(tmp_path / "mix.png", scale=2)
    with Image.open(path) as image:
        assert image.size == (2 * (4 * 34 - 2), 2 * (3 * 34 - 2))  # 3 B columns + A, 2 A rows + B


def test_layer_view_follows_z_for_every_generator(qtbot, stylegan_checkpoint, gan_checkpoint, vae_checkpoint):
    for path in (stylegan_checkpoint, gan_checkpoint, vae_checkpoint):
        state = open_state(path)
        panel = show(qtbot, StylesPanel(state))
        qtbot.waitUntil(lambda panel=panel: panel.activation is not None, timeout=WAIT)
        assert panel.layer_combo.count() == len(panel.layers) > 0
        assert panel.mixing_controls.isVisible() == (path == stylegan_checkpoint)
        panel.set_layer(0)
        idle(qtbot, panel)
        first = panel.activation.copy()
        assert first.shape == panel.layers[0].shape
        state.randomize(11)  # z moves: the view follows
        qtbot.waitUntil(lambda panel=panel, first=first: not np.allclose(panel.activation, first), timeout=WAIT)
        panel.set_layer(0, channel=1)
        idle(qtbot, panel)
        h, w = panel.layers[0].shape[1:]
        assert panel.layer_view.array().shape[:2] == (h, w)
        panel.close()


def test_sessions_record_the_space(qtbot, stylegan_checkpoint, make_window, tmp_path):
    window = make_window(stylegan_checkpoint)
    state = window.state
    state.set_space("W+", 0.7)
    state.randomize(4)
    z = state.z.copy()
    path = tmp_path / "s.json"
    assert window.save_session(path)
    assert Session.from_json(json.loads(path.read_text())).space == "W+"
    state.set_space("Z", 1.0)
    assert state.latent_dim == 8
    assert window.load_session(path)
    assert state.space == "W+" and state.psi == 0.7 and np.array_equal(state.z, z)


def test_the_train_tab_trains_a_stylegan(qtbot, tmp_path):
    from engines.checkpoint import load_checkpoint
    from explorer.panels.training import TrainingPanel
    from tests.helpers import TINY

    panel = TrainingPanel(ExplorerState(), None)
    qtbot.addWidget(panel)
    assert "stylegan" in [panel.model_combo.itemData(i) for i in range(panel.model_combo.count())]
    panel.config_overrides = {k: v for k, v in TINY["stylegan"].items() if k != "latent_dim"}
    panel.train_overrides = {"eval_batches": 1}
    path = tmp_path / "sg.safetensors"
    panel.configure(
        model="stylegan",
        dataset="shapes",
        image_size=32,
        channels=1,
        latent_dim=8,
        batch_size=8,
        max_steps=3,
        checkpoint_path=path,
    )
    # a background job runs niced on every core: on a loaded machine its first steps can take a while
    with qtbot.waitSignal(panel.runFinished, timeout=4 * WAIT) as finished:
        assert panel.start() is not None
    assert finished.args[0] == "completed"
    ckpt = load_checkpoint(path)
    assert ckpt.kind == "stylegan" and ckpt.training["step"] == 3 and ckpt.model.config.w_dim == 16
    assert set(panel.curves.curves) >= {"d_loss", "g_loss"}


def test_every_latent_tab_works_in_w(qtbot, stylegan_checkpoint, make_window, monkeypatch):
    window = make_window(stylegan_checkpoint)
    window.show()
    qtbot.waitExposed(window)
    messages = []
    monkeypatch.setattr(window, "_show_message", lambda kind, text: messages.append((kind, text)))
    state = window.state
    state.set_space("W")
    state.randomize(3)
    state.add_bookmark("a")
    tabs = {"Maps": "maps", "Interpolate": "interpolation", "Arithmetic": "arithmetic"}
    tabs.update({"Directions": "directions", "Styles": "styles"})
    for title, key in tabs.items():
        window.show_tab(title)
        panel = window.extra_panels[key]
        assert panel.usable, title
        if key == "maps":
            qtbot.waitUntil(lambda panel=panel: panel.tiles is not None, timeout=WAIT)
            assert panel.tiles.grid.shape[-1] == 16  # a plane through w
        qtbot.waitUntil(lambda panel=panel: not panel.busy(), timeout=WAIT)
    directions = window.extra_panels["directions"]
    directions.compute_sefa()  # SeFa in W: the style affines' weights
    qtbot.waitUntil(lambda: not directions.busy(), timeout=WAIT)
    sefa = [d for d in directions.directions.values() if d.method == "sefa"]
    assert sefa and all(d.vector.shape == (16,) for d in sefa)
    assert not [m for m in messages if m[0] == "error"], messages
