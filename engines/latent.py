"""Latent-space maths: interpolation, planes and projections, PCA, attribute and exemplar vectors.

Pure functions over numpy arrays (float32 in, float32 out), plus the functions that run a model in
batches: `decode_latents` (z -> images as numpy) and `encode_images`/`encode_indices`/`encode_dataset`
(images -> the encoder's means and log-variances). No Qt here, so every formula is tested on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

log = logging.getLogger(__name__)

PATH_MODES = ("linear", "spherical")
_EPS = 1e-7


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


# --- interpolation ------------------------------------------------------------------------------
def lerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """a + t (b - a). A scalar t gives (D,); an array of T values gives (T, D)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)
    out = a + t[..., None] * (b - a) if t.ndim else a + float(t) * (b - a)
    return _f32(out)


def _orthogonal_to(x: np.ndarray) -> np.ndarray:
    """A unit vector orthogonal to the unit vector x (deterministic: Gram-Schmidt on the axis x uses least)."""
    e = np.zeros_like(x)
    e[int(np.argmin(np.abs(x)))] = 1.0
    w = e - (e @ x) * x
    return w / np.linalg.norm(w)


def slerp(a: np.ndarray, b: np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """Spherical interpolation: the direction moves along the great circle from a to b at constant
    angular speed while the length goes linearly from |a| to |b|.

    For unit vectors this is Shoemake's slerp (as used on GAN latents by White 2016) and stays on the
    unit sphere. Near-parallel directions fall back to lerp (the angle formula divides by sin(theta));
    exactly opposite ones turn through a fixed orthogonal direction; a zero vector falls back to lerp.
    A scalar t gives (D,); an array of T values gives (T, D).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t_arr = np.asarray(t, np.float64)
    ts = np.atleast_1d(t_arr)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na < _EPS or nb < _EPS:
        return lerp(a, b, t)
    ua, ub = a / na, b / nb
    cos = float(np.clip(ua @ ub, -1.0, 1.0))
    theta = float(np.arccos(cos))
    if theta < 1e-4:  # near-parallel: lerp is exact to O(theta^2) and avoids 0/0
        out = a + ts[:, None] * (b - a)
    else:
        if np.pi - theta < 1e-4:  # opposite: every great circle joins them; pick a fixed one
            w = _orthogonal_to(ua)
            dirs = np.cos(ts * np.pi)[:, None] * ua + np.sin(ts * np.pi)[:, None] * w
        else:
            s = np.sin(theta)
            dirs = (np.sin((1 - ts) * theta) / s)[:, None] * ua + (np.sin(ts * theta) / s)[:, None] * ub
        out = dirs * (na + ts * (nb - na))[:, None]
    return _f32(out if t_arr.ndim else out[0])


def keyframe_positions(n_keyframes: int, frames: int) -> np.ndarray:
    """Frame index of each keyframe in a path of `frames` frames: spread evenly, first at 0, last at frames-1."""
    if n_keyframes < 2:
        raise ValueError("a path needs at least 2 keyframes")
    if frames < n_keyframes:
        raise ValueError(f"{frames} frames cannot show {n_keyframes} keyframes; use at least {n_keyframes}")
    return np.round(np.linspace(0, frames - 1, n_keyframes)).astype(np.int64)


def interpolate_path(keyframes: np.ndarray, frames: int, mode: str = "linear") -> np.ndarray:
    """(frames, D) latents through K >= 2 keyframes (K, D), segment by segment.

    Every keyframe is itself a frame (at `keyframe_positions`); the frames are shared between the
    K-1 segments by count (not by distance), so each segment gets (frames-1)/(K-1) steps, rounded.
    """
    keys = np.asarray(keyframes, np.float64)
    if keys.ndim != 2:
        raise ValueError("keyframes must be a (K, D) array")
    if mode not in PATH_MODES:
        raise ValueError(f"mode must be one of {PATH_MODES}, not {mode!r}")
    pos = keyframe_positions(keys.shape[0], frames)
    out = np.empty((frames, keys.shape[1]), np.float32)
    step = lerp if mode == "linear" else slerp
    for i in range(keys.shape[0] - 1):
        j0, j1 = int(pos[i]), int(pos[i + 1])
        t = (np.arange(j0, j1 + 1) - j0) / (j1 - j0)
        out[j0 : j1 + 1] = step(keys[i], keys[i + 1], t)
    out[pos] = _f32(keys)  # exact keyframes, free of rounding
    return out


# --- principal directions -----------------------------------------------------------------------
def principal_directions(latents: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of (N, D) latents: (mean (D,), components (D, D) with one unit direction per row sorted
    by decreasing variance, explained variance (D,)).

    Eigen-decomposition of the covariance, so the basis is complete even when N < D. Each row's sign
    is fixed (its largest-magnitude entry is positive) so the same data always gives the same axes.
    """
    x = np.asarray(latents, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("principal_directions needs an (N, D) array with N >= 2")
    mean = x.mean(axis=0)
    cov = np.cov(x - mean, rowvar=False).reshape(x.shape[1], x.shape[1])
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, comps = np.clip(values[order], 0.0, None), vectors[:, order].T
    signs = np.sign(comps[np.arange(len(comps)), np.argmax(np.abs(comps), axis=1)])
    comps *= np.where(signs == 0, 1.0, signs)[:, None]
    return _f32(mean), _f32(comps), _f32(values)


# --- planes -------------------------------------------------------------------------------------
def grid_axis(span: float, resolution: int) -> np.ndarray:
    """The plane coordinates of a grid's columns: linspace(-span, span, resolution)."""
    if resolution < 2:
        raise ValueError("resolution must be at least 2")
    return np.linspace(-span, span, resolution)


def plane_grid(center: np.ndarray, u: np.ndarray, v: np.ndarray, span: float, resolution: int) -> np.ndarray:
    """(res*res, D) latents center + a u + b v on a res x res grid, a, b in linspace(-span, span).

    Row-major like an image: entry r*res + c has a = axis[c] (left to right) and b = axis[res-1-r],
    so row 0 is the top of the picture (+v, b = +span).
    """
    axis = grid_axis(span, resolution)
    a = np.tile(axis, resolution)
    b = np.repeat(axis[::-1], resolution)
    c, u, v = (np.asarray(x, np.float64) for x in (center, u, v))
    return _f32(c + a[:, None] * u + b[:, None] * v)


def plane_coordinates(latents: np.ndarray, center: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N, 2) coordinates (a, b) of the least-squares projection of latents onto center + a u + b v.

    For orthonormal u, v this is ((z - c).u, (z - c).v); the Gram-matrix solve makes it exact for any
    two independent directions, so plane_coordinates(plane_grid(...)) returns the grid.
    """
    z = np.atleast_2d(np.asarray(latents, np.float64)) - np.asarray(center, np.float64)
    basis = np.stack([np.asarray(u, np.float64), np.asarray(v, np.float64)])  # (2, D)
    gram = basis @ basis.T
    if abs(np.linalg.det(gram)) < 1e-12:
        raise ValueError("the plane's two directions are parallel (or zero)")
    return _f32(np.linalg.solve(gram, basis @ z.T).T)


def plane_origin(z: np.ndarray, anchor: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The centre of the plane through z spanned by orthonormal u, v whose coordinates are measured
    from `anchor`: c = z - ((z-a).u) u - ((z-a).v) v, so z = c + ((z-a).u) u + ((z-a).v) v.

    With anchor 0 and u, v two unit axes this is z with those two dimensions zeroed, and the plane's
    coordinates are the raw values of the two dimensions.
    """
    z, a, u, v = (np.asarray(x, np.float64) for x in (z, anchor, u, v))
    d = z - a
    return _f32(z - (d @ u) * u - (d @ v) * v)


def plane_through(
    z0: np.ndarray, z1: np.ndarray, z2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The plane through three latents: (centre = their mean, orthonormal u, v, (3, 2) coordinates).

    u points from z0 to z1; v is the part of z2 - z0 orthogonal to u (Gram-Schmidt), so z2 has b > 0.
    Raises ValueError when the three points are (nearly) on one line.
    """
    p = np.stack([np.asarray(x, np.float64) for x in (z0, z1, z2)])
    center = p.mean(axis=0)
    d1, d2 = p[1] - p[0], p[2] - p[0]
    n1 = np.linalg.norm(d1)
    if n1 < _EPS:
        raise ValueError("the first two latents are the same point")
    u = d1 / n1
    w = d2 - (d2 @ u) * u
    nw = np.linalg.norm(w)
    if nw < 1e-6 * max(1.0, np.linalg.norm(d2)):
        raise ValueError("the three latents lie on one line; they do not define a plane")
    v = w / nw
    coords = np.stack([(p - center) @ u, (p - center) @ v], axis=1)
    return _f32(center), _f32(u), _f32(v), _f32(coords)


# --- attribute and exemplar vectors -------------------------------------------------------------
def binarize_labels(labels: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """(N,) labels -> (N,) bool "has the attribute".

    bool stays as is; 0/1 labels (one-hot class columns, binary attributes) -> > 0.5; any other
    two-valued labels (e.g. CelebA's -1/+1) -> the larger value; continuous labels -> above the median
    (or `threshold` when given).
    """
    y = np.asarray(labels).reshape(-1)
    if y.dtype == bool:
        return y
    y = y.astype(np.float64)
    if threshold is not None:
        return y > threshold
    values = np.unique(y)
    if len(values) <= 2:
        return y > 0.5 if set(values.tolist()) <= {0.0, 1.0} else y == values.max()
    median = float(np.median(y))
    above = y > median
    return above if above.any() else y >= median  # many ties at the top: include them


def attribute_vector(latents: np.ndarray, labels: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """mean(latents with the attribute) - mean(latents without it); see `binarize_labels`.

    Raises ValueError when one of the two groups is empty.
    """
    z = np.asarray(latents, np.float64)
    has = binarize_labels(labels, threshold)
    if has.shape[0] != z.shape[0]:
        raise ValueError(f"{z.shape[0]} latents but {has.shape[0]} labels")
    if has.all() or not has.any():
        raise ValueError("every latent is on the same side of the attribute; need examples with and without it")
    return _f32(z[has].mean(axis=0) - z[~has].mean(axis=0))


def exemplar_arithmetic(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """mean(a) - mean(b) + mean(c) over groups of exemplar latents (Radford et al. 2016, "smiling
    woman - neutral woman + neutral man"); averaging a few exemplars per concept steadies the result."""
    groups = [np.atleast_2d(np.asarray(x, np.float64)) for x in (a, b, c)]
    for name, g in zip("ABC", groups, strict=True):
        if g.shape[0] == 0 or g.size == 0:
            raise ValueError(f"group {name} has no exemplars")
    return _f32(groups[0].mean(axis=0) - groups[1].mean(axis=0) + groups[2].mean(axis=0))


def apply_vector(z: np.ndarray, vector: np.ndarray, strength: float) -> np.ndarray:
    """z + strength * vector."""
    return _f32(np.asarray(z, np.float64) + float(strength) * np.asarray(vector, np.float64))


# --- running a model ----------------------------------------------------------------------------
def _device(model: torch.nn.Module) -> torch.device:
    device = getattr(model, "device", None)  # every model's (ours and engines.foreign's)
    return device if isinstance(device, torch.device) else next(model.parameters()).device


@torch.no_grad()
def decode_latents(
    model: torch.nn.Module, latents: np.ndarray, batch: int = 64, should_stop: Callable[[], bool] | None = None
) -> np.ndarray:
    """(D,) or (N, D) latents -> (N, H, W, C) float32 images in [0, 1], in batches: the one decode
    every caller uses (the explorer's state, its slider decoder, the tabs, exports). Stops early
    (returning the frames done so far) when should_stop() is true."""
    z = np.atleast_2d(_f32(latents))
    out = []
    device = _device(model)
    for start in range(0, z.shape[0], batch):
        if should_stop is not None and should_stop():
            break
        x = model.decode(torch.as_tensor(z[start : start + batch], device=device))
        out.append(x.clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy())
    if not out:
        c, h, w = model.image_shape
        return np.zeros((0, h, w, c), np.float32)
    return np.concatenate(out)


def require_encoder(model: torch.nn.Module) -> None:
    """Raise ValueError for a model without an encoder (has_encoder): it cannot map images to latents."""
    if not getattr(model, "has_encoder", False):
        raise ValueError(
            f"a {getattr(model, 'kind', type(model).__name__)} has no encoder, so it cannot "
            "map dataset images to latents; build vectors from exemplars instead"
        )


@torch.no_grad()
def encode_images(model: torch.nn.Module, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(B, C, H, W) images in [0, 1] -> the mean and log-variance of q(z|x), two (B, D) float32 arrays.
    Raises ValueError for a model without an encoder (a GAN maps z -> x only)."""
    require_encoder(model)
    mu, logvar = model.encode(images.to(_device(model)))
    return mu.float().cpu().numpy(), logvar.float().cpu().numpy()


@dataclass(frozen=True)
class Encoded:
    """Dataset images run through an encoder: row i is dataset image indices[i]."""

    latents: np.ndarray  # (n, D) float32 means of q(z|x)
    logvars: np.ndarray  # (n, D) float32 log-variances of q(z|x)
    labels: np.ndarray  # (n, L) float32, the dataset's label columns
    indices: np.ndarray  # (n,) int64 dataset indices


def encode_indices(
    model: torch.nn.Module,
    dataset,
    indices: np.ndarray,
    batch: int = 256,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Encoded:
    """The dataset images `indices`, encoded batch by batch (see Encoded).

    A stop request ends it between batches with the rows done so far (indices cut to match).
    Raises ValueError for a model without an encoder (a GAN maps z -> x only).
    """
    require_encoder(model)
    indices = np.asarray(indices, np.int64).reshape(-1)
    n = len(indices)
    means, logvars, labels = [], [], []
    for start in range(0, n, batch):
        if should_stop is not None and should_stop():
            log.info("encoding stopped after %d of %d images", start, n)
            indices = indices[:start]
            break
        images, y = dataset.get_batch(indices[start : start + batch])
        mu, logvar = encode_images(model, images)
        means.append(mu)
        logvars.append(logvar)
        labels.append(y.numpy().astype(np.float32).reshape(len(images), -1))
        if progress is not None:
            progress(min(start + batch, n), n)
    if not means:
        empty = np.zeros((0, int(model.latent_dim)), np.float32)
        return Encoded(empty, empty.copy(), np.zeros((0, len(dataset.label_names)), np.float32), indices)
    return Encoded(np.concatenate(means), np.concatenate(logvars), np.concatenate(labels), indices)


def encode_dataset(
    model: torch.nn.Module,
    dataset,
    n: int,
    batch: int = 256,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Encoded:
    """n images drawn without replacement (seeded) from `dataset`, in index order, encoded (see
    encode_indices). Raises ValueError for a model without an encoder (use exemplars there)."""
    require_encoder(model)
    return encode_indices(model, dataset, sample_indices(len(dataset), n, seed), batch, should_stop, progress)


def sample_indices(total: int, n: int, seed: int = 0) -> np.ndarray:
    """min(n, total) distinct indices of range(total), drawn with `seed`, sorted."""
    n = min(int(n), total)
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False)).astype(np.int64)
