"""The Qt-free trainer: an iterator of events, steerable from another thread between steps."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from ..checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from ..device import machine_description, pick_device
from ..images import to_grid
from ..models import GenerativeModel, build_model
from ..timeline import MAX_SNAPSHOTS, MIN_SNAPSHOT_EVERY, Timeline, timeline_grids
from .collapse import collapse_warning
from .distributed import SINGLE, DistContext, any_rank, wrapper
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
from .recipes import RECIPES, finite

log = logging.getLogger(__name__)


PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float | None = None  # None: the recipe's default (Adam 1e-3; GAN 2e-4 / WGAN-GP 1e-4)
    max_steps: int | None = None  # stop after this many steps in all, whatever `epochs` says
    seed: int = 0
    device: str | None = None  # None/"auto": CUDA, then MPS, then CPU
    sample_every: int | None = 200  # steps between sample grids; 0 = at epoch ends only; None = never
    n_samples: int | None = None  # images in a sample grid; None: the model's grid_samples (64; PixelCNN 16)
    checkpoint_every: int = 0  # steps between checkpoints; 0 = at epoch ends (and at stop/finish)
    checkpoint_path: str | None = None
    eval_batches: int | None = None  # held-out batches evaluated at each epoch end; None = all
    # "bf16": training forward passes under bfloat16 autocast (about 2x faster on CPUs with AVX512-BF16
    # or AMX, and on recent GPUs); evaluation, sampling and checkpoints stay float32.
    precision: str = "fp32"
    # steps between training-timeline snapshots (engines.timeline); None: a twentieth of the run (at least
    # MIN_SNAPSHOT_EVERY); 0: none
    snapshot_every: int | None = None
    # The decay of an exponential moving average of the weights (e.g. 0.999; 0: none). Averaged weights
    # give cleaner GAN samples than the last step's (Karras et al. 2018; Yazici et al. 2019); checkpoints,
    # sample grids, the timeline and the collapse checks use the average, training goes on with the
    # live weights (kept in the checkpoint's train state for a resume).
    ema: float = 0.0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), not {self.ema!r}")


def create_model(kind: str, config: dict[str, Any], seed: int = 0) -> GenerativeModel:
    """A freshly initialised model whose weights depend only on (kind, config, seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(kind, config)


class Trainer:
    """Trains `model` on `train_data` (an engines.data dataset) and yields events from `run()`.

    `pause()`, `resume()` and `stop()` may be called from any thread; they take effect between steps.
    A stop, the end of the run and every epoch end write a resumable checkpoint (if a path is set);
    a non-finite loss ends the run with a Diverged event and leaves the last good checkpoint alone.
    """

    def __init__(
        self,
        model: GenerativeModel,
        train_data,
        config: TrainConfig = TrainConfig(),
        val_data=None,
        train_state: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        dist: DistContext = SINGLE,
        timeline: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.dist = dist
        self.device = pick_device(config.device)
        self.model = model.to(self.device).train()
        self.recipe = RECIPES[model.kind]
        self.uses_labels = self.recipe.takes_labels(model)
        if model.num_classes and list(getattr(train_data, "label_names", [])) != list(model.class_names):
            raise ValueError(
                f"a conditional model of classes {', '.join(model.class_names)} needs data labelled with "
                f"exactly those classes, not {', '.join(getattr(train_data, 'label_names', [])) or 'no labels'}"
            )
        self.train_data, self.val_data = train_data, val_data  # training never sees val_data
        # Each process sees its own shard of every epoch (one shard when not distributed); the order
        # depends only on (seed, epoch), so a resumed run sees the same batches.
        self.sampler = DistributedSampler(
            train_data, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=config.seed, drop_last=True
        )
        self.batch_size = max(1, min(config.batch_size, len(self.sampler)))
        self.steps_per_epoch = len(self.sampler) // self.batch_size
        self.total_steps = config.max_steps if config.max_steps is not None else config.epochs * self.steps_per_epoch
        self.optimizers = self.recipe.optimizers(self.model, config.lr)
        self.nets = self.recipe.networks(self.model, wrapper(dist, self.device))  # DDP under torchrun
        self.step = 0
        self.history: list[dict[str, Any]] = []  # one entry per finished epoch
        self.seconds = 0.0  # training wall time, carried over a resume
        self._resume_rng = None
        self._resume_cuda_rng = None
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, sample order) of the current epoch
        self._epoch_sums: dict[str, float] = {}  # running sums of the current epoch's losses
        self._average: dict[str, torch.Tensor] | None = None  # the averaged weights (config.ema)
        if train_state is not None:
            self._load_train_state(train_state)
        if config.ema and self._average is None:  # a new average starts at the weights the run has now
            self._average = self._float_weights()
        self.summary = summary or {}
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        # Fixed noise for sample grids: the same for the whole run, across resumes, on any device.
        gen = torch.Generator().manual_seed(config.seed + 1)
        n = config.n_samples if config.n_samples is not None else model.grid_samples
        # A sampler that draws pixel by pixel never draws more than its own grid_samples (slow).
        self.grid_size = n if model.has_latent else min(n, model.grid_samples)
        # A conditional model's grid has one row per class: ceil(n / K) samples of each (the same z per column).
        self._fixed_y, self._grid_rows = None, None
        if model.num_classes and model.has_latent:
            self._grid_rows = -(-n // model.num_classes)
            n = self._grid_rows * model.num_classes
            self._fixed_y = F.one_hot(torch.arange(n) // self._grid_rows, model.num_classes).float()
        self._fixed_z = torch.randn((n, model.latent_dim), generator=gen) if model.has_latent else None
        if self._fixed_y is not None:  # the same noise in every row: the rows differ by class only
            self._fixed_z = self._fixed_z[: self._grid_rows].repeat(model.num_classes, 1)
        # A model that neither decodes nor samples (a classifier) has no sample grids.
        self.can_sample = model.has_latent or model.can_sample
        every = config.snapshot_every
        every = max(MIN_SNAPSHOT_EVERY, self.total_steps // MAX_SNAPSHOTS) if every is None else every
        # Light snapshots of the decoder, stored in the checkpoint; a resumed run goes on with its own.
        self.timeline = Timeline.from_file(timeline, every) if model.decoder_prefixes and every > 0 else None
        self.warning = ""  # the collapse seen at the last sample grid (engines.training.collapse)
        self._real: torch.Tensor | None = None  # a fixed batch of real images for the collapse checks

    # --- steering (any thread) ------------------------------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run wakes up to stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # --- resuming -----------------------------------------------------------------------------
    @classmethod
    def from_checkpoint(
        cls, path: str | Path, train_data, config: TrainConfig, val_data=None, dist: DistContext = SINGLE
    ) -> Trainer:
        """Continue a run from a resumable checkpoint: same weights, optimizer state, step and RNG."""
        ckpt: Checkpoint = load_checkpoint(path, with_train_state=True)
        if ckpt.train_state is None:
            raise CheckpointError(f"{Path(path).name} holds no training state to resume from")
        try:
            return cls(
                ckpt.model,
                train_data,
                config,
                val_data,
                train_state=ckpt.train_state,
                summary=ckpt.training,
                dist=dist,
                timeline=ckpt.timeline,
            )
        except (KeyError, ValueError, TypeError, RuntimeError) as error:  # optimizer state that does not fit
            raise CheckpointError(
                f"{Path(path).name}: its resumable state does not fit the model ({error!r:.100})"
            ) from error

    def _load_train_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            if self.config.lr is not None:  # loading restored the saved rate; an explicit one wins
                for group in opt.param_groups:
                    group["lr"] = self.config.lr
                    if "initial_lr" in group:  # a scheduled recipe scales from this one
                        group["initial_lr"] = self.config.lr
        extra = state.get("extra", {})
        self.history = list(extra.get("history", []))
        self.seconds = float(extra.get("seconds", 0.0))
        self._epoch_sums = dict(extra.get("epoch_sums", {}))
        raw = state.get("raw") or {}
        if raw:  # the model holds the averaged weights; training goes on from the live ones
            if self.config.ema:
                self._average = self._float_weights()
            self.model.load_state_dict(raw, strict=False)
        self._resume_rng = state.get("rng", {}).get("torch")
        self._resume_cuda_rng = state.get("rng", {}).get("cuda")  # the GPU's own generator (GAN noise on CUDA)
        reference = torch.get_rng_state()
        if self._resume_rng is not None and (
            self._resume_rng.dtype != reference.dtype or self._resume_rng.shape != reference.shape
        ):
            raise ValueError("the stored random-number state is not a CPU generator state")

    def _train_state(self, epoch_sums: dict[str, float]) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "rng": {
                "torch": torch.get_rng_state(),
                **({"cuda": torch.cuda.get_rng_state(self.device)} if self.device.type == "cuda" else {}),
            },
            "extra": {"history": self.history, "seconds": self.seconds, "epoch_sums": epoch_sums},
        }

    # --- averaged weights ------------------------------------------------------------------------
    def _float_weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def _update_average(self) -> None:
        # Early on the decay ramps up from 0.1 (as tf.train.ExponentialMovingAverage's num_updates does),
        # so a new run's average is not held at its random initial weights for thousands of steps.
        decay = min(self.config.ema, (1 + self.step) / (10 + self.step))
        live = self.model.state_dict()
        for key, average in self._average.items():
            average.lerp_(live[key], 1.0 - decay)

    @contextmanager
    def _averaged(self) -> Iterator[dict[str, torch.Tensor] | None]:
        """Inside, the model holds the averaged weights (none averaged: as it is); yields the live weights."""
        if self._average is None:
            yield None
            return
        live = self._float_weights()
        self.model.load_state_dict(self._average, strict=False)  # copies in place: optimizers keep their tensors
        try:
            yield live
        finally:
            self.model.load_state_dict(live, strict=False)

    def save(self, epoch_sums: dict[str, float] | None = None) -> Path | None:
        """Write a resumable checkpoint now, if the run has a checkpoint path."""
        path = self.config.checkpoint_path
        if not path or not self.dist.is_main:
            return None
        data = self.train_data
        spec = getattr(data, "spec", None)
        training = {
            **self.summary,
            "step": self.step,
            "epoch": self.step / max(1, self.steps_per_epoch),
            "total_steps": self.total_steps,
            "seconds": round(self.seconds, 2),
            "device": str(self.device),
            "machine": machine_description(str(self.device)),
            "processes": self.dist.world_size,
            "train_config": {k: v for k, v in asdict(self.config).items() if k != "checkpoint_path"},
            "history": self.history,
        }
        was_training = self.model.training
        self.model.eval()
        try:
            with self._averaged() as live:
                state = self._train_state(epoch_sums or {})
                if live is not None:
                    state["raw"] = live
                return save_checkpoint(
                    path,
                    self.model,
                    dataset=spec.to_dict() if spec is not None else {},
                    label_names=list(getattr(data, "label_names", [])),
                    training=training,
                    train_state=state,
                    timeline=self.timeline.to_file() if self.timeline is not None else None,
                )
        finally:
            self.model.train(was_training)

    # --- the loop -----------------------------------------------------------------------------
    def _schedule_lr(self) -> None:
        """Set this step's learning rates, for a recipe with a schedule (a pure function of the step, so
        a resumed run follows the same one); recipes without one keep their optimizers' rates."""
        scale = self.recipe.lr_scale(self.step, self.total_steps)
        if scale is None:
            return
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * scale

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """This process's sample order for `epoch`, built once per epoch: rebuilding it for every step
        cost ~40 ms per step for 60,000 images, a fifth of a VAE step on a 2-core CPU."""
        if self._order is None or self._order[0] != epoch:
            self.sampler.set_epoch(epoch)
            self._order = (epoch, torch.tensor(list(self.sampler)))
        return self._order[1]

    def _batch(self, data, indices: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The batch's images, and {"labels": ...} for a recipe that trains on labels (else {})."""
        if hasattr(data, "get_batch"):
            images, labels = data.get_batch(indices)
        else:
            items = [data[int(i)] for i in indices]
            images = torch.stack([x for x, _ in items])
            labels = torch.stack([torch.as_tensor(y) for _, y in items]) if self.uses_labels else None
        extra = {"labels": labels.to(self.device, non_blocking=True)} if self.uses_labels else {}
        return images.to(self.device, non_blocking=True), extra

    @torch.no_grad()
    def sample_grid(self) -> Any:
        """A grid of samples from the fixed noise (or fixed seed), as (H, W, C) uint8; None for a model
        that cannot generate (a classifier)."""
        if not self.can_sample:
            return None
        was_training = self.model.training
        self.model.eval()
        try:
            with self._averaged():
                return self._grid()
        finally:
            self.model.train(was_training)

    def _grid(self) -> Any:
        if self._fixed_y is not None:  # a row per class
            images = self.model.decode(self._fixed_z.to(self.device), self._fixed_y.to(self.device))
            return to_grid(images, nrow=self._grid_rows)
        if self._fixed_z is not None:
            images = self.model.decode(self._fixed_z.to(self.device))
        else:  # PixelCNN: a fixed sampling seed stands in for fixed noise
            images = self.model.sample(self.grid_size, generator=torch.Generator().manual_seed(self.config.seed + 1))
        return to_grid(images)

    def real_images(self) -> torch.Tensor:
        """A fixed batch of up to 64 real images (validation, else training), on the device."""
        if self._real is None:
            data = self.val_data if self.val_data is not None and len(self.val_data) else self.train_data
            n = min(len(self._fixed_z) if self._fixed_z is not None else 64, len(data), 64)
            self._real = self._batch(data, torch.arange(n))[0]
        return self._real

    def _snapshot(self) -> Iterator[Event]:
        """Keep a timeline snapshot now, and say what its decoder makes of 16 fixed latents (and 8 real images)."""
        with self._averaged():
            if not self.timeline.add(self.step, self.model):
                return
            classes = None if self._fixed_y is None else self._fixed_y[:: self._grid_rows][:16].to(self.device)
            z = self._fixed_z[: len(classes) if classes is not None else 16].to(self.device)
            samples, recon = timeline_grids(self.model, z, self.real_images()[:8], classes)
        yield Snapshot(self.step, samples, recon)

    def check_collapse(self) -> str:
        """The collapse warning now (engines.training.collapse), "" when none; models without a latent: ""."""
        if not self.model.has_latent:
            return ""
        classes = None if self._fixed_y is None else self._fixed_y.to(self.device)
        with self._averaged():
            return (
                collapse_warning(self.model, self.real_images(), self._fixed_z.to(self.device), self.step, classes)
                or ""
            )

    def _health(self, step: int) -> Iterator[Event]:
        warning = self.check_collapse()
        if warning.split(":")[0] != self.warning.split(":")[0]:  # a new kind of collapse, or none any more
            self.warning = warning
            if warning:
                log.warning("step %d: %s", step, warning)
            yield Health(step, warning)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean validation losses per image (empty without validation data, for models that have none, or
        when a stop request arrives meanwhile: a stop should not wait for a long evaluation)."""
        if self.val_data is None or len(self.val_data) == 0 or not self.dist.is_main:
            return {}
        was_training = self.model.training
        self.model.eval()
        gen = torch.Generator(device=self.device).manual_seed(self.config.seed + 2)  # leaves training RNG alone
        sums: dict[str, float] = {}
        count = 0
        order = torch.arange(len(self.val_data))
        try:
            for b, start in enumerate(range(0, len(order), self.batch_size)):
                if self.config.eval_batches is not None and b >= self.config.eval_batches:
                    break
                if self._stop.is_set():
                    log.info("held-out evaluation skipped: stop requested")
                    return {}
                images, extra = self._batch(self.val_data, order[start : start + self.batch_size])
                for k, v in self.recipe.evaluate(self.model, images, gen, **extra).items():
                    sums[k] = sums.get(k, 0.0) + v
                count += images.shape[0]
        finally:
            self.model.train(was_training)
        return {k: v / count for k, v in sums.items()} if count else {}

    def run(self) -> Iterator[Event]:
        cfg = self.config
        resumed = self.step > 0
        if resumed and self._resume_rng is not None and self.dist.is_main:
            torch.set_rng_state(self._resume_rng)
            if self._resume_cuda_rng is not None and self.device.type == "cuda":  # a run resumed on a GPU again
                torch.cuda.set_rng_state(self._resume_cuda_rng, self.device)
        else:  # every rank draws its own noise (rank 0 of a fresh run draws what a single process would)
            torch.manual_seed(cfg.seed + 7919 * self.dist.rank + 104729 * self.step)
        yield Started(self.step, self.total_steps, self.steps_per_epoch, str(self.device), resumed)
        if self.steps_per_epoch == 0:
            yield Finished(self.step, "completed", 0.0)
            return

        run_start = time.perf_counter()
        seconds_before = self.seconds
        epoch_sums = dict(self._epoch_sums)
        epoch_start = time.perf_counter()
        rate = None
        reason = "completed"
        while self.step < self.total_steps:
            if any_rank([self._stop.is_set()], self.dist, self.device)[0]:
                reason = "stopped"
                break
            if not self._running.is_set():
                yield Paused(self.step)
                paused_at = time.perf_counter()
                self._running.wait()
                epoch_start += time.perf_counter() - paused_at
                run_start += time.perf_counter() - paused_at
                if self._stop.is_set():
                    reason = "stopped"
                    break
                yield Resumed(self.step)

            epoch, offset = divmod(self.step, self.steps_per_epoch)
            t0 = time.perf_counter()
            start = offset * self.batch_size
            images, extra = self._batch(self.train_data, self._epoch_order(epoch)[start : start + self.batch_size])
            self._schedule_lr()
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                losses = self.recipe.step(self.model, self.nets, images, self.optimizers, self.step, **extra)
            if any_rank([not finite(losses)], self.dist, self.device)[0]:
                bad = ", ".join(f"{k}={v}" for k, v in losses.items())
                msg = f"training diverged at step {self.step + 1} ({bad}); the last good checkpoint was kept"
                log.warning(msg)
                self.seconds = seconds_before + time.perf_counter() - run_start
                yield Diverged(self.step + 1, msg)
                yield Finished(self.step, "diverged", self.seconds)
                return
            if self._average is not None:
                self._update_average()
            self.step += 1
            dt = time.perf_counter() - t0
            instant = images.shape[0] / max(dt, 1e-9)
            rate = instant if rate is None else 0.9 * rate + 0.1 * instant
            for k, v in losses.items():
                epoch_sums[k] = epoch_sums.get(k, 0.0) + v
            epoch_sums["_steps"] = epoch_sums.get("_steps", 0) + 1
            yield StepDone(self.step, epoch, losses, rate)
            self.seconds = seconds_before + time.perf_counter() - run_start
            if self.timeline is not None and self.dist.is_main and self.timeline.due(self.step):
                yield from self._snapshot()

            epoch_done = self.step % self.steps_per_epoch == 0
            main = self.dist.is_main
            grids = main and self.can_sample
            if grids and cfg.sample_every and self.step % cfg.sample_every == 0 and not epoch_done:
                yield SampleGrid(self.step, self.sample_grid())
                yield from self._health(self.step)
            if epoch_done:
                steps = epoch_sums.pop("_steps", 1)
                means = {k: v / steps for k, v in epoch_sums.items()}
                val = self.evaluate()
                self.history.append({"epoch": epoch + 1, "step": self.step, "train": means, "val": val})
                yield EpochEnd(epoch, self.step, means, val, time.perf_counter() - epoch_start)
                if grids and cfg.sample_every is not None:
                    yield SampleGrid(self.step, self.sample_grid())
                    yield from self._health(self.step)
                epoch_sums, epoch_start = {}, time.perf_counter()
                if main and cfg.checkpoint_path:
                    yield CheckpointSaved(self.step, str(self.save()))
            elif main and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and cfg.checkpoint_path:
                yield CheckpointSaved(self.step, str(self.save(epoch_sums)))

        self.seconds = seconds_before + time.perf_counter() - run_start
        last_saved_here = self.step % self.steps_per_epoch == 0 and reason == "completed" and self.step > 0
        if self.dist.is_main and cfg.checkpoint_path and not last_saved_here:
            yield CheckpointSaved(self.step, str(self.save(epoch_sums)))
        if self.dist.enabled:  # free the DDP wrappers (and the gloo work they hold) before the group goes
            self.nets = self.recipe.networks(self.model, lambda module: module)
        yield Finished(self.step, reason, self.seconds)
