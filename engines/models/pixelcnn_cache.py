"""Cached (incremental) sampling for the Gated PixelCNN (Ramachandran et al. 2017, "Fast Generation
for Convolutional Autoregressive Models").

The naive sampler runs the whole network over the whole image for every (row, column, channel)
step. Almost all of that work recomputes values that cannot have changed: every layer is a masked
convolution, so writing pixel (r, c) only changes outputs at or after (r, c) in raster order. This
sampler keeps each layer's activations as a cache and computes only what a step needs:

- Vertical stack, once per row. The vertical stack at row r sees only input rows < r, so when row
  r - 1 is complete it is computed for the whole of row r (per layer, one matrix product of the
  row's patches, over the few rows the kernel reaches, with the kernel's taps), and its
  contribution to the horizontal stack (`v_to_h`) with it. Each layer keeps its last
  `kernel // 2` rows: the next row's input.
- Horizontal stack and head, once per pixel column. The horizontal stack at (r, c) sees only row r,
  columns c - k//2 .. c, of its own input, and the vertical stack at row r. So a step runs the
  horizontal stack and the head at one position: a few (B, hidden) x (hidden, 2 hidden) products per
  layer instead of convolutions over H x W. Each layer keeps its outputs of the current row.
  A colour pixel is recomputed for each of its R, G, B steps (the later colours see the earlier).
  Work is lazy: a row or column is computed only when a later step needs it, so completing an image
  whose top half is given computes no horizontal stack for the given rows.

Restricting a masked kernel to its unmasked taps only leaves out products with exact zero weights,
so the logits equal the naive ones up to float rounding (the sums run in another order). Draws
go through the same `draw_level` with the same generator, in the same order, so a seed gives the
same values and the same `SampleStep` stream as the naive sampler.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .pixelcnn import GatedPixelCNN, SampleStep


def _masked_weight(conv) -> torch.Tensor:
    return (conv.weight * conv.mask).detach()


def _patch_matrix(conv, rows: slice, columns: slice) -> torch.Tensor:
    """The taps (rows, columns) of a masked kernel (out, in, kh, kw) as a (kh * kw * in, out) matrix,
    for patches laid out as (row, column, channel) and flattened: a convolution at one position is
    then one matrix product. Only taps the mask can leave non-zero are kept."""
    w = _masked_weight(conv)[:, :, rows, columns]
    return w.permute(0, 2, 3, 1).reshape(w.shape[0], -1).t().contiguous()


def _gated(x: torch.Tensor, half: int) -> torch.Tensor:
    """tanh(first half) * sigmoid(second half) of the last dimension."""
    return torch.tanh(x[..., :half]) * torch.sigmoid(x[..., half:])


class _Cache:
    """Per-layer activations for one sampling run of `n` images, filled lazily row by row.

    Activations are kept channels-last, so a row or a column of a layer is a matrix whose rows are
    positions; a convolution at a position is a product with the kernel's taps (see _patch_matrix).
    """

    def __init__(self, model: GatedPixelCNN, canvas: torch.Tensor) -> None:
        cfg = model.config
        n, C, S, _ = canvas.shape
        dev = canvas.device
        self.canvas, self.n, self.C, self.S, self.levels = canvas, n, C, S, cfg.levels
        self.hidden = h = cfg.hidden
        self.scale = 2.0 / (cfg.levels - 1)
        k1, k = self.k1, self.k = cfg.first_kernel // 2, cfg.kernel // 2  # how far a kernel reaches left / up
        self.w1, self.w = cfg.first_kernel, cfg.kernel

        # Weights in the shape each incremental step uses (once per run: the masks are fixed).
        # Vertical stack: the first layer sees rows r - k1 .. r - 1 (mask A), the others r - k .. r.
        self.v_in = (_patch_matrix(model.v_in, slice(0, k1), slice(None)), model.v_in.bias.detach())
        self.v_layers = [
            (
                _patch_matrix(layer.v_conv, slice(0, k + 1), slice(None)),
                layer.v_conv.bias.detach(),
                layer.v_to_h.weight.detach()[:, :, 0, 0].t().contiguous(),
                layer.v_to_h.bias.detach() + layer.h_conv.bias.detach(),
            )  # both biases, added once
            for layer in model.layers
        ]
        # Horizontal stack: columns c - k1 .. c (first layer) or c - k .. c of the current row.
        self.h_in = (_patch_matrix(model.h_in, slice(None), slice(0, k1 + 1)), model.h_in.bias.detach())
        self.h_layers = [
            (
                _patch_matrix(layer.h_conv, slice(None), slice(0, k + 1)),
                _patch_matrix(layer.h_out, slice(None), slice(None)),
                layer.h_out.bias.detach(),
            )
            for layer in model.layers
        ]
        head = model.head  # ELU, pointwise, ELU, pointwise
        self.head = (
            _patch_matrix(head[1], slice(None), slice(None)),
            head[1].bias.detach(),
            _patch_matrix(head[3], slice(None), slice(None)),
            head[3].bias.detach(),
        )

        # Vertical stack input: the scaled canvas, k1 zero rows above and k1 zero columns each side
        # (the convolution's zero padding); a row is copied in once it is final.
        self.x_rows = torch.zeros((n, k1 + S, S + 2 * k1, C), device=dev)
        # Each gated layer's input rows r - k .. r, k zero columns each side: (n, k + 1, S + 2k, h).
        self.v_rows = [torch.zeros((n, k + 1, S + 2 * k, h), device=dev) for _ in model.layers]
        self.vh: list[torch.Tensor] = []  # per layer, v_to_h(v_feat) + h_conv bias of the row: (n, S, 2h)
        self.v_row = -1  # the row the vertical stack is at
        # Horizontal stack: each layer's input on the current row, k zero columns first: (n, k + S, h);
        # and the scaled canvas row (n, k1 + S, C), k1 zero columns first.
        self.h_rows = [torch.zeros((n, k + S, h), device=dev) for _ in range(len(model.layers) + 1)]
        self.x_row = torch.zeros((n, k1 + S, C), device=dev)
        self.h_row = -1
        self.h_ready = 0  # columns of the current row whose cached activations are final

    def _scaled(self, levels: torch.Tensor) -> torch.Tensor:
        return levels.float() * self.scale - 1.0

    @staticmethod
    def _patches(rows: torch.Tensor, width: int) -> torch.Tensor:
        """(n, kh, S + width - 1, ch) padded rows -> (n * S, kh * width * ch): one patch per column."""
        n, kh, _, ch = rows.shape
        p = rows.unfold(2, width, 1)  # (n, kh, S, ch, width)
        return p.permute(0, 2, 1, 4, 3).reshape(-1, kh * width * ch)

    # --- vertical stack: one row at a time -----------------------------------------------------
    def _vertical_row(self, r: int) -> None:
        """The vertical stack at row r (rows < r of the canvas are final)."""
        n, S, k1, k, h = self.n, self.S, self.k1, self.k, self.hidden
        if r > 0 and k1 > 0:
            self.x_rows[:, k1 + r - 1, k1 : k1 + S] = self._scaled(self.canvas[:, :, r - 1]).transpose(1, 2)
        w, b = self.v_in
        if k1 > 0:
            v = torch.addmm(b, self._patches(self.x_rows[:, r : r + k1], self.w1), w)  # (n * S, h)
        else:  # a 1 x 1 first kernel sees nothing above: only its bias is left
            v = b.expand(n * S, h)
        self.vh = []
        for rows, (w_v, b_v, w_vh, b_vh) in zip(self.v_rows, self.v_layers):
            if k > 0:
                rows[:, :k] = rows[:, 1:].clone()  # move up a row
            rows[:, k, k : k + S] = v.view(n, S, h)
            feat = torch.addmm(b_v, self._patches(rows, self.w), w_v)  # (n * S, 2h)
            self.vh.append(torch.addmm(b_vh, feat, w_vh).view(n, S, 2 * h))
            v = _gated(feat, h)
        self.v_row = r

    # --- horizontal stack and head: one column at a time -----------------------------------------
    def _start_row(self, r: int) -> None:
        while self.v_row < r:
            self._vertical_row(self.v_row + 1)
        self.x_row[:, self.k1 :] = self._scaled(self.canvas[:, :, r]).transpose(1, 2)
        self.h_row, self.h_ready = r, 0

    def _column(self, c: int) -> torch.Tensor:
        """Horizontal stack and head at (current row, c) from the canvas as it is: (n, C * K) logits."""
        n, k, k1, hidden = self.n, self.k, self.k1, self.hidden
        w, b = self.h_in
        h = torch.addmm(b, self.x_row[:, c : c + k1 + 1].reshape(n, -1), w)
        self.h_rows[0][:, k + c] = h
        for i, (w_h, w_out, b_out) in enumerate(self.h_layers):
            window = self.h_rows[i][:, c : c + k + 1].reshape(n, -1)  # columns c - k .. c: a view
            gated = _gated(torch.addmm(self.vh[i][:, c], window, w_h), hidden)
            h = torch.addmm(h, gated, w_out).add_(b_out)
            self.h_rows[i + 1][:, k + c] = h
        w1, b1, w2, b2 = self.head
        return torch.addmm(b2, F.elu(torch.addmm(b1, F.elu(h), w1)), w2)

    def logits(self, r: int, c: int, ch: int) -> torch.Tensor:
        """Logits (n, K) of channel `ch` at (r, c), given the canvas before that step."""
        if self.h_row != r:
            self._start_row(r)
        while self.h_ready < c:  # columns left of c that no step needed yet: their final values
            self._column(self.h_ready)
            self.h_ready += 1
        out = self._column(c)
        if ch == self.C - 1:  # no hidden unit at (r, c) sees the last colour of (r, c): now final
            self.h_ready = c + 1
        return out[:, ch * self.levels : (ch + 1) * self.levels]

    def written(self, r: int, c: int, ch: int, value: torch.Tensor) -> None:
        """Level `value` (n,) was drawn for channel ch at (r, c): refresh the current row's input."""
        if self.h_row == r:
            self.x_row[:, self.k1 + c, ch] = self._scaled(value)


