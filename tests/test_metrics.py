"""Sample scores and latent-arithmetic success: exact answers on synthetic setups, and `eval` on a tiny GAN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from engines.checkpoint import load_checkpoint, save_checkpoint
from engines.cli import main
from engines.data import DataSpec
from engines.data.base import TensorImageDataset
from engines.data.sample import sample_dataset
from engines.metrics import (
    EDIT_METHODS,
    attribute_arithmetic_success,
    classifier_inception_score,
    clean_edit_rates,
    exemplar_arithmetic_success,
    frechet_distance,
    gan_scores,
)
from engines.models import build_model
from engines.training import TrainConfig, Trainer, create_model
from tests.helpers import TINY, shapes

# --- Inception Score ----------------------------------------------------------------------------------


def test_confident_balanced_predictions_score_the_number_of_classes() -> None:
    k = 10
    probs = np.tile(np.eye(k), (50, 1))  # every split of 50 holds 5 confident predictions of each class
    mean, std = classifier_inception_score(probs, splits=10)
    assert mean == pytest.approx(k, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_identical_predictions_score_one() -> None:
    confident = np.tile(np.eye(4)[2], (100, 1))
    hedged = np.tile([0.1, 0.2, 0.3, 0.4], (100, 1))
    assert classifier_inception_score(confident)[0] == pytest.approx(1.0)
    assert classifier_inception_score(hedged)[0] == pytest.approx(1.0)


def test_inception_score_matches_its_formula() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 5)) * 2
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    py = p.mean(0)
    expected = np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), axis=1)))
    assert classifier_inception_score(p, splits=1)[0] == pytest.approx(expected, rel=1e-12)
    assert 1.0 < expected < 5.0


# --- Frechet distance -----------------------------------------------------------------------------------


def _reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """Float64 textbook version: Tr((S_a S_b)^1/2) from the eigenvalues of the (non-symmetric) product."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvals(sa @ sb).real, 0, None)).sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(sa) + np.trace(sb) - 2 * tr_sqrt)


def test_identical_feature_sets_are_at_distance_zero() -> None:
    x = np.random.default_rng(0).normal(size=(500, 16)).astype(np.float32)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(torch.from_numpy(x), x.copy()) == pytest.approx(0.0, abs=1e-8)  # tensors too


def test_a_shifted_mean_costs_the_squared_shift() -> None:
    x = np.random.default_rng(1).normal(size=(400, 8))
    shift = np.arange(8) * 0.25
    assert frechet_distance(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9, abs=1e-9)


def test_frechet_distance_agrees_with_a_float64_reference() -> None:
    rng = np.random.default_rng(2)
    a = (rng.normal(size=(600, 12)) @ rng.normal(size=(12, 12))).astype(np.float32)
    b = (rng.normal(size=(600, 12)) * np.linspace(0.5, 2, 12) + 0.3).astype(np.float32)
    fd = frechet_distance(a, b)
    assert fd == pytest.approx(_reference_fd(a, b), rel=1e-6)
    assert fd == pytest.approx(frechet_distance(b, a), rel=1e-9)  # symmetric


def test_rank_deficient_covariances_stay_finite_and_non_negative() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(10, 64))  # fewer samples than dimensions: singular covariances
    assert np.isfinite(frechet_distance(a, a)) and frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, rng.normal(size=(10, 64))) > 0


# --- sample scores of a model ---------------------------------------------------------------------------


class Replay(nn.Module):
    """A "generative model" whose samples are a dataset's images, in order."""

    def __init__(self, dataset) -> None:
        super().__init__()
        self.dataset, self.cursor = dataset, 0

    def sample(self, n: int, generator=None) -> torch.Tensor:
        images, _ = self.dataset.get_batch(np.arange(self.cursor, self.cursor + n))
        self.cursor += n
        return images


def test_gan_scores_of_a_model_that_replays_the_test_set_equal_the_test_sets_own() -> None:
    test, train = shapes(120, train=False), shapes(120)
    clf = build_model(
        "classifier",
        {
            "label_names": ["shape"],
            "label_kinds": ["categorical"],
            "categories": [3],
            "width": 4,
            "hidden": 16,
            "feature_dim": 8,
        },
    ).eval()
    # one part: the real images' parts come from a shuffle, the replayed samples' in the test set's order
    scores = gan_scores(Replay(test), clf, n=120, batch_size=50, splits=1, real_dataset=test, train_dataset=train)
    assert scores["fid"] == pytest.approx(0.0, abs=1e-6)
    assert scores["inception_score"] == pytest.approx(scores["real_inception_score"], rel=1e-9)
    assert 1.0 <= scores["inception_score"] <= 3.0 and len(scores["class_fractions"]) == 3
    assert scores["train_test_fid"] > 0 and scores["real_images"] == 120


