"""The command line, run as a user runs it: real files, real signals. Commands run in-process through the
program's own entry point (explorer.__main__.main, as `latent-explorer` and `python -m explorer` do), with
sys.argv, stdout and stderr as a process would have them; Ctrl+C needs a real process and gets one."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engines.checkpoint import load_checkpoint
from explorer.__main__ import main as program_main
from tests.helpers import TINY_VAE_ARGS

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    """`latent-explorer *args`, in this process: exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["latent-explorer", *args]  # the training summary records the command line
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = program_main(list(args))
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(["latent-explorer", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "vae.safetensors"
    result = cli(
        "train",
        "--model",
        "vae",
        "--dataset",
        "shapes",
        "--image-size",
        "28",
        "--channels",
        "1",
        "--latent-dim",
        "4",
        "--batch-size",
        "32",
        "--max-steps",
        "20",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    return out


def test_train_writes_a_checkpoint_with_its_command_and_samples(trained_vae: Path) -> None:
    ckpt = load_checkpoint(trained_vae)
    assert ckpt.kind == "vae" and ckpt.model.config.latent_dim == 4 and ckpt.training["step"] == 20
    assert ckpt.training["command"].startswith("latent-explorer train --model vae")
    assert ckpt.dataset["name"] == "shapes" and ckpt.dataset["channels"] == 1


def test_eval_json_gives_vae_metrics_in_nats(trained_vae: Path) -> None:
    result = cli("eval", str(trained_vae), "--limit", "50", "--k", "10", "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["images"] == 50 and metrics["iw_k"] == 10
    assert metrics["neg_elbo"] == pytest.approx(-metrics["elbo"])
    assert 0 < metrics["iw_nll"] <= metrics["neg_elbo"] + 1.0  # the IW bound is no looser than the ELBO


def test_eval_is_reproducible_and_can_be_saved(trained_vae: Path) -> None:
    a = json.loads(cli("eval", str(trained_vae), "--limit", "20", "--k", "5", "--json", "--save").stdout)
    b = json.loads(cli("eval", str(trained_vae), "--limit", "20", "--k", "5", "--json").stdout)
    assert a["iw_nll"] == b["iw_nll"]
    assert load_checkpoint(trained_vae).metrics["eval"]["iw_nll"] == a["iw_nll"]


def test_sample_writes_a_grid_png(trained_vae: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    result = cli("sample", str(trained_vae), "--n", "9", "--seed", "3", "--scale", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    image = np.asarray(Image.open(out))
    assert image.shape == (3 * 28 + 4 * 2, 3 * 28 + 4 * 2)  # 3x3 tiles with 2-pixel padding
    again = tmp_path / "again.png"
    cli("sample", str(trained_vae), "--n", "9", "--seed", "3", "--scale", "1", "--out", str(again))
    assert np.array_equal(image, np.asarray(Image.open(again)))


def test_pixelcnn_trains_and_evaluates_in_bits_per_dim(tmp_path: Path) -> None:
    out = tmp_path / "p.safetensors"
    result = cli(
        "train",
        "--model",
        "pixelcnn",
        "--dataset",
        "shapes",
        "--image-size",
        "28",
        "--channels",
        "1",
        "--hidden",
        "8",
        "--layers",
        "2",
        "--max-steps",
        "5",
        "--batch-size",
        "16",
        "--precision",
        "bf16",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    ckpt = load_checkpoint(out)
    assert ckpt.dataset["binarize"] == "stochastic" and ckpt.model.config.levels == 2
    assert ckpt.training["train_config"]["precision"] == "bf16"
    metrics = json.loads(cli("eval", str(out), "--limit", "16", "--json").stdout)
    assert metrics["bits_per_dim"] == pytest.approx(metrics["nll"] / (784 * np.log(2)))


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "--model", "vae", "--dataset", "nope"], "invalid choice"),
        (["train", "--model", "vae", "--dataset", "shapes", "--epochs", "0"], "at least 1"),
        (["train", "--model", "vae", "--dataset", "shapes", "--latent-dim", "1", "--max-steps", "1"], "latent_dim"),
        (["train", "--model", "vae", "--dataset", "shapes", "--device", "cuda:7", "--max-steps", "1"], "not available"),
        (
            ["train", "--model", "vae", "--dataset", "mnist", "--data-root", "/nonexistent", "--max-steps", "1"],
            "/nonexistent",
        ),
        (["train", "--model", "vae", "--dataset", "folder", "--max-steps", "1"], "--data-root"),
        (["eval", "/nonexistent.safetensors"], "no checkpoint"),
        (["sample", "README.md", "--out", "x.png"], "error"),
    ],
)
def test_bad_arguments_and_files_give_one_line_and_a_nonzero_exit(args: list[str], needle: str) -> None:
    result = cli(*args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert needle in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error" in line]) == 1


def test_pickled_file_is_refused_by_the_cli(tmp_path: Path) -> None:
    evil = tmp_path / "model.pt"
    evil.write_bytes(b"\x80\x04\x95" + b"\x00" * 20)
    result = cli("eval", str(evil))
    assert result.returncode == 1 and "pickle" in result.stderr and "Traceback" not in result.stderr


def test_folder_training_reports_skipped_files(tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "notes.png").write_text("not an image")
    out = tmp_path / "f.safetensors"
    result = cli(
        "train",
        "--model",
        "vae",
        "--dataset",
        "folder",
        "--data-root",
        str(folder),
        "--image-size",
        "28",
        "--latent-dim",
        "2",
        "--batch-size",
        "3",
        "--max-steps",
        "2",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "skipped 1 file(s): 1 not an image" in result.stderr
    assert load_checkpoint(out).model.config.channels == 3


def test_ctrl_c_stops_cleanly_with_a_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "explorer",
            "train",
            *TINY_VAE_ARGS,
            "--batch-size",
            "16",
            "--epochs",
            "50",
            "--out",
            str(out),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while "step/s" not in seen and time.monotonic() < deadline:  # wait until steps are running
            seen += proc.stderr.read1(4096).decode() if hasattr(proc.stderr, "read1") else proc.stderr.read(64)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped at step" in stdout and "Traceback" not in stderr
    ckpt = load_checkpoint(out, with_train_state=True)
    assert 0 < ckpt.training["step"] < 50 * (50_000 // 16) and ckpt.train_state["step"] == ckpt.training["step"]


def test_a_resumed_run_records_its_first_command_and_each_resume(tmp_path: Path) -> None:
    out = tmp_path / "r.safetensors"
    first = [
        "train",
        *TINY_VAE_ARGS,
        "--batch-size",
        "8",
        "--max-steps",
        "2",
        "--out",
        str(out),
    ]
    assert cli(*first).returncode == 0
    again = cli("train", "--resume", str(out), "--max-steps", "3")
    assert again.returncode == 0, again.stderr
    training = load_checkpoint(out).training
    assert training["command"] == "latent-explorer " + " ".join(first) and training["step"] == 3
    assert training["resumed_with"] == [f"latent-explorer train --resume {out} --max-steps 3"]
