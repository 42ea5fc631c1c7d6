"""Collapse warnings (engines.training.collapse) on runs made to collapse, the Train tab showing them, and
small VAE / GAN runs on real colour photos (tests/data/cifar-mini: 160 CIFAR-10 JPEGs) that must learn."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from engines.checkpoint import load_checkpoint  # noqa: E402
from engines.data import DataSpec, ShapesDataset, load_dataset, load_splits  # noqa: E402
from engines.data.sample import sample_dataset  # noqa: E402
from engines.training import EpochEnd, Health, StepDone, TrainConfig, Trainer, create_model  # noqa: E402
from engines.training.collapse import (  # noqa: E402
    GRACE_STEPS,
    diversity_ratio,
    kl_per_dimension,
    mean_pairwise_distance,
    posterior_collapsed,
)
from engines.training.run import RunSettings  # noqa: E402
from tests.helpers import TINY  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CIFAR_MINI = Path(__file__).parent / "data" / "cifar-mini"
STEPS = GRACE_STEPS + 20


def shapes(n: int = 512) -> ShapesDataset:
    return ShapesDataset(DataSpec("shapes", image_size=28, channels=1), True, length=n)


def health(events) -> list[Health]:
    return [e for e in events if isinstance(e, Health)]


def test_the_measures() -> None:
    assert posterior_collapsed(np.array([0.001, 0.009])) and not posterior_collapsed(np.array([0.001, 0.5]))
    same = torch.full((8, 1, 4, 4), 0.3)
    assert mean_pairwise_distance(same) == 0.0
    pair = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    assert mean_pairwise_distance(pair) == 2.0  # sqrt(4 pixels x 1^2)
    real = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert (
        diversity_ratio(real, real) == 1.0 and diversity_ratio(torch.full((16, 1, 4, 4), 0.3), real[:, :, :4, :4]) == 0
    )


def test_a_vae_with_a_huge_beta_is_warned_of_posterior_collapse_and_beta_1_is_not() -> None:
    config = TrainConfig(max_steps=STEPS, batch_size=32, sample_every=20)
    collapsed = create_model("vae", {**TINY["vae"], "beta": 1000.0})
    warnings = health(Trainer(collapsed, shapes(), config).run())
    assert len(warnings) == 1 and warnings[0].step == GRACE_STEPS  # said once, at the first check after the grace
    assert warnings[0].warning.startswith("Posterior collapse: KL is below 0.01 nats on all 4 latent dimensions")
    assert "\n" not in warnings[0].warning
    healthy = create_model("vae", TINY["vae"])
    assert health(Trainer(healthy, shapes(), config).run()) == []
    real = shapes(64).get_batch(np.arange(64))[0]
    assert kl_per_dimension(healthy.eval(), real).max() > 0.1


def test_a_gan_whose_generator_is_constant_is_warned_of_mode_collapse() -> None:
    gan = create_model("gan", TINY["gan"])
    last = gan.generator[-2]  # the output convolution: zero and frozen, so G(z) = tanh(0) = grey for every z
    torch.nn.init.zeros_(last.weight)
    last.weight.requires_grad_(False)
    events = list(Trainer(gan, shapes(), TrainConfig(max_steps=STEPS, batch_size=32, sample_every=20)).run())
    warnings = health(events)
    assert [w.step for w in warnings] == [GRACE_STEPS]
    assert warnings[0].warning.startswith("Mode collapse: samples are 0% as diverse as real images")


def test_the_bundled_gans_are_not_collapsed() -> None:
    for name in ("dcgan-mnist", "dcgan-faces"):
        ckpt = load_checkpoint(REPO / "checkpoints" / f"{name}.safetensors")
        gan = ckpt.model.eval()
        if ckpt.sample is not None:  # MNIST: the test images carried in the file
            data = sample_dataset(ckpt.dataset, ckpt.sample)
        else:  # the procedural faces
            data = load_dataset(DataSpec.from_dict(ckpt.dataset), train=False)
        real = data.get_batch(np.arange(64))[0]
        with torch.no_grad():
            ratio = diversity_ratio(
                gan.decode(torch.randn(64, gan.latent_dim, generator=torch.Generator().manual_seed(0))), real
            )
        assert ratio > 0.8, (name, ratio)


def test_the_train_tab_shows_a_posterior_collapse_warning(qtbot, tmp_path: Path) -> None:
    from explorer.panels.training import TrainingPanel
    from explorer.state import ExplorerState
    from tests.helpers import tiny_vae_run

    panel = TrainingPanel(ExplorerState(), None)
    qtbot.addWidget(panel)
    panel.show()
    tiny_vae_run(panel, tmp_path / "collapsed.safetensors", max_steps=STEPS, sample_every=20)
    panel.config_overrides["beta"] = 1000.0
    with qtbot.waitSignal(panel.runFinished, timeout=60_000):
        assert panel.start() is not None
    assert panel.collapse_label.isVisible()
    assert panel.collapse_label.text().startswith("⚠ Posterior collapse: KL is below 0.01 nats on all 2 latent")
    assert f"step {GRACE_STEPS}: Posterior collapse" in panel.log_view.toPlainText()


def _photo_run(kind: str, steps: int, size: int = 32, **overrides):
    spec = DataSpec("folder", root=str(CIFAR_MINI), image_size=size, channels=3)
    splits = load_splits(spec)
    settings = RunSettings(kind=kind, dataset="folder", root=str(CIFAR_MINI), image_size=size)
    model = create_model(kind, {**settings.model_config(spec), **overrides}, seed=0)
    config = TrainConfig(epochs=100, max_steps=steps, batch_size=32, sample_every=None, seed=0)
    events = list(Trainer(model, splits.train, config, splits.val).run())  # 4 steps an epoch, each validated
    return model, splits, events


@pytest.mark.parametrize("size", [32, 64])
def test_a_vae_learns_colour_photos_without_posterior_collapse(size: int) -> None:
    model, splits, events = _photo_run("vae", 60, size)
    assert model.image_shape == (3, size, size)
    losses = [e.losses["loss"] for e in events if isinstance(e, StepDone)]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 500  # nats per image: it learns fast
    val = [e.val_losses for e in events if isinstance(e, EpochEnd)]
    assert val[-1]["loss"] < val[0]["loss"]  # held-out loss falls too
    kl = kl_per_dimension(model.eval(), splits.val.get_batch(np.arange(len(splits.val)))[0])
    assert kl.sum() > 10 and (kl > 0.1).sum() >= 4  # the latent is used (no collapse)


def test_a_gan_makes_diverse_colour_photos_after_a_few_dozen_steps() -> None:
    model, splits, events = _photo_run("gan", 30)
    d_losses = [e.losses["d_loss"] for e in events if isinstance(e, StepDone)]
    assert np.mean(d_losses[-5:]) < np.mean(d_losses[:5])  # the discriminator learns to tell them apart
    real = splits.train.get_batch(np.arange(64))[0]
    with torch.no_grad():
        samples = model.eval().decode(torch.randn(64, model.latent_dim, generator=torch.Generator().manual_seed(1)))
    assert diversity_ratio(samples, real) > 0.15
