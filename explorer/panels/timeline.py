"""The Timeline tab: an opened checkpoint's training timeline (engines.timeline), scrubbed with a slider:
the same 16 fixed latents (seed 0) decoded by the decoder of each kept snapshot, then by the final
weights; for a VAE also 8 held-out images above their reconstructions (the final encoder's means,
decoded by each snapshot). "Compare with…" opens a second checkpoint of the same latent size beside it,
decoding the same latents (its own timeline too, when it has one).

From code (tests): `frames`/`strip` of each side, `open_comparison(path)` returns the Job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engines.checkpoint import load_checkpoint
from engines.data import DatasetError
from engines.images import to_grid
from engines.models.conditional import balanced_classes, one_hot
from engines.timeline import apply_snapshot, timeline_grids
from explorer.workers import Job, WorkError

from .panel_tools import laid_out
from .tab import Tab, latent_model_problem
from .timeline_view import TimelineStrip

LATENTS, IMAGES = 16, 8


def fixed_latents(dim: int) -> torch.Tensor:
    return torch.randn(LATENTS, dim, generator=torch.Generator().manual_seed(0))


def frames_of(ckpt, z: torch.Tensor, real: torch.Tensor | None, should_stop=lambda: False) -> list:
    """(label, samples, reconstructions) for each snapshot of `ckpt`'s timeline, then its final weights.
    Reconstructions decode the final encoder's means of `real` with each snapshot's decoder."""
    model = ckpt.model  # not changed: each snapshot decodes in a copy
    z = z.to(model.device)
    real = None if real is None else real.to(model.device)
    frames = []
    # A conditional model draws the latents with every class in turn (a row of the grid per class run).
    k = model.num_classes
    classes = one_hot(balanced_classes(len(z), k), k).to(model.device) if k else None
    timeline = ckpt.timeline or {"steps": [], "snapshots": []}
    mean = None
    if real is not None and model.has_encoder:
        with torch.no_grad():
            mean = model.encode(real)[0]
    for step, snapshot in zip(timeline["steps"], timeline["snapshots"], strict=True):
        if should_stop():
            raise WorkError("stopped")
        twin = apply_snapshot(model, snapshot)
        samples, _ = timeline_grids(twin, z, classes=classes)
        recon = None
        if mean is not None:
            with torch.no_grad():
                recon = to_grid(torch.cat([real, twin.decode(mean)]), nrow=len(real))
        frames.append((f"step {step}", samples, recon))
    samples, recon = timeline_grids(model, z, real, classes)
    final = ckpt.training.get("step") if ckpt.training else None
    frames.append((f"final (step {final})" if final is not None else "final", samples, recon))
    return frames


def frames_job(job, ckpt, z: torch.Tensor, real: torch.Tensor | None) -> list:
    return frames_of(ckpt, z, real, should_stop=lambda: job.cancelled)


def comparison_job(job, path: str, latent_dim: int, z: torch.Tensor, real: torch.Tensor | None):
    other = load_checkpoint(path)
    if not other.model.has_latent or other.model.latent_dim != latent_dim:
        raise WorkError(
            f"{Path(path).name} has a latent of size {other.model.latent_dim}, not {latent_dim}: "
            "the same latents cannot go into both"
        )
    if real is not None and other.model.image_shape != tuple(real.shape[1:]):
        real = None  # another image shape: samples only
    return other, frames_of(other, z, real, should_stop=lambda: job.cancelled)


class TimelinePanel(Tab):
    def __init__(self, state, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.frames_slot = self.job_slot()
        self.compare_slot = self.job_slot()
        self.other = None
        content, lay = laid_out(QVBoxLayout, margins=None)
        header = QHBoxLayout()
        self.status = QLabel()
        self.status.setWordWrap(True)
        header.addWidget(self.status, 1)
        self.compare_button = QPushButton("Compare with…")
        self.compare_button.setToolTip("Open a second checkpoint of the same latent size beside this one")
        header.addWidget(self.compare_button)
        lay.addLayout(header)
        sides = QHBoxLayout()
        self.strip = TimelineStrip()
        self.other_strip = TimelineStrip("Open a second checkpoint to compare it on the same latents")
        sides.addWidget(self.strip, 1)
        sides.addWidget(self.other_strip, 1)
        lay.addLayout(sides, 1)
        self.compare_button.clicked.connect(self._choose_comparison)
        self.set_content(content)

    def model_problem(self) -> str | None:
        return latent_model_problem(self.state)

    def reset_for_model(self) -> None:
        self.strip.clear()
        self.other_strip.clear()
        self.other = None
        self.other_strip.title.setText("Open a second checkpoint to compare it on the same latents")
        ckpt = self.state.checkpoint
        if ckpt is None or not self.usable:
            return
        name = ckpt.path.name if ckpt.path else "this model"
        steps = (ckpt.timeline or {}).get("steps", [])
        self.strip.title.setText(
            f"{name}: {len(steps)} snapshots (steps {steps[0]}-{steps[-1]}) and the final weights"
            if steps
            else f"{name} carries no training timeline (trained before timelines, or not by this app): final weights only"
        )

    def _inputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = fixed_latents(self.state.latent_dim)
        real = None
        if self.state.model.has_encoder:
            try:
                real = self.state.dataset(train=False).get_batch(np.arange(IMAGES))[0]
            except (DatasetError, RuntimeError, IndexError):
                real = None
        return z, real

    def update_view(self) -> None:
        if self.strip.frames or self.frames_slot.busy():
            return
        self.status.setText("Decoding the timeline…")
        z, real = self._inputs()
        self.frames_slot.start(
            frames_job, self.state.checkpoint, z, real, on_result=self._shown, on_failed=self.status.setText
        )

    def _shown(self, frames: list) -> None:
        self.strip.set_frames(frames)
        self.strip.slider.setValue(0)
        self.status.setText(
            "The same 16 latents (seed 0) decoded by each snapshot's weights"
            + (", and 8 held-out images above their reconstructions." if frames[0][2] is not None else ".")
        )

    def _choose_comparison(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Compare with a checkpoint", "", "Checkpoints (*.safetensors)")
        if path:
            self.open_comparison(path)

    def open_comparison(self, path: str | Path) -> Job | None:
        if not self.usable:
            return None
        z, real = self._inputs()
        self.other_strip.title.setText(f"Opening {Path(path).name}…")
        return self.compare_slot.start(
            comparison_job,
            str(path),
            self.state.latent_dim,
            z,
            real,
            on_result=self._compared,
            on_failed=lambda message: self.other_strip.title.setText(f"Cannot compare: {message}"),
        )

    def _compared(self, value) -> None:
        self.other, frames = value
        self.other_strip.set_frames(frames)
        name = self.other.path.name if self.other.path else "the other model"
        self.other_strip.title.setText(
            f"{name}, on the same latents ({len(frames) - 1} snapshots and the final weights)"
        )
