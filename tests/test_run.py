"""engines.training.run: a new run's settings, shared by the CLI and the Train tab (no Qt), and the
model capabilities that stand in for kind strings."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engines.cli import build_parser
from engines.data import DataSpec
from engines.models import MODEL_CLASSES, build_model
from engines.models.gan import LOSSES
from engines.training import TrainConfig, Trainer, create_model, run
from tests.helpers import TINY, shapes


def test_each_setting_applies_to_the_models_whose_config_has_it() -> None:
    assert {name: run.kinds_for(name) for name in (*run.ARCHITECTURE, *run.STEERING)} == {
        "latent_dim": ("vae", "gan", "stylegan"),
        "gan_loss": ("gan",),
        "levels": ("pixelcnn",),
        "hidden": ("pixelcnn",),
        "layers": ("pixelcnn",),
        "code_classes": ("gan",),
        "beta": ("vae",),
        "d_steps": ("gan",),
    }
    # the classifier's config has a `hidden` too, but comes from its data's labels: no setting applies
    assert not any(run.applies(name, "classifier") for name in (*run.ARCHITECTURE, *run.STEERING))


def test_defaults_come_from_the_config_classes() -> None:
    assert (run.default_latent_dim("vae"), run.default_latent_dim("gan"), run.default_latent_dim("pixelcnn")) == (
        16,
        64,
        None,
    )
    assert run.config_default("gan", "loss") == "ns" and run.config_default("vae", "beta") == 1.0
    assert run.config_default("vae", "no_such_field") is None


@pytest.mark.parametrize(
    ("kind", "channels", "levels", "binarize"),
    [
        ("pixelcnn", 1, None, "stochastic"),  # 2 levels by default for grayscale
        ("pixelcnn", 1, 4, "none"),
        ("pixelcnn", 3, None, "none"),  # 16 levels for colour
        ("pixelcnn", 3, 2, "stochastic"),
        ("vae", 1, 2, "none"),  # levels do not apply to a VAE
        ("gan", 1, None, "none"),
    ],
)
def test_only_a_two_level_model_trains_on_binarized_data(kind, channels, levels, binarize) -> None:
    assert run.run_data_spec(kind, "shapes", channels=channels, levels=levels).binarize == binarize
    assert (
        run.run_data_spec(kind, "shapes", channels=channels, levels=levels, binarize="threshold").binarize
        == "threshold"
    )


def test_model_config_is_the_whole_config_with_the_datas_defaults_and_applicable_settings_only() -> None:
    grey, colour = DataSpec("shapes", image_size=28, channels=1), DataSpec("shapes", image_size=32, channels=3)
    vae = run.run_model_config("vae", colour, latent_dim=8, levels=7, gan_loss="wgan-gp")
    assert vae == {
        **dataclasses.asdict(MODEL_CLASSES["vae"].config_class()),
        "image_size": 32,
        "channels": 3,
        "latent_dim": 8,
        "likelihood": "gaussian",
    }
    pixel = run.run_model_config("pixelcnn", grey, latent_dim=8, layers=3)
    assert (pixel["levels"], pixel["hidden"], pixel["n_layers"]) == (2, 64, 3) and "latent_dim" not in pixel
    assert (
        run.run_model_config("pixelcnn", colour)["hidden"] == 96
        and run.run_model_config("pixelcnn", colour)["levels"] == 16
    )
    gan = run.run_model_config("gan", grey, gan_loss="wgan-gp", d_steps=None)
    assert (gan["loss"], gan["d_steps"], gan["latent_dim"]) == ("wgan-gp", 0, 64)
    for kind, config in (("vae", vae), ("pixelcnn", pixel), ("gan", gan)):
        assert (
            build_model(kind, config).config_dict().items()
            >= {k: v for k, v in config.items() if k != "d_steps"}.items()
        )
    with pytest.raises(TypeError, match="unknown setting"):
        run.run_model_config("vae", grey, width=3)


def test_run_settings_make_the_train_config_the_cli_and_the_form_share() -> None:
    settings = run.RunSettings(
        kind="gan",
        dataset="shapes",
        epochs=3,
        lr=1e-4,
        seed=7,
        checkpoint_every=5,
        checkpoint_path="x.safetensors",
        device="cpu",
        train_overrides={"eval_batches": 2},
    )
    config = settings.train_config()
    assert config == TrainConfig(
        epochs=3,
        lr=1e-4,
        seed=7,
        checkpoint_every=5,
        sample_every=0,
        checkpoint_path="x.safetensors",
        device="cpu",
        eval_batches=2,
    )
    assert settings.train_settings() == {
        **run.TRAIN_DEFAULTS,
        "epochs": 3,
        "lr": 1e-4,
        "seed": 7,
        "checkpoint_every": 5,
    }
    assert run.RunSettings().train_config().checkpoint_path is None  # "" is no file
    with pytest.raises(Exception, match="folder"):
        run.RunSettings(dataset="folder").data_spec()


def test_the_cli_lists_the_engines_sizes_and_losses() -> None:
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: tuple(a.choices) for a in train._actions if a.choices}
    assert choices["image_size"] == (28, 32, 64) and choices["channels"] == (1, 3) and choices["gan_loss"] == LOSSES


def test_a_grid_has_the_models_own_size_unless_asked() -> None:
    data = shapes(64)
    grids = {}
    for kind in ("vae", "pixelcnn"):
        model = create_model(kind, TINY[kind], seed=0)
        grids[kind] = Trainer(model, data, TrainConfig(batch_size=16, sample_every=None)).grid_size
    assert grids == {"vae": 64, "pixelcnn": 16}
    pixelcnn = create_model("pixelcnn", TINY["pixelcnn"], seed=0)
    assert Trainer(pixelcnn, data, TrainConfig(batch_size=16, n_samples=4)).grid_size == 4
    assert Trainer(pixelcnn, data, TrainConfig(batch_size=16, n_samples=64)).grid_size == 16  # never more: slow
    vae = create_model("vae", TINY["vae"], seed=0)
    assert Trainer(vae, data, TrainConfig(batch_size=16, n_samples=9)).sample_grid().shape == (
        3 * 30 + 2,
        3 * 30 + 2,
        1,
    )


# --- capabilities ------------------------------------------------------------------------------------
CAPABILITIES = ("can_sample", "has_latent", "has_encoder", "can_project", "is_autoregressive")


def test_the_registered_models_capabilities() -> None:
    table = {kind: tuple(name for name in CAPABILITIES if getattr(cls, name)) for kind, cls in MODEL_CLASSES.items()}
    assert table == {
        "vae": ("can_sample", "has_latent", "has_encoder", "can_project"),
        "gan": ("can_sample", "has_latent", "can_project"),
        "stylegan": ("can_sample", "has_latent", "can_project"),
        "pixelcnn": ("can_sample", "is_autoregressive"),
        "classifier": (),
    }


@pytest.mark.parametrize("kind", ["vae", "gan", "stylegan", "pixelcnn", "classifier"])
def test_a_capability_promises_what_the_model_does(kind: str) -> None:
    model = build_model(kind, TINY.get(kind, {})).eval()
    c, h, w = model.image_shape
    x = torch.rand(2, c, h, w)
    assert model.latent_dim == (int(model.config.latent_dim) if model.has_latent else 0)
    if model.has_latent:
        z = torch.randn(2, model.latent_dim, requires_grad=model.can_project)
        images = model.decode(z)
        assert images.shape == x.shape and 0 <= float(images.detach().min()) and float(images.detach().max()) <= 1
        if model.can_project:
            (grad,) = torch.autograd.grad(images.sum(), z)
            assert grad.abs().sum() > 0
    if model.has_encoder:
        mu, logvar = model.encode(x)
        assert mu.shape == logvar.shape == (2, model.latent_dim)
    if model.is_autoregressive:
        steps = list(model.sample_steps(1, generator=torch.Generator().manual_seed(0)))
        assert len(steps) == c * h * w
    if model.can_sample:
        for option in model.sample_options:  # each option is a keyword sample() takes
            assert model.sample(1, generator=torch.Generator().manual_seed(0), **{option: 0.5}).shape == (1, c, h, w)
    else:
        assert model.sample_options == ()
