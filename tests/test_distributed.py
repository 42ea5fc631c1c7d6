"""The trainer under torchrun: 2 CPU processes (gloo) stay in sync; rank 0 alone writes; resume works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engines.checkpoint import load_checkpoint
from tests.helpers import TINY_VAE_ARGS

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
pytestmark = pytest.mark.skipif(TORCHRUN is None, reason="torchrun is not installed")


def torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [TORCHRUN, "--standalone", "--nproc_per_node", "2", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_two_ranks_keep_identical_parameters(tmp_path: Path) -> None:
    torchrun(str(REPO / "tests" / "ddp_worker.py"), str(tmp_path))
    for name in ("vae", "wgan", "pixelcnn", "stylegan"):
        # our own files, written by our own worker just now: safe to unpickle
        r0 = torch.load(tmp_path / f"{name}-rank0.pt", weights_only=True)
        r1 = torch.load(tmp_path / f"{name}-rank1.pt", weights_only=True)
        assert r0["changed"] and r0["steps"] == r1["steps"] == 6
        assert r0["shard"] == r1["shard"] == 64  # DistributedSampler: each rank half of the 128 images
        for key, value in r0["state"].items():
            assert torch.equal(value, r1["state"][key]), f"{name}: {key} differs between ranks"


def test_distributed_cli_run_writes_one_checkpoint_that_resumes_and_opens(tmp_path: Path, qtbot) -> None:
    out = tmp_path / "ddp.safetensors"
    common = ["-m", "explorer", "train"]
    first = torchrun(
        *common,
        *TINY_VAE_ARGS,
        "--batch-size",
        "8",
        "--max-steps",
        "5",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--tensorboard",
        str(tmp_path / "tb"),
    )
    assert "distributed: 2 processes" in first.stderr
    assert [p.name for p in tmp_path.glob("*.safetensors")] == ["ddp.safetensors"]  # rank 0 alone writes
    assert load_checkpoint(out).training["step"] == 5
    assert any((tmp_path / "tb").iterdir())  # TensorBoard events were written

    torchrun(*common, "--resume", str(out), "--max-steps", "8")
    ckpt = load_checkpoint(out, with_train_state=True)
    assert ckpt.train_state["step"] == 8 and ckpt.training["train_config"]["batch_size"] == 8

    from explorer.state import ExplorerState

    state = ExplorerState()
    state.open_checkpoint(out)  # the checkpoint of a distributed run opens in the app
    assert state.kind == "vae" and state.latent_dim == 2
