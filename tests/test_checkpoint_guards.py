"""Checkpoints that lie, rot or ask too much: each case a user met (issue "Nothing lost, nothing
crashes") gives one CheckpointError line, never a traceback, a segfault or a huge allocation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from engines.checkpoint import META_KEY, CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from engines.memory import MemoryEstimateError, check_training_memory, format_bytes, training_bytes
from engines.models import build_model
from tests.helpers import TINY


def _parts(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()[META_KEY]), {k: f.get_tensor(k) for k in f.keys()}


def _write(path: Path, meta_text: str, tensors: dict[str, torch.Tensor]) -> Path:
    path.write_bytes(safetensors_bytes(tensors, metadata={META_KEY: meta_text}))
    return path


def test_a_header_length_whose_low_byte_is_0x80_is_not_taken_for_a_pickle(tmp_path: Path) -> None:
    model = build_model("vae", TINY["vae"])
    hits = 0
    for pad in range(300):  # the header grows 8 bytes at a time, so 300 pads wrap its low byte round
        path = save_checkpoint(tmp_path / "m.safetensors", model, metrics={"pad": "x" * pad})
        if path.read_bytes()[0] == 0x80:  # the byte that pickle protocol 2+ starts with
            hits += 1
            assert load_checkpoint(path).model.config == model.config
    assert hits >= 8  # the loop really produced such files


LIES = {
    "negative width": ("config", "width", -3),
    "absurd width": ("config", "width", 10**9),
    "absurd fc_dim": ("config", "fc_dim", 25088000000000),
    "zero latent": ("config", "latent_dim", 0),
    "negative latent": ("config", "latent_dim", -5),
    "float latent": ("config", "latent_dim", 4.5),
    "bool latent": ("config", "latent_dim", True),
    "string width": ("config", "width", "wide"),
    "nan beta": ("config", "beta", float("nan")),
    "unknown config key": ("config", "depth", 3),
    "config not an object": (None, "config", [1, 2]),
    "missing config": (None, "config", "<delete>"),
    "dataset not an object": (None, "dataset", "mnist"),
    "unknown dataset": ("dataset", "name", "imagenet-22k"),
    "dataset image size": ("dataset", "image_size", 10**6),
    "training not an object": (None, "training", 7),
    "training step a string": ("training", "step", "many"),
    "history not a list": ("training", "history", {"a": 1}),
    "metrics not an object": (None, "metrics", [1]),
    "label names not strings": (None, "label_names", [1, 2]),
    "image shape lies": (None, "image_shape", [3, 64, 64]),
    "vectors not a list": (None, "vectors", "smile"),
    "unknown format": (None, "format", "other/9"),
    "unknown kind": (None, "kind", "diffusion"),
    "hash not a string": (None, "content_sha256", 5),
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_lying_metadata_is_refused_with_one_line(tmp_path: Path, lie: str) -> None:
    meta, tensors = _parts(
        save_checkpoint(
            tmp_path / "ok.safetensors",
            build_model("vae", TINY["vae"]),
            dataset={"name": "shapes"},
            training={"step": 1},
        )
    )
    section, key, value = LIES[lie]
    node = meta if section is None else meta.setdefault(section, {})
    if value == "<delete>":
        node.pop(key)
    else:
        node[key] = value
    path = _write(tmp_path / "lie.safetensors", json.dumps(meta), tensors)
    for load in (read_metadata, load_checkpoint):
        with pytest.raises(CheckpointError) as caught:
            load(path)
        assert "\n" not in str(caught.value) and "lie.safetensors" in str(caught.value)


def test_pixelcnn_with_a_million_layers_is_refused_before_any_layer_is_built(tmp_path: Path) -> None:
    meta, tensors = _parts(save_checkpoint(tmp_path / "p.safetensors", build_model("pixelcnn", TINY["pixelcnn"])))
    meta["config"]["n_layers"] = 10**6  # crashed the GUI (segfault) before
    with pytest.raises(CheckpointError, match="n_layers must be between"):
        load_checkpoint(_write(tmp_path / "deep.safetensors", json.dumps(meta), tensors))


def test_metadata_that_is_not_json_is_refused(tmp_path: Path) -> None:
    _, tensors = _parts(save_checkpoint(tmp_path / "ok.safetensors", build_model("gan", TINY["gan"])))
    for text in ("{not json", "[]", "null", "42"):
        with pytest.raises(CheckpointError):
            load_checkpoint(_write(tmp_path / "x.safetensors", text, tensors))


def test_a_flipped_weight_byte_is_caught_by_the_checksum(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", build_model("vae", TINY["vae"]))
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x10  # somewhere in the last tensors' bytes: still a well-formed file
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_files_written_before_checksums_open_unverified(tmp_path: Path) -> None:
    meta, tensors = _parts(save_checkpoint(tmp_path / "m.safetensors", build_model("vae", TINY["vae"])))
    del meta["content_sha256"]
    ckpt = load_checkpoint(_write(tmp_path / "old.safetensors", json.dumps(meta), tensors))
    assert not ckpt.verified
    assert load_checkpoint(tmp_path / "m.safetensors").verified


def test_non_finite_weights_load_and_are_listed(tmp_path: Path) -> None:
    model = build_model("gan", TINY["gan"])
    with torch.no_grad():
        next(model.generator.parameters())[0].fill_(float("nan"))
        list(model.discriminator.parameters())[-1].fill_(float("inf"))
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "nan.safetensors", model))
    assert sorted(ckpt.nonfinite) == ["discriminator.5.weight", "generator.0.weight"]
    assert (
        load_checkpoint(save_checkpoint(tmp_path / "ok.safetensors", build_model("gan", TINY["gan"]))).nonfinite == []
    )


def test_a_vector_of_the_wrong_size_is_neither_written_nor_read(tmp_path: Path) -> None:
    model = build_model("vae", TINY["vae"])  # latent size 4
    with pytest.raises(CheckpointError, match="latent size"):
        save_checkpoint(tmp_path / "v.safetensors", model, vectors={"smile": np.ones(5)})
    assert not (tmp_path / "v.safetensors").exists()


def test_resumable_state_that_does_not_fit_the_model_is_a_checkpoint_error(tmp_path: Path) -> None:
    from engines.training import TrainConfig, Trainer
    from tests.helpers import shapes

    model = build_model("vae", TINY["vae"])
    wider = build_model("vae", {**TINY["vae"], "fc_dim": 16})  # its Adam moments have other shapes
    wider.elbo(torch.rand(2, 1, 28, 28)).loss().backward()
    other = torch.optim.Adam(wider.parameters())
    other.step()
    path = save_checkpoint(
        tmp_path / "r.safetensors",
        model,
        train_state={
            "step": 1,
            "optimizers": {"main": other.state_dict()},
            "rng": {"torch": torch.zeros(3, dtype=torch.uint8)},
        },
    )
    with pytest.raises(CheckpointError, match="resumable state"):
        Trainer.from_checkpoint(path, shapes(16), TrainConfig(epochs=1, batch_size=8))


def test_memory_estimate_grows_with_batch_and_refuses_what_no_machine_has() -> None:
    small = training_bytes("pixelcnn", {"image_size": 28, "channels": 1}, 8)
    large = training_bytes("pixelcnn", {"image_size": 28, "channels": 1}, 64)
    assert large > small * 2
    huge = {"image_size": 64, "channels": 3, "levels": 256, "hidden": 510, "n_layers": 64}
    with pytest.raises(MemoryEstimateError, match="needs about .* GB") as caught:
        check_training_memory("pixelcnn", huge, 4096)
    assert "\n" not in str(caught.value)
    assert format_bytes(3 * 2**30) == "3.0 GB"
