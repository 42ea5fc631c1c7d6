"""Optional TensorBoard logging of a run's events (needs the `tensorboard` package)."""

from __future__ import annotations

from .events import EpochEnd, Event, SampleGrid, StepDone


class TensorBoardLogger:
    """Writes losses, images/s, held-out losses and sample grids as TensorBoard events."""

    def __init__(self, logdir: str, every: int = 10) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # the package is optional
            raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard") from error
        self.writer = SummaryWriter(logdir)
        self.every = every

    def log(self, event: Event) -> None:
        if isinstance(event, StepDone) and event.step % self.every == 0:
            for name, value in event.losses.items():
                self.writer.add_scalar(f"train/{name}", value, event.step)
            self.writer.add_scalar("train/images_per_s", event.images_per_s, event.step)
        elif isinstance(event, EpochEnd):
            for name, value in event.val_losses.items():
                self.writer.add_scalar(f"val/{name}", value, event.step)
        elif isinstance(event, SampleGrid):
            self.writer.add_image("samples", event.grid, event.step, dataformats="HWC")

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
