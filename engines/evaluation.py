"""Held-out metrics of a checkpoint: VAE test ELBO and importance-weighted NLL; PixelCNN NLL."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from .checkpoint import Checkpoint
from .data import DataSpec, load_dataset
from .models import VAE, GatedPixelCNN

Progress = Callable[[int, int], None]  # (images done, images in all)


def heldout_dataset(ckpt: Checkpoint, data_root: str | None = None, binarize: str | None = None):
    """The held-out split of the data the checkpoint was trained on (root and binarization overridable)."""
    spec = DataSpec.from_dict(ckpt.dataset) if ckpt.dataset else None
    if spec is None:
        raise ValueError("the checkpoint does not say which dataset it was trained on")
    changes: dict[str, Any] = {}
    if data_root is not None:
        changes["root"] = data_root
    if binarize is not None:
        changes["binarize"] = binarize
    return load_dataset(replace(spec, **changes), train=False)


@torch.no_grad()
def evaluate(ckpt: Checkpoint, dataset, k: int = 100, limit: int | None = None, batch_size: int = 100,
             seed: int = 0, progress: Progress | None = None) -> dict[str, Any]:
    """Metrics in nats per image (and bits/dim for the PixelCNN) over the first `limit` test images.

    Sampling uses a generator seeded with `seed`, so the same call gives the same numbers.
    """
    model = ckpt.model.eval()
    n = len(dataset) if limit is None else min(limit, len(dataset))
    spec = getattr(dataset, "spec", None)
    result: dict[str, Any] = {
        "dataset": spec.name if spec else None,
        "split": "test",
        "images": n,
        "binarize": spec.binarize if spec else None,
    }
    gen = torch.Generator(device=model.device).manual_seed(seed)
    sums: dict[str, float] = {}
    start = time.perf_counter()
    for begin in range(0, n, batch_size):
        idx = torch.arange(begin, min(begin + batch_size, n))
        images, _ = dataset.get_batch(idx)
        images = images.to(model.device)
        for key, value in _batch_metrics(model, images, k, gen).items():
            sums[key] = sums.get(key, 0.0) + value
        if progress:
            progress(int(idx[-1]) + 1, n)
    result.update({key: value / n for key, value in sums.items()})
    if isinstance(model, GatedPixelCNN):
        result["bits_per_dim"] = model.bits_per_dim(result["nll"])
    result["seconds"] = round(time.perf_counter() - start, 1)
    if isinstance(model, VAE):
        result["iw_k"] = k
        result["active_units"] = active_units(model, dataset, n=min(n, 1000))
    return result


def _batch_metrics(model, images: torch.Tensor, k: int, gen: torch.Generator) -> dict[str, float]:
    if isinstance(model, VAE):
        terms = model.elbo(images, generator=gen)
        neg_elbo = terms.recon + terms.kl.sum(1)
        return {
            "elbo": -neg_elbo.sum().item(),
            "neg_elbo": neg_elbo.sum().item(),
            "recon": terms.recon.sum().item(),
            "kl": terms.kl.sum().item(),
            "iw_nll": model.iw_nll(images, k=k, generator=gen).sum().item(),
        }
    if isinstance(model, GatedPixelCNN):
        return {"nll": -model.log_prob(model.quantize(images)).sum().item()}
    raise ValueError(
        f"no held-out likelihood for a {model.kind}: GAN metrics (Inception Score, Frechet distance) "
        "need a trained classifier, which this version does not ship yet"
    )


@torch.no_grad()
def active_units(model: VAE, dataset, n: int = 1000, threshold: float = 0.01) -> int:
    """Latent dimensions whose encoder mean varies across data: Cov_x(E_q[z_d]) > threshold (Burda et al.)."""
    images, _ = dataset.get_batch(torch.arange(min(n, len(dataset))))
    mu, _ = model.encode(images.to(model.device))
    return int((mu.var(dim=0) > threshold).sum().item())
