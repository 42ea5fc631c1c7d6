"""Run under torchrun by tests/test_distributed.py: trains each model kind a few steps with DDP and
saves this rank's parameters, so the test can check that every rank holds the same weights."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from engines.training import TrainConfig, Trainer, create_model, distributed
from tests.helpers import TINY, shapes

out = Path(sys.argv[1])
ctx, device = distributed.setup("cpu")
try:
    for name, kind, extra in [
        ("vae", "vae", {}),
        ("wgan", "gan", {"loss": "wgan-gp", "d_steps": 2}),
        ("pixelcnn", "pixelcnn", {}),
        ("stylegan", "stylegan", {"image_size": 32, "channels": 1, "r1_every": 2}),
    ]:
        model = create_model(kind, {**TINY[kind], **extra}, seed=0)
        initial = {k: v.detach().clone() for k, v in model.named_parameters()}
        data = shapes(
            128, binarize="threshold" if kind == "pixelcnn" else "none", image_size=extra.get("image_size", 28)
        )
        trainer = Trainer(model, data, TrainConfig(max_steps=6, batch_size=8, sample_every=None), dist=ctx)
        events = list(trainer.run())
        # Parameters, not buffers: batchnorm running stats follow each rank's own last batch (DDP
        # broadcasts rank 0's buffers at every forward, and only rank 0's reach the checkpoint).
        state = {k: v.detach().cpu() for k, v in model.named_parameters()}
        changed = any(not torch.equal(initial[k], state[k]) for k in state)
        torch.save(
            {"state": state, "changed": changed, "steps": trainer.step, "shard": len(trainer.sampler)},
            out / f"{name}-rank{ctx.rank}.pt",
        )
finally:
    distributed.teardown()
