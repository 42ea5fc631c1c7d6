"""What the Train tab runs, without Qt, beyond the run's settings (engines.training.run.RunSettings,
shared with the CLI): the form's defaults, the memory estimate, and the function a worker thread runs
(it hands its Trainer to the job, which pauses and stops it)."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from engines.checkpoint import SUFFIX
from engines.data import DatasetError, load_splits
from engines.data.split import describe_record
from engines.memory import available_bytes, format_bytes, training_bytes
from engines.models import MODEL_CLASSES, make_config
from engines.training import RECIPES, SampleGrid, StepDone, Trainer, create_model
from engines.training.run import RunSettings

log = logging.getLogger(__name__)

FLUSH_S = 0.05  # the worker sends StepDone events in batches at most this often (~20 signals/s)
LIVE_SAMPLE_EVERY = 100  # the form's default steps between sample grids, so training is watched as it goes


def default_lr_text(kind: str) -> str:
    """What a blank learning rate means, for the field's placeholder (engines.training.recipes)."""
    return RECIPES[kind].default_lr_text


def default_sample_every(kind: str) -> int:
    # A model that draws its grid pixel by pixel is slow: only at epoch ends (0).
    return 0 if MODEL_CLASSES[kind].is_autoregressive else LIVE_SAMPLE_EVERY


def unique_path(folder: Path, stem: str) -> Path:
    """folder/stem.safetensors, or stem-2, stem-3, ... so an earlier run is never overwritten."""
    path = folder / f"{stem}{SUFFIX}"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}{SUFFIX}"
        n += 1
    return path


def one_line(error: BaseException) -> str:
    """An exception as one line for the form ("ValueError" when it has no message)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


@dataclass(frozen=True)
class MemoryEstimate:
    """What a run the form describes would need (engines.memory), or why it cannot be estimated."""

    need: int | None  # bytes; None when the settings are invalid or the estimate failed
    available: int
    problem: str | None = None  # an invalid setting (one line), when need is None
    invalid: bool = False  # the problem is a setting the model refuses (not a failed estimate)

    @property
    def fits(self) -> bool:
        return self.need is None or self.need <= self.available

    def text(self) -> str:
        if self.need is None:
            return self.problem or "no estimate"
        text = f"~{format_bytes(self.need)} of {format_bytes(self.available)} available"
        if not self.fits:
            text += ": more than this machine has free; lower the batch size, image size or width"
        return text


def estimate_memory(settings: RunSettings) -> MemoryEstimate:
    """The memory a run of these settings would need at its peak, estimated without allocating (a model
    built on PyTorch's meta device, engines.memory). A config the model class refuses (out-of-bounds
    sizes) comes back as `problem`, never raised. A folder run is estimated before its folder is chosen."""
    available = available_bytes(settings.device or "cpu")
    try:
        spec = dataclasses.replace(settings, root=settings.root or ".").data_spec()
        config = settings.model_config(spec)
        make_config(settings.kind, config)  # the config class checks its bounds
    except (ValueError, TypeError) as error:
        return MemoryEstimate(None, available, one_line(error), invalid=True)
    try:
        return MemoryEstimate(training_bytes(settings.kind, config, settings.batch_size), available)
    except (ValueError, TypeError) as error:
        return MemoryEstimate(None, available, one_line(error), invalid=True)
    except Exception as error:  # noqa: BLE001 - an estimate that fails must not stop the form
        log.warning("memory estimate failed: %s", error)
        return MemoryEstimate(None, available, f"no estimate ({one_line(error)})")


def memory_key(settings: RunSettings) -> tuple:
    """What the estimate depends on: two settings with the same key have the same estimate."""
    return (
        settings.kind,
        settings.dataset,
        settings.image_size,
        settings.channels,
        settings.latent_dim,
        settings.gan_loss,
        settings.levels,
        settings.hidden,
        settings.layers,
        settings.batch_size,
        settings.device,
        repr(sorted(settings.model_overrides.items())),
    )


@dataclass(frozen=True)
class DatasetInfo:
    """Sent once the data is loaded: how much there is, and what a folder's loader skipped."""

    images: int  # usable images of the training split (validation images included)
    skipped: dict[str, int]  # reason -> count
    skipped_files: list[tuple[str, str]]  # (path, reason), the first few
    held_out: int = 0  # of them, the validation images training never sees
    validation: str = ""  # where the per-epoch held-out figures come from (engines.data.split)


def train_worker(job, settings: RunSettings) -> str:
    """Runs in a worker thread: load the data, build the model, and forward the trainer's events to
    the GUI as lists (StepDone events batched, the rest at once, in order). Returns the checkpoint path."""
    spec = settings.data_spec()
    try:
        splits = load_splits(spec)  # validation: a fixed slice of the training split (test is eval's)
        train, val = splits.train, splits.val
    except DatasetError as error:
        raise DatasetError(f"Cannot load the dataset: {error}") from error
    job.report(
        DatasetInfo(
            len(train) + (len(val) if val is not None and splits.record.get("source") == "held out" else 0),
            dict(getattr(train, "skipped", {})),
            list(getattr(train, "skipped_files", []))[:20],
            held_out=len(val) if val is not None else 0,
            validation=describe_record(splits.record),
        )
    )
    config = settings.train_config()
    if config.checkpoint_path:
        Path(config.checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
    model = create_model(settings.kind, settings.model_config(spec), seed=config.seed)
    summary = {"trained_with": "latent-explorer GUI", "validation": splits.record}
    trainer = Trainer(model, train, config, val, summary=summary)
    if model.has_latent and config.sample_every is not None:
        # The fixed-noise grid before any step, so progress is visible from the first update.
        job.report([SampleGrid(0, trainer.sample_grid())])
    if not job.steer(trainer):  # pause/resume/cancel of the job reach the trainer (a stop came first: no run)
        return ""
    batch: list = []
    last = time.monotonic()
    for event in trainer.run():
        job.share_cores()  # every core while the run is alone; a share while maps or encodes run beside it
        batch.append(event)
        now = time.monotonic()
        if not isinstance(event, StepDone) or now - last >= FLUSH_S:
            job.report(batch)
            batch, last = [], now
    if batch:
        job.report(batch)
    return config.checkpoint_path or ""


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_losses(losses: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in losses.items()) or "-"
