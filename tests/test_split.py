"""The validation split: fixed, seeded, disjoint from training, recorded in checkpoints, kept on resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engines.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from engines.data import DatasetError, DataSpec, load_splits
from engines.data.split import describe_record, held_out_count, split_indices
from engines.training import EpochEnd, TrainConfig, Trainer, create_model
from tests.helpers import TINY, TINY_VAE_ARGS
from tests.test_cli import cli

CIFAR_MINI = Path(__file__).parent / "data" / "cifar-mini"


def test_the_split_is_fixed_disjoint_and_complete() -> None:
    train, val = split_indices(60_000, 5000)
    again_train, again_val = split_indices(60_000, 5000)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert len(val) == 5000 and len(train) == 55_000 and not set(train) & set(val)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(60_000))
    assert held_out_count("mnist", 60_000) == 5000 and held_out_count("cifar10", 50_000) == 5000
    assert held_out_count("folder", 160) == 16 and held_out_count("shapes", 50_000) == 5000
    assert held_out_count("folder", 5) == 0  # too few to hold any out


def test_a_folder_holds_out_a_tenth_and_training_never_sees_it() -> None:
    splits = load_splits(DataSpec("folder", root=str(CIFAR_MINI), image_size=32, channels=3))
    assert len(splits.val) == 16 and len(splits.train) == 144
    assert not set(splits.train.files) & set(splits.val.files)
    assert splits.record == {"source": "held out", "count": 16, "of": 160, "seed": splits.record["seed"]}
    images, _ = splits.val.get_batch([0])
    assert images.shape == (1, 3, 32, 32)
    # A resumed run's record gives the same split; one for a different number of images is refused.
    again = load_splits(splits.train.spec, splits.record)
    assert again.val.files == splits.val.files
    with pytest.raises(DatasetError, match="now has 160"):
        load_splits(splits.train.spec, {**splits.record, "of": 170})


def test_a_run_is_judged_on_validation_and_records_the_split(tmp_path: Path) -> None:
    spec = DataSpec("shapes", image_size=28, channels=1)
    splits = load_splits(spec)
    assert splits.record["count"] == 5000 and len(splits.train) == 45_000
    path = tmp_path / "run.safetensors"
    config = TrainConfig(max_steps=4, epochs=1, batch_size=16, eval_batches=1, checkpoint_path=str(path))
    model = create_model("vae", TINY["vae"])
    trainer = Trainer(model, splits.train, config, splits.val, summary={"validation": splits.record})
    trainer.steps_per_epoch = 2  # two short epochs, so each ends with a validation pass
    ends = [e for e in trainer.run() if isinstance(e, EpochEnd)]
    assert len(ends) == 2 and set(ends[0].val_losses) == {"loss", "recon", "kl"}
    training = load_checkpoint(path).training
    assert training["validation"] == splits.record
    assert all("val" in h and "test" not in h for h in training["history"])


def test_cli_train_says_val_and_a_resume_keeps_the_split(tmp_path: Path) -> None:
    out = tmp_path / "vae.safetensors"
    args = [*TINY_VAE_ARGS, "--batch-size", "16", "--max-steps", "3", "--out", str(out)]
    first = cli("train", *args)
    assert first.returncode == 0, first.stderr
    assert "validation: 5,000 of the 50,000 training images, held out" in first.stderr
    record = read_metadata(out)["training"]["validation"]
    resumed = cli("train", "--resume", str(out), "--max-steps", "5")
    assert resumed.returncode == 0, resumed.stderr
    assert read_metadata(out)["training"]["validation"] == record


def test_an_old_run_judged_on_test_is_labelled_so_and_resumes_with_a_split_from_then_on(tmp_path: Path) -> None:
    out = tmp_path / "vae.safetensors"
    assert cli("train", *TINY_VAE_ARGS, "--batch-size", "16", "--max-steps", "3", "--out", str(out)).returncode == 0
    ckpt = load_checkpoint(out, with_train_state=True)
    old = {k: v for k, v in ckpt.training.items() if k != "validation"}
    old["history"] = [{"epoch": 1, "step": 3, "train": {"loss": 500.0}, "test": {"loss": 510.0}}]
    save_checkpoint(out, ckpt.model, dataset=ckpt.dataset, training=old, train_state=ckpt.train_state)
    assert describe_record(None).startswith("test split")
    card = _card(out)
    assert "| test loss |" in card and "predates validation splits" in card
    assert cli("train", "--resume", str(out), "--max-steps", "5").returncode == 0
    record = read_metadata(out)["training"]["validation"]
    assert record["since_step"] == 3 and "held out from step 3 on" in describe_record(record)


def _card(path: Path) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("model_card", Path(__file__).parents[1] / "tools" / "model_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.card(path, "")


def test_model_card_names_the_split_of_each_figure(tmp_path: Path) -> None:
    out = tmp_path / "vae.safetensors"
    assert cli("train", *TINY_VAE_ARGS, "--batch-size", "16", "--max-steps", "3", "--out", str(out)).returncode == 0
    ckpt = load_checkpoint(out, with_train_state=True)
    training = {**ckpt.training, "history": [{"epoch": 1, "step": 3, "train": {"loss": 5.0}, "val": {"loss": 6.0}}]}
    save_checkpoint(out, ckpt.model, dataset=ckpt.dataset, training=training, metrics={"eval": {"split": "test"}})
    card = _card(out)
    assert "| val loss |" in card and "5,000 of the 50,000 training images" in card
    assert "on the test split" in card and json.loads(json.dumps(ckpt.training["validation"]))["count"] == 5000
