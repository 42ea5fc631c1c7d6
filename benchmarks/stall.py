"""GUI stall while training: the longest the event loop cannot run while the Train panel trains.

A 1 ms QTimer (precise) in the GUI thread records the time between its ticks; the longest gap is the
longest time nothing else (input, paint) could have run either. Measured for a few seconds with the
Train tab of `explorer.app.build_window` showing and nothing running (the baseline), then for as
long again from `TrainingPanel.start()` of a VAE run (latent 16, batch 128) on the data the app
would load (MNIST when it is where tools/train_bundled.sh finds it, else shapes 28 x 28): data
loading, model building and training steps with the panel's live curves, its sample grid every 100
steps and its progress redraws. The window first finishes its own start-up jobs (the open VAE's
dataset statistics), so their imports do not fall into either measurement.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import (
    MNIST_ROOT,
    Row,
    isolated_settings,
    module_main,
    no_jobs_running,
    percentile,
    qt_app,
    settle,
    wait_for,
)

TARGET_STALL = 0.050
BATCH = 128


class _TickProbe:
    """A 1 ms precise timer in the GUI thread; `gaps` are the times between consecutive ticks."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)
        self.last: float | None = None
        self.gaps: list[float] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.gaps.append(now - self.last)
        self.last = now

    def run_for(self, seconds: float) -> list[float]:
        self.gaps, self.last = [], None
        self.timer.start()
        settle(seconds)
        self.timer.stop()
        return self.gaps


def _train_and_probe(panel, probe: _TickProbe, seconds: float, folder: Path, options: dict) -> tuple[list[float], int]:
    panel.configure(model="vae", **options, latent_dim=16, batch_size=BATCH, max_steps=100_000,
                    checkpoint_path=str(folder / f"run-{time.monotonic_ns()}.safetensors"))
    if panel.start() is None:
        raise RuntimeError(f"the training panel did not start: {panel.banner_text()}")
    gaps = probe.run_for(seconds)
    steps = panel.step
    panel.stop()
    if not wait_for(lambda: panel.phase == "idle", 120):
        raise RuntimeError("the training run did not stop")
    return gaps, steps


def stall_rows(quick: bool) -> list[Row]:
    """Two runs in one fresh window (no checkpoint named): the session's first training run, on the
    procedural shapes, then one on MNIST (shapes again without the files)."""
    from explorer.app import build_window

    qt_app()
    isolated_settings()
    seconds = 4.0 if quick else 10.0
    window = build_window(["--device", "cpu"])  # opens the first bundled checkpoint, if any
    window.resize(1280, 860)
    window.show()
    panel = window.extra_panels["training"]
    folder = Path(tempfile.mkdtemp(prefix="latent-explorer-bench-train-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    try:
        window.tabs.setCurrentIndex(next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == "Train"))
        wait_for(no_jobs_running, 180)
        settle(0.5)
        probe = _TickProbe()
        idle = probe.run_for(seconds)
        baseline = f"idle: longest {max(idle) * 1e3:.1f} ms (p99 {percentile(idle, 99) * 1e3:.1f} ms)"
        fresh = "torch._dynamo" not in sys.modules  # torch.optim imports it on first use: seconds, in the worker
        shapes = {"dataset": "shapes", "image_size": 28, "channels": 1}
        mnist = (MNIST_ROOT / "MNIST" / "raw").is_dir()
        runs = [("first run of the session" + (" (imports torch._dynamo)" if fresh else ""), "shapes 28x28", shapes),
                ("second run", "MNIST" if mnist else "shapes 28x28",
                 {"dataset": "mnist", "root": str(MNIST_ROOT)} if mnist else shapes)]
        rows = []
        for what, dataset, options in runs:
            busy, steps = _train_and_probe(panel, probe, seconds, folder, options)
            settle(0.5)
            rows.append(Row("GUI stall while training",
                            f"Train panel, VAE on {dataset}, {what}: {seconds:.0f} s from start ({steps} steps), 1 ms timer",
                            f"longest gap {max(busy) * 1e3:.1f} ms (p99 {percentile(busy, 99) * 1e3:.1f} ms)", baseline,
                            f"{max(busy) / max(idle):.1f}x idle", "longest <= 50 ms", max(busy) <= TARGET_STALL))
        return rows
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    return stall_rows(quick)


if __name__ == "__main__":
    raise SystemExit(module_main("stall", run))
