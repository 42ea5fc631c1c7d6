"""A small style-based generator (Karras et al. 2019, 2020: StyleGAN / StyleGAN2) and its discriminator.

Generator: a mapping network z -> w (pixel norm of z, then `mapping_layers` fully connected layers
with leaky ReLU, learning rate x0.01 as in the paper), a learned constant 4x4 input, and per
resolution an upsample + modulated/demodulated 3x3 convolution, a second one, per-pixel noise with a
learned strength, and a modulated 1x1 "toRGB" whose outputs are summed up the resolutions (the
skip generator of StyleGAN2). Every modulated layer reads its own w: W+ is (B, n_styles, w_dim), and
decode(z) broadcasts one w to all of them.

Noise: in training every layer draws fresh noise; `noise="const"` (the default of every explorer
entry point: decode, decode_w, synthesize, sample) uses fixed buffers drawn at initialisation and
stored in the checkpoint, so an image is a function of its latent.

Truncation: `mean_w` is an exponential moving average of w over training (a buffer, saved with the
weights); w' = mean_w + psi (w - mean_w), psi = 0 gives the mean-w image.

Training (engines.training.recipes.StyleGANRecipe): the non-saturating logistic loss, a lazy R1
penalty on real images every `r1_every` discriminator steps (gamma `r1_gamma`), style-mixing
regularisation (two latents, a random crossover, with probability `mixing_prob`), Adam(0.002, betas
(0, 0.99)). Every layer uses the equalized learning rate (weights scaled at run time by He's constant).

Class-conditional (`num_classes` > 0), as in StyleGAN2-ADA: the mapping network reads [z, e(y)], each
normalised to unit second moment, where e(y) = y E + b is the class embedding of the class blend y
(B, K) (engines.models.conditional); the discriminator adds a projection term <e_D(y), features>
/ sqrt(dim) to its logit (Miyato & Koyama 2018). Blending classes blends their embeddings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModel, check_fields, check_image_config, conv_plan
from .conditional import ClassInput, check_classes, optional_class_input, sampled_classes

NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class StyleGANConfig:
    image_size: int = 32
    channels: int = 3
    latent_dim: int = 64  # z
    w_dim: int = 128  # w (and each layer's style)
    mapping_layers: int = 4
    g_width: int = 16  # G's channels at the output resolution (doubling towards 4x4, capped by g_max)
    g_max: int = 128
    d_width: int = 16  # D's channels at the input resolution (doubling with depth, capped by d_max)
    d_max: int = 128
    r1_gamma: float = 1.0
    r1_every: int = 4  # lazy R1: the penalty (x r1_every) on every r1_every-th discriminator step
    mixing_prob: float = 0.9  # style-mixing regularisation in training
    w_avg_beta: float = 0.995  # EMA of w for mean_w (truncation)
    num_classes: int = 0  # > 0: class-conditional (decode(z, classes=y))
    class_names: tuple[str, ...] = ()  # one per class

    def __post_init__(self) -> None:
        check_fields(
            self,
            {
                "latent_dim": (1, 1024),
                "w_dim": (1, 1024),
                "mapping_layers": (1, 16),
                "g_width": (1, 512),
                "g_max": (1, 1024),
                "d_width": (1, 512),
                "d_max": (1, 1024),
                "r1_gamma": (0, 1e4),
                "r1_every": (1, 1000),
                "mixing_prob": (0, 1),
                "w_avg_beta": (0, 1),
            },
        )
        check_image_config(self.image_size, self.channels)
        check_classes(self)
        stages, base = conv_plan(self.image_size)
        if base != 4:
            raise ValueError(
                f"a style-based generator needs an image size that halves to 4x4 (32 or 64), not {self.image_size}"
            )


# --- equalized-learning-rate layers ------------------------------------------------------------------
class EqualLinear(nn.Module):
    """y = x (W * c)^T + b * lr_mul, W ~ N(0, 1/lr_mul^2), c = lr_mul / sqrt(fan_in): every weight learns at
    the same rate whatever its fan-in (Karras et al. 2018)."""

    def __init__(self, in_f: int, out_f: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_f,), float(bias_init) / lr_mul))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(in_f), lr_mul, act

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.effective_weight(), self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.act else x


class EqualConv(nn.Module):
    """A plain equalized-lr convolution (the discriminator's), optional leaky ReLU (gain sqrt 2)."""

    def __init__(self, in_c: int, out_c: int, k: int, bias: bool = True, act: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_c, in_c, k, k))
        self.bias = nn.Parameter(torch.zeros(out_c)) if bias else None
        self.scale, self.pad, self.act = 1 / math.sqrt(in_c * k * k), k // 2, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.act else x


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated convolution: the style s = A(w) scales the input channels of the kernel,
    which is then demodulated (each output channel's weights renormalised to unit norm), applied per
    sample as a grouped convolution. Then noise x strength, bias, leaky ReLU (a 1x1 toRGB: no demod, no
    noise, no activation)."""

    def __init__(self, in_c: int, out_c: int, k: int, w_dim: int, size: int, up: bool = False, rgb: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_c, bias_init=1.0)  # styles start at 1: an unmodulated layer
        self.weight = nn.Parameter(torch.randn(out_c, in_c, k, k))
        self.bias = nn.Parameter(torch.zeros(out_c))
        self.scale, self.pad, self.up, self.rgb = 1 / math.sqrt(in_c * k * k), k // 2, up, rgb
        if not rgb:
            self.noise_strength = nn.Parameter(torch.zeros(()))
            self.register_buffer("noise_const", torch.randn(1, 1, size, size))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: str = "random") -> torch.Tensor:
        style = self.affine(w)  # (B, in_c)
        weight = self.weight * self.scale  # (out, in, k, k)
        # Modulating the kernel per sample equals scaling the input channels by the style, convolving
        # with the shared kernel, and scaling each output channel by its demodulation coefficient: one
        # ordinary convolution for the batch (StyleGAN2's non-fused form; far faster on a CPU).
        x = x * style[:, :, None, None]
        if self.up:  # (B, C, h, w) -> (B, C, 2h, 2w); after the style, which is per channel: 4x fewer products
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.conv2d(x, weight, padding=self.pad)
        b, _, h, width = x.shape
        # The noise and the bias as one offset of x's size and memory format, added in one pass: adding a
        # (1, C, 1, 1) or (1, 1, H, W) broadcast to a channels_last bfloat16 tensor (the maps' fast decode)
        # runs 7x slower than adding a (1, C, H, W) tensor laid out as x is (2.2 vs 0.3 ms at
        # 256x16x32x32), and those two adds were a third of a 256-latent decode.
        offset = self.bias[None, :, None, None]
        if not self.rgb and noise == "const":
            offset = offset + self.noise_strength * self.noise_const
        elif not self.rgb and noise == "random":
            offset = offset + self.noise_strength * torch.randn(b, 1, h, width, device=x.device, dtype=x.dtype)
        if x.is_contiguous(memory_format=torch.channels_last):
            offset = offset.expand(-1, -1, h, width).contiguous(memory_format=torch.channels_last)
        if self.rgb:
            return x + offset
        # sum over (in, k, k) of (W[o, i] s_i)^2 = sum_i s_i^2 sum_kk W[o, i]^2: one (B, in) x (in, out)
        # product, not a (B, out, in, k, k) tensor (that one took half the decode of a 256-latent batch)
        demod = torch.rsqrt(style.pow(2) @ weight.pow(2).sum(dim=(2, 3)).T + 1e-8)  # (B, out)
        # leaky_relu(y) * sqrt 2 = leaky_relu(sqrt 2 y): the activation's gain rides on the demodulation
        # and the offset rather than taking a pass of its own
        x = x * (demod * math.sqrt(2))[:, :, None, None] + offset * math.sqrt(2)
        return F.leaky_relu(x, 0.2)


def _unit_moment(x: torch.Tensor) -> torch.Tensor:
    """Pixel norm: each row scaled to a unit second moment (on the sphere of radius sqrt(D))."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MappingNetwork(nn.Module):
    """z (B, latent_dim) -> w (B, w_dim): pixel norm, then `layers` FC layers with leaky ReLU (lr x0.01).
    With classes, [z, e(y)] (each pixel-normed; e the class embedding, w_dim wide) goes in instead."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int, num_classes: int = 0) -> None:
        super().__init__()
        if num_classes:
            self.embed = EqualLinear(num_classes, w_dim)
        dims = [latent_dim + (w_dim if num_classes else 0)] + [w_dim] * layers
        self.layers = nn.Sequential(*[EqualLinear(a, b, lr_mul=0.01, act=True) for a, b in zip(dims, dims[1:])])

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = _unit_moment(z)
        if y is not None:
            x = torch.cat([x, _unit_moment(self.embed(y.to(z.dtype)))], dim=1)
        return self.layers(x)


def _g_channels(c: StyleGANConfig, size: int) -> int:
    return min(c.g_max, c.g_width * c.image_size // size)


class SynthesisNetwork(nn.Module):
    """W+ (B, n_styles, w_dim) -> images in [-1, 1]. Layers, with the style index each reads (32x32):
    const 4x4 -> conv0 (w0) -> rgb (w1); 8x8: up conv (w1), conv (w2), rgb (w3); 16x16: w3, w4, rgb w5;
    32x32: w5, w6, rgb w7: n_styles = 2 * stages + 2 (8 at 32x32, 10 at 64x64), as in StyleGAN2."""

    def __init__(self, c: StyleGANConfig) -> None:
        super().__init__()
        stages, _ = conv_plan(c.image_size)
        self.const = nn.Parameter(torch.randn(1, _g_channels(c, 4), 4, 4))
        self.convs = nn.ModuleList([ModulatedConv(_g_channels(c, 4), _g_channels(c, 4), 3, c.w_dim, 4)])
        self.rgbs = nn.ModuleList([ModulatedConv(_g_channels(c, 4), c.channels, 1, c.w_dim, 4, rgb=True)])
        for s in range(1, stages + 1):
            size = 4 * 2**s
            in_c, out_c = _g_channels(c, size // 2), _g_channels(c, size)
            self.convs.append(ModulatedConv(in_c, out_c, 3, c.w_dim, size, up=True))
            self.convs.append(ModulatedConv(out_c, out_c, 3, c.w_dim, size))
            self.rgbs.append(ModulatedConv(out_c, c.channels, 1, c.w_dim, size, rgb=True))
        self.n_styles = len(self.convs) + 1

    def forward(self, ws: torch.Tensor, noise: str = "random") -> torch.Tensor:
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        x = self.convs[0](x, ws[:, 0], noise)
        img = self.rgbs[0](x, ws[:, 1])
        for s in range(1, len(self.rgbs)):
            x = self.convs[2 * s - 1](x, ws[:, 2 * s - 1], noise)
            x = self.convs[2 * s](x, ws[:, 2 * s], noise)
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False) + self.rgbs[s](
                x, ws[:, 2 * s + 1]
            )
        return img


class _DBlock(nn.Module):
    """Residual discriminator block: two 3x3 convs then a 2x average-pool, plus a 1x1 skip, / sqrt 2."""

    def __init__(self, in_c: int, out_c: int) -> None:
        super().__init__()
        self.conv0, self.conv1 = EqualConv(in_c, in_c, 3), EqualConv(in_c, out_c, 3)
        self.skip = EqualConv(in_c, out_c, 1, bias=False, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(self.conv1(self.conv0(x)), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class Discriminator(nn.Module):
    """(B, C, S, S) in [-1, 1] -> (B,) logits: fromRGB, residual blocks down to 4x4, minibatch standard
    deviation (groups of 4), a conv, two FC layers."""

    def __init__(self, c: StyleGANConfig) -> None:
        super().__init__()
        stages, _ = conv_plan(c.image_size)
        if c.num_classes:  # the projection discriminator's class embedding
            self.embed = EqualLinear(c.num_classes, min(c.d_max, c.d_width * c.image_size // 4))

        def width(size: int) -> int:
            return min(c.d_max, c.d_width * c.image_size // size)

        self.from_rgb = EqualConv(c.channels, width(c.image_size), 1)
        self.blocks = nn.Sequential(
            *[_DBlock(width(c.image_size >> s), width(c.image_size >> (s + 1))) for s in range(stages)]
        )
        w4 = width(4)
        self.conv = EqualConv(w4 + 1, w4, 3)
        self.fc = EqualLinear(w4 * 16, w4, act=True)
        self.out = EqualLinear(w4, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = self.blocks(self.from_rgb(x))
        b = x.shape[0]
        group = math.gcd(b, 4)  # minibatch stddev over groups of (up to) 4 samples
        y_std = x.reshape(group, -1, *x.shape[1:])
        y_std = (y_std.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B / group,)
        y_std = y_std.reshape(-1, 1, 1, 1).repeat(group, 1, *x.shape[2:])
        h = self.fc(self.conv(torch.cat([x, y_std], dim=1)).flatten(1))
        logit = self.out(h).squeeze(1)
        if y is not None:  # projection: the features' agreement with the class embedding
            logit = logit + (self.embed(y.to(h.dtype)) * h).sum(1) / math.sqrt(h.shape[1])
        return logit


class StyleGAN(GenerativeModel):
    kind = "stylegan"
    config_class = StyleGANConfig
    has_latent = can_project = True
    has_styles = True  # mapping(z) -> w, synthesize(W+): the explorer offers W and W+ and style mixing
    decoder_prefixes = ("mapping_net.", "synthesis.", "w_avg")  # what decode(z) depends on (engines.timeline)
    sample_options = ("truncation",)

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__(config)
        self.mapping_net = MappingNetwork(config.latent_dim, config.w_dim, config.mapping_layers, config.num_classes)
        self.synthesis = SynthesisNetwork(config)
        self.discriminator = Discriminator(config)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    # --- the style space -----------------------------------------------------------------------
    @property
    def n_styles(self) -> int:
        """How many w's a W+ latent holds (one per modulated layer)."""
        return self.synthesis.n_styles

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    @property
    def mean_w(self) -> torch.Tensor:
        """The tracked mean of w (an EMA over training), (w_dim,)."""
        return self.w_avg

    def _y(self, classes: ClassInput, n: int, device: torch.device) -> torch.Tensor | None:
        """The (n, K) class blend, None for an unconditional model (which refuses one)."""
        return optional_class_input(classes, n, self.config.num_classes, device, "style-based generator")

    def mapping(self, z: torch.Tensor, psi: float = 1.0, classes: ClassInput = None) -> torch.Tensor:
        """w = mapping(z) (a conditional model's: mapping(z, class)), (B, w_dim); with psi < 1, truncated
        toward mean_w."""
        w = self.mapping_net(z, self._y(classes, z.shape[0], z.device))
        return self.truncate(w, psi)

    def truncate(self, w: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """mean_w + psi (w - mean_w), for w of any shape (..., w_dim)."""
        return w if psi == 1.0 else self.w_avg + psi * (w - self.w_avg)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """(B, w_dim) -> W+ (B, n_styles, w_dim), the same w at every layer."""
        return w[:, None, :].expand(-1, self.n_styles, -1)

    def synthesize(self, w_plus: torch.Tensor, noise: str = "const") -> torch.Tensor:
        """Images in [0, 1] from W+ (B, n_styles, w_dim) (the fixed noise buffers unless `noise` says otherwise)."""
        if w_plus.ndim != 3 or w_plus.shape[1:] != (self.n_styles, self.w_dim):
            raise ValueError(f"W+ must be (B, {self.n_styles}, {self.w_dim}), not {tuple(w_plus.shape)}")
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}")
        # Clamped: the public images are in [0, 1] (the synthesis itself is unbounded, as in StyleGAN2, and
        # the discriminator trains on its raw output).
        return ((self.synthesis(w_plus, noise) + 1) / 2).clamp(0, 1)

    def decode_w(self, w: torch.Tensor, psi: float = 1.0, noise: str = "const") -> torch.Tensor:
        """Images in [0, 1] from w (B, w_dim), the same w at every layer."""
        return self.synthesize(self.broadcast(self.truncate(w, psi)), noise)

    def decode(self, z: torch.Tensor, psi: float = 1.0, classes: ClassInput = None) -> torch.Tensor:
        """G(mapping(z)) in [0, 1], fixed noise: a function of z (and of a conditional model's classes), as
        every explorer feature needs."""
        return self.decode_w(self.mapping(z, classes=classes), psi)

    generate = decode

    def mix(self, w_a: torch.Tensor, w_b: torch.Tensor, start: int, stop: int | None = None) -> torch.Tensor:
        """W+ of style mixing: layers [start, stop) from w_b, the rest from w_a (each (B, w_dim) or W+).

        start 0 and stop None: all of B; start >= n_styles: all of A (the paper's coarse/middle/fine rows
        are start/stop pairs)."""
        a = self.broadcast(w_a) if w_a.ndim == 2 else w_a
        b = self.broadcast(w_b) if w_b.ndim == 2 else w_b
        stop = self.n_styles if stop is None else stop
        layer = torch.arange(self.n_styles, device=a.device)[None, :, None]
        return torch.where((layer >= start) & (layer < stop), b, a)

    def latent_weight(self) -> torch.Tensor:
        """The mapping network's first layer as a matrix (w_dim, latent_dim) (SeFa in Z)."""
        return self.mapping_net.layers[0].effective_weight()

    def random_latents(
        self, n: int, generator: torch.Generator | None = None, truncation: float | None = None
    ) -> torch.Tensor:
        """z ~ N(0, I). (`truncation` is applied in W by sample(); accepted here for the GAN's signature.)"""
        return torch.randn((n, self.config.latent_dim), generator=generator).to(self.device)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        truncation: float | None = None,
        classes: ClassInput = None,
    ) -> torch.Tensor:
        """n images; `truncation` is psi in W (1 or None: none; 0: every image is the mean-w image); a
        conditional model draws `classes` (default: every class in turn)."""
        psi = 1.0 if truncation is None else float(truncation)
        return self.decode(self.random_latents(n, generator), psi, sampled_classes(classes, n, self.config.num_classes))

    # --- training ------------------------------------------------------------------------------
    def styles_for_training(
        self, z: torch.Tensor, mapping: nn.Module | None = None, track: bool = False, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """W+ for a training batch: mapping(z) (with the classes y (B, K) of a conditional model), mixed
        with a second latent's w (same classes) after a random layer with probability mixing_prob; with
        `track`, mean_w follows the batch's w (EMA)."""
        mapping = mapping or self.mapping_net
        w = mapping(z, y)
        if track:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.config.w_avg_beta))
        ws = self.broadcast(w)
        if self.config.mixing_prob > 0 and torch.rand(()) < self.config.mixing_prob:
            w2 = mapping(torch.randn_like(z), y)
            cut = int(torch.randint(1, self.n_styles, ()))
            ws = self.mix(ws, w2, cut)
        return ws

    def critic(self, images: torch.Tensor, classes: ClassInput = None) -> torch.Tensor:
        """D's logit per image (B,), for images in [0, 1] (and their classes)."""
        return self.discriminator(images * 2 - 1, self._y(classes, images.shape[0], images.device))
