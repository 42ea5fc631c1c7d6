"""engines.projection: image -> latent by optimisation, encoder statistics, PCA (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engines.projection import (
    image_to_tensor,
    kl_per_dimension,
    project_to_latent,
)
from engines.training.trainer import create_model


@pytest.fixture(scope="module")
def generator_model():
    """A tiny GAN whose output depends clearly on z: DCGAN's N(0, 0.02) init makes an untrained G
    almost constant, so its convolutions get twice the He init instead."""
    gan = create_model("gan", {"latent_dim": 8, "g_width": 8, "d_width": 8}, seed=0).eval()
    gen = torch.Generator().manual_seed(0)
    for module in gan.generator.modules():
        if isinstance(module, nn.ConvTranspose2d):
            fan_in = module.weight.shape[0] * module.weight.shape[2] * module.weight.shape[3]
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * 2.0 * (2.0 / fan_in) ** 0.5)
    return gan


def test_projecting_a_generated_image_recovers_it(generator_model):
    z_star = torch.randn(1, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = generator_model.decode(z_star)[0]
    before = {name: p.detach().clone() for name, p in generator_model.named_parameters()}
    seen: list[tuple[int, float]] = []
    result = project_to_latent(generator_model, target, steps=200, lr=0.05, callback=lambda s, v: seen.append((s, v)))

    assert result.steps == 200 and not result.stopped
    assert [s for s, _ in seen] == list(range(1, 201))
    assert result.losses[-1] < 0.1 * result.losses[0]  # the objective fell 10x from the best random start
    with torch.no_grad():
        others = generator_model.decode(torch.randn(64, 8, generator=torch.Generator().manual_seed(5)))
    typical = float(((others[:32] - others[32:]) ** 2).mean())  # between two random samples
    assert result.mse < 0.01 * typical and result.mse < 1e-3  # decode(z) is close to the target
    for name, p in generator_model.named_parameters():  # only z was optimised
        assert torch.equal(p, before[name]) and p.grad is None


def test_projection_stops_when_asked(generator_model):
    calls = []
    result = project_to_latent(
        generator_model,
        torch.full((1, 28, 28), 0.5),
        steps=200,
        callback=lambda s, v: calls.append(s),
        should_stop=lambda: len(calls) >= 5,
    )
    assert result.stopped and result.steps == 5 and result.z.shape == (8,)


def test_projection_rejects_an_image_of_the_wrong_shape(generator_model):
    with pytest.raises(ValueError, match="shape"):
        project_to_latent(generator_model, torch.zeros(3, 32, 32), steps=1)


def test_projection_refuses_a_model_without_a_differentiable_decode():
    pixelcnn = create_model("pixelcnn", {"hidden": 4, "n_layers": 1}, seed=0)
    with pytest.raises(ValueError, match="no differentiable decode"):
        project_to_latent(pixelcnn, torch.zeros(1, 28, 28), steps=1)


def test_kl_per_dimension_is_zero_for_the_prior_and_matches_the_formula():
    mu = np.array([[0.0, 1.0], [0.0, -1.0]], dtype=np.float32)
    logvar = np.array([[0.0, 0.0], [0.0, np.log(2.0)]], dtype=np.float32)
    kl = kl_per_dimension(mu, logvar)
    expected_dim1 = np.mean([0.5 * 1.0, 0.5 * (1.0 + 2.0 - 1.0 - np.log(2.0))])
    np.testing.assert_allclose(kl, [0.0, expected_dim1], rtol=1e-6)


def test_image_to_tensor_crops_resizes_and_converts(tmp_path):
    array = np.zeros((40, 80, 3), dtype=np.uint8)
    array[:, 20:60] = (255, 0, 0)  # the centred square is pure red
    Image.fromarray(array).save(tmp_path / "wide.png")
    rgb = image_to_tensor(tmp_path / "wide.png", 28, 3)
    gray = image_to_tensor(tmp_path / "wide.png", 32, 1)
    assert rgb.shape == (3, 28, 28) and gray.shape == (1, 32, 32)
    np.testing.assert_allclose(rgb[:, 14, 14].numpy(), [1.0, 0.0, 0.0], atol=0.01)
    assert 0.2 < float(gray[0, 16, 16]) < 0.4  # ITU-R 601 luma of red is 0.299
