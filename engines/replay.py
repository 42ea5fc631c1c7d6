"""Watching an autoregressive model (a PixelCNN) draw, without Qt: its sampling steps in chunks, a
recording of them, the canvas at any step, the exact receptive field of a position, and the
completion of a dataset image. The explorer's Replay tab and its Explore sampler run these in
worker threads; tests run them directly."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

UNSAMPLED_RGB = (70, 86, 120)  # not yet drawn: a blue-grey no grey level or colour pixel is mistaken for
REPORT_S = 0.05  # sample_chunks yields its steps in chunks at most this often


@dataclass(frozen=True)
class StepChunk:
    """Consecutive sampling steps: positions (n, 3) as (channel, row, col), probs (n, K), values (n,)."""

    positions: np.ndarray
    probs: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Given:
    """The pixels given before sampling: levels (C, S, S) and where they count, mask (C, S, S) bool."""

    levels: np.ndarray
    mask: np.ndarray
    label: str


class Recording:
    """Every step of one image's generation, in order; step k is the k-th value drawn."""

    def __init__(self, channels: int, size: int, levels: int, given: Given | None = None) -> None:
        self.channels, self.size, self.levels = channels, size, levels
        shape = (channels, size, size)
        self.given = given or Given(np.zeros(shape, np.int64), np.zeros(shape, bool), "nothing given")
        self.positions = np.zeros((0, 3), np.int64)
        self.probs = np.zeros((0, levels), np.float32)
        self.values = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def expected(self) -> int:
        """How many steps a complete generation has: one per position not given."""
        return int((~self.given.mask).sum())

    def append(self, chunk: StepChunk) -> None:
        self.positions = np.concatenate([self.positions, chunk.positions])
        self.probs = np.concatenate([self.probs, chunk.probs])
        self.values = np.concatenate([self.values, chunk.values])

    def truncate(self, k: int) -> None:
        self.positions, self.probs, self.values = self.positions[:k], self.probs[:k], self.values[:k]

    def canvas(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(levels, known mask), both (C, S, S): the given pixels plus those drawn in steps < k."""
        levels, mask = self.given.levels.copy(), self.given.mask.copy()
        c, r, col = self.positions[:k].T
        levels[c, r, col] = self.values[:k]
        mask[c, r, col] = True
        return levels, mask

    def image(self, k: int | None = None) -> np.ndarray:
        """The canvas of step k (default: every step) as an (S, S, C) float32 image in [0, 1], as the
        model's dequantize gives it; positions not yet known are 0."""
        levels, mask = self.canvas(len(self) if k is None else k)
        values = np.where(mask, levels, 0).astype(np.float32) / np.float32(self.levels - 1)
        return np.ascontiguousarray(values.transpose(1, 2, 0))


def render(levels: np.ndarray, mask: np.ndarray, k_levels: int) -> np.ndarray:
    """(C, S, S) levels and mask -> (S, S, 3) uint8 to show. A pixel with no channel known is
    UNSAMPLED_RGB; a colour pixel with only some channels known shows those (the rest 0)."""
    values = np.where(mask, np.round(levels * (255.0 / (k_levels - 1))), 0).astype(np.uint8)
    rgb = np.repeat(values, 3, axis=0) if values.shape[0] == 1 else values
    rgb = np.ascontiguousarray(rgb.transpose(1, 2, 0))
    rgb[~mask.any(axis=0)] = UNSAMPLED_RGB
    return rgb


def field_model(model: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy for receptive fields: tanh/sigmoid gates saturate to exact zero gradients far
    later in float64, so "gradient != 0" is exactly "depends on"."""
    return copy.deepcopy(model).double().eval()


def receptive_field(model, channel: int, row: int, col: int) -> np.ndarray:
    """(C, S, S) bool: the inputs the logits of (channel, row, col) depend on, from one forward pass.

    The gradient of a random projection of those logits with respect to the input is non-zero
    exactly where there is a path through the masked network (almost surely for random weights)."""
    c, s = model.config.channels, model.config.image_size
    dtype = next(model.parameters()).dtype
    x = torch.zeros((1, c, s, s), dtype=dtype, requires_grad=True)
    logits = model.net(x)[0, :, channel, row, col]  # (K,)
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
    (grad,) = torch.autograd.grad((logits * weights).sum(), x)
    return (grad[0] != 0).numpy()


def sample_chunks(
    model,
    temperature: float,
    seed: int,
    given: Given | None = None,
    should_stop: Callable[[], bool] | None = None,
    every_s: float = REPORT_S,
) -> Iterator[StepChunk]:
    """Draw one image (every position `given` does not fix) and yield its steps in StepChunks, one
    at most every `every_s` seconds (and the rest at the end). Draws use a CPU generator seeded with
    `seed`, so a seed gives the same image on any device. When should_stop() turns true (checked
    before every step) it ends at once, without the steps of the unfinished chunk."""
    generator = torch.Generator().manual_seed(seed)
    known = mask = None
    if given is not None:
        known, mask = torch.from_numpy(given.levels)[None], torch.from_numpy(given.mask)[None]
    positions: list[tuple[int, int, int]] = []
    probs: list[np.ndarray] = []
    values: list[int] = []

    def chunk() -> StepChunk:
        out = StepChunk(
            np.array(positions, np.int64).reshape(-1, 3), np.stack(probs).astype(np.float32), np.array(values, np.int64)
        )
        positions.clear(), probs.clear(), values.clear()
        return out

    last = time.monotonic()
    with torch.no_grad():
        for step in model.sample_steps(1, temperature=temperature, generator=generator, known=known, known_mask=mask):
            if should_stop is not None and should_stop():
                return
            positions.append((step.channel, step.row, step.col))
            probs.append(step.probs[0])
            values.append(int(step.value[0]))
            if time.monotonic() - last >= every_s:
                yield chunk()
                last = time.monotonic()
    if values:
        yield chunk()


def image_levels(model, dataset, index: int) -> np.ndarray:
    """Image `index` of `dataset` as the model's levels (C, S, S) int64; ValueError when out of range."""
    if not 0 <= index < len(dataset):
        raise ValueError(f"the dataset has {len(dataset)} images; #{index} is out of range")
    image, _ = dataset[index]
    return model.quantize(torch.as_tensor(image)).cpu().numpy().astype(np.int64)


def completion(levels: np.ndarray, rows: int, index: int) -> Given:
    """The Given that completes image `index` (its levels): rows < `rows` are kept, the rest drawn."""
    mask = np.zeros(levels.shape, bool)
    mask[:, :rows, :] = True
    return Given(levels, mask, f"image #{index}, rows 0-{rows - 1} given" if rows else f"image #{index}, nothing given")
