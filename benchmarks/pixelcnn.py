"""PixelCNN sampling of one 28 x 28 binarized image: naive vs cached, at batch 1 and 16.

Model: the bundled 28 x 28 x 1, 2-level PixelCNN when there is one, else an untrained one of the
default size (hidden 64, 10 gated layers, 7 x 7 first kernel, 3 x 3 kernels).

- Cached (`sample_steps(..., cached=True)`, the default): a whole image, all 784 steps, timed end to
  end (draining the step generator, as the GUI and `sample` do).
- Naive (`cached=False`): every step runs the full network over the whole 28 x 28 image, so every
  step costs the same; a whole image at batch 16 would take many minutes here, so a few steps are
  timed (after one warm-up step) and the per-step median is multiplied by 784. The note says so.
Both samplers are checked to draw the same values on the steps the naive one ran.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import Row, median, models_of, module_main

TARGET_SPEEDUP = 10.0


def default_model(paths: dict[str, Path]):
    import torch  # noqa: F401

    from engines.checkpoint import load_checkpoint
    from engines.training.trainer import create_model

    for path in models_of(paths, ("pixelcnn",)).values():
        model = load_checkpoint(path).model
        c = model.config
        if (c.image_size, c.channels, c.levels) == (28, 1, 2):
            return model.eval(), path.stem
    model = create_model("pixelcnn", {"image_size": 28, "channels": 1, "levels": 2}, seed=0)
    return model.eval(), "pixelcnn (default size, untrained)"


def naive_step_seconds(model, batch: int, steps: int) -> tuple[float, list[np.ndarray]]:
    import torch

    it = model.sample_steps(batch, generator=torch.Generator().manual_seed(0), cached=False)
    values = [next(it).value]  # warm-up step
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step = next(it)
        times.append(time.perf_counter() - t0)
        values.append(step.value)
    it.close()
    return median(times), values


def cached_image_seconds(model, batch: int, repeat: int) -> tuple[float, list[np.ndarray]]:
    import torch

    times, values = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        values = [s.value for s in model.sample_steps(batch, generator=torch.Generator().manual_seed(0))]
        times.append(time.perf_counter() - t0)
    return median(times), values


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    model, name = default_model(paths)
    c = model.config
    pixels = c.image_size * c.image_size * c.channels
    rows = []
    for batch in (1, 16):
        naive_steps = (4 if quick else 12) if batch == 1 else (2 if quick else 6)
        cached, cached_values = cached_image_seconds(model, batch, 1 if quick else 3)
        per_step, naive_values = naive_step_seconds(model, batch, naive_steps)
        same = all(np.array_equal(a, b) for a, b in zip(naive_values, cached_values))
        naive = per_step * pixels
        speedup = naive / cached
        rows.append(
            Row(
                "PixelCNN sampling",
                f"{name}, hidden {c.hidden} x {c.n_layers} layers, batch {batch}",
                f"cached {cached:.2f} s/image batch ({cached / pixels * 1e3:.2f} ms/step)",
                f"naive {naive:.0f} s ({per_step * 1e3:.0f} ms/step x {pixels}; {naive_steps} steps timed)",
                f"{speedup:.0f}x faster" + ("" if same else " (VALUES DIFFER)"),
                ">= 10x at batch 16" if batch == 16 else "",
                (speedup >= TARGET_SPEEDUP and same) if batch == 16 else None,
            )
        )
    return rows


if __name__ == "__main__":
    raise SystemExit(module_main("pixelcnn", run))
