"""Training: a Qt-free trainer that yields events, and the per-model recipes it runs."""

from . import distributed
from .events import (
    CheckpointSaved,
    Diverged,
    EpochEnd,
    Event,
    Finished,
    Health,
    Paused,
    Resumed,
    SampleGrid,
    Snapshot,
    Started,
    StepDone,
)
from .recipes import RECIPES
from .trainer import PRECISIONS, TrainConfig, Trainer, create_model

__all__ = [
    "PRECISIONS",
    "RECIPES",
    "distributed",
    "CheckpointSaved",
    "Diverged",
    "EpochEnd",
    "Event",
    "Finished",
    "Health",
    "Paused",
    "Resumed",
    "SampleGrid",
    "Snapshot",
    "Started",
    "StepDone",
    "TrainConfig",
    "Trainer",
    "create_model",
]
