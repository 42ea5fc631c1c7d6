"""The Train tab estimates a run's memory as the form is edited, and refuses (or asks before) a run that
would not fit; settings the model refuses are said in the form, never as a traceback."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from engines.memory import training_bytes  # noqa: E402
from explorer.panels import training_setup  # noqa: E402
from explorer.panels.training import TrainingPanel  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402
from tests.helpers import tiny_vae_run  # noqa: E402

WAIT = 30_000
GB = 2**30


@pytest.fixture
def panel(qtbot):
    panel = TrainingPanel(ExplorerState(), None)
    qtbot.addWidget(panel)
    assert panel.memory is None  # nothing is estimated for a tab never shown
    panel.show()
    qtbot.waitUntil(lambda: panel.memory is not None, timeout=WAIT)  # the first estimate, for the defaults
    return panel


def edit(qtbot, panel: TrainingPanel, **form):
    """Set form fields as a user would and wait for the estimate that follows."""
    with qtbot.waitSignal(panel.memoryEstimated, timeout=WAIT) as signal:
        panel.configure(**form)
    return signal.args[0]


def test_the_estimate_follows_the_form(panel, qtbot):
    small = edit(qtbot, panel, model="vae", dataset="shapes", image_size=28, channels=1, batch_size=16)
    assert small.need == training_bytes(
        "vae", panel.form_settings().model_config(panel.form_settings().data_spec()), 16
    )
    text = panel.memory_text()
    assert text.startswith("~") and "of" in text and text.endswith("available"), text
    large = edit(qtbot, panel, model="pixelcnn", dataset="shapes", image_size=64, channels=3, batch_size=128)
    assert large.need > 4 * small.need
    assert panel.memory_text() != text


def test_a_run_above_the_available_memory_asks_first_and_no_is_the_answer(panel, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(training_setup, "available_bytes", lambda device="cpu": GB // 2)
    estimate = edit(
        qtbot,
        panel,
        model="pixelcnn",
        dataset="shapes",
        image_size=64,
        channels=3,
        batch_size=128,
        checkpoint_path=tmp_path / "big.safetensors",
    )
    assert not estimate.fits and estimate.available == GB // 2
    assert "of 512.0 MB available: more than this machine has free" in panel.memory_text()
    assert "ff6b6b" in panel.memory_label.styleSheet()  # red

    asked = []
    monkeypatch.setattr(panel, "confirm_memory", lambda message: asked.append(message) or False)
    assert panel.start() is None and panel.job is None
    assert len(asked) == 1 and "512.0 MB is available" in asked[0]
    assert panel.banner_text().startswith("Not started: this run needs about") and panel.phase == "idle"


def test_a_run_above_the_estimate_starts_when_the_user_says_yes(panel, qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(training_setup, "available_bytes", lambda device="cpu": 1)
    with qtbot.waitSignal(panel.memoryEstimated, timeout=WAIT):  # as edit() does
        tiny_vae_run(panel, tmp_path / "yes.safetensors", max_steps=2)
    monkeypatch.setattr(panel, "confirm_memory", lambda message: True)
    with qtbot.waitSignal(panel.runFinished, timeout=WAIT) as finished:
        assert panel.start() is not None
    assert finished.args == ["completed"]


def test_settings_the_model_refuses_are_shown_in_the_form(panel, qtbot, tmp_path):
    # A colour PixelCNN's width must be a multiple of 3; the config class says so, in the form's words.
    estimate = edit(
        qtbot,
        panel,
        model="pixelcnn",
        dataset="shapes",
        image_size=28,
        channels=3,
        hidden=64,
        checkpoint_path=tmp_path / "bad.safetensors",
    )
    assert estimate.need is None and estimate.invalid
    text = panel.memory_text()
    assert text.startswith("Width (64) must be a multiple of channels (3)"), text
    assert "ff6b6b" in panel.memory_label.styleSheet()
    assert panel.start() is None
    banner = panel.banner_text()
    assert banner.startswith("Width (64) must be a multiple") and "Traceback" not in banner and "\n" not in banner
    estimate = edit(qtbot, panel, hidden=600)  # above the model's bound
    assert panel.memory_text().startswith("Width must be between 1 and 512"), panel.memory_text()
    fine = edit(qtbot, panel, hidden=96)
    assert fine.need is not None and panel.memory_text().startswith("~")
