"""Training throughput: the app's Trainer against a plain PyTorch loop of the same model and batch.

VAE (latent 16) and DCGAN (latent 64), default widths, batch 128, on MNIST-shaped data: 60,000
procedural shapes at 28 x 28 x 1 (a few thousand rendered once and tiled, in memory as uint8 like
MNIST, so no files are needed and neither side pays for rendering). Same model (same seed), same
optimizer settings (the recipe's), same batch size, same number of steps. The Trainer
(`engines.training.Trainer`, no sample grids, no checkpoints) is timed from the StepDone of the
last warm-up step to that of the last step; the plain loop (a random permutation, index the uint8
tensor, /255, forward, backward, Adam step, one .item()) over as many steps. The two alternate,
each with a fresh copy of the model; the ratio is the median over rounds.

Mixed precision: the Trainer with `precision="bf16"` against the same Trainer in float32, on the
bundled PixelCNN's configuration (hidden 32, 10 layers, batch 64) and binarized MNIST-shaped data,
alternating; the speed-up is the median ratio of images/s. It depends on the CPU having bf16 units.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

from . import (
    Row,
    median,
    module_main,
)

TARGET_OVERHEAD = 0.05
BATCH = 128
# name: (kind, config, timed steps); the DCGAN's steps are ~5x slower, so it gets fewer of them.
MODELS = {"VAE latent 16": ("vae", {"latent_dim": 16}, 50), "DCGAN latent 64": ("gan", {"latent_dim": 64}, 20)}


# --- throughput ------------------------------------------------------------------------------------
def mnist_shaped_shapes(length: int = 60_000, rendered: int = 4096):
    """An in-memory uint8 dataset of `length` 28 x 28 x 1 shapes images (`rendered` distinct ones)."""
    import torch

    from engines.data import DataSpec
    from engines.data.base import TensorImageDataset
    from engines.data.shapes import ShapesDataset

    spec = DataSpec("shapes", image_size=28, channels=1)
    source = ShapesDataset(spec, train=True, length=rendered)
    images, _ = source.get_batch(range(rendered))
    pixels = (images * 255).round().to(torch.uint8)
    pixels = pixels.repeat((length + rendered - 1) // rendered, 1, 1, 1)[:length].contiguous()
    return TensorImageDataset(spec, pixels, torch.zeros((length, 0)), [], {})


def trainer_images_per_s(model, data, warmup: int, steps: int, batch: int = BATCH, precision: str = "fp32") -> float:
    from engines.training import StepDone
    from engines.training.trainer import TrainConfig, Trainer

    config = TrainConfig(
        epochs=1,
        max_steps=warmup + steps,
        batch_size=batch,
        sample_every=None,
        device="cpu",
        seed=0,
        precision=precision,
    )
    trainer = Trainer(model, data, config)
    start = end = None
    for event in trainer.run():
        if isinstance(event, StepDone):
            if event.step == warmup:
                start = time.perf_counter()
            elif event.step == warmup + steps:
                end = time.perf_counter()
    return steps * batch / (end - start)


def plain_images_per_s(model, data, warmup: int, steps: int) -> float:
    """The loop one would write by hand around the same model and losses."""
    import torch

    from engines.training.recipes import RECIPES

    torch.manual_seed(0)
    pixels = data._images
    order = torch.randperm(len(pixels))
    optimizers = RECIPES[model.kind].optimizers(model, None)  # the recipe's settings: Adam, its lr and betas
    model.train()

    def update(optimizer, loss) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = None
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        x = pixels[order[step * BATCH : (step + 1) * BATCH]].float().div_(255)
        if model.kind == "vae":
            loss = model(x).loss(model.config.beta)
            update(optimizers["main"], loss)
        else:
            z = torch.randn(BATCH, model.config.latent_dim)
            loss = model.discriminator_loss(x, z)
            update(optimizers["discriminator"], loss)
            update(optimizers["generator"], model.generator_loss(torch.randn(BATCH, model.config.latent_dim)))
        loss.item()
    return steps * BATCH / (time.perf_counter() - start)


def throughput_rows(quick: bool) -> list[Row]:
    from engines.training.trainer import create_model

    data = mnist_shaped_shapes()
    rows = []
    for name, (kind, config, steps) in MODELS.items():
        rounds, warmup = 2, (2 if quick else 3)
        steps = max(5, steps // 4) if quick else steps
        fresh = create_model(kind, {"image_size": 28, "channels": 1, **config}, seed=0)
        app, plain = [], []
        for _ in range(rounds):
            plain.append(plain_images_per_s(copy.deepcopy(fresh), data, warmup, steps))
            app.append(trainer_images_per_s(copy.deepcopy(fresh), data, warmup, steps))
        ratios = [a / p for a, p in zip(app, plain)]
        overhead = 1 - median(ratios)
        rows.append(
            Row(
                "Training throughput",
                f"{name}, batch {BATCH}, {steps} steps x {rounds} rounds",
                f"Trainer {median(app):.0f} img/s",
                f"plain loop {median(plain):.0f} img/s",
                f"{median(ratios):.3f} (overhead {overhead:+.1%})",
                "overhead <= 5%",
                overhead <= TARGET_OVERHEAD,
            )
        )
    return rows


def precision_rows(quick: bool) -> list[Row]:
    from engines.training.trainer import create_model

    data = mnist_shaped_shapes(length=4096)
    data._images = (data._images > 127).to(data._images.dtype) * 255  # binarized, as the PixelCNN trains
    batch, rounds, warmup, steps = 64, 2, 1, (3 if quick else 8)
    fresh = create_model(
        "pixelcnn", {"image_size": 28, "channels": 1, "levels": 2, "hidden": 32, "n_layers": 10}, seed=0
    )
    fast, exact = [], []
    for _ in range(rounds):
        exact.append(trainer_images_per_s(copy.deepcopy(fresh), data, warmup, steps, batch, "fp32"))
        fast.append(trainer_images_per_s(copy.deepcopy(fresh), data, warmup, steps, batch, "bf16"))
    speedup = median([f / e for f, e in zip(fast, exact)])
    return [
        Row(
            "Mixed precision",
            f"PixelCNN 32x10 layers, batch {batch}, {steps} steps x {rounds} rounds",
            f"bf16 autocast {median(fast):.0f} img/s",
            f"float32 {median(exact):.0f} img/s",
            f"{speedup:.2f}x faster",
        )
    ]


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    return throughput_rows(quick) + precision_rows(quick)


if __name__ == "__main__":
    raise SystemExit(module_main("training", run))
