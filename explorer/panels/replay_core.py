"""The Replay tab's model side, without Qt: a recording of a PixelCNN's sampling steps, the canvas
at any step, the exact receptive field of a position, and the functions its worker threads run."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from engines.data.sample import heldout_or_sample

log = logging.getLogger(__name__)

UNSAMPLED_RGB = (70, 86, 120)  # not yet drawn: a blue-grey no grey level or colour pixel is mistaken for
REPORT_S = 0.05  # a sampling worker reports its steps in chunks at most this often


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


def sample_worker(job, model, temperature: float, seed: int, given: Given) -> int:
    """Draw every position not given, reporting StepChunks; returns the number of steps drawn."""
    generator = torch.Generator().manual_seed(seed)
    known = torch.from_numpy(given.levels)[None]
    mask = torch.from_numpy(given.mask)[None]
    positions: list[tuple[int, int, int]] = []
    probs: list[np.ndarray] = []
    values: list[int] = []
    drawn = 0
    last = time.monotonic()

    def flush() -> None:
        if values:
            job.report(StepChunk(np.array(positions, np.int64).reshape(-1, 3), np.stack(probs).astype(np.float32),
                                 np.array(values, np.int64)))
            positions.clear(), probs.clear(), values.clear()

    with torch.no_grad():
        for step in model.sample_steps(1, temperature=temperature, generator=generator, known=known, known_mask=mask):
            if job.cancelled:
                return drawn
            positions.append((step.channel, step.row, step.col))
            probs.append(step.probs[0])
            values.append(int(step.value[0]))
            drawn += 1
            if time.monotonic() - last >= REPORT_S:
                flush()
                last = time.monotonic()
    flush()
    return drawn


def dataset_image(state, checkpoint, index: int) -> np.ndarray:
    """Held-out image `index` of the checkpoint's dataset as levels (C, S, S): through the state's
    cached dataset when the checkpoint is the state's, else loaded from its DataSpec."""
    if state is not None and state.checkpoint is checkpoint:
        dataset = state.dataset(train=False)
    else:
        dataset = heldout_or_sample(checkpoint.dataset, checkpoint.sample)
    if not 0 <= index < len(dataset):
        raise ValueError(f"the dataset has {len(dataset)} images; #{index} is out of range")
    image, _ = dataset[index]
    return checkpoint.model.quantize(torch.as_tensor(image)).cpu().numpy().astype(np.int64)


def complete_worker(job, state, checkpoint, index: int, rows: int, temperature: float, seed: int) -> int:
    """Give rows < `rows` of dataset image `index` and sample the rest (reports the Given first)."""
    levels = dataset_image(state, checkpoint, index)
    mask = np.zeros(levels.shape, bool)
    mask[:, :rows, :] = True
    given = Given(levels, mask, f"image #{index}, rows 0-{rows - 1} given" if rows else f"image #{index}, nothing given")
    job.report(given)
    return sample_worker(job, checkpoint.model, temperature, seed, given)
