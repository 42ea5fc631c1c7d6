"""Collapse warnings: a VAE whose posterior collapsed, a GAN whose samples collapsed.

- Posterior collapse: KL(q(z_d|x) || N(0, 1)) near 0 on every latent dimension d (below
  KL_FLOOR nats, averaged over real images): the encoder says nothing about the image, so the
  decoder ignores z and every z decodes to about the same image.
- Mode collapse: the mean pairwise distance of a grid of samples from fixed noise is below
  DIVERSITY_FLOOR of that of as many real images: the generator makes nearly one image.

`collapse_warning` gives a one-line explanation, or None; the trainer checks with every sample grid
(from step GRACE_STEPS on).
"""

from __future__ import annotations

import numpy as np
import torch

KL_FLOOR = 0.01  # nats per latent dimension
DIVERSITY_FLOOR = 0.1  # samples' mean pairwise distance / real images'
# Fresh models look collapsed: a new DCGAN (weights from N(0, 0.02)) draws nearly one grey image (0.1% of
# real images' diversity; 7% after 10 steps and 21% after 20 on 32x32 photos), and a new VAE's encoder
# says almost nothing (KL below 0.004 nats per dimension at step 4; 1.2 at step 20). So runs are checked
# from this step on.
GRACE_STEPS = 100


@torch.no_grad()
def kl_per_dimension(model, images: torch.Tensor) -> np.ndarray:
    """Mean KL(q(z_d|x) || N(0, 1)) over `images`, per latent dimension (D,), nats."""
    mu, logvar = model.encode(images)
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(0).float().cpu().numpy()


def posterior_collapsed(kl: np.ndarray, floor: float = KL_FLOOR) -> bool:
    """Every dimension's KL is below `floor` nats."""
    return bool(len(kl)) and bool(np.all(np.asarray(kl) < floor))


def mean_pairwise_distance(images: torch.Tensor) -> float:
    """Mean L2 distance between distinct pairs of images (N >= 2)."""
    flat = images.detach().reshape(images.shape[0], -1).double()
    n = flat.shape[0]
    if n < 2:
        return 0.0
    return float(torch.cdist(flat, flat).sum() / (n * (n - 1)))


def diversity_ratio(samples: torch.Tensor, real: torch.Tensor) -> float:
    """The samples' mean pairwise distance over that of real images (about 1 for a healthy GAN)."""
    reference = mean_pairwise_distance(real)
    return mean_pairwise_distance(samples) / reference if reference > 0 else float("nan")


@torch.no_grad()
def collapse_warning(
    model, real: torch.Tensor, z: torch.Tensor | None, step: int | None = None, classes: torch.Tensor | None = None
) -> str | None:
    """One line on a collapse seen in `model` on the real images `real` (N, C, H, W) and the fixed
    latents `z` (N, D) (GANs; a conditional one's with their classes (N, K)), or None; from step
    GRACE_STEPS on when `step` is given. Models without a latent are not checked."""
    if step is not None and step < GRACE_STEPS:
        return None
    was = model.training
    model.eval()
    try:
        if getattr(model, "has_encoder", False):
            kl = kl_per_dimension(model, real)
            if posterior_collapsed(kl):
                return (
                    f"Posterior collapse: KL is below {KL_FLOOR:g} nats on all {len(kl)} latent dimensions "
                    f"(largest {kl.max():.2g}), so the decoder ignores z; lower beta or the learning rate, or "
                    "train longer with a KL warm-up."
                )
        elif getattr(model, "has_latent", False) and z is not None:
            n = min(len(z), len(real))
            y = {} if classes is None else {"classes": classes[:n].to(real.device)}
            ratio = diversity_ratio(model.decode(z[:n].to(real.device), **y), real[:n])
            if ratio < DIVERSITY_FLOOR:
                return (
                    f"Mode collapse: samples are {100 * ratio:.0f}% as diverse as real images (mean pairwise "
                    "distance), so the generator makes nearly one image; lower the learning rate, or try "
                    "--gan-loss wgan-gp."
                )
        return None
    finally:
        model.train(was)
