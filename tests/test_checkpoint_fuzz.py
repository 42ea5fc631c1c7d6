"""The checkpoint loader under property-based fuzzing (tests/checkpoint_fuzz.py), in its own process so
that its peak memory is its own: >= 2,000 written-and-loaded checkpoints with random metadata sizes
and random mutations; valid files open, invalid ones raise CheckpointError and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PEAK_MEMORY_MB = 1200  # a Python process with torch loaded takes ~700 MB here; no file may add much to it


def test_fuzzed_checkpoints_open_or_raise_checkpoint_error_within_a_memory_bound() -> None:
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "tests.checkpoint_fuzz", "--examples", "2000"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["tried"] >= 2000
    # Both outcomes really happen, for every kind of mutation that can be refused.
    assert counts["opened_none"] >= 300 and counts["opened_meta"] > 0
    for touched in ("meta", "data", "header", "truncate", "append", "not-json"):
        assert counts[f"refused_{touched}"] > 0, touched
    assert counts["peak_rss_mb"] < PEAK_MEMORY_MB, counts
