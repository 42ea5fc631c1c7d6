"""Which checkpoint the app opens when started with no argument."""

from __future__ import annotations

from pathlib import Path

from engines.checkpoint import save_checkpoint
from engines.models import build_model
from explorer.app import DEFAULT_CHECKPOINT_NAME, find_default_checkpoint
from tests.helpers import TINY


def test_prefers_the_named_default_then_the_first_explorable_model(tmp_path: Path) -> None:
    assert find_default_checkpoint(tmp_path) is None
    (tmp_path / "a-corrupt.safetensors").write_bytes(b"\x00" * 64)
    save_checkpoint(tmp_path / "b-gan.safetensors", build_model("gan", TINY["gan"]))
    assert find_default_checkpoint(tmp_path) == tmp_path / "b-gan.safetensors"
    save_checkpoint(tmp_path / DEFAULT_CHECKPOINT_NAME, build_model("vae", TINY["vae"]))
    assert find_default_checkpoint(tmp_path) == tmp_path / DEFAULT_CHECKPOINT_NAME
