"""The command line refuses bad input up front, keeps a resumed run's settings, and says what it did.

In-process (engines.cli.main / explorer.__main__.main with capsys) for speed; tests/test_cli.py runs
the real processes. Every run here is a tiny VAE on the procedural `shapes` dataset (no files).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import engines.cli as cli
import engines.training.trainer as trainer_module
from engines.checkpoint import load_checkpoint, save_checkpoint
from engines.cli import main
from engines.data import DATA_ROOT_ENV, default_data_root
from engines.training import create_model
from explorer.__main__ import main as program_main
from explorer.__main__ import unknown_command
from tests.helpers import TINY_VAE_ARGS

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "checkpoints"
MNIST_ROOT = REPO.parent / "shared" / "datasets"  # beside the checkout here and in CI; elsewhere those tests skip
TINY_VAE = [
    *TINY_VAE_ARGS,
    "--batch-size",
    "8",
]


def one_error_line(err: str) -> str:
    """The single 'error' line of stderr (argparse adds a usage block before it); no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def nothing_heavy(monkeypatch):
    """Fail the test if the command gets as far as loading data, building a trainer or loading weights."""

    def refuse(*args, **kwargs):
        raise AssertionError("validation should have stopped the command before this")

    for name in ("load_dataset", "load_checkpoint", "Trainer", "create_model"):
        monkeypatch.setattr(cli, name, refuse)


# --- bad values: exit status 2, one line, nothing heavy ran ------------------------------------------
TRAIN = ["train", *TINY_VAE]