def test_the_real_score_of_a_held_out_set_listed_class_by_class_is_not_cut_into_one_class_parts() -> None:
    """An image folder lists its classes one after another; scored in that order, each of the 10 parts
    would hold about one digit and the real Inception Score would fall towards 1."""
    bundled = Path(__file__).resolve().parents[1] / "checkpoints"
    lenet = load_checkpoint(bundled / "lenet-mnist.safetensors").model.eval()
    carried = load_checkpoint(bundled / "dcgan-mnist.safetensors")
    digits = carried.sample["labels"].argmax(1)
    order = torch.argsort(digits, stable=True)
    listed = TensorImageDataset(
        DataSpec.from_dict(carried.dataset),
        carried.sample["images"][order],
        carried.sample["labels"][order],
        carried.sample["label_names"],
        carried.sample["label_kinds"],
    )
    mixed = sample_dataset(carried.dataset, carried.sample)
    kw = dict(n=1000, batch_size=500, splits=10)
    by_class = gan_scores(Replay(listed), lenet, real_dataset=listed, **kw)
    as_given = gan_scores(Replay(mixed), lenet, real_dataset=mixed, **kw)
    assert by_class["real_inception_score"] > 9.0  # real MNIST digits under LeNet: about 9.8
    assert by_class["real_inception_score"] == pytest.approx(as_given["real_inception_score"], abs=0.15)
    assert by_class["inception_score"] < 3.0  # the samples' parts are in the order given: one class each
    # fewer samples than held-out images: a random subset of every class, not the first few classes
    few = gan_scores(Replay(listed), lenet, n=200, batch_size=100, splits=1, real_dataset=listed)
    assert few["real_inception_score"] > 8.0


# --- attribute arithmetic: a setup whose answer is known --------------------------------------------------


class Decoder(nn.Module):
    """Decodes z to z itself (times `keep`, to make a decoder lose coordinates). A model from outside
    the registry: it says what it can do with the capability attributes engines.models defines."""

    has_latent, has_encoder = True, False

    def __init__(self, dim: int, keep: torch.Tensor | None = None) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the model a device
        self.dim, self.keep = dim, torch.ones(dim) if keep is None else keep

    def decode(self, z):
        return z * self.keep


class Identity(Decoder):
    """A "VAE" whose encoder mean is the point itself."""

    has_encoder = True

    def encode(self, x):
        return x, torch.zeros_like(x)


class IdentityGAN(Decoder):
    """A "GAN": no encoder, so latents are drawn and labelled by the classifier."""

    def random_latents(self, n, generator=None):
        return torch.randn((n, self.dim), generator=generator)


