"""Weight averaging (TrainConfig.ema): the checkpoint holds the exponential moving average of the live
weights, training goes on with the live ones, and a resumed run continues both exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engines.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from engines.cli import main
from engines.training import StepDone, TrainConfig, Trainer, create_model
from tests.helpers import TINY, shapes


def _run_recording(trainer: Trainer) -> list[dict[str, torch.Tensor]]:
    """The live weights after each step (the model holds them between steps)."""
    seen = []
    for event in trainer.run():
        if isinstance(event, StepDone):
            seen.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items() if v.is_floating_point()})
    return seen


def test_the_checkpoint_holds_the_moving_average_of_the_live_weights(tmp_path: Path) -> None:
    path = tmp_path / "gan.safetensors"
    model = create_model("gan", TINY["gan"], seed=1)
    start = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
    config = TrainConfig(epochs=1, max_steps=6, batch_size=16, sample_every=None, ema=0.9, checkpoint_path=str(path))
    live = _run_recording(Trainer(model, shapes(96), config))
    assert len(live) == 6

    expected = dict(start)
    for step, weights in enumerate(live):  # the decay ramps up: min(0.9, (1 + step) / (10 + step))
        decay = min(0.9, (1 + step) / (10 + step))
        expected = {k: decay * expected[k] + (1 - decay) * weights[k] for k in expected}

    ckpt = load_checkpoint(path, with_train_state=True)
    saved = ckpt.model.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(saved[key], value, rtol=1e-5, atol=1e-6)
    # the live weights travel in the train state, and they are not the average
    raw = ckpt.train_state["raw"]
    assert set(raw) == set(expected)
    for key in expected:
        torch.testing.assert_close(raw[key], live[-1][key])
    moved = [k for k in expected if not torch.allclose(raw[k], saved[k])]
    assert moved, "six steps of training moved no weight away from its average"


def test_a_resumed_averaging_run_ends_where_an_unbroken_one_does(tmp_path: Path) -> None:
    data = shapes(96)
    full = TrainConfig(epochs=4, batch_size=32, seed=3, sample_every=None, device="cpu", ema=0.8)
    straight = tmp_path / "straight.safetensors"
    list(Trainer(create_model("gan", TINY["gan"], seed=3), data, replace(full, checkpoint_path=str(straight))).run())

    half = tmp_path / "half.safetensors"
    first = Trainer(
        create_model("gan", TINY["gan"], seed=3), data, replace(full, max_steps=5, checkpoint_path=str(half))
    )
    list(first.run())
    resumed = Trainer.from_checkpoint(half, data, replace(full, checkpoint_path=str(half)))
    assert resumed.step == 5
    list(resumed.run())

    a, b = load_checkpoint(straight, with_train_state=True), load_checkpoint(half, with_train_state=True)
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key  # the averages, bit for bit on the CPU
    for key, value in a.train_state["raw"].items():
        assert torch.equal(value, b.train_state["raw"][key]), key  # and the live weights


def test_sample_grids_show_the_average_and_leave_the_live_weights_alone() -> None:
    trainer = Trainer(
        create_model("gan", TINY["gan"], seed=2),
        shapes(64),
        TrainConfig(epochs=1, max_steps=4, batch_size=16, sample_every=None, ema=0.5),
    )
    list(trainer.run())
    live = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    grid = trainer.sample_grid()
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, live[key]), key  # the average was swapped in and back out
    with trainer._averaged():
        assert torch.equal(torch.as_tensor(trainer.sample_grid()), torch.as_tensor(grid))
        averaged_grid = torch.as_tensor(trainer._grid())
    trainer._average = None  # the live weights' own grid differs from the average's
    assert not torch.equal(torch.as_tensor(trainer._grid()), averaged_grid)


def test_ema_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(ema=1.0)
    with pytest.raises(ValueError, match="ema"):
        TrainConfig(ema=-0.1)


def test_the_cli_starts_an_average_on_the_resume_of_a_run_without_one(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gan.safetensors"
    common = ["--data-root", str(tmp_path), "--batch-size", "16", "--sample-every", "0"]
    first = ["train", "--model", "gan", "--dataset", "shapes", "--max-steps", "3", "--out", str(out), *common]
    assert main(first) == 0
    assert load_checkpoint(out, with_train_state=True).train_state["raw"] == {}  # no average, no live copy
    assert main(["train", "--resume", str(out), "--max-steps", "6", "--ema", "0.99"]) == 0
    assert "--ema 0.99 overrides the run's 0" in capsys.readouterr().err
    ckpt = load_checkpoint(out, with_train_state=True)
    assert ckpt.training["train_config"]["ema"] == 0.99
    assert ckpt.train_state["raw"]  # live weights kept apart from the average
    # a further resume keeps the run's own average without being told again
    assert main(["train", "--resume", str(out), "--max-steps", "8"]) == 0
    assert load_checkpoint(out, with_train_state=True).training["train_config"]["ema"] == 0.99


def test_live_weights_that_do_not_fit_the_model_are_refused(tmp_path: Path) -> None:
    model = create_model("gan", TINY["gan"])
    key, weight = next((k, v) for k, v in model.state_dict().items() if v.is_floating_point())
    for raw in ({key: torch.zeros(weight.numel() + 1)}, {"generator.nonexistent": torch.zeros(2)}):
        with pytest.raises(CheckpointError, match="raw"):
            save_checkpoint(tmp_path / "bad.safetensors", model, train_state={"step": 1, "optimizers": {}, "raw": raw})
    assert not (tmp_path / "bad.safetensors").exists()
