"""The Train tab, driven through its real widgets with real training threads (tiny VAEs, CPU)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from engines.checkpoint import load_checkpoint  # noqa: E402
from engines.training import Paused, SampleGrid  # noqa: E402
from engines.training.run import EMA_DECAY  # noqa: E402
from explorer.panels.training import TrainingPanel  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402
from tests.helpers import tiny_vae_run  # noqa: E402

WAIT = 30_000


def setup(panel: TrainingPanel, path: Path, **form) -> TrainingPanel:
    """A tiny VAE (latent 2) on 28x28 grey shapes, one held-out batch per evaluation."""
    return tiny_vae_run(panel, path, **form)


def new_panel(qtbot, path: Path, **form) -> TrainingPanel:
    panel = TrainingPanel(ExplorerState(), None)
    qtbot.addWidget(panel)
    return setup(panel, path, **form)


def run(qtbot, panel: TrainingPanel) -> str:
    with qtbot.waitSignal(panel.runFinished, timeout=WAIT) as finished:
        assert panel.start() is not None
    return finished.args[0]


def buttons(panel: TrainingPanel) -> tuple[bool, bool, bool, bool]:
    return tuple(
        b.isEnabled() for b in (panel.start_button, panel.pause_button, panel.resume_button, panel.stop_button)
    )


def test_a_short_run_draws_curves_and_samples_and_opens_in_the_explorer(
    make_window, pixelcnn_checkpoint, tmp_path, qtbot
):
    window = make_window(pixelcnn_checkpoint)
    panel = setup(window.extra_panels["training"], tmp_path / "run.safetensors", max_steps=30, sample_every=10)
    grids = []
    panel.trainingEvent.connect(lambda e: grids.append(e.grid) if isinstance(e, SampleGrid) else None)
    assert not panel.open_button.isEnabled()
    assert run(qtbot, panel) == "completed"

    steps, losses = panel.curves.data("loss")
    np.testing.assert_array_equal(steps, np.arange(1, 31))
    assert np.all(np.isfinite(losses)) and set(panel.curves.curves) >= {"loss", "recon", "kl"}
    assert len(grids) == 4  # before the first step, then at steps 10, 20, 30
    shown = panel.sample_view.array()
    np.testing.assert_array_equal(shown, grids[-1])  # the panel shows the newest grid...
    assert np.abs(shown.astype(int) - grids[0].astype(int)).mean() > 1  # ...which training has changed
    assert panel.progress.value() == 30 and "30 / 30" in panel.progress.text()
    assert buttons(panel) == (True, False, False, False)

    assert panel.open_button.isEnabled()
    panel.open_button.click()
    assert window.state.kind == "vae" and window.state.checkpoint_path == tmp_path / "run.safetensors"
    assert window.tabs.currentIndex() == 0


def test_pause_holds_the_steps_resume_continues_and_stop_keeps_a_checkpoint(qtbot, tmp_path):
    panel = new_panel(qtbot, tmp_path / "long.safetensors", max_steps=10**6)
    assert buttons(panel) == (True, False, False, False)
    panel.start_button.click()
    assert buttons(panel) == (False, True, False, True)
    qtbot.waitUntil(lambda: panel.step >= 5, timeout=WAIT)

    with qtbot.waitSignal(panel.trainingEvent, timeout=WAIT, check_params_cb=lambda e: isinstance(e, Paused)):
        panel.pause_button.click()
    assert buttons(panel) == (False, False, True, True) and "Paused" in panel.status_label.text()
    held = panel.step
    qtbot.wait(300)
    assert panel.step == held

    panel.resume_button.click()
    assert buttons(panel) == (False, True, False, True)
    qtbot.waitUntil(lambda: panel.step > held + 3, timeout=WAIT)

    with qtbot.waitSignal(panel.runFinished, timeout=WAIT) as finished:
        panel.stop_button.click()
        assert buttons(panel) == (False, False, False, False)
    assert finished.args == ["stopped"] and buttons(panel) == (True, False, False, False)
    saved = load_checkpoint(tmp_path / "long.safetensors")
    assert saved.training["step"] == panel.step > held
    assert panel.open_in_explorer()  # no main window here: through the state
    assert panel.state.kind == "vae" and panel.state.checkpoint_path == tmp_path / "long.safetensors"


def test_a_diverging_run_stops_with_a_message_and_keeps_the_last_good_checkpoint(qtbot, tmp_path):
    # Adam at lr 1e6 sends the VAE's loss to NaN on its second step; step 1 was checkpointed.
    panel = new_panel(
        qtbot, tmp_path / "nan.safetensors", lr=1e6, max_steps=50, train_overrides={"checkpoint_every": 1}
    )
    assert run(qtbot, panel) == "diverged"
    text = panel.banner_text()
    assert "diverged at step 2" in text and "step 1" in text and "lower learning rate" in text
    assert panel.banner.kind == "error"  # red
    assert load_checkpoint(tmp_path / "nan.safetensors").training["step"] == 1
    assert panel.open_button.isEnabled()


def test_training_on_a_folder_shows_the_skipped_files_and_logs_each_epoch(qtbot, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "fake.png").write_text("not a picture")
    panel = new_panel(qtbot, tmp_path / "folder.safetensors", dataset="folder", root=folder, batch_size=4, epochs=2)
    assert run(qtbot, panel) == "completed"
    assert panel.skipped == {"not an image": 1}
    assert panel.skipped_label.isVisibleTo(panel)
    assert "Skipped 1 of 9 files (1 not an image)" in panel.skipped_label.text()
    assert "fake.png" in panel.skipped_label.toolTip()
    log = panel.log_view.toPlainText()
    assert "epoch 1: train loss" in log and "epoch 2: train loss" in log and " min" in log
    assert panel.step == 4


def test_dataset_errors_are_messages_not_tracebacks(qtbot, tmp_path):
    panel = new_panel(qtbot, tmp_path / "x.safetensors", dataset="folder")
    assert panel.start() is None  # no folder chosen: said at once, nothing started
    assert "folder" in panel.banner_text() and panel.job is None

    setup(panel, tmp_path / "x.safetensors", dataset="mnist", root=tmp_path / "empty")
    assert run(qtbot, panel) == "failed"
    text = panel.banner_text()
    assert text.startswith("Cannot load the dataset") and "Traceback" not in text
    assert buttons(panel) == (True, False, False, False) and not (tmp_path / "x.safetensors").exists()


def test_closing_the_window_while_training_asks_then_stops_and_keeps_the_checkpoint(
    make_window, tmp_path, qtbot, monkeypatch
):
    window = make_window()
    window.show()
    panel = setup(window.extra_panels["training"], tmp_path / "closing.safetensors", max_steps=10**6)
    panel.start()
    qtbot.waitUntil(lambda: panel.step >= 3, timeout=WAIT)

    monkeypatch.setattr(panel, "confirm_close", lambda: False)
    assert not window.close()  # "No": the window stays, training goes on
    assert panel.is_training()
    panel.pause()  # a paused run must stop too
    monkeypatch.setattr(panel, "confirm_close", lambda: True)
    window.close()  # "Yes": the run stops after its step, then the window closes (without blocking on it)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT)
    assert not panel.job.thread.isRunning()
    assert load_checkpoint(tmp_path / "closing.safetensors").training["step"] >= 3
    qtbot.waitUntil(lambda: panel.phase == "idle", timeout=WAIT)
    assert panel.finish_reason == "stopped"


def test_the_bf16_box_trains_in_mixed_precision_and_the_checkpoint_says_so(qtbot, tmp_path):
    panel = new_panel(qtbot, tmp_path / "bf16.safetensors", max_steps=3)
    assert panel.settings().precision == "fp32"
    panel.bf16_check.click()
    assert panel.settings().train_config().precision == "bf16"
    assert run(qtbot, panel) == "completed"
    saved = load_checkpoint(tmp_path / "bf16.safetensors")
    assert saved.training["train_config"]["precision"] == "bf16" and saved.training["step"] == 3


def test_the_averaging_box_saves_the_weight_average_and_keeps_the_live_weights_for_a_resume(qtbot, tmp_path):
    panel = new_panel(qtbot, tmp_path / "ema.safetensors", max_steps=3)
    assert panel.settings().ema == 0.0
    panel.ema_check.click()
    assert panel.settings().train_config().ema == EMA_DECAY
    assert run(qtbot, panel) == "completed"
    saved = load_checkpoint(tmp_path / "ema.safetensors", with_train_state=True)
    assert saved.training["train_config"]["ema"] == EMA_DECAY
    live, average = saved.train_state["raw"], saved.model.state_dict()
    assert live and any(not torch.equal(live[k], average[k]) for k in live)


def test_pixelcnn_width_and_depth_fields_reach_the_model(qtbot, tmp_path):
    panel = TrainingPanel(ExplorerState(), None)
    qtbot.addWidget(panel)
    panel.train_overrides = {"eval_batches": 1}
    panel.configure(model="vae", dataset="shapes", image_size=28, channels=1)
    assert panel.hyper_form.isRowVisible(panel.latent_spin) and not panel.hyper_form.isRowVisible(panel.layers_spin)
    panel.configure(
        model="pixelcnn", hidden=12, layers=3, batch_size=8, max_steps=2, checkpoint_path=tmp_path / "p.safetensors"
    )
    assert panel.hyper_form.isRowVisible(panel.hidden_spin) and not panel.hyper_form.isRowVisible(panel.latent_spin)
    assert run(qtbot, panel) == "completed"
    config = load_checkpoint(tmp_path / "p.safetensors").model.config
    assert (config.hidden, config.n_layers, config.levels) == (12, 3, 2)
    panel.configure(hidden=0, layers=0)  # back to the defaults
    assert panel.settings().model_config(panel.settings().data_spec())["n_layers"] == 10
