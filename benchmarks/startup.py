"""Start-up: `python -m explorer CHECKPOINT` launched -> the first decoded image painted.

The parent starts a fresh Python process and stamps the time just before `subprocess.Popen` and
when the child's line "first-image" arrives on its stdout pipe. The child is this module with
`--child`: it wraps `ImageView.paintEvent` (class attribute, set before any view exists) so that the
end of the first paint of a view that holds an image prints the line and quits the app, then runs
`explorer.__main__.main([CHECKPOINT, "--device", "cpu"])`, i.e. exactly what `python -m explorer`
runs (importing this module first costs a few standard-library imports). With bundled checkpoints
no checkpoint is named, as in the README's quick start (the app opens the first bundled one).

Baseline, interleaved run by run: `python -c "import torch, PySide6.QtWidgets"`, from Popen to exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from . import BUNDLED, REPO, Row, is_bundled, median, models_of, module_main

TARGET = 3.0
MARKER = "first-image"


def _child(argv: list[str]) -> int:
    from benchmarks import isolated_settings

    isolated_settings()  # leave the user's recent files and window layout alone
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from explorer.image_view import ImageView

    paint = ImageView.paintEvent
    done = []

    def paint_and_report(self, event) -> None:
        paint(self, event)
        if self.image() is not None and not done:
            done.append(True)
            print(MARKER, flush=True)
            QTimer.singleShot(0, QApplication.quit)

    ImageView.paintEvent = paint_and_report
    from explorer.__main__ import main

    return main(argv + ["--device", "cpu"])


def _time_to_marker(cmd: list[str], env: dict, timeout: float = 120.0) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == MARKER:
                elapsed = time.perf_counter() - t0
                try:  # the app quits by itself, but waits for its start-up jobs; no need to wait long
                    proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    pass
                return elapsed
        raise RuntimeError(f"{' '.join(cmd)} exited ({proc.wait(timeout)}) without showing an image")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _time_to_exit(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    bundled = [name for name, path in paths.items() if is_bundled(path)]
    if bundled:  # as in the README's quick start: the app opens its default bundled checkpoint
        from explorer.app import find_default_checkpoint  # what the app itself opens (the timing runs elsewhere)

        argv, what = [], f"default checkpoint ({find_default_checkpoint(BUNDLED).stem}, bundled)"
    else:
        latent = models_of(paths, ("vae", "gan"))
        name = "vae-16d" if "vae-16d" in latent else next(iter(latent))
        argv, what = [str(latent[name])], name
    app_cmd = [sys.executable, "-m", "benchmarks.startup", "--child", *argv]
    base_cmd = [sys.executable, "-c", "import torch, PySide6.QtWidgets"]
    _time_to_exit(base_cmd, env)  # warm the file cache for both
    app, base = [], []
    for _ in range(2 if quick else 4):
        base.append(_time_to_exit(base_cmd, env))
        app.append(_time_to_marker(app_cmd, env))
    return [
        Row(
            "Start-up to first image",
            f"python -m explorer, {what} ({len(app)} launches)",
            f"median {median(app):.2f} s (max {max(app):.2f} s)",
            f"import torch + PySide6.QtWidgets: median {median(base):.2f} s",
            f"{median(app) / median(base):.1f}x imports (+{median(app) - median(base):.2f} s)",
            "<= 3 s",
            median(app) <= TARGET,
        )
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        raise SystemExit(_child(sys.argv[2:]))
    raise SystemExit(module_main("startup", run))