@torch.no_grad()
def cached_sample_steps(
    model: GatedPixelCNN,
    canvas: torch.Tensor,
    mask: torch.Tensor,
    temperature: float,
    generator: torch.Generator | None,
) -> Iterator[SampleStep]:
    """The raster-order sampling loop of `GatedPixelCNN.sample_steps`, with cached activations.

    `canvas` (B, C, H, W) levels (known values filled in) and `mask` (B, C, H, W) bool are the
    sampler's own: the canvas is written in place as values are drawn.
    """
    from .pixelcnn import SampleStep, draw_level

    C, S, levels = model.config.channels, model.config.image_size, model.config.levels
    cache = _Cache(model, canvas)
    skip = mask.all(dim=0).tolist()  # [C][S][S]: given in every image (no step)
    some = mask.any(dim=0).tolist()  # given in some image (the drawn value is replaced there)
    index = 0
    for row in range(S):
        for col in range(S):
            for ch in range(C):
                if skip[ch][row][col]:
                    continue
                logits = cache.logits(row, col, ch).float().cpu()
                probs, value = draw_level(logits, temperature, levels, generator)
                value = value.to(canvas.device)
                if some[ch][row][col]:
                    value = torch.where(mask[:, ch, row, col], canvas[:, ch, row, col], value)
                canvas[:, ch, row, col] = value
                cache.written(row, col, ch, value)
                yield SampleStep(index, row, col, ch, probs.numpy(), value.cpu().numpy())
                index += 1
