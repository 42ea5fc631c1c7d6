"""The Replay tab: a PixelCNN's generation recorded in a worker, scrubbed, resampled and completed."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402

from engines.data import DataSpec, load_dataset  # noqa: E402
from engines.replay import UNSAMPLED_RGB  # noqa: E402
from explorer.panels.replay import CHOSEN_COLOUR, ReplayPanel  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402

WAIT = 30_000
S = 28  # the pixelcnn_checkpoint fixture: 28x28x1, 2 levels


@pytest.fixture
def panel(qtbot, pixelcnn_checkpoint) -> ReplayPanel:
    state = ExplorerState()
    state.open_checkpoint(pixelcnn_checkpoint, device="cpu")
    panel = ReplayPanel(state, None)
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    return panel


def finish(qtbot, job) -> None:
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=WAIT):
        pass


def expected_canvas(levels: np.ndarray, known: np.ndarray) -> np.ndarray:
    """What step k must look like, built here: grey levels where known, the unsampled colour elsewhere."""
    image = np.empty((S, S, 3), np.uint8)
    image[:] = UNSAMPLED_RGB
    image[known[0]] = (levels[0][known[0]] * 255)[:, None]
    return image


def reference_steps(model, seed: int, **kwargs) -> list:
    """The model's own step stream for the same seed (not through the panel)."""
    return list(model.sample_steps(1, temperature=1.0, generator=torch.Generator().manual_seed(seed), **kwargs))


def test_scrubbing_to_step_k_shows_exactly_that_canvas_and_its_distribution(panel, qtbot):
    finish(qtbot, panel.sample(seed=3))
    steps = reference_steps(panel.state.model, 3)
    recording = panel.recording
    assert len(recording) == len(steps) == S * S
    np.testing.assert_array_equal(recording.values, [int(s.value[0]) for s in steps])

    for k in (0, 1, 57, 400, S * S - 1, S * S):
        panel.slider.setValue(k)
        levels, known = np.zeros((1, S, S), int), np.zeros((1, S, S), bool)
        for s in steps[:k]:
            levels[s.channel, s.row, s.col] = int(s.value[0])
            known[s.channel, s.row, s.col] = True
        np.testing.assert_array_equal(panel.canvas.array(), expected_canvas(levels, known))
        heights = panel.bars.opts["height"]
        if k < len(steps):
            np.testing.assert_allclose(heights, steps[k].probs[0], rtol=1e-6)
            assert panel.canvas.current == (steps[k].row, steps[k].col)
            chosen = int(steps[k].value[0])
            assert panel.bars.opts["brushes"][chosen].color().name() == CHOSEN_COLOUR
        else:
            assert len(heights) == 0 and panel.canvas.current is None
    assert panel.step_label.text() == f"step {S * S} / {S * S}"


def test_resampling_from_step_k_keeps_everything_before_it(panel, qtbot):
    finish(qtbot, panel.sample(seed=5))
    before = panel.recording
    old_positions, old_values, old_probs = before.positions.copy(), before.values.copy(), before.probs.copy()
    k = 300
    panel.slider.setValue(k)
    finish(qtbot, panel.resample_button.click() or panel.job())
    after = panel.recording
    assert len(after) == S * S and panel.seed_spin.value() == 6
    np.testing.assert_array_equal(after.positions, old_positions)  # the same raster order
    np.testing.assert_array_equal(after.values[:k], old_values[:k])
    np.testing.assert_array_equal(after.probs[:k], old_probs[:k])
    assert not np.array_equal(after.values[k:], old_values[k:])  # the rest was drawn again
    # ...exactly as the model continues the kept canvas with the next seed
    levels, known = after.canvas(k)
    continued = reference_steps(
        panel.state.model, 6, known=torch.from_numpy(levels)[None], known_mask=torch.from_numpy(known)[None]
    )
    np.testing.assert_array_equal(after.values[k:], [int(s.value[0]) for s in continued])


def test_completion_keeps_the_given_rows(panel, qtbot):
    rows = 10
    finish(qtbot, panel.complete(index=4, rows=rows))
    image, _ = load_dataset(DataSpec("shapes", image_size=28, channels=1), train=False)[4]
    truth = panel.state.model.quantize(image).numpy()
    recording = panel.recording
    assert len(recording) == (S - rows) * S and recording.positions[:, 1].min() == rows
    panel.slider.setValue(0)
    given = np.zeros((1, S, S), bool)
    given[:, :rows] = True
    np.testing.assert_array_equal(panel.canvas.array(), expected_canvas(truth, given))
    panel.slider.setValue(len(recording))
    final, known = recording.canvas(len(recording))
    assert known.all()
    np.testing.assert_array_equal(final[:, :rows], truth[:, :rows])


def test_the_receptive_field_is_exact_and_causal(panel, qtbot):
    finish(qtbot, panel.sample(seed=1))
    k = 5 * S + 7  # pixel (row 5, column 7)
    panel.slider.setValue(k)
    with qtbot.waitSignal(panel.fieldShown, timeout=WAIT):
        panel.field_check.setChecked(True)
    field = panel.current_field[0]
    rows, cols = np.indices((S, S))
    before = (rows < 5) | ((rows == 5) & (cols < 7))
    assert not field[~before].any()  # never the pixel itself or anything drawn after it
    assert field[4, 7] and field[5, 6] and field[4, 9]  # above, left, and above-right (no blind spot)
    assert not field[0, 0]  # two gated layers see only a few rows up
    np.testing.assert_array_equal(panel.canvas.field, field)


