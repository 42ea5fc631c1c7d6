"""Published figures are shown only beside metrics measured under the same protocol."""

from __future__ import annotations

from engines.cli import _print_references
from engines.references import references_for, target_for


def test_likelihood_references_follow_the_binarization() -> None:
    binarized = {r.value for r in references_for("vae", "mnist", "stochastic")}
    grayscale = {r.value for r in references_for("vae", "mnist", "none")}
    assert binarized == {86.76, 89.8} and grayscale == {105.6}
    assert [r.value for r in references_for("pixelcnn", "mnist", "threshold")] == [81.30]
    assert references_for("pixelcnn", "mnist", "none") == [] and references_for("vae", "shapes", "stochastic") == []
    assert target_for("pixelcnn", "mnist", "nll", "stochastic") == 85.0
    assert target_for("pixelcnn", "mnist", "nll", "none") is None  # grayscale NLL is another quantity


def test_likelihood_references_need_a_comparable_latent_size() -> None:
    assert references_for("vae", "mnist", "none", latent_dim=2) == []  # no 20-D figure beside a 2-D VAE
    assert [r.value for r in references_for("vae", "mnist", "none", latent_dim=16)] == [105.6]
    assert {r.value for r in references_for("vae", "mnist", "stochastic", latent_dim=32)} == {86.76, 89.8}
    assert references_for("vae", "mnist", "stochastic", latent_dim=8) == []


def test_eval_report_puts_the_model_beside_the_papers_and_the_target(capsys) -> None:
    metrics = {"dataset": "mnist", "binarize": "stochastic", "iw_nll": 88.5, "neg_elbo": 92.0}
    _print_references("vae", metrics, references_for("vae", "mnist", "stochastic"))
    out = capsys.readouterr().out
    assert "iw_nll 86.76" in out and "this model: 88.5" in out and "iw_nll <= 90: met" in out

    gan = {"dataset": "mnist", "samples": {"inception_score": 9.1}}
    _print_references("gan", gan, references_for("gan", "mnist", None))
    assert "inception_score >= 9.5: not met" in capsys.readouterr().out

    faces = {"dataset": "faces", "attribute_arithmetic": {"glasses": {"rate": 0.93}, "smiling": {"rate": 0.5}}}
    _print_references("vae", faces, [])
    out = capsys.readouterr().out
    assert "glasses vector success >= 90%: met" in out and "smiling vector success >= 90%: not met" in out
