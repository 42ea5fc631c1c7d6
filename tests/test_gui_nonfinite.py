"""A model whose weights hold NaN: every view shows something (NaN pixels black) and nothing raises.

pytest-qt fails a test on any exception raised in a Qt virtual (paintEvent) or slot, so driving the
real widgets and grabbing them (which paints them) is the assertion that nothing raised."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from engines.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from explorer.panels.sliders import IndicatorBar, LatentSliders  # noqa: E402
from explorer.pixels import image_array, to_pixmap, to_qimage, to_uint8  # noqa: E402

WAIT = 20_000


@pytest.fixture(scope="module")
def nan_vae_checkpoint(vae_checkpoint, tmp_path_factory):
    """The 4-D VAE with every weight NaN (as a diverged run or a damaged file would leave it)."""
    ckpt = load_checkpoint(vae_checkpoint)
    with torch.no_grad():
        for p in ckpt.model.parameters():
            p.fill_(float("nan"))
    path = tmp_path_factory.mktemp("nan") / "nan-vae.safetensors"
    return save_checkpoint(path, ckpt.model, dataset=ckpt.dataset)


def test_image_conversions_show_nan_as_black_and_clamp_infinities(qapp):
    image = np.array([[np.nan, np.inf], [-np.inf, 0.5]], dtype=np.float32)
    assert image_array(image)[:, :, 0].tolist() == [[0, 255], [0, 128]]
    assert to_uint8(image).tolist() == [[0, 255], [0, 128]]  # any shape, kept
    batch = np.full((2, 3, 3, 1), np.nan, dtype=np.float32)
    assert to_uint8(batch).max() == 0 and to_uint8(batch).dtype == np.uint8 and to_uint8(batch).shape == batch.shape
    assert to_qimage(np.full((4, 4, 3), np.nan)).pixelColor(0, 0).black() == 255
    pixmap = to_pixmap(np.full((4, 4, 1), np.inf, dtype=np.float32), 16)
    assert pixmap.toImage().pixelColor(8, 8).value() == 255
    assert image_array(np.zeros((2, 2, 4), np.float32)).shape == (2, 2, 3)  # alpha dropped, not garbled


def test_indicator_bars_and_sliders_take_nan(qtbot):
    bar = IndicatorBar()
    qtbot.addWidget(bar)
    bar.set_value(float("nan"), True)
    assert bar.fraction == 0.0
    bar.grab()  # paints
    sliders = LatentSliders()
    qtbot.addWidget(sliders)
    sliders.set_raw_axes(3)
    sliders.set_z(np.array([np.nan, np.inf, 1.0], dtype=np.float32))  # NaN spreads through the basis
    assert all(abs(sliders.slider(k).value()) <= 300 for k in range(3))
    sliders.set_indicators(np.array([np.nan, 1.0, np.inf]), np.array([False, True, True]))
    sliders.grab()


def test_a_nan_weight_model_is_explored_without_an_exception(make_window, nan_vae_checkpoint, qtbot):
    window = make_window(nan_vae_checkpoint)
    window.resize(1100, 760)
    window.show()
    weights = window.state.model.state_dict()
    total = sum(1 for t in weights.values() if t.is_floating_point())
    bad = sum(1 for t in weights.values() if t.is_floating_point() and not torch.isfinite(t).all())
    assert 0 < bad <= total
    warning = f"{bad} of {total} weight tensors hold NaN/inf values: images will be wrong"
    assert warning in window.info.plain_text()  # the Model dock
    assert warning in window.banner.text() and window.message_box is not None  # and said on opening
    explore = window.explore
    qtbot.waitUntil(lambda: explore.image_view.array() is not None, timeout=WAIT)
    assert explore.image_view.array().max() == 0  # NaN pixels: black
    window.grab()
    # The dataset statistics fail with a message instead of raising in a slot.
    qtbot.waitUntil(lambda: "NaN/inf" in explore.stats_label.text(), timeout=WAIT)
    assert "No dataset statistics" in explore.stats_label.text()

    state = window.state
    before = state.z.copy()
    explore.randomize()
    explore.sliders.slider(0).setValue(150)  # drag
    qtbot.waitUntil(lambda: explore.decoder.decode_count >= 2, timeout=WAIT)
    window.grab()
    # Encoding an image through NaN weights gives NaN: refused with a message, z unchanged.
    z = state.z.copy()
    with qtbot.waitSignal(explore.errorOccurred, timeout=WAIT) as error:
        explore.use_dataset_image()
    assert "NaN/inf" in error.args[0] and np.array_equal(state.z, z) and np.all(np.isfinite(state.z))
    assert not np.array_equal(z, before)
    window.message_box.close()

    maps = window.extra_panels["maps"]
    window.tabs.setCurrentIndex(window.tabs.indexOf(maps.parentWidget().parentWidget()))
    qtbot.waitUntil(lambda: maps.tiles is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: "NaN/inf" in maps.scatter_status.text(), timeout=WAIT)
    assert maps.image_item.image.max() == 0  # black tiles
    window.grab()
    for index in range(window.tabs.count()):  # every tab paints
        window.tabs.setCurrentIndex(index)
        qtbot.wait(50)
        window.grab()


def test_the_model_dock_counts_the_broken_tensors_and_is_quiet_for_a_sound_model(make_window, vae_checkpoint, tmp_path):
    ckpt = load_checkpoint(vae_checkpoint)
    name, tensor = next((k, t) for k, t in ckpt.model.state_dict().items() if t.is_floating_point())
    with torch.no_grad():
        tensor.view(-1)[0] = float("inf")  # one value of one tensor
    path = save_checkpoint(tmp_path / "one-inf.safetensors", ckpt.model, dataset=ckpt.dataset)
    window = make_window(path)
    total = sum(1 for t in window.state.model.state_dict().values() if t.is_floating_point())
    text = window.info.plain_text()
    assert f"1 of {total} weight tensors hold NaN/inf values: images will be wrong" in text and name in text
    window.message_box.close()
    assert window.open_checkpoint(vae_checkpoint)
    assert "NaN/inf" not in window.info.plain_text() and window.banner.text() == ""
