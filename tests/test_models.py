"""Model behaviour: shapes, the VAE's KL and IW bound, the PixelCNN's causality and sampling."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from engines.models import GAN, VAE, GANConfig, GatedPixelCNN, PixelCNNConfig, VAEConfig, build_model


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_model_handles_every_image_shape(size: int, channels: int) -> None:
    x = torch.rand(2, channels, size, size)
    vae = VAE(
        VAEConfig(
            image_size=size,
            channels=channels,
            latent_dim=3,
            width=4,
            fc_dim=8,
            likelihood="bernoulli" if channels == 1 else "gaussian",
        )
    )
    assert vae.decode(vae.encode(x)[0]).shape == x.shape
    gan = GAN(GANConfig(image_size=size, channels=channels, latent_dim=4, g_width=4, d_width=4))
    assert gan.sample(2).shape == x.shape and gan.critic(x).shape == (2,)
    pcnn = GatedPixelCNN(PixelCNNConfig(image_size=size, channels=channels, hidden=6, n_layers=1, levels=4))
    assert pcnn.logits(pcnn.quantize(x)).shape == (2, 4, channels, size, size)


def test_configs_reject_bad_values() -> None:
    with pytest.raises(ValueError):
        VAEConfig(latent_dim=1)
    with pytest.raises(ValueError):
        VAEConfig(latent_dim=257)
    with pytest.raises(ValueError):
        GANConfig(image_size=48)
    with pytest.raises(ValueError):
        PixelCNNConfig(channels=3, hidden=64)  # not a multiple of 3
    with pytest.raises(ValueError):
        PixelCNNConfig(levels=300)
    assert GANConfig(loss="wgan-gp").d_steps == 5 and GANConfig().d_steps == 1


def test_analytic_kl_matches_monte_carlo() -> None:
    torch.manual_seed(0)
    vae = VAE(VAEConfig(latent_dim=6, width=8, fc_dim=16))
    x = torch.rand(3, 1, 28, 28)
    kl = vae.elbo(x).kl  # (3, 6) analytic, per dimension
    mu, logvar = vae.encode(x)
    with torch.no_grad():
        std = (0.5 * logvar).exp()
        z = mu + std * torch.randn(200_000, *mu.shape)
        log_q = torch.distributions.Normal(mu, std).log_prob(z)
        log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z)
        mc = (log_q - log_p).mean(0)  # per dimension
    assert torch.allclose(kl.detach(), mc, atol=0.02, rtol=0.02)
    assert (kl >= 0).all()


def test_iw_nll_is_tighter_than_the_elbo_and_in_nats() -> None:
    torch.manual_seed(0)
    vae = VAE(VAEConfig(latent_dim=4, width=8, fc_dim=16))
    x = (torch.rand(4, 1, 28, 28) > 0.5).float()
    gen = torch.Generator().manual_seed(0)
    neg_elbo = torch.stack([(lambda t: t.recon + t.kl.sum(1))(vae.elbo(x, generator=gen)) for _ in range(200)]).mean(0)
    iw1 = vae.iw_nll(x, k=1, generator=gen)
    iw200 = vae.iw_nll(x, k=200, chunk=64, generator=gen)
    assert (iw200 <= neg_elbo.detach() + 0.5).all()  # the IW bound is at least as tight as the ELBO
    assert (iw200 < iw1 + 1e-3).all() or torch.allclose(iw200, iw1, atol=1.0)
    assert ((iw200 > 0) & (iw200 < 784 * math.log(2) * 2)).all()


def test_vae_sampling_is_seeded_and_in_range() -> None:
    vae = VAE(VAEConfig(latent_dim=4, width=8, fc_dim=16)).eval()
    a = vae.sample(3, generator=torch.Generator().manual_seed(1))
    b = vae.sample(3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


def test_gan_truncation_bounds_latents() -> None:
    gan = GAN(GANConfig(latent_dim=16, g_width=4, d_width=4))
    z = gan.random_latents(100, torch.Generator().manual_seed(0), truncation=0.5)
    assert z.abs().max() <= 0.5


def test_wgan_gradient_penalty_is_zero_for_unit_gradient_critic() -> None:
    gan = GAN(GANConfig(latent_dim=4, g_width=4, d_width=4, loss="wgan-gp"))
    real, fake = torch.rand(8, 1, 28, 28), torch.rand(8, 1, 28, 28)
    linear = torch.nn.Linear(28 * 28, 1, bias=False)  # a linear critic: its gradient is its weight, everywhere
    gan.discriminator = torch.nn.Sequential(torch.nn.Flatten(), linear)
    with torch.no_grad():
        linear.weight /= linear.weight.norm()  # unit gradient norm
    gp = gan.gradient_penalty(real, fake)
    assert gp.item() < 1e-10 and gp.requires_grad  # differentiable: it trains the critic
    with torch.no_grad():
        linear.weight *= 3.0  # gradient norm 3: penalty (3 - 1)^2
    assert gan.gradient_penalty(real, fake).item() == pytest.approx(4.0, rel=1e-5)


def _raster_order(channels: int, size: int) -> torch.Tensor:
    """order[c, r, k]: the position of (row r, column k, colour c) in sampling order."""
    return torch.arange(size * size * channels).view(size, size, channels).permute(2, 0, 1)


@pytest.mark.parametrize("channels", [1, 3])
def test_pixelcnn_is_causal_and_has_no_blind_spot(channels: int) -> None:
    """d out[i] / d in[j] is exactly zero for every j at or after i, and non-zero just above-right."""
    torch.manual_seed(0)
    size = 12
    model = GatedPixelCNN(PixelCNNConfig(image_size=28, channels=channels, hidden=6 * channels, n_layers=3, levels=3))
    x = torch.randn(1, channels, size, size, requires_grad=True)
    out = model.net(x)  # (1, K, C, size, size)
    order = _raster_order(channels, size)
    for r in range(size):
        for k in range(size):
            for c in range(channels):
                (grad,) = torch.autograd.grad(out[0, :, c, r, k].sum(), x, retain_graph=True)
                later = order >= order[c, r, k]
                assert grad[0][later].abs().max() == 0, f"output ({r},{k},{c}) sees its own or a later input"
                if r > 0 and k < size - 1:  # the original PixelCNN's blind spot
                    assert grad[0, :, r - 1, k + 1].abs().sum() > 0, f"blind spot at ({r},{k},{c})"
                if c > 0:  # later colours see earlier colours of the same pixel
                    assert grad[0, :c, r, k].abs().sum() > 0


def test_pixelcnn_log_prob_and_bits_per_dim() -> None:
    model = GatedPixelCNN(PixelCNNConfig(hidden=8, n_layers=1, levels=2))
    levels = (torch.rand(2, 1, 28, 28) > 0.5).long()
    logp = model.log_prob(levels)
    assert logp.shape == (2,) and (logp < 0).all()
    assert model.bits_per_dim(-logp[0].item()) == pytest.approx(-logp[0].item() / (784 * math.log(2)))


def test_pixelcnn_samples_colours_in_rgb_order() -> None:
    model = GatedPixelCNN(PixelCNNConfig(hidden=6, n_layers=1, levels=4, channels=3, first_kernel=3))
    first = list(itertools.islice(model.sample_steps(2, generator=torch.Generator().manual_seed(0)), 4))
    assert [(s.row, s.col, s.channel) for s in first] == [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0)]
    assert first[0].probs.shape == (2, 4) and abs(first[0].probs.sum(1) - 1).max() < 1e-5


def test_pixelcnn_sampling_yields_every_step_and_is_reproducible() -> None:
    model = GatedPixelCNN(PixelCNNConfig(hidden=4, n_layers=1, levels=4, first_kernel=3))
    steps = list(model.sample_steps(2, generator=torch.Generator().manual_seed(0)))
    assert len(steps) == 28 * 28 and [s.index for s in steps] == list(range(784))
    again = model.sample_levels(2, generator=torch.Generator().manual_seed(0))
    replay = torch.zeros_like(again)
    for s in steps:
        replay[:, s.channel, s.row, s.col] = torch.from_numpy(s.value)
    assert torch.equal(replay, again)


def test_pixelcnn_completion_keeps_known_pixels_and_temperature_zero_is_greedy() -> None:
    model = GatedPixelCNN(PixelCNNConfig(hidden=8, n_layers=1, levels=2, first_kernel=3))
    known = (torch.rand(1, 1, 28, 28) > 0.5).long()
    mask = torch.zeros(1, 1, 28, 28, dtype=torch.bool)
    mask[:, :, :14] = True  # top half given
    steps = list(model.sample_steps(1, known=known, known_mask=mask, generator=torch.Generator().manual_seed(0)))
    assert len(steps) == 14 * 28 and steps[0].row == 14
    out = model.sample_levels(1, known=known, known_mask=mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :, :14], known[:, :, :14])
    greedy = list(model.sample_steps(1, temperature=0, known=known, known_mask=mask))
    assert all(s.probs.max() == 1.0 for s in greedy)


def test_build_model_round_trips_config() -> None:
    vae = build_model("vae", {"latent_dim": 5, "width": 8})
    assert isinstance(vae, VAE) and vae.config.latent_dim == 5
    assert build_model(vae.kind, vae.config_dict()).config == vae.config
