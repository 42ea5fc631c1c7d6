"""From images to latents, and the statistics of a latent space (Qt-free).

- `project_to_latent`: find z with decode(z) close to an image by gradient descent on z (GAN
  inversion; it works for any model with a differentiable `decode`).
- `kl_per_dimension`: what the explorer needs to draw per-dimension KL indicators (the means and
  log-variances come from engines.latent.encode_dataset).
- `image_to_tensor`: an image file as a model input.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# A dimension whose mean KL(q(z_d|x) || p(z_d)) is below this carries (almost) no information:
# the encoder ignores it and the decoder learned to as well (posterior collapse).
ACTIVE_KL_NATS = 0.01


@dataclass(frozen=True)
class Projection:
    z: np.ndarray  # (D,) the latent found
    mse: float  # mean squared pixel error of decode(z) against the target, at z
    steps: int  # optimisation steps taken
    stopped: bool  # True when should_stop() ended it early
    losses: list[float]  # the objective after every step


def project_to_latent(
    model,
    image: torch.Tensor,
    steps: int = 200,
    lr: float = 0.05,
    callback: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    prior_weight: float = 1e-3,
    z0: torch.Tensor | np.ndarray | None = None,
    candidates: int = 16,
    seed: int = 0,
) -> Projection:
    """Minimise mean((decode(z) - image)^2) + prior_weight * mean(z^2) over z with Adam.

    The prior term (the negative log-density of N(0, I), up to scale) keeps z where the model was
    trained, so the result decodes to a plausible image rather than an adversarial fit.
    `image` is (C, H, W) or (1, C, H, W) in [0, 1]. `callback(step, loss)` runs after each step;
    `should_stop()` is checked before each step (a thread cannot be killed, so work stops itself).
    The model's parameters are neither changed nor given gradients: only z is differentiated.
    Without `z0` the start is the best of `candidates` draws from the prior (seeded by `seed`):
    z = 0 can be a dead point (every ReLU of a bias-free generator at 0 has zero gradient).
    """
    device = model.device
    target = image.to(device=device, dtype=torch.float32)
    if target.dim() == 3:
        target = target.unsqueeze(0)
    expected = (1, *model.image_shape)
    if tuple(target.shape) != expected:
        raise ValueError(f"image has shape {tuple(target.shape)}; the model makes {expected}")
    if not getattr(model, "can_project", False):
        raise ValueError(
            f"a {getattr(model, 'kind', type(model).__name__)} has no differentiable decode to project through"
        )
    dim = int(model.latent_dim)
    if z0 is None:
        start = _best_start(model, target, dim, candidates, seed, prior_weight)
    else:
        start = torch.as_tensor(np.asarray(z0), dtype=torch.float32).reshape(dim)
    z = start.to(device).unsqueeze(0).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    losses: list[float] = []
    stopped = False
    with torch.enable_grad():
        for step in range(steps):
            if should_stop is not None and should_stop():
                stopped = True
                break
            loss = F.mse_loss(model.decode(z), target) + prior_weight * z.pow(2).mean()
            (grad,) = torch.autograd.grad(loss, z)  # grads of z only; the model stays untouched
            z.grad = grad
            optimizer.step()
            losses.append(float(loss.detach()))
            if callback is not None:
                callback(step + 1, losses[-1])
    with torch.no_grad():
        mse = float(F.mse_loss(model.decode(z), target))
    return Projection(z.detach().cpu().numpy().reshape(-1).astype(np.float32), mse, len(losses), stopped, losses)


@torch.no_grad()
def _best_start(model, target: torch.Tensor, dim: int, candidates: int, seed: int, prior_weight: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if hasattr(model, "random_latents"):  # the model's own prior (a style space's: mapped z, not N(0, I))
        zs = model.random_latents(max(1, candidates), generator=gen).detach().cpu().reshape(-1, dim)
    else:
        zs = torch.randn((max(1, candidates), dim), generator=gen)
    images = model.decode(zs.to(target.device))
    scores = (images - target).pow(2).flatten(1).mean(1).cpu() + prior_weight * zs.pow(2).mean(1)
    return zs[int(scores.argmin())]


# --- statistics of the encoder ------------------------------------------------------------------
def kl_per_dimension(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean over images of KL(N(mu_d, sigma_d^2) || N(0, 1)) for each dimension d, (D,) nats."""
    kl = 0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar.astype(np.float64)) - 1.0 - logvar)
    return kl.mean(axis=0).astype(np.float32)


# --- image files ---------------------------------------------------------------------------------
def image_to_tensor(path: str | os.PathLike, image_size: int, channels: int) -> torch.Tensor:
    """An image file as a (C, S, S) float tensor in [0, 1]: centre-cropped to a square, resized,
    converted to gray (1 channel) or RGB (3). Raises OSError/ValueError for unreadable files."""
    with Image.open(path) as opened:
        image = opened.convert("L" if channels == 1 else "RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.LANCZOS)
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()
