"""The trainer: losses fall, events flow, steering from another thread, exact resume, divergence."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.checkpoint import load_checkpoint
from engines.training import (
    CheckpointSaved,
    Diverged,
    EpochEnd,
    Finished,
    Paused,
    Resumed,
    SampleGrid,
    Started,
    StepDone,
    TrainConfig,
    Trainer,
    create_model,
)
from tests.helpers import TINY, shapes


def _losses(events, key: str) -> list[float]:
    return [e.losses[key] for e in events if isinstance(e, StepDone) and key in e.losses]


@pytest.mark.parametrize("kind,key", [("vae", "loss"), ("pixelcnn", "nll")])
def test_likelihood_models_loss_falls(kind: str, key: str) -> None:
    data = shapes(512, binarize="threshold" if kind == "pixelcnn" else "none")
    config = {**TINY[kind], "width": 16, "fc_dim": 64} if kind == "vae" else TINY[kind]
    trainer = Trainer(
        create_model(kind, config, seed=0), data, TrainConfig(max_steps=40, batch_size=32, lr=3e-3, sample_every=None)
    )
    losses = _losses(trainer.run(), key)
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_gan_learns_the_data_mean(loss: str) -> None:
    """A GAN's losses need not fall; what must improve is how close G's images are to the data."""
    data = shapes(512)
    model = create_model("gan", {**TINY["gan"], "g_width": 16, "d_width": 16, "loss": loss}, seed=0)
    real_mean = data.get_batch(torch.arange(512))[0].mean(0)
    z = torch.randn(256, model.config.latent_dim, generator=torch.Generator().manual_seed(5))

    def distance() -> float:  # in train mode: batch statistics, as G is trained (running stats lag early on)
        with torch.no_grad():
            return (model.decode(z.to(model.device)).mean(0).cpu() - real_mean).pow(2).mean().item()  # any device

    before = distance()
    events = list(Trainer(model, data, TrainConfig(max_steps=90, batch_size=32, lr=1e-3, sample_every=None)).run())
    assert distance() < 0.5 * before
    steps = [e for e in events if isinstance(e, StepDone)]
    g_steps = [e for e in steps if "g_loss" in e.losses]
    assert len(g_steps) == 90 // model.config.d_steps  # k discriminator steps per generator step


def test_events_and_checkpoints_of_a_short_run(tmp_path: Path) -> None:
    data, test = shapes(128), shapes(64, train=False)
    path = tmp_path / "run.safetensors"
    config = TrainConfig(epochs=2, batch_size=32, sample_every=3, n_samples=4, checkpoint_path=str(path))
    events = list(Trainer(create_model("vae", TINY["vae"]), data, config, test).run())
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished and events[-1].reason == "completed"
    assert sum(k is StepDone for k in kinds) == 8 and sum(k is EpochEnd for k in kinds) == 2
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert set(ends[0].val_losses) == {"loss", "recon", "kl"} and ends[0].train_losses["loss"] > 0
    grid = next(e for e in events if isinstance(e, SampleGrid)).grid
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 1
    assert [e.step for e in events if isinstance(e, CheckpointSaved)] == [4, 8]
    ckpt = load_checkpoint(path)
    assert ckpt.training["step"] == 8 and len(ckpt.training["history"]) == 2 and ckpt.dataset["name"] == "shapes"
    assert ckpt.label_names == data.label_names


def test_pause_resume_and_stop_from_another_thread(tmp_path: Path) -> None:
    path = tmp_path / "s.safetensors"
    trainer = Trainer(
        create_model("vae", TINY["vae"]),
        shapes(256),
        TrainConfig(epochs=1000, batch_size=16, sample_every=None, checkpoint_path=str(path)),
    )
    seen: list = []
    first_steps, paused = threading.Event(), threading.Event()

    def consume() -> None:
        for event in trainer.run():
            seen.append(event)
            if isinstance(event, StepDone) and event.step == 5:
                first_steps.set()
            if isinstance(event, Paused):
                paused.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert first_steps.wait(30)
    trainer.pause()
    assert paused.wait(30)
    held = trainer.step
    threading.Event().wait(0.3)
    assert trainer.step == held  # nothing moves while paused
    trainer.resume()
    deadline = threading.Event()
    for _ in range(300):
        if trainer.step >= held + 3:
            break
        deadline.wait(0.05)
    assert trainer.step >= held + 3  # resume continues
    trainer.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert any(isinstance(e, Resumed) for e in seen)
    final = seen[-1]
    assert isinstance(final, Finished) and final.reason == "stopped"
    assert load_checkpoint(path).training["step"] == final.step  # stopping leaves a checkpoint


def test_stop_while_paused_ends_the_run() -> None:
    trainer = Trainer(
        create_model("vae", TINY["vae"]), shapes(64), TrainConfig(epochs=5, batch_size=16, sample_every=None)
    )
    trainer.pause()
    done = []
    worker = threading.Thread(target=lambda: done.extend(trainer.run()))
    worker.start()
    threading.Event().wait(0.2)
    trainer.stop()
    worker.join(10)
    assert not worker.is_alive() and done[-1].reason == "stopped" and trainer.step == 0


@pytest.mark.parametrize("kind", ["vae", "gan"])
def test_resumed_run_continues_with_the_same_losses(tmp_path: Path, kind: str) -> None:
    data = shapes(96)
    key = "loss" if kind == "vae" else "d_loss"
    # 3 steps an epoch, 12 steps; on the CPU, where it is bit-for-bit (the CUDA test below allows rounding)
    full = TrainConfig(epochs=4, batch_size=32, seed=3, sample_every=None, device="cpu")
    uninterrupted = _losses(Trainer(create_model(kind, TINY[kind], seed=3), data, full).run(), key)

    path = tmp_path / "half.safetensors"
    first = Trainer(create_model(kind, TINY[kind], seed=3), data, replace(full, max_steps=5, checkpoint_path=str(path)))
    part1 = _losses(first.run(), key)  # stops mid-epoch, at step 5
    resumed = Trainer.from_checkpoint(path, data, replace(full, checkpoint_path=str(path)))
    events = list(resumed.run())
    assert isinstance(events[0], Started) and events[0].resumed and events[0].step == 5
    assert part1 + _losses(events, key) == uninterrupted  # bit-for-bit on the CPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the device machine)")
def test_a_gan_resumed_on_cuda_draws_the_noise_an_unbroken_run_draws(tmp_path: Path, monkeypatch) -> None:
    """The GAN's noise comes from the GPU's own generator there: resume must restore it too."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    data = shapes(96)
    full = TrainConfig(epochs=4, batch_size=32, seed=3, sample_every=None, device="cuda")
    uninterrupted = _losses(Trainer(create_model("gan", TINY["gan"], seed=3), data, full).run(), "d_loss")
    path = tmp_path / "half.safetensors"
    first = Trainer(
        create_model("gan", TINY["gan"], seed=3), data, replace(full, max_steps=5, checkpoint_path=str(path))
    )
    part1 = _losses(first.run(), "d_loss")
    resumed = Trainer.from_checkpoint(path, data, replace(full, checkpoint_path=str(path)))
    assert part1 + _losses(resumed.run(), "d_loss") == pytest.approx(uninterrupted, rel=1e-5, abs=1e-6)


