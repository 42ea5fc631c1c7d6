"""Run by tests/test_crash_safety.py: writes the same checkpoint over and over, announcing each write."""

from __future__ import annotations

import sys

from engines.checkpoint import save_checkpoint
from engines.models import build_model

path = sys.argv[1]
# ~70 MB of weights, so that a write takes long enough to be killed in the middle of it
model = build_model(
    "vae", {"image_size": 64, "channels": 3, "latent_dim": 8, "width": 64, "fc_dim": 1024, "likelihood": "gaussian"}
)
for i in range(1000):
    print(f"writing {i}", flush=True)
    save_checkpoint(path, model, metrics={"version": i})
    print(f"written {i}", flush=True)
