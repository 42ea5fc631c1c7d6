"""Convolutional VAE: q(z|x) = N(mu, diag sigma^2), p(z) = N(0, I), ELBO = E_q[log p(x|z)] - KL."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModel, check_fields, check_image_config, conv_plan

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class VAEConfig:
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 16
    width: int = 32  # channels of the first conv stage; doubles each stage
    fc_dim: int = 256
    # "bernoulli" for grayscale or binarized data; "gaussian" (learned per-channel sigma) for colour.
    likelihood: str = "bernoulli"
    beta: float = 1.0  # weight of the KL term in the training loss (1 = the true ELBO)

    def __post_init__(self) -> None:
        check_fields(self, {"latent_dim": (2, 256), "width": (1, 256), "fc_dim": (1, 4096), "beta": (0, 1000)})
        check_image_config(self.image_size, self.channels)
        if self.likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', not {self.likelihood!r}")


class ELBOTerms(NamedTuple):
    recon: torch.Tensor  # (B,) -log p(x|z) for one z ~ q(z|x), nats
    kl: torch.Tensor  # (B, D) analytic KL(q(z_d|x) || N(0,1)) per latent dimension, nats

    def loss(self, beta: float = 1.0) -> torch.Tensor:
        """Mean negative ELBO over the batch (beta-weighted KL)."""
        return (self.recon + beta * self.kl.sum(dim=1)).mean()


class VAE(GenerativeModel):
    kind = "vae"
    config_class = VAEConfig
    has_latent = has_encoder = can_project = True
    sample_options = ("temperature",)
    decoder_prefixes = ("decoder_fc.", "decoder_conv.")

    @classmethod
    def data_defaults(cls, channels: int) -> dict[str, str]:
        return {"likelihood": "bernoulli" if channels == 1 else "gaussian"}

    def __init__(self, config: VAEConfig) -> None:
        super().__init__(config)
        c = config
        stages, base = conv_plan(c.image_size)
        widths = [c.width * 2**i for i in range(stages)]
        self._base_shape = (widths[-1], base, base)
        flat = widths[-1] * base * base

        enc: list[nn.Module] = []
        c_in = c.channels
        for w in widths:  # each stage halves H and W
            enc += [nn.Conv2d(c_in, w, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in = w
        self.encoder = nn.Sequential(
            *enc, nn.Flatten(), nn.Linear(flat, c.fc_dim), nn.LeakyReLU(0.2), nn.Linear(c.fc_dim, 2 * c.latent_dim)
        )

        self.decoder_fc = nn.Sequential(
            nn.Linear(c.latent_dim, c.fc_dim), nn.ReLU(), nn.Linear(c.fc_dim, flat), nn.ReLU()
        )
        dec: list[nn.Module] = []
        for w_in, w_out in zip(widths[::-1], widths[::-1][1:]):  # each stage doubles H and W
            dec += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1), nn.ReLU()]
        dec.append(nn.ConvTranspose2d(widths[0], c.channels, 4, 2, 1))  # logits of the pixel means
        self.decoder_conv = nn.Sequential(*dec)
        # Gaussian likelihood: one learned log-sigma per colour channel.
        self.log_sigma = nn.Parameter(torch.full((c.channels,), -2.0)) if c.likelihood == "gaussian" else None

    # --- the VAE's three parts -------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (B, D)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
        return mu + eps * torch.exp(0.5 * logvar)

    def latent_weight(self) -> torch.Tensor:
        """The decoder's first layer weight A (fc_dim, latent_dim): its output is A z + b (SeFa
        factorizes it; engines.directions)."""
        return self.decoder_fc[0].weight

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = self.decoder_fc(z).view(-1, *self._base_shape)
        return self.decoder_conv(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image of p(x|z), in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    # --- likelihood and objectives ----------------------------------------------------------
    def log_likelihood(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image (B,), nats."""
        if self.config.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        mean = torch.sigmoid(logits)
        log_sigma = self.log_sigma.clamp(min=math.log(1e-3)).view(1, -1, 1, 1)
        log_px = -0.5 * ((x - mean) / log_sigma.exp()) ** 2 - log_sigma - 0.5 * LOG_2PI
        return log_px.flatten(1).sum(1)

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> ELBOTerms:
        """Reconstruction and per-dimension KL terms (ELBO = -recon - kl.sum(1))."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        recon = -self.log_likelihood(x, self.decode_logits(z))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
        return ELBOTerms(recon, kl)

    def forward(self, x: torch.Tensor) -> ELBOTerms:
        return self.elbo(x)

    @torch.no_grad()
    def iw_nll(
        self, x: torch.Tensor, k: int = 100, chunk: int = 100, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Importance-weighted estimate of -log p(x) with k samples (Burda et al. 2016), (B,) nats.

        log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k, z_k ~ q(z|x).
        """
        mu, logvar = self.encode(x)
        std = torch.exp(0.5 * logvar)
        log_w = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            eps = torch.randn((n, *mu.shape), device=mu.device, dtype=mu.dtype, generator=generator)
            z = mu + eps * std  # (n, B, D)
            log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * LOG_2PI).sum(-1)
            log_pz = (-0.5 * z.pow(2) - 0.5 * LOG_2PI).sum(-1)
            logits = self.decode_logits(z.flatten(0, 1))
            log_px = self.log_likelihood(x.repeat(n, 1, 1, 1), logits).view(n, -1)
            log_w.append(log_px + log_pz - log_q)
        log_w = torch.cat(log_w, dim=0)
        return -(torch.logsumexp(log_w, dim=0) - math.log(k))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        z = torch.randn((n, self.config.latent_dim), generator=generator).to(self.device) * temperature
        return self.decode(z)
