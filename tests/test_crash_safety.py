"""Long runs survive faults: kill -9 in the middle of a checkpoint write leaves the previous one intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engines.checkpoint import load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def test_kill_9_during_a_checkpoint_write_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    path = tmp_path / "run.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "checkpoint_writer.py"), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            for line in proc.stdout:
                if line.strip() == "writing 2":  # versions 0 and 1 are complete; 2 is being written now
                    break
            deadline = time.monotonic() + 30
            while not list(tmp_path.glob(".run.safetensors.*.tmp")) and time.monotonic() < deadline:
                pass  # spin until version 2's temp file is on disk, so the kill lands mid-write
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(path).metrics["version"] == 1  # the previous checkpoint, whole
    leftovers = [p for p in tmp_path.iterdir() if p.name != path.name]
    assert leftovers and all(p.name.startswith(".run.safetensors.") for p in leftovers)  # the killed write

    ckpt = load_checkpoint(path)  # the next save (a resumed run) clears the killed write's temp file
    save_checkpoint(path, ckpt.model, metrics={"version": 3})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