class Thresholds:
    """Reads "a" from z0 > 0, "b" from z1 > 0 and the continuous "c" from z2."""

    label_kinds = {"a": "binary", "b": "binary", "c": "continuous"}

    def predict_labels(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([(x[:, 0] > 0).float(), (x[:, 1] > 0).float(), x[:, 2]], dim=1)


class Points:
    """A dataset of 4-d points with labels a, b (signs of z0, z1) and c (= z2)."""

    label_names = ["a", "b", "c"]

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        signs = rng.choice([-1.0, 1.0], size=(n, 2))
        self.points = np.concatenate([signs, rng.random((n, 1)), rng.normal(size=(n, 1))], axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.points)

    def get_batch(self, indices):
        x = torch.from_numpy(self.points[np.asarray(indices)])
        return x, torch.stack([(x[:, 0] > 0).float(), (x[:, 1] > 0).float(), x[:, 2]], dim=1)


def test_the_attribute_vector_of_a_clean_latent_space_always_succeeds() -> None:
    result = attribute_arithmetic_success(Identity(4), Thresholds(), Points(3000), "a", n=100, pool=1000)
    assert result["n"] == 100 and result["rate"] == 1.0
    assert result["gained"] == 1.0 and result["others_kept"] == 1.0 and result["continuous_kept"] == 1.0
    assert result["vector_norm"] == pytest.approx(2.0, abs=0.2)  # z0 goes from -1 to +1


def test_a_zero_vector_never_succeeds_and_keeps_everything_else() -> None:
    result = attribute_arithmetic_success(
        Identity(4), Thresholds(), Points(3000), "a", n=100, pool=1000, vector=np.zeros(4)
    )
    assert result["rate"] == 0.0 and result["gained"] == 0.0 and result["others_kept"] == 1.0


def test_an_encoder_that_loses_the_attribute_gives_no_success() -> None:
    model = Identity(4, keep=torch.tensor([0.0, 1.0, 1.0, 1.0]))  # decodes every z0 to 0: "a" never shows
    result = attribute_arithmetic_success(model, Thresholds(), Points(3000), "a", n=50, pool=1000)
    assert result["rate"] == 0.0


def test_an_edit_that_also_flips_another_attribute_fails() -> None:
    vector = np.array([2.0, 2.0, 0.0, 0.0])  # adds "a" and turns "b" on too
    result = attribute_arithmetic_success(Identity(4), Thresholds(), Points(3000), "a", n=100, pool=1000, vector=vector)
    assert result["gained"] == 1.0 and result["rate"] == result["others_kept"] < 0.7
    assert result["kept"]["b"] == pytest.approx(result["others_kept"])  # only those with b already on survive
    big_c = attribute_arithmetic_success(
        Identity(4), Thresholds(), Points(3000), "a", n=100, pool=1000, vector=np.array([2.0, 0.0, 0.2, 0.0])
    )
    assert big_c["continuous_kept"] == 0.0 and big_c["rate"] == 0.0  # |delta c| = 0.2 > tolerance 0.15


def test_without_an_encoder_latents_are_sampled_and_labelled_by_the_classifier() -> None:
    result = attribute_arithmetic_success(
        IdentityGAN(4), Thresholds(), None, "a", n=200, pool=8000, seed=0, strengths=(1.0, 3.0)
    )
    assert "samples" in result["latents"] and result["n"] == 200
    # v ~ (1.6, 0, 0, 0): at strength 1 only z0 > -1.6 crosses (~89% of z0 < 0); at 3 nearly all do
    assert 0.8 < result["gained"] < 0.97
    assert result["tuned_strength"] == 3.0 and result["tuned_gained"] > 0.98


def test_exemplar_arithmetic_adds_one_attribute_to_another() -> None:
    steady = Points(500)
    steady.points[:, 2] = 0.5  # every face has the same continuous attribute c
    result = exemplar_arithmetic_success(Identity(4), Thresholds(), steady, "a", "b", trials=30, pool=500)
    assert result["rate"] == 1.0 and result["has_a"] == 1.0 and result["has_b"] == 1.0
    # c uniform in [0, 1]: mean(A) - mean(B) moves c off mean(C)'s by more than 0.15 in many trials, and
    # the strict rule (the vector edits' rule) counts those as failures though both attributes show
    varied = exemplar_arithmetic_success(Identity(4), Thresholds(), Points(500), "a", "b", trials=30, pool=500)
    assert varied["attributes_rate"] == 1.0 and varied["rate"] < 0.8
    lossy = Identity(4, keep=torch.tensor([0.0, 1.0, 1.0, 1.0]))
    result = exemplar_arithmetic_success(lossy, Thresholds(), Points(500), "a", "b", trials=30, pool=500)
    assert result["rate"] == 0.0 and result["has_a"] == 0.0 and result["has_b"] == 1.0


class Tangled(Decoder):
    """Adding "a" (z0 > 0) also moves the continuous "c" (read from z2) by 0.5 * z0, on every face
    (`when_b=False`) or only on faces with "b" (z1 > 0)."""

    def __init__(self, dim: int, when_b: bool) -> None:
        super().__init__(dim)
        self.when_b = when_b

    def decode(self, z):
        out = z.clone()
        out[:, 2] = z[:, 2] + 0.5 * z[:, 0] * ((z[:, 1] > 0) if self.when_b else 1.0)
        return out

    def random_latents(self, n, generator=None):
        return torch.randn((n, self.dim), generator=generator)


def test_every_edit_method_is_judged_on_the_same_latents_by_the_strict_rule() -> None:
    clean = clean_edit_rates(IdentityGAN(4), Thresholds(), None, ["a"], n=100, pool=2000)
    assert set(clean["methods"]) == set(EDIT_METHODS) and clean["best"]["a"]["rate"] == 1.0
    assert all(clean["methods"][m]["a"]["n"] == 100 for m in EDIT_METHODS)
    assert clean["boundaries"]["a"] > 0.97  # "a" is z0 > 0: linearly separable
    assert clean["methods"]["boundary"]["a"]["rate"] == 1.0  # moving along z0 keeps b and c exactly


def test_projecting_out_a_kept_readout_keeps_it() -> None:
    leaky = clean_edit_rates(Tangled(4, when_b=False), Thresholds(), None, ["a"], n=150, pool=3000)
    rates = {m: r["a"]["rate"] for m, r in leaky["methods"].items()}
    assert rates["boundary"] < 0.6 and rates["mean_vector"] < 0.6  # both move c along with a
    assert rates["conditional_boundary"] > 0.95
    assert leaky["methods"]["conditional_boundary"]["a"]["kept"]["c"] > 0.95


def test_a_conditional_shift_keeps_what_depends_on_the_other_attributes() -> None:
    tangled = clean_edit_rates(Tangled(4, when_b=True), Thresholds(), None, ["a"], n=150, pool=3000)
    rates = {m: r["a"]["rate"] for m, r in tangled["methods"].items()}
    # c moves with a only on faces with b: one global direction cannot be right for both kinds of face
    assert max(rates["boundary"], rates["conditional_boundary"], rates["mean_vector"]) < 0.85
    assert rates["conditional_shift"] > 0.95 and tangled["best"]["a"]["method"] == "conditional_shift"


def test_arithmetic_needs_a_binary_attribute() -> None:
    with pytest.raises(ValueError, match="not a binary attribute"):
        attribute_arithmetic_success(Identity(4), Thresholds(), Points(100), "c", n=5, pool=50)


# --- `latent-explorer eval` on a GAN --------------------------------------------------------------------


def test_eval_of_a_gan_prints_inception_score_and_frechet_distance(tmp_path: Path, capsys) -> None:
    data = shapes(256)
    gan = create_model("gan", TINY["gan"], seed=0)
    for _ in Trainer(gan, data, TrainConfig(max_steps=10, batch_size=32, sample_every=None)).run():
        pass
    gan_path = save_checkpoint(tmp_path / "gan.safetensors", gan.eval(), dataset=data.spec.to_dict())
    clf = create_model(
        "classifier",
        {
            "label_names": ["shape"],
            "label_kinds": ["categorical"],
            "categories": [3],
            "width": 4,
            "hidden": 16,
            "feature_dim": 8,
        },
        seed=0,
    )
    for _ in Trainer(clf, data, TrainConfig(max_steps=10, batch_size=32, sample_every=None)).run():
        pass
    clf_path = save_checkpoint(tmp_path / "clf.safetensors", clf.eval(), dataset=data.spec.to_dict())

    # in-process (tests/test_cli.py runs the real process): the same parser, code paths and output
    assert main(["eval", str(gan_path), "--classifier", str(clf_path), "--n", "200", "--save"]) == 0
    out = capsys.readouterr().out
    assert "Inception Score" in out and "Frechet distance" in out
    assert "real held-out images" in out and "real train vs held-out" in out
    scores = load_checkpoint(gan_path).metrics["eval"]["samples"]
    assert scores["samples"] == 200 and 1.0 <= scores["inception_score"] <= 3.0 and scores["fid"] > 0
    assert f"{scores['inception_score']:.3f}" in out and f"{scores['fid']:.4g}" in out

    assert main(["eval", str(gan_path), "--classifier", str(clf_path), "--n", "200", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)["samples"]
    assert again["fid"] == scores["fid"] and again["inception_score"] == scores["inception_score"]  # seeded


def test_eval_of_a_gan_without_a_classifier_names_the_option(tmp_path: Path, capsys) -> None:
    gan = create_model("gan", TINY["gan"], seed=0).eval()
    path = save_checkpoint(tmp_path / "g.safetensors", gan, dataset=shapes(8).spec.to_dict())
    assert main(["eval", str(path)]) == 1
    err = capsys.readouterr().err
    assert "--classifier" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