def test_playback_runs_to_the_end(panel, qtbot):
    finish(qtbot, panel.sample(seed=2))
    panel.slider.setValue(0)
    panel.speed_spin.setValue(10_000)
    panel.play_button.click()
    qtbot.waitUntil(lambda: not panel.play_button.isChecked(), timeout=WAIT)
    assert panel.shown_step == S * S


def test_other_models_get_a_short_message(qtbot, vae_checkpoint):
    state = ExplorerState()
    panel = ReplayPanel(state, None)
    qtbot.addWidget(panel)
    assert panel.gate.currentIndex() == 0 and "Open a PixelCNN" in panel.gate.message.text()
    state.open_checkpoint(vae_checkpoint, device="cpu")
    assert panel.gate.currentIndex() == 0 and "VAE" in panel.gate.message.text()
    assert panel.sample() is None


def test_a_colour_pixels_field_sees_its_earlier_colours_only():
    from engines.replay import field_model, receptive_field, render
    from engines.training import create_model

    model = field_model(
        create_model("pixelcnn", {"image_size": 28, "channels": 3, "levels": 4, "hidden": 6, "n_layers": 1}, seed=0)
    )
    green = receptive_field(model, 1, 9, 9)  # (C, S, S)
    assert green[0, 9, 9] and not green[1, 9, 9] and not green[2, 9, 9]  # R of its own pixel, not G or B
    assert green[:, 9, 8].all() and green[:, 8, 9].all() and not green[:, 9, 10].any()
    levels = np.zeros((3, 28, 28), int)
    levels[0, 0, 0] = 3
    known = np.zeros((3, 28, 28), bool)
    known[0, 0, 0] = True  # only R of pixel (0, 0) drawn so far
    image = render(levels, known, 4)
    assert tuple(image[0, 0]) == (255, 0, 0) and tuple(image[0, 1]) == UNSAMPLED_RGB


BUNDLED_PIXELCNN = Path(__file__).resolve().parents[1] / "checkpoints" / "pixelcnn-mnist.safetensors"


def test_surprise_maps_and_mask_and_resample_on_the_bundled_pixelcnn(qtbot) -> None:
    from engines.checkpoint import load_checkpoint
    from engines.surprise import surprise_maps

    state = ExplorerState()
    state.open_checkpoint(BUNDLED_PIXELCNN, device="cpu")
    replay = ReplayPanel(state, None)
    qtbot.addWidget(replay)
    replay.resize(1100, 600)
    replay.show()
    replay.pages.setCurrentWidget(replay.surprise)
    page = replay.surprise
    assert not page.resample_button.isEnabled()
    finish(qtbot, page.show_image(3))
    model = load_checkpoint(BUNDLED_PIXELCNN).model.eval()
    dataset = state.dataset(train=False)
    expected = surprise_maps(model, dataset[3][0].numpy())
    assert np.allclose(page.maps.nll, expected.nll, atol=1e-5) and page.index_shown == 3
    with torch.no_grad():
        nll = -model.log_prob(torch.from_numpy(page.levels)[None]).item()
    assert page.maps.total_nll == pytest.approx(nll, rel=1e-5) and f"NLL {nll:.1f} nats" in page.caption.text()
    # The heat maps are the maps: the most surprising pixel is the brightest one.
    heat = page.nll_view.array()
    r, c = np.unravel_index(page.maps.nll.argmax(), page.maps.nll.shape)
    assert heat[r, c].astype(int).sum() == heat.reshape(-1, heat.shape[-1]).astype(int).sum(1).max()
    # A real mouse press paints a 3x3 stamp at the pixel under the cursor; painting the rest by code.
    rect = page.canvas.image_rect()
    scale = rect.width() / 28
    qtbot.mouseClick(
        page.canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(rect.x() + 14.5 * scale), int(rect.y() + 10.5 * scale))
    )
    assert page.region[9:12, 13:16].all() and page.region.sum() == 9
    for row in range(8, 20):
        for col in range(8, 20):
            page.paint(row, col)
    before = page.levels.copy()
    region = page.region.copy()
    page.temperature_spin.setValue(0.0)
    finish(qtbot, page.resample())
    assert np.array_equal(page.levels[:, ~region], before[:, ~region])
    first = page.levels.copy()
    page.seed_spin.setValue(5)
    page.levels = before.copy()
    finish(qtbot, page.resample())  # temperature 0: another seed, the same pixels
    assert np.array_equal(page.levels, first) and "Resampled" in page.status.text()
    page.temperature_spin.setValue(1.0)
    page.levels = before.copy()
    finish(qtbot, page.resample())
    assert np.array_equal(page.levels[:, ~region], before[:, ~region])
    page.clear_region()
    assert page.region is None and not page.resample_button.isEnabled()
