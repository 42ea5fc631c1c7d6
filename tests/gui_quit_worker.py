"""Run by tests/test_gui_quit.py: the real app closed in the middle of a deliberately slow training step.

    python tests/gui_quit_worker.py CHECKPOINT RUN.safetensors SETTINGS_DIR [close|quit]

Builds the main window as `latent-explorer CHECKPOINT` does (offscreen), starts a tiny VAE run on the
Train tab whose every step sleeps STEP_S seconds, closes the window while a step is in progress (the
"stop the run?" question answered Yes) or, with `quit`, calls QApplication.quit() instead (the path
that bypasses the window's close), and runs the event loop to the end as the app does. A 10 ms
QTimer heartbeat measures how long the GUI thread goes without running its event loop from the close
to the end. The last stdout line is JSON: {"max_gap_ms", "closed_after_s", "messages", "steps_started"}.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import torch  # noqa: E402
from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from engines.training import recipes  # noqa: E402

STEP_S = 2.5
HEARTBEAT_MS = 10

checkpoint, run_path, settings_dir = sys.argv[1:4]
mode = sys.argv[4] if len(sys.argv) > 4 else "close"
torch.set_num_threads(1)
for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):  # keep the user's settings alone
    QSettings.setPath(fmt, QSettings.Scope.UserScope, settings_dir)
    QSettings.setPath(fmt, QSettings.Scope.SystemScope, settings_dir)

in_step = threading.Event()
steps_started = 0
vae_recipe = recipes.RECIPES["vae"]
real_step = vae_recipe.step


def slow_step(*args, **kwargs):
    """The real step, made slow: a step that cannot be interrupted, as a big model's would be."""
    global steps_started
    steps_started += 1
    in_step.set()
    time.sleep(STEP_S)
    return real_step(*args, **kwargs)


vae_recipe.step = slow_step  # an instance attribute: Trainer looks the recipe up in RECIPES

from explorer.app import build_window, run_window  # noqa: E402
from tests.helpers import tiny_vae_run  # noqa: E402

window = build_window([checkpoint, "--device", "cpu"])
panel = window.extra_panels["training"]
panel.confirm_close = lambda: True  # "Stop the run and close?" Yes
tiny_vae_run(panel, run_path, max_steps=1000)

heartbeat = {"last": None, "max_gap": 0.0, "closed_at": None, "messages": set()}


def beat() -> None:
    now = time.monotonic()
    if heartbeat["last"] is not None:
        heartbeat["max_gap"] = max(heartbeat["max_gap"], now - heartbeat["last"])
    heartbeat["last"] = now
    text = window.banner.text() or window.statusBar().currentMessage()
    if text:
        heartbeat["messages"].add(text)


timer = QTimer()
timer.setInterval(HEARTBEAT_MS)
timer.timeout.connect(beat)


def close_mid_step() -> None:
    if not in_step.is_set() or steps_started < 2:  # the second step: one is done, so data and model are warm
        QTimer.singleShot(20, close_mid_step)
        return
    time.sleep(0.2)  # well inside the step
    heartbeat["closed_at"] = heartbeat["last"] = time.monotonic()
    timer.start()
    print(f"{mode} mid-step", flush=True)
    if mode == "quit":
        QApplication.instance().quit()
    else:
        window.close()


QTimer.singleShot(0, lambda: (panel.start(), close_mid_step()))
code = run_window(window)
end = time.monotonic()
beat()
print(
    json.dumps(
        {
            "exit": code,
            "max_gap_ms": round(heartbeat["max_gap"] * 1000, 1),
            "closed_after_s": round(end - heartbeat["closed_at"], 2) if heartbeat["closed_at"] else None,
            "messages": sorted(heartbeat["messages"]),
            "steps_started": steps_started,
        }
    ),
    flush=True,
)
sys.exit(code)
