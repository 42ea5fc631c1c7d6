"""DCGAN (Radford et al. 2016) with the non-saturating loss, or a WGAN-GP critic (Gulrajani et al. 2017).

With `num_classes` > 0 it is a class-conditional DCGAN (Mirza & Osindero 2014): G reads [z, y] and D
reads the image with y as K constant label maps stacked on its channels, y the class blend (B, K)
(engines.models.conditional). G's first layer computes A_z z + A_y y, so A_y y = y @ E is the learned
class embedding (one per position of the base grid), and a blend of classes blends their embeddings.

With `code_classes` K > 0 it learns a categorical code without labels, as InfoGAN does (Chen et al.
2016): G reads its first K latent units as the one-hot code of the largest of them, so z ~ N(0, I)
picks one of K categories uniformly and the model stays an unconditional z -> image map; at a tie the
first tied unit wins (z = 0 draws category 0). D's last layer has K more outputs, Q's logits for that
category, and both networks also minimise the cross-entropy of Q on G's images (a lower bound on the
mutual information between the code and the image, weighted by `code_weight`); G learns at 5x D's rate
(engines.training.recipes). On MNIST the categories became digits only in part (README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModel, check_fields, check_image_config, conv_plan
from .conditional import ClassInput, check_classes, optional_class_input, sampled_classes

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
    num_classes: int = 0  # > 0: class-conditional (decode(z, classes=y))
    class_names: tuple[str, ...] = ()  # one per class
    code_classes: int = 0  # > 0: an InfoGAN categorical code read from z[:code_classes] (module docstring)
    code_weight: float = 1.0  # weight of the code's cross-entropy (InfoGAN's lambda)
    # fields that older checkpoints carry and that no longer mean anything (make_config drops them):
    # the code was a softmax of z[:K] / code_temperature before it became one-hot
    RETIRED: ClassVar[frozenset[str]] = frozenset({"code_temperature"})

    def __post_init__(self) -> None:
        check_fields(
            self,
            {
                "latent_dim": (1, 1024),
                "g_width": (1, 512),
                "d_width": (1, 512),
                "d_steps": (0, 100),
                "gp_lambda": (0, 1e4),
                "code_classes": (0, 1024),
                "code_weight": (0, 1e4),
            },
        )
        if self.code_classes == 1 or self.code_classes > self.latent_dim:
            raise ValueError(f"code_classes must be 0 or 2 to latent_dim ({self.latent_dim}), not {self.code_classes}")
        if self.code_classes and self.num_classes:
            raise ValueError("a categorical code (code_classes) and class labels (num_classes) do not go together")
        check_image_config(self.image_size, self.channels)
        check_classes(self)
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
    # [z, y] (B, latent + classes, 1, 1) -> (B, widths[0], base, base): a fractionally-strided conv, no
    # fully connected layer
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(c.latent_dim + c.num_classes, widths[0], base, 1, 0, bias=False),
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

    # (B, channels + classes, S, S) -> (B, d_width, S/2, S/2); no normalisation on D's input layer
    first = nn.Conv2d(c.channels + c.num_classes, widths[0], 4, 2, 1, bias=False)
    layers: list[nn.Module] = [first, nn.LeakyReLU(0.2, True)]
    for w_in, w_out in zip(widths, widths[1:]):  # strided convolutions instead of pooling
        layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), norm(w_out), nn.LeakyReLU(0.2, True)]
    # (B, 1) logit / critic value, then Q's K code logits (code_classes)
    layers += [nn.Conv2d(widths[-1], 1 + c.code_classes, base, 1, 0, bias=False), nn.Flatten()]
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

    # --- the class input (conditional models; engines.models.conditional) ---------------------------
    def _y(self, classes: ClassInput, n: int, device: torch.device) -> torch.Tensor | None:
        """The (n, K) class blend, None for an unconditional model (which refuses one)."""
        return optional_class_input(classes, n, self.config.num_classes, device, "GAN")

    # --- the categorical code (code_classes; InfoGAN) --------------------------------------------------
    def code(self, z: torch.Tensor) -> torch.Tensor:
        """The category each latent picks, (B,) indices: the largest of z[:code_classes]."""
        return z[:, : self.config.code_classes].argmax(dim=1)

    @property
    def float32_latents(self) -> bool:
        """Whether a bfloat16 copy (engines.fast_decode) must get z in float32: the code's argmax would
        flip at near ties if z were rounded to bfloat16 first."""
        return self.config.code_classes > 0

    def _coded(self, z: torch.Tensor) -> torch.Tensor:
        """z with its first K units replaced by the one-hot code of the category they pick (code(z)). At a
        tie the first tied unit wins, so z = 0, where the app opens a model, shows category 0, not a blend."""
        k = self.config.code_classes
        one_hot = torch.arange(k, device=z.device) == self.code(z)[:, None]
        return torch.cat([one_hot.to(z.dtype), z[:, k:]], dim=1)

    def _g(self, g: nn.Module, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """G's raw output in [-1, 1] for z (B, latent_dim) and the class blend y (B, K) or None."""
        if self.config.code_classes:
            z = self._coded(z)
        x = z if y is None else torch.cat([z, y.to(z.dtype)], dim=1)
        x = x.to(next(g.parameters()).dtype)  # a coded z may come in float32 to a bfloat16 copy (float32_latents)
        return g(x.view(*x.shape, 1, 1))

    def _d(self, d: nn.Module, images: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D's logit (B,) for images in [0, 1], with y as K constant label maps on the channels."""
        return self._d_scaled(d, images * 2 - 1, y)[:, 0]

    def _d_scaled(self, d: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D's outputs (B, 1 + code_classes) for images already in D's own range [-1, 1]: the logit, then
        Q's code logits."""
        if y is not None:
            x = torch.cat([x, y.to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        return d(x)

    def _code_loss(self, outputs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Q's cross-entropy on the categories of z (InfoGAN's mutual-information term), weighted."""
        return self.config.code_weight * F.cross_entropy(outputs[:, 1:].float(), self.code(z))

    def generate(self, z: torch.Tensor, classes: ClassInput = None) -> torch.Tensor:
        """G(z) as images in [0, 1]; z is (B, latent_dim); `classes` (conditional models only): a class
        index or (B,) indices, a (K,) or (B, K) class blend."""
        return (self._g(self.generator, z, self._y(classes, z.shape[0], z.device)) + 1) / 2

    decode = generate  # the explorer treats every latent model's z -> image map alike

    def latent_weight(self) -> torch.Tensor:
        """The first layer's weight as a matrix A (out_features, latent_dim): its output is A z (SeFa
        factorizes it; engines.directions). The (D, C, k, k) transposed-conv kernel flattened per z unit
        (a conditional model's class columns, the class embedding, left out)."""
        weight = self.generator[0].weight[: self.config.latent_dim]
        return weight.reshape(weight.shape[0], -1).T

    def critic(self, images: torch.Tensor, classes: ClassInput = None) -> torch.Tensor:
        """D's logit (or WGAN critic value) per image (B,), for images in [0, 1] (and their classes)."""
        return self._d(self.discriminator, images, self._y(classes, images.shape[0], images.device))

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
    # wrappers of them so that gradients are synchronised across processes. `labels` (B, K): the real
    # batch's one-hot classes (conditional models); the fakes are drawn with the same classes.
    def discriminator_loss(
        self,
        real: torch.Tensor,
        z: torch.Tensor,
        g: nn.Module | None = None,
        d: nn.Module | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        g, d = g or self.generator, d or self.discriminator
        y = self._y(labels, real.shape[0], real.device)
        with torch.no_grad():
            fake = (self._g(g, z, y) + 1) / 2
        d_real = self._d(d, real, y)  # real first: batchnorm's running statistics follow the call order
        fake_out = self._d_scaled(d, fake * 2 - 1, y)
        d_fake = fake_out[:, 0]
        code_loss = self._code_loss(fake_out, z) if self.config.code_classes else 0.0
        if self.config.loss == "ns":
            return (
                F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
                + code_loss
            )
        return d_fake.mean() - d_real.mean() + self.config.gp_lambda * self.gradient_penalty(real, fake, y) + code_loss

    def generator_loss(
        self,
        z: torch.Tensor,
        g: nn.Module | None = None,
        labels: torch.Tensor | None = None,
        parts: dict[str, float] | None = None,
    ) -> torch.Tensor:
        """G's loss; with a categorical code it includes the code's cross-entropy, which is also put in
        `parts["code_loss"]` when `parts` is given."""
        g = g or self.generator
        y = self._y(labels, z.shape[0], z.device)
        # through [0, 1] and back, as D's other inputs go: the same rounding as before the code existed, so
        # a run of an earlier version's settings trains exactly as it did
        outputs = self._d_scaled(self.discriminator, (self._g(g, z, y) + 1) / 2 * 2 - 1, y)
        d_fake = outputs[:, 0]
        code_loss = self._code_loss(outputs, z) if self.config.code_classes else 0.0
        if parts is not None and self.config.code_classes:
            parts["code_loss"] = code_loss.item()
        if self.config.loss == "ns":
            # Non-saturating: ascend log D(G(z)) rather than descend log(1 - D(G(z))).
            return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake)) + code_loss
        return -d_fake.mean() + code_loss

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat of real and fake."""
        alpha = torch.rand((real.shape[0], 1, 1, 1), device=real.device)
        # Interpolate in the critic's own input range [-1, 1], so the norm is of the gradient it sees.
        x_hat = (alpha * (real * 2 - 1) + (1 - alpha) * (fake * 2 - 1)).requires_grad_(True)
        critic = self._d_scaled(self.discriminator, x_hat, y)[:, 0]
        (grad,) = torch.autograd.grad(critic.sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        truncation: float | None = None,
        classes: ClassInput = None,
    ) -> torch.Tensor:
        """n images; a conditional model draws `classes` (default: every class in turn, 0, 1, ..., K-1, 0, ...)."""
        return self.generate(
            self.random_latents(n, generator, truncation), sampled_classes(classes, n, self.config.num_classes)
        )
