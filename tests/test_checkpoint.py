"""The checkpoint format: exact round trips, atomic writes, and refusal of bad or dangerous files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.checkpoint import CheckpointError, load_checkpoint, read_metadata, save_checkpoint, update_checkpoint
from engines.models import build_model
from tests.helpers import TINY


@pytest.mark.parametrize("kind", ["vae", "gan", "pixelcnn"])
def test_round_trip_gives_identical_outputs(tmp_path: Path, kind: str) -> None:
    torch.manual_seed(0)
    model = build_model(kind, TINY[kind]).eval()
    latent = getattr(model.config, "latent_dim", None)
    vectors = {"v": np.arange(float(latent))} if latent else {}  # attribute vectors live in the latent space
    path = save_checkpoint(
        tmp_path / f"{kind}.safetensors",
        model,
        dataset={"name": "shapes"},
        label_names=["a", "b"],
        metrics={"x": 1.5},
        vectors=vectors,
    )
    ckpt = load_checkpoint(path)
    assert ckpt.kind == kind and ckpt.model.config == model.config
    assert ckpt.label_names == ["a", "b"] and ckpt.metrics == {"x": 1.5} and ckpt.dataset == {"name": "shapes"}
    assert ckpt.verified and ckpt.nonfinite == []
    for name, vec in vectors.items():
        np.testing.assert_array_equal(ckpt.vectors[name], vec.astype(np.float32))
    with torch.no_grad():
        if kind == "pixelcnn":
            x = (torch.rand(2, 1, 28, 28) > 0.5).long()
            assert torch.equal(model.logits(x), ckpt.model.logits(x))
        else:
            z = torch.randn(2, model.config.latent_dim)
            assert torch.equal(model.decode(z), ckpt.model.decode(z))


def test_resumable_state_round_trips(tmp_path: Path) -> None:
    model = build_model("vae", TINY["vae"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.elbo(torch.rand(4, 1, 28, 28)).loss().backward()
    opt.step()
    rng = torch.get_rng_state()
    path = save_checkpoint(
        tmp_path / "r.safetensors",
        model,
        train_state={"step": 7, "optimizers": {"main": opt.state_dict()}, "rng": {"torch": rng}, "extra": {"k": [1]}},
    )
    state = load_checkpoint(path, with_train_state=True).train_state
    assert state["step"] == 7 and state["extra"] == {"k": [1]} and torch.equal(state["rng"]["torch"], rng)
    fresh = torch.optim.Adam(build_model("vae", TINY["vae"]).parameters())
    fresh.load_state_dict(state["optimizers"]["main"])
    for a, b in zip(opt.state_dict()["state"].values(), fresh.state_dict()["state"].values()):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    assert load_checkpoint(path).train_state is None  # only loaded on request


def test_update_adds_metrics_and_keeps_everything_else(tmp_path: Path) -> None:
    model = build_model("gan", TINY["gan"])
    path = save_checkpoint(
        tmp_path / "g.safetensors",
        model,
        metrics={"a": 1},
        dataset={"name": "shapes"},
        label_names=["x"],
        training={"step": 3},
    )
    update_checkpoint(path, metrics={"b": 2}, vectors={"smile": np.ones(8)})
    ckpt = load_checkpoint(path)
    assert ckpt.metrics == {"a": 1, "b": 2} and ckpt.vectors["smile"].shape == (8,)
    assert ckpt.dataset == {"name": "shapes"} and ckpt.label_names == ["x"] and ckpt.training == {"step": 3}


def test_half_precision_files_load_as_float32_and_stay_half_when_updated(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "h.safetensors", build_model("vae", TINY["vae"]).half())
    size = path.stat().st_size
    ckpt = load_checkpoint(path)
    assert ckpt.stored_dtype == torch.float16 and next(ckpt.model.parameters()).dtype == torch.float32
    update_checkpoint(path, metrics={"m": 1})
    assert load_checkpoint(path).stored_dtype == torch.float16 and abs(path.stat().st_size - size) < 1000


def test_a_pickle_that_would_create_a_file_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("evil.pt", "evil.safetensors", "evil.bin"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps({"state": Exploit()}))
        with pytest.raises(CheckpointError, match="pickle"):
            load_checkpoint(path)
    torch.save({"x": Exploit()}, tmp_path / "evil_zip.pt")  # torch's zip format, also pickled inside
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(tmp_path / "evil_zip.pt")
    assert not marker.exists()


def test_truncated_random_and_foreign_files_raise_the_documented_error(tmp_path: Path) -> None:
    model = build_model("vae", TINY["vae"])
    good = save_checkpoint(tmp_path / "good.safetensors", model).read_bytes()
    cases = {
        "truncated.safetensors": good[: len(good) // 2],
        "header_only.safetensors": good[:40],
        "empty.safetensors": b"",
        "random.safetensors": np.random.default_rng(0).bytes(5000),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / name)
    # a valid safetensors file that is not ours
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a Latent Explorer checkpoint"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_weights_that_do_not_match_the_config_are_refused(tmp_path: Path) -> None:
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = save_checkpoint(tmp_path / "m.safetensors", build_model("vae", TINY["vae"]))
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["latent_explorer"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"]["latent_dim"] = 6  # weights were made for 4
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata={"latent_explorer": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "bad.safetensors")
    meta["kind"] = "diffusion"
    save_file(tensors, str(tmp_path / "kind.safetensors"), metadata={"latent_explorer": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="unknown model kind"):
        read_metadata(tmp_path / "kind.safetensors")


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "c.safetensors"
    model = build_model("vae", TINY["vae"])
    save_checkpoint(path, model, metrics={"v": 1})
    before = path.read_bytes()

    import engines.checkpoint as ck

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(ck.os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_checkpoint(path, model, metrics={"v": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp file left behind
