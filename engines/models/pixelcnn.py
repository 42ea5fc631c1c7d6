"""Gated PixelCNN (van den Oord et al. 2016): p(x) = prod_i p(x_i | x_<i) over K intensity levels.

Two stacks remove the blind spot of the original PixelCNN: a vertical stack that sees every row
above, and a horizontal stack that sees the pixels to the left in the current row. Colour images
are ordered R -> G -> B inside each pixel: hidden channels are split into one group per colour,
and masks let group g see the current pixel's groups < g (mask A, first layer) or <= g (mask B).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModel, check_fields, check_image_config


@dataclass(frozen=True)
class PixelCNNConfig:
    image_size: int = 28
    channels: int = 1
    levels: int = 2  # K intensity levels per channel: 2 for binarized MNIST, up to 256
    hidden: int = 64  # must be a multiple of `channels` (one group per colour)
    n_layers: int = 10  # gated layers after the first (mask A) layer
    first_kernel: int = 7
    kernel: int = 3

    def __post_init__(self) -> None:
        check_fields(
            self,
            {"levels": (2, 256), "hidden": (1, 512), "n_layers": (1, 64), "first_kernel": (1, 15), "kernel": (1, 15)},
        )
        check_image_config(self.image_size, self.channels)
        if self.hidden % self.channels:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of channels ({self.channels})")
        if self.first_kernel % 2 == 0 or self.kernel % 2 == 0:
            raise ValueError("kernel sizes must be odd")


def default_levels(channels: int) -> int:
    """Intensity levels of a new run: binarized grayscale, or 16 levels of colour (256 is slow on a CPU)."""
    return 2 if channels == 1 else 16


@dataclass(frozen=True)
class SampleStep:
    """One step of autoregressive sampling: where, what the model predicted, what was drawn."""

    index: int  # 0-based step number within this sampling run
    row: int
    col: int
    channel: int
    probs: np.ndarray  # (B, K) predictive distribution after temperature
    value: np.ndarray  # (B,) chosen level (the known value where the pixel was given)


def _groups(n: int, colours: int, copies: int = 1) -> torch.Tensor:
    """Colour group of each of n channels laid out as `copies` blocks of `colours` contiguous groups."""
    block = n // copies
    return (torch.arange(n) % block) // (block // colours)


def _colour_mask(
    n_in: int, n_out: int, colours: int, mask_type: str, out_copies: int = 1, in_copies: int = 1
) -> torch.Tensor:
    """(n_out, n_in) connectivity at the current pixel: out group g sees in groups < g (A) or <= g (B)."""
    g_in, g_out = _groups(n_in, colours, in_copies), _groups(n_out, colours, out_copies)
    allowed = g_in[None, :] < g_out[:, None] if mask_type == "A" else g_in[None, :] <= g_out[:, None]
    return allowed.float()


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weight is multiplied by a fixed mask (buffer) on every call."""

    def __init__(self, n_in: int, n_out: int, kernel: tuple[int, int], mask: torch.Tensor) -> None:
        super().__init__(n_in, n_out, kernel, padding=(kernel[0] // 2, kernel[1] // 2))
        self.register_buffer("mask", mask.expand_as(self.weight).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


def vertical_conv(n_in: int, n_out: int, k: int, exclude_centre_row: bool) -> MaskedConv2d:
    """k x k conv that sees rows above (and the current row unless excluded), any column."""
    mask = torch.ones(k, k)
    mask[k // 2 + (0 if exclude_centre_row else 1) :, :] = 0
    return MaskedConv2d(n_in, n_out, (k, k), mask)


def horizontal_conv(n_in: int, n_out: int, k: int, colours: int, mask_type: str, out_copies: int = 1) -> MaskedConv2d:
    """1 x k conv over the pixels to the left; the current pixel is seen through the colour mask."""
    mask = torch.ones(n_out, n_in, 1, k)
    mask[:, :, :, k // 2 + 1 :] = 0
    mask[:, :, 0, k // 2] = _colour_mask(n_in, n_out, colours, mask_type, out_copies)
    return MaskedConv2d(n_in, n_out, (1, k), mask)


def pointwise(n_in: int, n_out: int, colours: int, out_copies: int = 1, in_copies: int = 1) -> MaskedConv2d:
    """1 x 1 conv inside a pixel, respecting the colour order (mask B)."""
    mask = _colour_mask(n_in, n_out, colours, "B", out_copies, in_copies)[:, :, None, None]
    return MaskedConv2d(n_in, n_out, (1, 1), mask)


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    def __init__(self, h: int, k: int, colours: int) -> None:
        super().__init__()
        self.v_conv = vertical_conv(h, 2 * h, k, exclude_centre_row=False)
        self.h_conv = horizontal_conv(h, 2 * h, k, colours, "B", out_copies=2)
        # The vertical stack only sees rows above, so it may feed every horizontal channel.
        self.v_to_h = nn.Conv2d(2 * h, 2 * h, 1)
        self.h_out = pointwise(h, h, colours)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_feat = self.v_conv(v)
        h_gated = _gate(self.h_conv(h) + self.v_to_h(v_feat))
        return _gate(v_feat), h + self.h_out(h_gated)


def draw_level(
    logits: torch.Tensor, temperature: float, levels: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One draw per row of CPU `logits` (B, K): (probs after temperature (B, K), chosen levels (B,)).

    Temperature 0 is greedy (a one-hot distribution). Both samplers draw through here, so the same
    generator gives the same values."""
    if temperature == 0:
        probs = F.one_hot(logits.argmax(1), levels).float()
    else:
        probs = torch.softmax(logits / temperature, dim=1)
    return probs, torch.multinomial(probs, 1, generator=generator).squeeze(1)


def log_prob_from_logits(logits: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Sum over pixels and channels of log p(x_i | x_<i): (B, K, C, H, W) logits -> (B,) nats."""
    return -F.cross_entropy(logits, levels, reduction="none").flatten(1).sum(1)


class GatedPixelCNN(GenerativeModel):
    kind = "pixelcnn"
    config_class = PixelCNNConfig
    is_autoregressive = True
    sample_options = ("temperature",)
    grid_samples = 16  # drawn pixel by pixel: a smaller grid

    @classmethod
    def data_defaults(cls, channels: int) -> dict[str, int]:
        return {"levels": default_levels(channels), "hidden": 64 if channels == 1 else 96}

    def __init__(self, config: PixelCNNConfig) -> None:
        super().__init__(config)
        c, h, C = config, config.hidden, config.channels
        self.v_in = vertical_conv(C, h, c.first_kernel, exclude_centre_row=True)  # mask A: rows above only
        self.h_in = horizontal_conv(C, h, c.first_kernel, C, "A")  # mask A: left pixels, earlier colours
        self.layers = nn.ModuleList(GatedLayer(h, c.kernel, C) for _ in range(c.n_layers))
        # ELU rather than ReLU: no dead units, so every output keeps a gradient path to its whole context.
        self.head = nn.Sequential(nn.ELU(), pointwise(h, h, C), nn.ELU(), pointwise(h, C * c.levels, C))

    # --- data <-> levels ---------------------------------------------------------------------
    def quantize(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> integer levels 0..K-1."""
        return torch.round(images.clamp(0, 1) * (self.config.levels - 1)).long()

    def dequantize(self, levels: torch.Tensor) -> torch.Tensor:
        return levels.float() / (self.config.levels - 1)

    # --- the model ------------------------------------------------------------------------------
    def logits(self, levels: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) integer levels -> (B, K, C, H, W) logits of p(x_i | x_<i)."""
        return self.net(levels.float() * (2.0 / (self.config.levels - 1)) - 1.0)

    def net(self, x: torch.Tensor) -> torch.Tensor:
        """The network on inputs already scaled to [-1, 1] (differentiable in x, for causality checks)."""
        v, h = self.v_in(x), self.h_in(x)
        for layer in self.layers:
            v, h = layer(v, h)
        out = self.head(h)
        b, _, height, width = out.shape
        return out.view(b, self.config.channels, self.config.levels, height, width).transpose(1, 2)

    def forward(self, levels: torch.Tensor) -> torch.Tensor:
        return self.logits(levels)

    def log_prob(self, levels: torch.Tensor) -> torch.Tensor:
        """log p(x) per image (B,), nats."""
        return log_prob_from_logits(self.logits(levels), levels)

    def bits_per_dim(self, nll_nats: torch.Tensor | float) -> torch.Tensor | float:
        return nll_nats / (math.prod(self.image_shape) * math.log(2))

    # --- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample_steps(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        known: torch.Tensor | None = None,
        known_mask: torch.Tensor | None = None,
        cached: bool = True,
    ) -> Iterator[SampleStep]:
        """Sample pixel by pixel in raster order (row, column, then R -> G -> B), yielding every step.

        `known` (B, C, H, W) levels and a broadcastable boolean `known_mask` complete a partially given
        image: known pixels are kept, the rest sampled. Positions known in every image are skipped.
        Draws use `generator` on the CPU, so a seed gives the same samples on any device.

        `cached` (the default) reuses each layer's activations and computes only what a step changes
        (engines.models.pixelcnn_cache): the same steps and values, many times faster. `cached=False`
        runs the whole network for every step (the reference the cached sampler is tested against).
        """
        if temperature < 0:
            raise ValueError("temperature must be >= 0")
        C, S = self.config.channels, self.config.image_size
        canvas = torch.zeros((n, C, S, S), dtype=torch.long, device=self.device)
        mask = torch.zeros((n, C, S, S), dtype=torch.bool, device=self.device)
        if known is not None:
            if known_mask is None:
                raise ValueError("known needs a known_mask")
            mask = torch.broadcast_to(known_mask.to(self.device, torch.bool), canvas.shape).clone()
            canvas = torch.where(mask, known.to(self.device).long().expand_as(canvas), canvas)
        if cached:
            from .pixelcnn_cache import cached_sample_steps

            yield from cached_sample_steps(self, canvas, mask, temperature, generator)
            return
        index = 0
        for row in range(S):
            for col in range(S):
                for ch in range(C):
                    given = mask[:, ch, row, col]
                    if given.all():
                        continue
                    logits = self.logits(canvas)[:, :, ch, row, col].float().cpu()
                    probs, value = draw_level(logits, temperature, self.config.levels, generator)
                    value = value.to(self.device)
                    value = torch.where(given, canvas[:, ch, row, col], value)
                    canvas[:, ch, row, col] = value
                    yield SampleStep(index, row, col, ch, probs.numpy(), value.cpu().numpy())
                    index += 1

    @torch.no_grad()
    def sample_levels(self, n: int, **kwargs) -> torch.Tensor:
        """Integer levels (n, C, H, W), by draining `sample_steps` (same keyword arguments, `cached` too)."""
        C, S = self.config.channels, self.config.image_size
        levels = torch.zeros((n, C, S, S), dtype=torch.long)
        if kwargs.get("known") is not None:
            mask = torch.broadcast_to(kwargs["known_mask"].cpu().bool(), levels.shape)
            levels = torch.where(mask, kwargs["known"].cpu().long().expand_as(levels), levels)
        for step in self.sample_steps(n, **kwargs):
            levels[:, step.channel, step.row, step.col] = torch.from_numpy(step.value)
        return levels

    def sample(
        self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0, cached: bool = True
    ) -> torch.Tensor:
        return self.dequantize(self.sample_levels(n, generator=generator, temperature=temperature, cached=cached))
