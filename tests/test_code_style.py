"""The tree stays lint-clean and formatted (ruff check, ruff format --check), as part of the one test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUFF = str(Path(sys.executable).with_name("ruff"))
PATHS = ["engines", "explorer", "tests", "benchmarks", "tools"]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([RUFF, "check", *PATHS], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_tree_is_formatted() -> None:
    result = subprocess.run([RUFF, "format", "--check", *PATHS], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, "run `ruff format` on:\n" + result.stdout[-3000:]
