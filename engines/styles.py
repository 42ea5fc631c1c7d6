"""The latent spaces of a style-based generator, style mixing and perceptual path length (Qt-free).

A style model (engines.models.StyleGAN, `has_styles`) has three spaces a user can work in:

- **Z**: z ~ N(0, I), the model itself (decode(z) = G(mapping(z))).
- **W**: the mapping's output w, one w for every layer.
- **W+**: one w per layer, (n_styles, w_dim), flattened to one vector of n_styles * w_dim values.

`StyleSpace(model, "W" | "W+")` is a model whose latents are W or W+ vectors, so every tool written
for "a model with decode(latent) and random_latents" (sliders, maps, interpolation, arithmetic,
directions, projection, the clean-edit metric) works in W unchanged. Its latents are *normalised*:
u = (w - mean_w) / sigma, with mean_w the model's tracked mean and sigma one scalar, the root mean
per-dimension standard deviation of w over 4096 seeded prior draws. An affine change of coordinates,
so lines, planes, means and linear boundaries are those of W itself; it puts the origin at the mean-w
image (reset = the mean face) and makes one unit mean about one standard deviation, as in Z, so the
sliders' +-3 range, the projection's prior term and the edit distances mean the same in both spaces.
`psi` (decode-time truncation, Karras et al. 2019) scales u toward the origin: psi = 0 is the mean-w
image whatever u is.

Perceptual path length (Karras et al. 2019, section 4.1): the mean of d(G(p(t)), G(p(t + eps))) / eps^2
over random pairs of latents and t ~ U(0, 1) ("full" paths, not end points only), p a slerp of
(normalised) z in Z and a lerp of w in W, d the squared Euclidean distance between feature vectors
(here: a classifier's penultimate features, not VGG/LPIPS); as in the paper, the values below the
1st and above the 99th percentile are dropped before averaging.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from .models.view import ModelView

SPACES = ("Z", "W", "W+")
SIGMA_SAMPLES = 4096
PPL_EPSILON = 1e-4


def has_styles(model: Any) -> bool:
    """The model is a style-based generator (mapping, synthesis, W+)."""
    return bool(getattr(model, "has_styles", False))


def available_spaces(model: Any) -> tuple[str, ...]:
    """The spaces a user may work in with `model`: Z, W and W+ for a style model, else Z alone."""
    return SPACES if has_styles(model) else ("Z",)


class StyleSpace(ModelView):
    """A style model seen through W or W+: latents u (normalised, see the module docstring), decode(u)
    the image. Anything not defined here (kind, config, image_shape, ...) is the model's own."""

    has_latent = can_project = can_sample = True
    has_encoder = is_autoregressive = False
    has_styles = False  # a space is not itself a style model (its latents are already W)
    sample_options = ("truncation",)

    def __init__(self, model: nn.Module, space: str = "W", psi: float = 1.0) -> None:
        if not has_styles(model):
            raise ValueError(f"a {getattr(model, 'kind', type(model).__name__)} has no W space")
        if space not in ("W", "W+"):
            raise ValueError(f"space must be W or W+, not {space!r}")
        super().__init__(model)
        self.space = space
        self.psi = float(psi)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            w = model.mapping(torch.randn(SIGMA_SAMPLES, model.config.latent_dim).to(model.device)).double()
        self.sigma = float(w.var(dim=0).mean().sqrt()) or 1.0

    @property
    def latent_dim(self) -> int:
        n = self.base.n_styles if self.space == "W+" else 1
        return n * self.base.w_dim

    # --- coordinates --------------------------------------------------------------------------------
    def w_plus(self, u: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim) normalised latents -> W+ (B, n_styles, w_dim), truncated by psi."""
        u = u.reshape(u.shape[0], -1, self.base.w_dim)
        w = self.base.mean_w + (self.psi * self.sigma) * u
        return w if self.space == "W+" else self.base.broadcast(w[:, 0])

    def to_w(self, u: torch.Tensor) -> torch.Tensor:
        """Latents (B, latent_dim) -> untruncated w (B, w_dim) in W, W+ (B, n_styles, w_dim) in W+."""
        w = self.base.mean_w + self.sigma * u.reshape(u.shape[0], -1, self.base.w_dim)
        return w[:, 0] if self.space == "W" else w

    def from_w(self, w: torch.Tensor) -> torch.Tensor:
        """w (B, w_dim) or W+ (B, n_styles, w_dim) -> this space's latents (B, latent_dim), untruncated.
        From W+ into W: the mean of the layers' w."""
        if w.ndim == 3 and self.space == "W":
            w = w.mean(dim=1)
        elif w.ndim == 2 and self.space == "W+":
            w = self.base.broadcast(w)
        return ((w - self.base.mean_w) / self.sigma).reshape(w.shape[0], self.latent_dim)

    def from_z(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim of Z) -> u = normalised mapping(z)."""
        return self.from_w(self.base.mapping(z))

    # --- the model protocol ----------------------------------------------------------------------------
    def decode(self, u: torch.Tensor) -> torch.Tensor:
        return self.base.synthesize(self.w_plus(u))

    def random_latents(
        self, n: int, generator: torch.Generator | None = None, truncation: float | None = None
    ) -> torch.Tensor:
        """u of w = mapping(z), z ~ N(0, I): the prior of this space (times `truncation`, psi, when given)."""
        z = torch.randn((n, self.base.config.latent_dim), generator=generator).to(self.device)
        with torch.no_grad():
            u = self.from_z(z)
        return u if truncation is None else u * float(truncation)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, truncation: float | None = None) -> torch.Tensor:
        return self.decode(self.random_latents(n, generator, truncation))

    def latent_weight(self) -> torch.Tensor:
        """The style affines' weights stacked, (sum of channels, w_dim), in normalised units (SeFa in W, as
        Shen & Zhou 2021 do for StyleGAN); in W+ the block diagonal over layers is left to the caller:
        W+ gets the same matrix tiled (a direction moves every layer alike)."""
        mods = [m for m in self.base.synthesis.modules() if hasattr(m, "affine")]
        a = torch.cat([m.affine.effective_weight() for m in mods]) * self.sigma
        return a.repeat(1, self.base.n_styles) / math.sqrt(self.base.n_styles) if self.space == "W+" else a


def space_model(model: Any, space: str, psi: float = 1.0) -> Any:
    """`model` itself for Z, else StyleSpace(model, space, psi)."""
    return model if space == "Z" else StyleSpace(model, space, psi)


def space_latent_dim(model: Any, space: str) -> int:
    """How many values a latent of `space` has for `model` (raises ValueError for an unavailable space)."""
    if space not in available_spaces(model):
        raise ValueError(f"a {getattr(model, 'kind', 'model')} has no {space} space (it has {available_spaces(model)})")
    if space == "Z":
        return int(model.latent_dim)
    return (model.n_styles if space == "W+" else 1) * model.w_dim


# --- style mixing --------------------------------------------------------------------------------------
STYLE_RANGES = {"coarse": (0, 3), "middle": (3, 5), "fine": (5, None)}  # at 32x32; see style_ranges()


def style_ranges(model: Any) -> dict[str, tuple[int, int]]:
    """The paper's coarse / middle / fine crossovers as [start, stop) style indices for this model:
    coarse up to the 8x8 layers, middle the 16x16 ones, fine the rest (the higher resolutions)."""
    n = model.n_styles
    ends = {"coarse": min(3, n), "middle": min(5, n)}
    return {"coarse": (0, ends["coarse"]), "middle": (ends["coarse"], ends["middle"]), "fine": (ends["middle"], n)}


def layer_resolutions(model: Any) -> list[int]:
    """The resolution each style index drives (style i of a 32x32 model: 4, 8, 8, 16, 16, 32, 32, 32)."""
    out = [4]
    size = 4
    for _ in range(1, (model.n_styles - 2) // 2 + 1):
        size *= 2
        out += [size, size]
    return out + [size]


@torch.no_grad()
def mixing_grid(
    model: Any, w_a: torch.Tensor, w_b: torch.Tensor, start: int, stop: int | None = None, noise: str = "const"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The StyleGAN paper's style-mixing figure: rows are sources A, columns sources B, and cell (i, j)
    the image of W+ with layers [start, stop) from B_j and the rest from A_i.

    w_a (R, w_dim) and w_b (C, w_dim) (or W+). Returns images (H, W, C) float32 in [0, 1]: A (R, ...),
    B (C, ...), cells (R, C, ...)."""
    rows, cols = w_a.shape[0], w_b.shape[0]
    a_plus = w_a if w_a.ndim == 3 else model.broadcast(w_a)
    b_plus = w_b if w_b.ndim == 3 else model.broadcast(w_b)
    mixed = model.mix(a_plus.repeat_interleave(cols, 0), b_plus.repeat(rows, 1, 1), start, stop)

    def images(wp: torch.Tensor) -> np.ndarray:
        return model.synthesize(wp, noise).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()

    cells = images(mixed)
    return images(a_plus), images(b_plus), cells.reshape(rows, cols, *cells.shape[1:])


