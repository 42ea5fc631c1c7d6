"""The GAN's categorical code (InfoGAN, engines.models.gan: code_classes): read from the first latent
units, learned without labels, kept by checkpoints, the fast map decode and ONNX export, set by the
CLI and the Train tab."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engines import fast_decode
from engines.checkpoint import load_checkpoint, save_checkpoint
from engines.cli import main
from engines.data import DataSpec
from engines.models import build_model
from engines.models.gan import GANConfig
from engines.training import TrainConfig, Trainer, create_model
from engines.training.run import RunSettings
from tests.helpers import TINY
from tests.test_conditional import _rewrite_config, two_classes

BUNDLED = Path(__file__).resolve().parents[1] / "checkpoints"


def coded(k: int = 2, **config) -> dict:
    return {**TINY["gan"], "code_classes": k, **config}


@pytest.mark.parametrize(
    "config,words",
    [
        ({"code_classes": 1}, "code_classes must be 0 or 2"),
        ({"code_classes": 9, "latent_dim": 8}, "code_classes must be 0 or 2"),
        ({"code_classes": 2, "num_classes": 2, "class_names": ("a", "b")}, "do not go together"),
        ({"code_classes": 2, "code_weight": -1.0}, "code_weight"),
    ],
)
def test_bad_code_settings_are_refused(config: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        GANConfig(**{"latent_dim": 8, **config})


def test_the_largest_of_the_first_units_picks_a_one_hot_code() -> None:
    model = build_model("gan", coded(4)).eval()
    z = torch.randn(512, 8, generator=torch.Generator().manual_seed(0))
    code = model._coded(z)
    assert torch.equal(code[:, :4], torch.eye(4)[model.code(z)]) and torch.equal(code[:, 4:], z[:, 4:])
    # at a tie the first tied unit wins: z = 0 (where the app opens a model, and Reset) is category 0,
    # an image G was trained on, not a blend of the categories
    ties = torch.tensor([[0.0, 0, 0, 0, 1, 1, 1, 1], [0.2, 0.7, 0.7, -1, 0, 0, 0, 0]])
    assert model.code(ties).tolist() == [0, 1]
    assert torch.equal(model._coded(ties)[:, :4], torch.tensor([[1.0, 0, 0, 0], [0, 1, 0, 0]]))
    # the categories are drawn uniformly: z ~ N(0, I) is symmetric in its units
    counts = np.bincount(model.code(torch.randn(20000, 8)).numpy(), minlength=4)
    assert counts.min() > 0.23 * 20000
    # D has one more output per category (Q's logits); critic() is the real/fake logit alone
    assert model.discriminator(torch.rand(3, 1, 28, 28)).shape == (3, 5)
    assert model.critic(torch.rand(3, 1, 28, 28)).shape == (3,)


@pytest.mark.parametrize("weight", [1.0, 0.0])
def test_g_learns_to_draw_the_categories_apart(weight: float) -> None:
    """Unlabelled data: with the code's term, G makes its categories tell apart and Q reads each image's
    category back (its cross-entropy falls from chance to near 0); with the term weighted 0, Q stays near
    chance (the mechanism, not the data, separates them)."""
    torch.manual_seed(0)
    model = create_model("gan", coded(2, g_width=16, d_width=16, code_weight=weight), seed=0)
    run = TrainConfig(max_steps=80, batch_size=32, lr=2e-3, sample_every=None)
    parts = [e.losses["code_loss"] for e in Trainer(model, two_classes(256), run).run() if hasattr(e, "losses")]
    model.eval()
    z = torch.randn(400, model.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        q = model.discriminator(model.decode(z) * 2 - 1)[:, 1:].argmax(1)
    accuracy = float((q == model.code(z)).float().mean())
    if weight:
        assert np.mean(parts[-10:]) < 0.2 < np.mean(parts[:3]) and accuracy > 0.9
    else:
        assert parts == [0.0] * len(parts) and accuracy < 0.75


def test_a_coded_generator_learns_at_five_times_the_discriminators_rate() -> None:
    from engines.training.recipes import RECIPES

    rates = {
        k: {
            name: opt.param_groups[0]["lr"]
            for name, opt in RECIPES["gan"].optimizers(build_model("gan", c), lr).items()
        }
        for k, c, lr in [("coded", coded(4), None), ("plain", TINY["gan"], None), ("given", coded(4), 1e-4)]
    }
    assert rates["coded"] == {"generator": pytest.approx(1e-3), "discriminator": pytest.approx(2e-4)}  # InfoGAN's
    assert rates["plain"] == {"generator": pytest.approx(2e-4), "discriminator": pytest.approx(2e-4)}
    assert rates["given"] == {"generator": pytest.approx(5e-4), "discriminator": pytest.approx(1e-4)}


def test_checkpoint_fast_decode_and_onnx_export_keep_the_code(tmp_path: Path, capsys) -> None:
    model = create_model("gan", coded(3), seed=0).eval()
    path = save_checkpoint(tmp_path / "code.safetensors", model)
    loaded = load_checkpoint(path).model
    assert loaded.config.code_classes == 3
    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = model.decode(z).numpy()
        assert np.array_equal(loaded.decode(z).numpy(), reference)
    if fast_decode.native_bfloat16():  # the bfloat16 map decode draws the same images
        decode = fast_decode.bfloat16_decoder(loaded)
        assert fast_decode.psnr(decode(z.numpy()), reference) >= 40
        # ... and near ties pick the category float32 picks: the code is read from z before bfloat16
        # rounds it, so the copy draws them exactly as it draws their clear one-hot codes
        near = z.clone()
        near[:, 1] = near[:, 0] + 1e-3  # bfloat16 cannot tell z[0] from z[1] (8 bits of mantissa)
        assert not torch.equal(model.code(near), model.code(near.bfloat16()))
        clear = near.clone()
        clear[:, :3] = torch.eye(3)[model.code(near)]
        assert np.array_equal(decode(near.numpy()), decode(clear.numpy()))
    assert main(["export", str(path), "--onnx", str(tmp_path / "onnx")]) == 0
    assert "re-opened: images within" in capsys.readouterr().out
    exported = load_checkpoint(tmp_path / "onnx" / "code.onnx").model
    with torch.no_grad():
        assert np.abs(exported.decode(z).numpy() - reference).max() < 1e-4


def test_a_checkpoint_from_the_softmax_code_opens_with_the_one_hot_code(tmp_path: Path) -> None:
    """Coded checkpoints written before the code became one-hot carry code_temperature: it is dropped."""
    model = create_model("gan", coded(3), seed=0).eval()
    path = save_checkpoint(tmp_path / "old.safetensors", model)
    _rewrite_config(path, code_temperature=0.05)
    loaded = load_checkpoint(path).model
    assert loaded.config == model.config
    _rewrite_config(path, code_tempreature=0.05)  # any other unknown field is still refused
    with pytest.raises(Exception, match="code_tempreature"):
        load_checkpoint(path)


def test_run_settings_and_the_cli_flag_make_a_coded_run(tmp_path: Path, capsys) -> None:
    config = RunSettings(kind="gan", dataset="mnist", code_classes=10).model_config(DataSpec("mnist"))
    assert config["code_classes"] == 10
    assert main(["train", "--model", "vae", "--dataset", "shapes", "--code-classes", "4"]) == 2
    assert "--code-classes applies to gan models only" in capsys.readouterr().err
    out = tmp_path / "g.safetensors"
    args = ["train", "--model", "gan", "--dataset", "shapes", "--latent-dim", "8", "--code-classes", "4"]
    assert main([*args, "--max-steps", "2", "--batch-size", "8", "--out", str(out)]) == 0
    assert load_checkpoint(out).model.config.code_classes == 4
    capsys.readouterr()
    # a resumed run keeps its code: another one is refused
    assert main(["train", "--resume", str(out), "--code-classes", "6"]) == 2
    assert "a resumed run keeps its model" in capsys.readouterr().err


def test_the_train_tab_offers_the_code_for_a_gan_only(qtbot) -> None:
    from explorer.panels.training import TrainingPanel
    from explorer.state import ExplorerState

    panel = TrainingPanel(ExplorerState())
    qtbot.addWidget(panel)
    panel.configure(model="gan", dataset="mnist", code_classes=10)
    assert panel.hyper_form.isRowVisible(panel.code_spin)
    settings = panel.form_settings()
    assert settings.model_config(settings.data_spec())["code_classes"] == 10
    panel.configure(model="vae")  # a VAE has no code: the row is hidden and the setting unset
    assert not panel.hyper_form.isRowVisible(panel.code_spin) and panel.form_settings().code_classes is None


class DigitByCode:
    """A coded generator whose images are real MNIST test digits (those carried in a bundled file): each
    category draws its own digit, or, scrambled, any digit whatever the category."""

    def __init__(self, scrambled: bool) -> None:
        sample = load_checkpoint(BUNDLED / "dcgan-mnist.safetensors").sample
        digits = sample["labels"].argmax(1)
        self.images = sample["images"].float() / 255  # (N, 1, 28, 28)
        self.by_digit = [torch.nonzero(digits == d).flatten() for d in range(10)]
        self.scrambled = scrambled
        self._gan = build_model("gan", {**TINY["gan"], "latent_dim": 16, "code_classes": 10})
        self.config = self._gan.config

    def random_latents(self, n, generator=None):
        return self._gan.random_latents(n, generator)

    def code(self, z):
        return self._gan.code(z)

    def decode(self, z):
        digit = torch.randint(0, 10, (len(z),)) if self.scrambled else self.code(z)
        return self.images[[int(self.by_digit[d][i % len(self.by_digit[d])]) for i, d in enumerate(digit.tolist())]]


@pytest.mark.parametrize("scrambled", [False, True])
def test_code_purity_reads_what_each_category_draws(scrambled: bool) -> None:
    from engines.metrics import code_purity

    clf = load_checkpoint(BUNDLED / "lenet-mnist.safetensors").model.eval()
    result = code_purity(DigitByCode(scrambled), clf, n=1000)
    if scrambled:  # every category draws every digit: each one's most common class is a tenth or so
        assert result["purity"] < 0.25
    else:  # category c draws digit c, which LeNet reads (99.3% on MNIST test)
        assert result["purity"] > 0.97
        assert [c["class"] for c in result["categories"]] == [str(d) for d in range(10)]
    assert result["samples"] == 1000 and len(result["categories"]) == 10


def test_the_model_panel_says_which_sliders_pick_the_category() -> None:
    """The bundled dcgan-mnist has a 10-way code; opened at z = 0 it draws category 0 (a digit, not a blend
    of the ten categories)."""
    from explorer.panels.info import describe
    from explorer.state import ExplorerState

    state = ExplorerState()
    state.open_checkpoint(BUNDLED / "dcgan-mnist.safetensors", device="cpu")
    assert "10 categories, learned without labels: the largest of z[0]..z[9] picks one" in describe(state)
    model = state.model
    with torch.no_grad():
        at_zero = model.decode(torch.zeros(1, model.latent_dim))
        zc = torch.zeros(1, model.latent_dim)
        zc[0, 0] = 1.0
        assert torch.equal(at_zero, model.decode(zc))  # exactly category 0's image
    assert float(at_zero.std()) > 0.25  # strokes on a dark ground (0.30; the blend of all ten codes: 0.13)
    state.open_checkpoint(BUNDLED / "dcgan-faces.safetensors", device="cpu")
    assert "learned without labels" not in describe(state)
