"""Stopping or quitting during a training step that cannot be interrupted: the window keeps responding,
the run stops after that step with its checkpoint, and the process exits cleanly."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import QTimer  # noqa: E402

from engines.checkpoint import load_checkpoint  # noqa: E402
from engines.training import recipes  # noqa: E402
from tests.helpers import tiny_vae_run  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MAX_GAP_MS = 200  # the longest the GUI thread may go without running its event loop while it waits
WAIT = 30_000


class Heartbeat:
    """A 10 ms timer on the GUI thread; `max_gap_ms` is the longest time between two of its ticks."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._beat)
        self.last = time.monotonic()
        self.max_gap_ms = 0.0
        self.timer.start()

    def _beat(self) -> None:
        now = time.monotonic()
        self.max_gap_ms = max(self.max_gap_ms, (now - self.last) * 1000)
        self.last = now

    def stop(self) -> float:
        self._beat()
        self.timer.stop()
        return self.max_gap_ms


@pytest.fixture
def slow_vae_steps(monkeypatch):
    """Every VAE training step sleeps 1.5 s first; the event is set when a step begins."""
    started = threading.Event()
    recipe = recipes.RECIPES["vae"]
    real_step = recipe.step

    def slow_step(*args, **kwargs):
        started.set()
        time.sleep(1.5)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(recipe, "step", slow_step)
    return started


def test_stop_during_a_slow_step_keeps_the_window_responsive_and_keeps_the_checkpoint(
    make_window, vae_checkpoint, tmp_path, qtbot, slow_vae_steps
):
    window = make_window(vae_checkpoint)
    window.show()
    panel = window.extra_panels["training"]
    path = tmp_path / "slow.safetensors"
    tiny_vae_run(panel, path, max_steps=100)
    panel.start_button.click()
    qtbot.waitUntil(slow_vae_steps.is_set, timeout=WAIT)  # step 1 is running (sleeping)

    heartbeat = Heartbeat()
    with qtbot.waitSignal(panel.runFinished, timeout=WAIT) as finished:
        panel.stop_button.click()
        assert "waiting for the current step to finish" in panel.status_label.text()
        assert not panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    gap = heartbeat.stop()
    assert gap < MAX_GAP_MS, f"the GUI thread was blocked for {gap:.0f} ms"
    assert finished.args == ["stopped"]
    assert load_checkpoint(path).training["step"] == 1 == panel.step  # the step in progress was completed
    assert panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.is_training(), timeout=WAIT)  # its thread ends too, soon after


def test_closing_the_window_during_a_slow_step_waits_visibly_then_closes(
    make_window, vae_checkpoint, tmp_path, qtbot, slow_vae_steps, monkeypatch
):
    window = make_window(vae_checkpoint)
    window.show()
    panel = window.extra_panels["training"]
    path = tmp_path / "closing.safetensors"
    tiny_vae_run(panel, path, max_steps=100)
    monkeypatch.setattr(panel, "confirm_close", lambda: True)
    panel.start()
    qtbot.waitUntil(slow_vae_steps.is_set, timeout=WAIT)

    heartbeat = Heartbeat()
    assert not window.close()  # not yet: the step in progress is waited for...
    assert window.isVisible() and "waiting for the current step to finish" in window.banner.text()
    assert not window.tabs.isEnabled()  # ...and nothing new can start meanwhile
    assert not window.close()  # closing again changes nothing
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT)
    gap = heartbeat.stop()
    assert gap < MAX_GAP_MS, f"the GUI thread was blocked for {gap:.0f} ms"
    assert not panel.is_training() and not window.decoder.is_running()
    assert load_checkpoint(path).training["step"] == 1


@pytest.mark.parametrize("mode", ["close", "quit"])
def test_the_app_quits_cleanly_when_closed_mid_step(vae_checkpoint, tmp_path, mode):
    """The real app in a subprocess (tests/gui_quit_worker.py): a 2.5 s step, the window closed (or
    QApplication.quit called) 0.2 s into it. Before, closing froze the GUI until the step ended, and the
    process could abort ("QThread: Destroyed while thread is still running")."""
    run_path = tmp_path / "run.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "gui_quit_worker.py"),
            str(vae_checkpoint),
            str(run_path),
            str(tmp_path / "settings"),
            mode,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "QThread: Destroyed" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exit"] == 0
    assert report["max_gap_ms"] < MAX_GAP_MS, report
    assert any("waiting for the current step to finish" in m for m in report["messages"]), report
    assert 1.0 < report["closed_after_s"] < 60, report  # it waited for the step rather than cutting it short
    ckpt = load_checkpoint(run_path)
    assert ckpt.training["step"] == report["steps_started"] == 2  # the step in progress was completed and saved
