"""A run's training timeline: light snapshots of the decoder (a VAE's) or generator (a GAN's) weights.

Every `every` steps the trainer keeps the weights decode(z) depends on, as float16. The number kept is
capped (MAX_SNAPSHOTS, and MAX_BYTES in all): when a new one would pass the cap, every other snapshot
is dropped and the interval doubles, so the snapshots stay evenly spread over the run. The checkpoint
stores them as tensors under "timeline/<i>/<weight name>", with their steps in the metadata, and
checks them on load like the model's own weights (engines.checkpoint).

`apply_snapshot(model, snapshot)` loads one into a copy of the model, to decode the same latents with
the weights of that moment.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

PREFIX = "timeline/"
MAX_SNAPSHOTS = 20
MIN_SNAPSHOT_EVERY = 50  # steps: a short run keeps a few snapshots, not one per step
# float16 bytes of every snapshot together: a 28x28 VAE's decoder (width 32, fc 256) is 3.3 MB, so it keeps
# 9 snapshots; the tiny decoders of tests keep 20.
MAX_BYTES = 32 * 2**20


def decoder_keys(model) -> list[str]:
    """The state_dict names of the weights decode(z) depends on (empty for a model without them)."""
    prefixes = getattr(model, "decoder_prefixes", ())
    return [k for k in model.state_dict() if k.startswith(prefixes)] if prefixes else []


def snapshot_of(model) -> dict[str, torch.Tensor]:
    """The decoder's weights now, as float16 CPU tensors (integer buffers as they are)."""
    state = model.state_dict()
    return {
        k: (state[k].detach().to("cpu", torch.float16) if state[k].is_floating_point() else state[k].detach().cpu())
        .clone()
        .contiguous()
        for k in decoder_keys(model)
    }


def snapshot_bytes(snapshot: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in snapshot.values())


def capacity(snapshot_size: int) -> int:
    """How many snapshots of this size are kept: MAX_SNAPSHOTS, fewer for a large decoder, never < 4."""
    return max(4, min(MAX_SNAPSHOTS, MAX_BYTES // max(1, snapshot_size)))


@dataclass
class Timeline:
    every: int  # steps between snapshots now (doubles at each thinning)
    steps: list[int] = field(default_factory=list)
    snapshots: list[dict[str, torch.Tensor]] = field(default_factory=list)

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def add(self, step: int, model) -> bool:
        """Keep the model's decoder weights at `step` (a due step), thinning to the cap first when it is
        reached; after a thinning the step is kept only if the doubled interval still has it. True: kept."""
        snapshot = snapshot_of(model)
        if not snapshot:
            return False
        if len(self.snapshots) + 1 > capacity(snapshot_bytes(snapshot)):
            self.steps, self.snapshots = self.steps[1::2], self.snapshots[1::2]
            self.every *= 2
            if not self.due(step):
                return False
        self.steps.append(step)
        self.snapshots.append(snapshot)
        return True

    def to_file(self) -> dict:
        """What save_checkpoint(timeline=...) takes."""
        return {"every": self.every, "steps": list(self.steps), "snapshots": self.snapshots}

    @classmethod
    def from_file(cls, stored: dict | None, every: int) -> Timeline:
        if not stored:
            return cls(every)
        return cls(int(stored.get("every") or every), list(stored["steps"]), list(stored["snapshots"]))


def apply_snapshot(model, snapshot: dict[str, torch.Tensor]):
    """A copy of `model` (eval mode) decoding with `snapshot`'s weights."""
    twin = copy.deepcopy(model).eval()
    state = twin.state_dict()
    for key, value in snapshot.items():
        state[key].copy_(value.to(state[key].dtype))
    return twin


@torch.no_grad()
def timeline_grids(model, z: torch.Tensor, real: torch.Tensor | None = None, classes: torch.Tensor | None = None):
    """What a moment of the timeline shows: the fixed latents `z` decoded (a grid; a conditional model's
    with `classes`, (N, K)), and for a model with an encoder the real images `real` above their
    reconstructions, decode(mean of q(z|x)) (two rows); both (H, W, C) uint8, the second None without an
    encoder or images."""
    from .images import to_grid

    was = model.training
    model.eval()
    try:
        samples = to_grid(model.decode(z) if classes is None else model.decode(z, classes))
        recon = None
        if real is not None and len(real) and getattr(model, "has_encoder", False):
            mean, _ = model.encode(real)
            recon = to_grid(torch.cat([real, model.decode(mean)]), nrow=len(real))
        return samples, recon
    finally:
        model.train(was)
