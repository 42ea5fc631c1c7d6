"""The layering contracts in pyproject.toml ([tool.importlinter]) hold, and really catch a break."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT, "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent)},
    )


def test_layering_contracts_are_kept() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_qt_import_in_engines_breaks_a_contract(tmp_path: Path) -> None:
    for name in ("engines", "explorer"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    with open(tmp_path / "engines" / "latent.py", "a") as f:
        f.write("\nfrom PySide6 import QtCore  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0 and "engines never imports the GUI or Qt BROKEN" in result.stdout