@pytest.mark.parametrize(
    "args,needle",
    [
        ([*TRAIN, "--latent-dim", "0"], "--latent-dim: must be at least 1, not 0"),
        ([*TRAIN, "--latent-dim", "-5"], "--latent-dim: must be at least 1, not -5"),
        ([*TRAIN, "--latent-dim", "100000000"], "--latent-dim: must be at most 1024"),
        ([*TRAIN, "--latent-dim", "1e8"], "--latent-dim: must be a whole number"),
        ([*TRAIN, "--latent-dim", "1"], "latent_dim must be between 2 and 256, not 1"),  # the VAE config's own bound
        ([*TRAIN, "--checkpoint-every", "-1"], "--checkpoint-every: must be at least 0"),
        ([*TRAIN, "--sample-every", "-20"], "--sample-every: must be at least 0"),
        ([*TRAIN, "--beta", "-0.5"], "--beta: must be at least 0"),
        ([*TRAIN, "--beta", "nan"], "--beta: must be a finite number"),
        ([*TRAIN, "--lr", "-0.001"], "--lr: must be greater than 0"),
        ([*TRAIN, "--lr", "0"], "--lr: must be greater than 0"),
        ([*TRAIN, "--lr", "inf"], "--lr: must be a finite number"),
        ([*TRAIN, "--lr", "NaN"], "--lr: must be a finite number"),
        ([*TRAIN, "--epochs", "0"], "--epochs: must be at least 1"),
        ([*TRAIN, "--batch-size", "-8"], "--batch-size: must be at least 1"),
        ([*TRAIN, "--max-steps", "0"], "--max-steps: must be at least 1"),
        ([*TRAIN, "--seed", "-1"], "--seed: must be at least 0"),
        (["train", "--model", "pixelcnn", "--dataset", "shapes", "--layers", "-2"], "--layers: must be at least 1"),
        (["train", "--model", "pixelcnn", "--dataset", "shapes", "--hidden", "-3"], "--hidden: must be at least 1"),
        (["train", "--model", "pixelcnn", "--dataset", "shapes", "--levels", "1"], "--levels: must be at least 2"),
        (
            ["train", "--model", "pixelcnn", "--dataset", "shapes", "--channels", "3", "--hidden", "8"],
            "hidden (8) must be a multiple of channels (3)",
        ),
        (["train", "--model", "gan", "--dataset", "shapes", "--d-steps", "-1"], "--d-steps: must be at least 1"),
        ([*TRAIN, "--levels", "4"], "--levels applies to pixelcnn models only"),
        ([*TRAIN, "--d-steps", "2"], "--d-steps applies to gan models only"),
        (["train", "--model", "gan", "--dataset", "shapes", "--beta", "2"], "--beta applies to vae models only"),
        ([*TRAIN, "--out", "model.pt"], "--out must end in .safetensors, not model.pt"),
        ([*TRAIN, "--device", "cuda:99"], "--device: device 'cuda:99' is not available"),
        ([*TRAIN, "--device", "abacus"], "--device: unknown device 'abacus'"),
        (["train", "--model", "vae"], "--model and --dataset are required"),
        (["train", "--model", "vae", "--dataset", "folder"], "--dataset folder needs --data-root"),
        (
            ["train", "--model", "vae", "--dataset", "mnist", "--data-root", "/nonexistent/mnist"],
            "--data-root /nonexistent/mnist: no such folder",
        ),
        # a PixelCNN at 64x64 with 65536 images a batch: terabytes, whatever the machine
        (
            ["train", "--model", "pixelcnn", "--dataset", "shapes", "--image-size", "64", "--batch-size", "65536"],
            "of memory but",
        ),
        (["eval", "x.safetensors", "--k", "0"], "--k: must be at least 1"),
        (["eval", "x.safetensors", "--batch-size", "5000"], "--batch-size: must be at most 1000"),
        (["eval", "x.safetensors", "--n", "0"], "--n: must be at least 10"),
        (["eval", "x.safetensors", "--seed", "-3"], "--seed: must be at least 0"),
        (["eval", "/nonexistent/x.safetensors"], "no checkpoint at /nonexistent/x.safetensors"),
        (
            ["sample", "x.safetensors", "--out", "g.png", "--temperature", "nan"],
            "--temperature: must be a finite number",
        ),
        (
            ["sample", "x.safetensors", "--out", "g.png", "--temperature", "inf"],
            "--temperature: must be a finite number",
        ),
        (["sample", "x.safetensors", "--out", "g.png", "--temperature", "0"], "--temperature: must be greater than 0"),
        (["sample", "x.safetensors", "--out", "g.png", "--temperature", "-1"], "--temperature: must be greater than 0"),
        (["sample", "x.safetensors", "--out", "g.png", "--truncation", "0"], "--truncation: must be greater than 0"),
        (["sample", "x.safetensors", "--out", "g.png", "--truncation", "nan"], "--truncation: must be a finite number"),
        (["sample", "x.safetensors", "--out", "g.png", "--scale", "100000"], "--scale: must be at most 64"),
        (["sample", "x.safetensors", "--out", "g.png", "--n", "0"], "--n: must be at least 1"),
        (["sample", "x.safetensors", "--out", "g.png", "--n", "100000"], "--n: must be at most 4096"),
        (["sample", "x.safetensors", "--out", "g.jpg"], "--out must be a .png file"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_status_2(args, needle, capsys, nothing_heavy) -> None:
    assert main(args) == 2
    assert needle in one_error_line(capsys.readouterr().err)


def test_the_default_data_root_is_checked_before_the_run(tmp_path, monkeypatch, capsys, nothing_heavy) -> None:
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "nowhere"))
    assert main(["train", "--model", "vae", "--dataset", "mnist"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(tmp_path / "nowhere") in line and DATA_ROOT_ENV in line


def test_an_out_that_cannot_be_written_is_refused_before_training(tmp_path, capsys, nothing_heavy) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main([*TRAIN, "--out", str(a_file / "run.safetensors")]) == 2
    assert "cannot write --out" in one_error_line(capsys.readouterr().err)
    folder = tmp_path / "run.safetensors"
    folder.mkdir()
    assert main([*TRAIN, "--out", str(folder)]) == 2
    assert "is a folder" in one_error_line(capsys.readouterr().err)
    assert main([*TRAIN, "--tensorboard", str(a_file / "tb")]) == 2
    assert "cannot write --tensorboard" in one_error_line(capsys.readouterr().err)
    assert main(["sample", str(BUNDLED / "vae-mnist-2d.safetensors"), "--out", str(a_file / "grid.png")]) == 2
    assert "cannot write --out" in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_folder_is_refused_before_training(tmp_path, capsys, nothing_heavy) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main([*TRAIN, "--out", str(locked / "run.safetensors")]) == 2
        assert "does not accept new files" in one_error_line(capsys.readouterr().err)
    finally:
        locked.chmod(0o700)


def test_a_new_run_never_replaces_an_existing_checkpoint_unless_told(tmp_path, capsys) -> None:
    out = tmp_path / "run.safetensors"
    out.write_bytes(b"another run's checkpoint")
    assert main([*TRAIN, "--max-steps", "1", "--out", str(out)]) == 2
    assert "already exists; pass --overwrite" in one_error_line(capsys.readouterr().err)
    assert out.read_bytes() == b"another run's checkpoint"
    assert main([*TRAIN, "--max-steps", "1", "--out", str(out), "--overwrite"]) == 0
    assert load_checkpoint(out).kind == "vae"
    # a resumed run writes back to its own file; into another existing file only with --overwrite
    other = tmp_path / "other.safetensors"
    other.write_bytes(b"keep me")
    assert main(["train", "--resume", str(out), "--max-steps", "2", "--out", str(other)]) == 2
    assert other.read_bytes() == b"keep me"
    assert main(["train", "--resume", str(out), "--max-steps", "2"]) == 0


def test_resume_of_a_folder_or_a_missing_file_says_there_is_no_checkpoint(tmp_path, capsys, nothing_heavy) -> None:
    assert main(["train", "--resume", str(tmp_path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"no checkpoint at {tmp_path}: it is a folder" in line and "--out" not in line
    assert main(["train", "--resume", str(tmp_path / "gone.safetensors")]) == 2
    assert f"no checkpoint at {tmp_path / 'gone.safetensors'}" in one_error_line(capsys.readouterr().err)


def test_a_huge_sample_grid_is_refused_before_the_weights_load(capsys, monkeypatch) -> None:
    monkeypatch.setattr(cli, "load_checkpoint", lambda *a, **k: pytest.fail("weights loaded"))
    path = BUNDLED / "vae-mnist-2d.safetensors"
    if not path.is_file():
        pytest.skip("the bundled vae-mnist-2d checkpoint is not in this checkout")
    assert main(["sample", str(path), "--out", "unused.png", "--n", "4096", "--scale", "64"]) == 2
    assert "megapixels; the limit is 50" in one_error_line(capsys.readouterr().err)
    assert cli._grid_pixels(4096, 28, 64) == ((64 * 30 + 2) * 64, (64 * 30 + 2) * 64)


def test_sample_refuses_options_that_do_not_apply(gan_checkpoint, vae_checkpoint, tmp_path, capsys) -> None:
    assert main(["sample", str(vae_checkpoint), "--truncation", "0.5", "--out", str(tmp_path / "a.png")]) == 2
    assert "--truncation applies to GANs only" in one_error_line(capsys.readouterr().err)
    assert main(["sample", str(gan_checkpoint), "--temperature", "0.5", "--out", str(tmp_path / "b.png")]) == 2
    assert "--temperature applies to VAEs and PixelCNNs" in one_error_line(capsys.readouterr().err)
    assert (
        main(["sample", str(gan_checkpoint), "--truncation", "0.5", "--n", "4", "--out", str(tmp_path / "c.png")]) == 0
    )


def test_help_exits_0_and_names_the_default_data_root(capsys) -> None:
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert DATA_ROOT_ENV in out and "--ignore-memory-check" in out and "overrides it" in out


# --- resume keeps every setting -------------------------------------------------------------------------
@pytest.fixture
def saved_steps(monkeypatch) -> list[int]:
    """The steps at which the trainer writes a checkpoint, in order."""
    steps: list[int] = []
    real = trainer_module.save_checkpoint

    def record(path, model, **kwargs):
        step = kwargs["training"]["step"]
        if not steps or steps[-1] != step:  # the trainer writes the last step twice when it is also an interval's
            steps.append(step)
        return real(path, model, **kwargs)

    monkeypatch.setattr(trainer_module, "save_checkpoint", record)
    return steps


def test_resume_keeps_the_runs_checkpoint_interval(tmp_path, capsys, saved_steps) -> None:
    out = tmp_path / "run.safetensors"
    assert main(["train", *TINY_VAE, "--max-steps", "6", "--checkpoint-every", "3", "--out", str(out)]) == 0
    assert saved_steps == [3, 6]
    saved_steps.clear()
    capsys.readouterr()

    assert main(["train", "--resume", str(out), "--max-steps", "14"]) == 0
    # every 3 steps, as the run asked (an epoch of shapes is thousands of steps: no epoch end here)
    assert saved_steps == [9, 12, 14]
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("resume:")] == [
        "resume: --max-steps 14 overrides the run's 6"
    ]
    ckpt = load_checkpoint(out, with_train_state=True)
    assert ckpt.training["train_config"]["checkpoint_every"] == 3 and ckpt.train_state["step"] == 14


def test_an_explicit_checkpoint_interval_overrides_the_runs_and_says_so(tmp_path, capsys, saved_steps) -> None:
    out = tmp_path / "run.safetensors"
    assert main(["train", *TINY_VAE, "--max-steps", "4", "--checkpoint-every", "2", "--out", str(out)]) == 0
    saved_steps.clear()
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--max-steps", "10", "--checkpoint-every", "5"]) == 0
    assert saved_steps == [5, 10]
    assert "resume: --checkpoint-every 5 overrides the run's 2" in capsys.readouterr().err.splitlines()
    assert load_checkpoint(out).training["train_config"]["checkpoint_every"] == 5


def test_resume_keeps_every_stored_setting_unless_overridden(tmp_path, capsys) -> None:
    out = tmp_path / "run.safetensors"
    first = [
        "train",
        *TINY_VAE,
        "--max-steps",
        "3",
        "--epochs",
        "7",
        "--lr",
        "5e-4",
        "--seed",
        "3",
        "--sample-every",
        "2",
        "--checkpoint-every",
        "2",
        "--beta",
        "0.5",
        "--binarize",
        "threshold",
        "--out",
        str(out),
    ]
    assert main(first) == 0
    before = load_checkpoint(out).training["train_config"]
    capsys.readouterr()

    assert main(["train", "--resume", str(out), "--max-steps", "4"]) == 0
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("resume:")] == [
        "resume: --max-steps 4 overrides the run's 3"
    ]
    ckpt = load_checkpoint(out, with_train_state=True)
    after = ckpt.training["train_config"]
    assert {k: v for k, v in after.items() if k != "max_steps"} == {k: v for k, v in before.items() if k != "max_steps"}
    assert after["lr"] == 5e-4 and after["seed"] == 3 and after["sample_every"] == 2 and after["epochs"] == 7
    assert ckpt.model.config.beta == 0.5 and ckpt.dataset["binarize"] == "threshold"
    assert ckpt.train_state["optimizers"]["main"]["param_groups"][0]["lr"] == 5e-4

    # overrides: applied (the learning rate in the optimizer too, not only in the record) and reported
    assert (
        main(
            [
                "train",
                "--resume",
                str(out),
                "--max-steps",
                "5",
                "--lr",
                "1e-4",
                "--beta",
                "2",
                "--batch-size",
                "4",
                "--precision",
                "bf16",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().err.splitlines()
    for expected in (
        "resume: --max-steps 5 overrides the run's 4",
        "resume: --lr 0.0001 overrides the run's 0.0005",
        "resume: --beta 2 overrides the run's 0.5",
        "resume: --batch-size 4 overrides the run's 8",
        "resume: --precision bf16 overrides the run's fp32",
    ):
        assert expected in lines
    ckpt = load_checkpoint(out, with_train_state=True)
    assert ckpt.train_state["optimizers"]["main"]["param_groups"][0]["lr"] == 1e-4
    assert ckpt.model.config.beta == 2.0 and ckpt.training["train_config"]["batch_size"] == 4
    assert ckpt.training["train_config"]["precision"] == "bf16" and ckpt.training["step"] == 5


def test_kill_9_in_a_resumed_run_loses_at_most_the_runs_checkpoint_interval(tmp_path) -> None:
    out = tmp_path / "run.safetensors"
    assert main(["train", *TINY_VAE, "--max-steps", "10", "--checkpoint-every", "5", "--out", str(out)]) == 0
    with subprocess.Popen(
        [sys.executable, "-m", "explorer", "train", "--resume", str(out), "--max-steps", "100000"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as proc:
        shown, seen = 0, b""
        try:
            deadline = time.monotonic() + 120
            while shown < 40 and time.monotonic() < deadline:  # the progress bar: "<step>/100000"
                chunk = proc.stderr.read1(4096)
                if not chunk:
                    break
                seen = (seen + chunk)[-4096:]
                shown = max([shown, *(int(n) for n in re.findall(rb"(\d+)/100000", seen))])
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            proc.kill()
    assert shown >= 40, seen.decode(errors="replace")
    step = load_checkpoint(out).training["step"]  # the last complete checkpoint
    assert step % 5 == 0 and step >= shown - 5  # written every 5 steps, as the run asked when it started


@pytest.fixture(scope="module")
def resumable(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resumable") / "run.safetensors"
    assert main(["train", *TINY_VAE, "--max-steps", "2", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--latent-dim", "3"], "--latent-dim 3 differs from the run's 2"),
        (["--model", "gan"], "--model gan differs from the run's vae"),
        (["--dataset", "faces"], "--dataset faces differs from the run's shapes"),
        (["--image-size", "32"], "--image-size 32 differs from the run's 28"),
        (["--channels", "3"], "--channels 3 differs from the run's 1"),
        (["--levels", "4"], "--levels applies to pixelcnn models only, and the run in run.safetensors is vae"),
        (["--gan-loss", "wgan-gp"], "--gan-loss applies to gan models only"),
        (["--checkpoint-every", "-4"], "--checkpoint-every: must be at least 0"),
        (["--out", "elsewhere.pt"], "--out must end in .safetensors"),
    ],
)
def test_resume_refuses_to_change_the_model_or_the_data(resumable, flags, needle, capsys, nothing_heavy) -> None:
    assert main(["train", "--resume", str(resumable), *flags]) == 2
    assert needle in one_error_line(capsys.readouterr().err)


def test_resume_accepts_the_runs_own_values_without_reporting_them(resumable, tmp_path, capsys) -> None:
    copy = shutil.copy(resumable, tmp_path / "copy.safetensors")
    assert (
        main(
            [
                "train",
                "--resume",
                str(copy),
                "--model",
                "vae",
                "--dataset",
                "shapes",
                "--latent-dim",
                "2",
                "--batch-size",
                "8",
                "--max-steps",
                "2",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "overrides" not in err and "already at step 2 of 2" in err


def test_resume_of_a_file_without_training_state_is_one_line(vae_checkpoint, tmp_path, capsys) -> None:
    ckpt = load_checkpoint(vae_checkpoint)
    final = save_checkpoint(tmp_path / "final.safetensors", ckpt.model, dataset=ckpt.dataset, training=ckpt.training)
    assert main(["train", "--resume", str(final)]) == 1
    assert "holds no training state" in one_error_line(capsys.readouterr().err)


def test_a_lying_stored_setting_is_refused_unless_overridden(resumable, tmp_path, capsys) -> None:
    ckpt = load_checkpoint(resumable, with_train_state=True)
    training = {**ckpt.training, "train_config": {**ckpt.training["train_config"], "checkpoint_every": -3}}
    lying = save_checkpoint(
        tmp_path / "lying.safetensors",
        ckpt.model,
        dataset=ckpt.dataset,
        training=training,
        train_state=ckpt.train_state,
    )
    assert main(["train", "--resume", str(lying), "--max-steps", "3"]) == 1
    assert "the run's stored --checkpoint-every -3 is invalid" in one_error_line(capsys.readouterr().err)
    assert main(["train", "--resume", str(lying), "--max-steps", "3", "--checkpoint-every", "1"]) == 0
    assert load_checkpoint(lying).training["train_config"]["checkpoint_every"] == 1


# --- unknown subcommands ---------------------------------------------------------------------------------
def test_an_unknown_subcommand_is_an_error_not_the_gui(capsys, monkeypatch) -> None:
    import explorer.app

    monkeypatch.setattr(explorer.app, "main", lambda argv: pytest.fail("the GUI was started"))
    assert program_main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in one_error_line(err) and "train, eval, sample" in err
    assert program_main(["trian", "--model", "vae"]) == 2
    assert "did you mean 'train'?" in one_error_line(capsys.readouterr().err)
    assert program_main(["--device", "cpu", "eval"]) == 2
    assert "the command comes first" in one_error_line(capsys.readouterr().err)


def test_checkpoint_paths_and_options_still_open_the_gui(tmp_path) -> None:
    existing = tmp_path / "notes.txt"
    existing.write_text("")
    for argv in (
        [],
        ["--device", "cpu"],
        ["runs/missing.safetensors"],
        ["--device", "cpu", "x.SAFETENSORS"],
        [str(existing)],
        ["--help"],
    ):
        assert unknown_command(argv) is None, argv


def test_python_m_explorer_and_the_script_are_one_program() -> None:
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("latent-explorer", "explorer.__main__:main") == "explorer.__main__:main"
    result = subprocess.run(
        [sys.executable, "-m", "explorer", "frobnicate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert (
        result.returncode == 2 and "unknown command 'frobnicate'" in result.stderr and "Traceback" not in result.stderr
    )


# --- one default data root; eval on the carried test images --------------------------------------------------
def test_the_default_data_root_is_the_environment_variable_else_data(monkeypatch) -> None:
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert default_data_root() == "./data"
    monkeypatch.setenv(DATA_ROOT_ENV, "/somewhere/datasets")
    assert default_data_root() == "/somewhere/datasets"


@pytest.fixture
def bundled_vae(tmp_path) -> Path:
    path = BUNDLED / "vae-mnist-2d.safetensors"
    if not path.is_file():
        pytest.skip("the bundled vae-mnist-2d checkpoint is not in this checkout")
    return Path(shutil.copy(path, tmp_path / path.name))  # a copy: --save must not touch the bundled file


def test_eval_without_the_dataset_uses_the_carried_test_images_and_says_so(
    bundled_vae, tmp_path, monkeypatch, capsys
) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(empty))  # the file records ../shared/datasets: not used by eval
    assert main(["eval", str(bundled_vae), "--limit", "40", "--k", "4"]) == 0
    out = capsys.readouterr().out
    assert (
        f"evaluated on 40 of the 1000 test images carried in the file; the full test set was not found at {empty}"
        in out
    )
    assert "IW NLL" in out and "target " not in out  # no target verdict from a partial test set

    assert main(["eval", str(bundled_vae), "--limit", "40", "--k", "4", "--json"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["carried_sample"] is True and metrics["carried_images"] == 1000 and metrics["images"] == 40
    assert str(empty) in metrics["full_test_set_missing"] and "carried in the file" in captured.err

    before = bundled_vae.read_bytes()
    assert main(["eval", str(bundled_vae), "--limit", "40", "--k", "4", "--save"]) == 2
    assert "--save refused" in one_error_line(capsys.readouterr().err)
    assert bundled_vae.read_bytes() == before


def test_eval_without_the_dataset_or_a_carried_sample_names_the_default_root(tmp_path, monkeypatch, capsys) -> None:
    model = create_model("vae", {"image_size": 28, "channels": 1, "latent_dim": 2, "width": 4, "fc_dim": 8})
    path = save_checkpoint(
        tmp_path / "m.safetensors", model.eval(), dataset={"name": "mnist", "image_size": 28, "channels": 1}
    )
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    assert main(["eval", str(path)]) == 1
    assert f"under data root '{tmp_path}'" in one_error_line(capsys.readouterr().err)
    assert main(["eval", str(path), "--data-root", str(tmp_path / "missing")]) == 2
    assert "--data-root" in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(not (MNIST_ROOT / "MNIST" / "raw").is_dir(), reason=f"needs MNIST under {MNIST_ROOT}")
def test_eval_reads_the_full_test_set_from_the_default_root(bundled_vae, monkeypatch, capsys) -> None:
    monkeypatch.setenv(DATA_ROOT_ENV, str(MNIST_ROOT))
    assert main(["eval", str(bundled_vae), "--limit", "20", "--k", "2", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["images"] == 20 and "carried_sample" not in metrics


@pytest.mark.skipif(
    not (BUNDLED / "dcgan-mnist.safetensors").is_file() or not (BUNDLED / "lenet-mnist.safetensors").is_file(),
    reason="needs the bundled dcgan-mnist and lenet-mnist checkpoints",
)
def test_gan_eval_without_the_dataset_judges_against_the_carried_images(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    assert main(["eval", str(BUNDLED / "dcgan-mnist.safetensors"), "--n", "50", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["carried_sample"] is True and metrics["samples"]["real_images"] == 50
    assert "fid" in metrics["samples"] and "train_test_fid" not in metrics["samples"]  # no train split here


# --- non-finite weights ---------------------------------------------------------------------------------------
@pytest.fixture
def nan_vae(tmp_path) -> Path:
    model = create_model("vae", {"image_size": 28, "channels": 1, "latent_dim": 2, "width": 4, "fc_dim": 8}).eval()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    return save_checkpoint(
        tmp_path / "nan.safetensors", model, dataset={"name": "shapes", "image_size": 28, "channels": 1}
    )


def test_sample_and_eval_refuse_non_finite_weights_unless_allowed(nan_vae, tmp_path, capsys) -> None:
    grid = tmp_path / "grid.png"
    assert main(["sample", str(nan_vae), "--n", "4", "--out", str(grid)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "1 weight tensor holds NaN or infinite values" in line and "--allow-nonfinite" in line
    assert not grid.exists()
    assert main(["eval", str(nan_vae), "--limit", "8", "--k", "2"]) == 1
    assert "NaN or infinite" in one_error_line(capsys.readouterr().err)

    assert main(["sample", str(nan_vae), "--n", "4", "--out", str(grid), "--allow-nonfinite"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: nan.safetensors: 1 weight tensor holds NaN") and grid.exists()
    assert main(["eval", str(nan_vae), "--limit", "8", "--k", "2", "--json", "--allow-nonfinite"]) == 0
    assert "warning:" in capsys.readouterr().err
