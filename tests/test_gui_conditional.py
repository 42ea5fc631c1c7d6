"""The class picker of a conditional model, driven with pytest-qt: the Explore tab's image and the maps
follow the class, a blend's ends are its two classes, sessions keep the blend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engines.checkpoint import save_checkpoint
from engines.models import build_model
from engines.models.conditional import one_hot
from tests.helpers import TINY

CLASSES = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def cgan_checkpoint(tmp_path_factory) -> Path:
    """An untrained conditional GAN of 10 classes whose class embedding (G's first-layer class columns)
    is drawn large, so that each class draws visibly its own images."""
    torch.manual_seed(0)
    model = build_model("gan", {**TINY["gan"], "num_classes": 10, "class_names": CLASSES}).eval()
    with torch.no_grad():
        model.generator[0].weight[model.latent_dim :].normal_(0.0, 1.0)
    return save_checkpoint(tmp_path_factory.mktemp("cgan") / "cgan.safetensors", model, label_names=CLASSES)


@pytest.fixture
def explore(qtbot, cgan_checkpoint):
    from explorer.panels.explore import ExplorePanel
    from explorer.state import ExplorerState

    state = ExplorerState()
    state.open_checkpoint(cgan_checkpoint, device="cpu")
    panel = ExplorePanel(state)
    qtbot.addWidget(panel)
    panel.show()
    state.randomize(7)
    qtbot.waitUntil(lambda: panel.last_decoded_z is not None and np.array_equal(panel.last_decoded_z, state.z))
    return state, panel


def _expected(state, y: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        image = state.base_model.decode(torch.as_tensor(state.z[None]), classes=y[None])
    return image.permute(0, 2, 3, 1).numpy()[0]


def _shown_after(qtbot, panel, action) -> np.ndarray:
    with qtbot.waitSignal(panel.decoder.decoded, timeout=10_000) as blocker:
        action()
    return blocker.args[1]


def test_picking_a_class_redraws_the_image_as_that_class(qtbot, explore) -> None:
    state, panel = explore
    assert panel.class_box.isVisible()
    assert [panel.class_combo.itemText(i) for i in range(panel.class_combo.count())] == CLASSES
    first = panel.current_image().copy()  # the decoded image on screen
    np.testing.assert_allclose(first, _expected(state, one_hot(0, 10)), atol=1e-6)  # class 0 to start with

    image = _shown_after(qtbot, panel, lambda: panel.class_combo.setCurrentIndex(3))
    assert np.array_equal(state.class_mix, np.eye(10, dtype=np.float32)[3])
    np.testing.assert_allclose(image, _expected(state, one_hot(3, 10)), atol=1e-6)
    assert not np.allclose(image, first)
    assert np.array_equal(panel.current_image(), image)  # export: the image on screen, of class 3


def test_the_blend_slider_interpolates_between_two_classes(qtbot, explore) -> None:
    state, panel = explore
    _shown_after(qtbot, panel, lambda: panel.class_combo.setCurrentIndex(2))
    panel.blend_combo.setCurrentIndex(5)  # t = 0: still class 2 (the same blend: nothing to redraw)
    assert state.class_mix[2] == 1.0
    np.testing.assert_allclose(panel.current_image(), _expected(state, one_hot(2, 10)), atol=1e-6)
    at_one = _shown_after(qtbot, panel, lambda: panel.blend_slider.setValue(panel.blend_slider.maximum()))
    np.testing.assert_allclose(at_one, _expected(state, one_hot(5, 10)), atol=1e-6)
    half = _shown_after(qtbot, panel, lambda: panel.blend_slider.setValue(panel.blend_slider.maximum() // 2))
    blend = 0.5 * (one_hot(2, 10) + one_hot(5, 10))
    np.testing.assert_allclose(state.class_mix, blend.numpy())
    np.testing.assert_allclose(half, _expected(state, blend), atol=1e-6)
    assert panel.blend_label.text() == "t 0.50"


def test_the_picker_shows_a_blend_set_elsewhere_and_is_hidden_for_other_models(qtbot, explore, gan_checkpoint) -> None:
    state, panel = explore
    mix = np.zeros(10, np.float32)
    mix[[1, 8]] = [0.25, 0.75]
    state.set_class_mix(mix)
    assert (panel.class_combo.currentIndex(), panel.blend_combo.currentIndex()) == (8, 1)
    assert panel.blend_slider.value() == 25
    with pytest.raises(ValueError, match="non-negative"):
        state.set_class_mix(-mix)
    state.open_checkpoint(gan_checkpoint, device="cpu")
    assert not panel.class_box.isVisible() and state.num_classes == 0
    with pytest.raises(ValueError, match="not class-conditional"):
        state.set_class(0)


def test_the_map_tiles_follow_the_class(qtbot, cgan_checkpoint) -> None:
    from engines import fast_decode, latent
    from explorer.panels.maps import MapPanel
    from explorer.pixels import mosaic, to_uint8
    from explorer.state import ExplorerState

    state = ExplorerState()
    state.open_checkpoint(cgan_checkpoint, device="cpu")
    state.randomize(3)
    maps = MapPanel(state)
    qtbot.addWidget(maps)
    maps.res_spin.setValue(4)
    maps.resize(600, 400)
    maps.show()
    qtbot.waitUntil(lambda: maps.tiles is not None and not maps.busy(), timeout=20_000)
    first = maps.image_item.image.copy()
    with qtbot.waitSignal(maps.tilesShown, timeout=20_000):
        state.set_class(6)
    qtbot.waitUntil(lambda: not maps.busy(), timeout=20_000)
    shown = maps.image_item.image
    assert not np.array_equal(shown, first)
    with torch.no_grad():
        images = state.base_model.decode(torch.as_tensor(maps.tiles.grid), classes=6).permute(0, 2, 3, 1).numpy()
    expected = np.ascontiguousarray(to_uint8(mosaic(images, 4, 4))[::-1])[..., 0]  # flipped, grayscale
    assert fast_decode.psnr(shown / 255, expected / 255) >= fast_decode.MIN_PSNR  # float32 or bfloat16 decode
    assert maps.decoder is None or maps.decoder.name != "onnxruntime"  # the ONNX graph has no class input
    assert latent.decode_latents(state.model, maps.tiles.grid[:1]).shape == (1, 28, 28, 1)


def test_a_session_keeps_the_class_blend(qtbot, make_window, cgan_checkpoint, tmp_path) -> None:
    window = make_window(cgan_checkpoint)
    window.state.set_class(4, 7, 0.3)
    mix = window.state.class_mix.copy()
    path = tmp_path / "s.json"
    assert window.save_session(path)
    window.state.set_class(0)
    assert window.load_session(path)
    np.testing.assert_allclose(window.state.class_mix, mix)
    assert window.explore.class_combo.currentIndex() == 4 and window.explore.blend_combo.currentIndex() == 7


def test_the_train_tab_offers_a_conditional_run(qtbot) -> None:
    from explorer.panels.training import TrainingPanel
    from explorer.state import ExplorerState

    panel = TrainingPanel(ExplorerState())
    qtbot.addWidget(panel)
    panel.configure(model="gan", dataset="mnist", conditional=True)
    settings = panel.form_settings()
    assert settings.conditional and settings.model_config(settings.data_spec())["class_names"] == CLASSES
    panel.configure(model="vae")  # a VAE has no classes: the row is hidden and the run unconditional
    assert panel.conditional_check.isHidden() or not panel.form_settings().conditional
    panel.configure(model="gan", dataset="shapes")  # not labelled by class
    assert not panel.conditional_check.isEnabled() and not panel.form_settings().conditional


def test_the_timeline_tab_draws_a_conditional_model_class_by_class(cgan_checkpoint) -> None:
    from engines.checkpoint import load_checkpoint
    from explorer.panels.timeline import fixed_latents, frames_of

    ckpt = load_checkpoint(cgan_checkpoint)
    z = fixed_latents(ckpt.model.latent_dim)
    ((label, samples, recon),) = frames_of(ckpt, z, None)
    assert label == "final" and recon is None and samples.ndim == 3
    with torch.no_grad():
        first = ckpt.model.decode(z[:1], classes=0)[0, 0].numpy()
    assert np.abs(samples[2:30, 2:30, 0] / 255 - first).max() < 0.01  # the first latent, drawn as class 0
