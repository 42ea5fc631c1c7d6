"""DCGAN (Radford et al. 2016) with the non-saturating loss, or a WGAN-GP critic (Gulrajani et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModel, check_fields, check_image_config, conv_plan

LOSSES = ("ns", "wgan-gp")


@dataclass(frozen=True)
class GANConfig:
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 64
    g_width: int = 64  # channels of G's last hidden stage (doubles towards the latent)
    d_width: int = 64  # channels of D's first stage (doubles with depth)
    loss: str = "ns"  # "ns": non-saturating GAN; "wgan-gp": Wasserstein critic + gradient penalty
    d_steps: int = 0  # discriminator steps per generator step; 0 = 1 for "ns", 5 for "wgan-gp"
    gp_lambda: float = 10.0

    def __post_init__(self) -> None:
        check_fields(
            self,
            {
                "latent_dim": (1, 1024),
                "g_width": (1, 512),
                "d_width": (1, 512),
                "d_steps": (0, 100),
                "gp_lambda": (0, 1e4),
            },
        )
        check_image_config(self.image_size, self.channels)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {self.loss!r}")
        if self.d_steps == 0:
            object.__setattr__(self, "d_steps", 5 if self.loss == "wgan-gp" else 1)
        if self.d_steps < 1:
            raise ValueError("d_steps must be at least 1")


def _dcgan_init(module: nn.Module) -> None:
    """Weights from N(0, 0.02), batchnorm scales from N(1, 0.02), as in the DCGAN paper."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_generator(c: GANConfig) -> nn.Sequential:
    stages, base = conv_plan(c.image_size)
    widths = [c.g_width * 2**i for i in reversed(range(stages))]  # e.g. 28px: [128, 64]
    # z (B, latent, 1, 1) -> (B, widths[0], base, base): a fractionally-strided conv, no fully connected layer
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(c.latent_dim, widths[0], base, 1, 0, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(True),
    ]
    for w_in, w_out in zip(widths, widths[1:]):  # (B, w_in, s, s) -> (B, w_out, 2s, 2s)
        layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
    # (B, g_width, S/2, S/2) -> (B, channels, S, S) in [-1, 1]; no batchnorm on G's output layer
    layers += [nn.ConvTranspose2d(widths[-1], c.channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def build_discriminator(c: GANConfig) -> nn.Sequential:
    stages, base = conv_plan(c.image_size)
    widths = [c.d_width * 2**i for i in range(stages)]  # e.g. 28px: [64, 128]

    def norm(w: int) -> nn.Module:
        # Batchnorm makes each critic output depend on the batch, which breaks the per-sample gradient
        # penalty, so the WGAN-GP critic uses layer norm (GroupNorm with one group) as the paper advises.
        return nn.GroupNorm(1, w) if c.loss == "wgan-gp" else nn.BatchNorm2d(w)

    # (B, channels, S, S) -> (B, d_width, S/2, S/2); no normalisation on D's input layer
    layers: list[nn.Module] = [nn.Conv2d(c.channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for w_in, w_out in zip(widths, widths[1:]):  # strided convolutions instead of pooling
        layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), norm(w_out), nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(widths[-1], 1, base, 1, 0, bias=False), nn.Flatten()]  # (B, 1) logit / critic value
    return nn.Sequential(*layers)


class GAN(GenerativeModel):
    kind = "gan"
    config_class = GANConfig
    has_latent = can_project = True
    sample_options = ("truncation",)
    decoder_prefixes = ("generator.",)

    def __init__(self, config: GANConfig) -> None:
        super().__init__(config)
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        self.apply(_dcgan_init)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) as images in [0, 1]; z is (B, latent_dim)."""
        return (self.generator(z.view(*z.shape, 1, 1)) + 1) / 2

    decode = generate  # the explorer treats every latent model's z -> image map alike

    def latent_weight(self) -> torch.Tensor:
        """The first layer's weight as a matrix A (out_features, latent_dim): its output is A z (SeFa
        factorizes it; engines.directions). The (D, C, k, k) transposed-conv kernel flattened per z unit."""
        weight = self.generator[0].weight
        return weight.reshape(weight.shape[0], -1).T

    def critic(self, images: torch.Tensor) -> torch.Tensor:
        """D's logit (or WGAN critic value) per image (B,), for images in [0, 1]."""
        return self.discriminator(images * 2 - 1).squeeze(1)

    def random_latents(
        self, n: int, generator: torch.Generator | None = None, truncation: float | None = None
    ) -> torch.Tensor:
        """z ~ N(0, I); with `truncation` t, values with |z| > t are redrawn (the truncation trick)."""
        z = torch.randn((n, self.config.latent_dim), generator=generator)
        if truncation is not None:
            if truncation <= 0:
                raise ValueError("truncation must be positive")
            for _ in range(100):
                outside = z.abs() > truncation
                if not outside.any():
                    break
                z[outside] = torch.randn(int(outside.sum()), generator=generator)
            z = z.clamp(-truncation, truncation)
        return z.to(self.device)

    # --- objectives ----------------------------------------------------------------------------
    # `g` and `d` default to this model's networks; a trainer may pass DistributedDataParallel
    # wrappers of them so that gradients are synchronised across processes.
    def discriminator_loss(
        self, real: torch.Tensor, z: torch.Tensor, g: nn.Module | None = None, d: nn.Module | None = None
    ) -> torch.Tensor:
        g, d = g or self.generator, d or self.discriminator
        with torch.no_grad():
            fake = (g(z.view(*z.shape, 1, 1)) + 1) / 2
        d_real, d_fake = d(real * 2 - 1).squeeze(1), d(fake * 2 - 1).squeeze(1)
        if self.config.loss == "ns":
            return F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        return d_fake.mean() - d_real.mean() + self.config.gp_lambda * self.gradient_penalty(real, fake)

    def generator_loss(self, z: torch.Tensor, g: nn.Module | None = None) -> torch.Tensor:
        g = g or self.generator
        d_fake = self.critic((g(z.view(*z.shape, 1, 1)) + 1) / 2)
        if self.config.loss == "ns":
            # Non-saturating: ascend log D(G(z)) rather than descend log(1 - D(G(z))).
            return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        return -d_fake.mean()

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat of real and fake."""
        alpha = torch.rand((real.shape[0], 1, 1, 1), device=real.device)
        # Interpolate in the critic's own input range [-1, 1], so the norm is of the gradient it sees.
        x_hat = (alpha * (real * 2 - 1) + (1 - alpha) * (fake * 2 - 1)).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.discriminator(x_hat).sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, truncation: float | None = None) -> torch.Tensor:
        return self.generate(self.random_latents(n, generator, truncation))
