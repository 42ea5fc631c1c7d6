"""A held-out sample carried in a checkpoint stands in for the dataset where its files are missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engines.checkpoint import load_checkpoint, save_checkpoint, update_checkpoint
from engines.data import DatasetError, DataSpec, load_dataset
from engines.data.sample import describe, heldout_or_sample, sample_dataset, take_sample
from engines.training import create_model
from tests.helpers import TINY

SPEC = DataSpec("shapes", image_size=28, channels=1, binarize="stochastic")


def test_a_carried_sample_reads_exactly_as_the_first_images_of_the_split(tmp_path: Path) -> None:
    full = load_dataset(SPEC, train=False)
    path = save_checkpoint(
        tmp_path / "m.safetensors",
        create_model("vae", TINY["vae"]),
        dataset=SPEC.to_dict(),
        sample=take_sample(full, 50),
    )
    ckpt = load_checkpoint(path)
    assert ckpt.sample["images"].dtype == torch.uint8 and ckpt.sample["images"].shape == (50, 1, 28, 28)
    carried = sample_dataset(ckpt.dataset, ckpt.sample)
    images, labels = carried.get_batch(np.arange(50))
    expected_images, expected_labels = full.get_batch(np.arange(50))
    assert torch.equal(images, expected_images) and torch.equal(labels, expected_labels)  # binarized the same way
    assert carried.label_names == full.label_names and carried.attribute_kinds == full.attribute_kinds
    assert carried.is_sample and not full.is_sample

    update_checkpoint(path, metrics={"eval": {"x": 1.0}})  # re-saving keeps it
    assert torch.equal(load_checkpoint(path).sample["images"], ckpt.sample["images"])


def test_the_full_split_wins_and_the_sample_only_stands_in_when_files_are_missing(tmp_path: Path) -> None:
    sample = take_sample(load_dataset(SPEC, train=False), 20)
    assert not heldout_or_sample(SPEC.to_dict(), sample).is_sample  # shapes are procedural: always there
    missing = {"name": "mnist", "root": str(tmp_path / "nowhere"), "image_size": 28, "channels": 1}
    stand_in = heldout_or_sample(missing, sample)
    assert stand_in.is_sample and len(stand_in) == 20 and "nowhere" in stand_in.missing
    assert "carried in the model file" in describe(stand_in, 20)
    with pytest.raises(DatasetError, match="nowhere"):
        heldout_or_sample(missing, None)


def test_an_incomplete_sample_is_a_checkpoint_error(tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from engines.checkpoint import CheckpointError

    path = save_checkpoint(
        tmp_path / "m.safetensors",
        create_model("vae", TINY["vae"]),
        dataset=SPEC.to_dict(),
        sample=take_sample(load_dataset(SPEC, train=False), 5),
    )
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(path)
    del tensors["sample/labels"]
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="sample"):
        load_checkpoint(path)


def test_a_spread_sample_of_a_folder_listed_class_by_class_has_every_class(tmp_path: Path) -> None:
    from PIL import Image

    for c, name in enumerate(("cat", "dog", "ship")):
        (tmp_path / name).mkdir()
        for i in range(10):
            Image.fromarray(np.full((28, 28, 3), 20 * c + i, np.uint8)).save(tmp_path / name / f"{i:02d}.png")
    folder = load_dataset(DataSpec("folder", root=str(tmp_path), image_size=28, channels=3), train=False)
    first, spread = take_sample(folder, 6), take_sample(folder, 6, spread=True)
    assert first["label_names"] == ["cat", "dog", "ship"]
    assert set(first["labels"].argmax(1).tolist()) == {0}  # the first six are all cats
    assert spread["labels"].argmax(1).tolist() == [0, 0, 1, 1, 2, 2]
    assert spread["images"][0, 0, 0, 0] == 0 and spread["images"][-1, 0, 0, 0] == 49  # the first and last image