def test_a_diverging_run_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "d.safetensors"
    data = shapes(64)
    trainer = Trainer(
        create_model("vae", TINY["vae"]),
        data,
        TrainConfig(epochs=3, batch_size=16, sample_every=None, checkpoint_path=str(path)),
    )
    events = []
    for event in trainer.run():
        events.append(event)
        if isinstance(event, CheckpointSaved):  # after the first epoch, sabotage the weights
            good = path.read_bytes()
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))
    diverged = [e for e in events if isinstance(e, Diverged)]
    assert len(diverged) == 1 and "diverged" in diverged[0].message
    assert events[-1].reason == "diverged"
    assert path.read_bytes() == good  # the last good checkpoint survives


def test_create_model_is_seeded_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = create_model("vae", TINY["vae"], seed=1)
    after = torch.rand(1)
    b = create_model("vae", TINY["vae"], seed=1)
    assert torch.equal(after, expected)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_bf16_training_learns_keeps_float32_weights_and_resumes_in_bf16(tmp_path: Path) -> None:
    data = shapes(512, binarize="threshold")
    path = tmp_path / "bf16.safetensors"
    config = TrainConfig(
        max_steps=40, batch_size=32, lr=3e-3, sample_every=None, precision="bf16", checkpoint_path=str(path)
    )
    model = create_model("pixelcnn", TINY["pixelcnn"], seed=0)
    losses = _losses(Trainer(model, data, config).run(), "nll")
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: float32 master weights
    saved = load_checkpoint(path)
    assert saved.training["train_config"]["precision"] == "bf16"
    assert all(t.dtype == torch.float32 for t in saved.model.state_dict().values())
    # bf16 losses track the float32 ones closely on the same data and seed
    exact = _losses(
        Trainer(
            create_model("pixelcnn", TINY["pixelcnn"], seed=0),
            data,
            replace(config, precision="fp32", checkpoint_path=None, max_steps=3),
        ).run(),
        "nll",
    )
    assert losses[:3] == pytest.approx(exact, rel=0.02)


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp8")


def test_pixelcnn_learning_rate_follows_a_cosine_to_zero() -> None:
    model = create_model("pixelcnn", TINY["pixelcnn"], seed=0)
    trainer = Trainer(
        model, shapes(64, binarize="threshold"), TrainConfig(max_steps=4, batch_size=16, lr=1e-3, sample_every=None)
    )
    rates = []
    for event in trainer.run():
        if isinstance(event, StepDone):
            rates.append(trainer.optimizers["main"].param_groups[0]["lr"])
    assert rates == pytest.approx(
        [1e-3, 1e-3 * (0.5 + 0.5 * np.cos(np.pi / 4)), 0.5e-3, 1e-3 * (0.5 - 0.5 * np.cos(np.pi / 4))]
    )


def test_a_stop_request_cuts_the_held_out_evaluation_short() -> None:
    trainer = Trainer(
        create_model("vae", TINY["vae"]),
        shapes(64),
        TrainConfig(batch_size=16, sample_every=None),
        val_data=shapes(64, train=False),
    )
    assert set(trainer.evaluate()) == {"loss", "recon", "kl"}
    trainer.stop()
    assert trainer.evaluate() == {}
