"""kill -9 at random moments of a resumed run loses at most `checkpoint_every` steps each time: the
resumed run keeps the interval the run was started with (it used to fall back to epoch ends)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from engines.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
EVERY = 5


def _run_and_kill(args: list[str], rng: random.Random, min_steps: int) -> int:
    """Start the training command, kill -9 it at a random moment after `min_steps` steps; the last step it finished."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "resume_worker.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as proc:
        last, seen = None, 0
        try:
            for line in proc.stdout:
                last, seen = int(line.split()[1]), seen + 1
                if seen >= min_steps:
                    break
            time.sleep(rng.uniform(0.0, 0.4))  # the kill lands anywhere: mid-step, mid-write, between steps
            proc.send_signal(signal.SIGKILL)
            rest = proc.stdout.read()  # what it announced before dying
            proc.wait(timeout=30)
        finally:
            proc.kill()
    steps = [int(line.split()[1]) for line in rest.splitlines() if line.startswith("step ")]
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    return steps[-1] if steps else last


def test_kill_9_ten_times_in_a_resumed_run_loses_at_most_checkpoint_every_steps(tmp_path: Path) -> None:
    rng = random.Random(17)
    out = tmp_path / "run.safetensors"
    _run_and_kill(
        [
            "train",
            "--model",
            "vae",
            "--dataset",
            "shapes",
            "--latent-dim",
            "2",
            "--batch-size",
            "8",
            "--checkpoint-every",
            str(EVERY),
            "--epochs",
            "50",
            "--out",
            str(out),
        ],
        rng,
        min_steps=EVERY + 1,
    )
    losses = []
    for _ in range(10):
        before = load_checkpoint(out, with_train_state=True).train_state["step"]
        reached = _run_and_kill(["train", "--resume", str(out)], rng, min_steps=rng.randint(1, 3 * EVERY))
        saved = load_checkpoint(out, with_train_state=True).train_state["step"]
        assert reached > before  # the resumed run really trained
        losses.append(reached - saved)
    assert all(0 <= lost <= EVERY for lost in losses), losses
    assert max(losses) > 0  # the kills did land between checkpoints