def mixing_mosaic(a: np.ndarray, b: np.ndarray, cells: np.ndarray, gap: int = 2) -> np.ndarray:
    """One image of the figure: B along the top, A down the left, the cells beside them, a blank corner.
    (H, W, C) float32 in [0, 1] with `gap` pixels of white between tiles."""
    rows, cols, h, w, c = cells.shape
    out = np.ones(((rows + 1) * (h + gap) - gap, (cols + 1) * (w + gap) - gap, c), np.float32)

    def put(i: int, j: int, tile: np.ndarray) -> None:
        out[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = tile

    for j in range(cols):
        put(0, j + 1, b[j])
    for i in range(rows):
        put(i + 1, 0, a[i])
        for j in range(cols):
            put(i + 1, j + 1, cells[i, j])
    return out


# --- perceptual path length ----------------------------------------------------------------------------
def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Batched slerp of the unit vectors a/|a| and b/|b| (rows), t (B,): the paper's Z path."""
    a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    d = (a * b).sum(1, keepdim=True).clamp(-1, 1)
    p = t[:, None] * torch.acos(d)
    c = b - d * a
    c = c / c.norm(dim=1, keepdim=True).clamp_min(1e-12)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=1, keepdim=True)


@torch.no_grad()
def perceptual_path_length(
    model: Any,
    classifier: Any,
    space: str = "Z",
    n: int = 2000,
    epsilon: float = PPL_EPSILON,
    seed: int = 0,
    batch_size: int = 250,
) -> dict[str, Any]:
    """PPL of a style model in Z (slerp) or W (lerp), features from `classifier.features` (engines.metrics
    adapts the images to its input). Computed in float64 (a step of 1e-4 in t moves pixels by ~1e-5,
    close to float32's resolution). Returns {"ppl", "median", "pairs", "epsilon", "space", "kept"}."""
    from .metrics import adapt_images

    if space not in ("Z", "W"):
        raise ValueError("space must be Z or W")
    gen = torch.Generator().manual_seed(seed)
    dim = model.config.latent_dim
    z0, z1 = torch.randn(n, dim, generator=gen), torch.randn(n, dim, generator=gen)
    t = torch.rand(n, generator=gen) * (1 - epsilon)
    device = model.device
    g = _float64_copy(model)
    c_device = next(classifier.parameters()).device
    dists = []
    for s in range(0, n, batch_size):
        a, b, tt = (x[s : s + batch_size].double().to(device) for x in (z0, z1, t))
        if space == "Z":
            p0, p1 = _slerp(a, b, tt), _slerp(a, b, tt + epsilon)
            images = g.decode(torch.cat([p0, p1]))
        else:
            wa, wb = g.mapping(a), g.mapping(b)
            p0, p1 = torch.lerp(wa, wb, tt[:, None]), torch.lerp(wa, wb, tt[:, None] + epsilon)
            images = g.decode_w(torch.cat([p0, p1]))
        x = adapt_images(images.float().to(c_device), classifier)
        f = classifier.features(x).double()
        f0, f1 = f.chunk(2)
        dists.append(((f1 - f0).pow(2).sum(1) / epsilon**2).cpu().numpy())
    d = np.concatenate(dists)
    lo, hi = np.percentile(d, [1, 99], method="lower"), np.percentile(d, [99], method="higher")[0]
    kept = d[(d >= lo[0]) & (d <= hi)]
    return {
        "space": space,
        "ppl": round(float(kept.mean()), 4),
        "median": round(float(np.median(d)), 4),
        "pairs": int(n),
        "kept": int(kept.size),
        "epsilon": epsilon,
        "path": "slerp of normalised z" if space == "Z" else "lerp of w",
        "endpoints": "full (t ~ U(0, 1))",
    }


def _float64_copy(model: Any) -> Any:
    """The model in float64 (a copy built from its config; the weights and buffers copied)."""
    with torch.random.fork_rng(devices=[]):  # building draws fresh noise buffers (then overwritten)
        copy = type(model)(model.config).to(model.device)
    copy.load_state_dict(model.state_dict())
    return copy.double().eval()


def ppl_report(model: Any, classifier: Any, n: int = 2000, seed: int = 0, classifier_name: str | None = None) -> dict:
    """PPL in Z and in W, and which is smaller (the paper: W, far smaller)."""
    z = perceptual_path_length(model, classifier, "Z", n=n, seed=seed)
    w = perceptual_path_length(model, classifier, "W", n=n, seed=seed)
    return {
        "feature_space": f"penultimate features of {classifier_name or 'the classifier'} (squared Euclidean)",
        "z": z,
        "w": w,
        "w_over_z": round(w["ppl"] / z["ppl"], 4) if z["ppl"] else None,
    }
