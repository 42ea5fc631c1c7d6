"""The small, frozen events a training run yields; the GUI, the CLI and the tests read the same ones."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Started:
    step: int  # steps already done (non-zero when resumed)
    total_steps: int
    steps_per_epoch: int
    device: str
    resumed: bool


@dataclass(frozen=True)
class StepDone:
    step: int  # steps done, counting this one
    epoch: int  # 0-based epoch this step belongs to
    losses: dict[str, float]
    images_per_s: float  # smoothed over recent steps


@dataclass(frozen=True)
class SampleGrid:
    step: int
    grid: np.ndarray = field(repr=False)  # (H, W, C) uint8, from fixed noise / a fixed seed


@dataclass(frozen=True)
class EpochEnd:
    epoch: int  # 0-based epoch just finished
    step: int
    train_losses: dict[str, float]  # means over the epoch
    val_losses: dict[str, float]  # on the validation split (engines.data.split); empty when there is none
    seconds: float  # wall time of this epoch


@dataclass(frozen=True)
class Snapshot:
    """A training-timeline snapshot was kept (engines.timeline): what its decoder makes of fixed inputs."""

    step: int
    samples: np.ndarray = field(repr=False)  # (H, W, C) uint8: the fixed latents decoded
    reconstructions: np.ndarray | None = field(repr=False)  # a VAE's: fixed real images over their reconstructions


@dataclass(frozen=True)
class Health:
    """A collapse seen (or gone) at a sample grid: sent when the warning changes (engines.training.collapse)."""

    step: int
    warning: str  # one line; "" when the collapse seen before is gone


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str


@dataclass(frozen=True)
class Paused:
    step: int


@dataclass(frozen=True)
class Resumed:
    step: int


@dataclass(frozen=True)
class Diverged:
    step: int
    message: str  # what went non-finite; the last good checkpoint on disk is kept


@dataclass(frozen=True)
class Finished:
    step: int
    reason: str  # "completed", "stopped" or "diverged"
    seconds: float


Event = (
    Started
    | StepDone
    | SampleGrid
    | Snapshot
    | Health
    | EpochEnd
    | CheckpointSaved
    | Paused
    | Resumed
    | Diverged
    | Finished
)
