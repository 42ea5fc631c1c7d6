"""Walks through latent space: endless smooth random walks that stay in the prior's typical set, walks
back and forth along a vector, and closed keyframe paths, as pure functions of "walk time".

A walk is a frozen object with `at(t) -> (T, D)` latents at walk times t (floats). Walk time is what
speed scales: a player (the GUI's clock, the renderer) advances it by `speed * seconds`, so changing
the speed mid-walk never jumps. At speed 1 each coordinate of a random walk moves about one prior
standard deviation per second (its RMS rate of change is 1 per unit of walk time).

- `RandomWalk`: every coordinate is a sum of sinusoids with Gaussian coefficients,
  z_d(t) = K^-1/2 sum_k (a_dk cos w_dk t + b_dk sin w_dk t), a, b ~ N(0, 1). For any fixed t this is
  exactly N(0, 1) per coordinate (cos^2 + sin^2 = 1), so z(t) is distributed as the prior at every
  moment, and it is smooth. `shell=True` (the default) rescales z to length sqrt(D), the radius where a
  D-dimensional standard normal concentrates, so no frame ever leaves the typical set. `smoothness`
  (0..1) narrows the spread of the frequencies: 1 is a few slow, similar waves, 0 a rougher mix.
- `VectorWalk`: origin + amplitude * sin(t) * vector, back and forth along an attribute vector.
- `period`: with a period P (walk time) every frequency is rounded to a whole number of turns in P, so
  z(t + P) = z(t) exactly and a loop of frames covering [0, P) leads from its last frame into its first
  as smoothly as from any frame to the next (`looped`, `walk_latents(..., loop=True)`).
- `closed_path` and `path_position`: keyframe paths that return to their first keyframe, and the latent
  at a fractional position along a path (for a knob that scrubs through keyframes).

`iter_walk` is the generator form (endless frames at a frame rate); `walk_latents` the array form.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .latent import interpolate_path, lerp, slerp

WALK_KINDS = ("random", "vector")
COMPONENTS = 12  # sinusoids per coordinate: enough to look aperiodic, cheap to evaluate per frame
ROUGHEST, SMOOTHEST = 1.2, 0.25  # log-frequency spread at smoothness 0 and 1


def typical_radius(dim: int) -> float:
    """sqrt(D): where the length of a D-dimensional standard normal concentrates (its mean is within
    1/(4 sqrt(D)) of it)."""
    return math.sqrt(dim)


def _on_shell(z: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(z, axis=-1, keepdims=True)
    return z * (math.sqrt(z.shape[-1]) / np.maximum(norm, 1e-12))


def _whole_turns(omega: np.ndarray, period: float | None) -> np.ndarray:
    """Frequencies rounded to a whole number (at least 1) of turns in `period`, or as they are."""
    if period is None:
        return omega
    if not period > 0:
        raise ValueError(f"a loop's period must be positive, not {period}")
    turn = 2 * math.pi / period
    return np.maximum(1.0, np.round(omega / turn)) * turn


@dataclass(frozen=True)
class RandomWalk:
    """An endless smooth random walk in D dimensions; see the module docstring."""

    dim: int
    seed: int = 0
    smoothness: float = 0.5
    shell: bool = True
    period: float | None = None
    components: int = COMPONENTS

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"a walk needs at least one dimension, not {self.dim}")
        if not 0.0 <= self.smoothness <= 1.0:
            raise ValueError(f"smoothness must be in [0, 1], not {self.smoothness}")

    @cached_property
    def _waves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        shape = (self.dim, self.components)
        # The same seed draws the same numbers whatever the smoothness or period, so those only bend the walk.
        spread, a, b = rng.standard_normal(shape), rng.standard_normal(shape), rng.standard_normal(shape)
        sigma = ROUGHEST + (SMOOTHEST - ROUGHEST) * self.smoothness
        omega = np.exp(sigma * spread)
        omega /= np.sqrt(np.mean(omega**2))  # RMS frequency 1: speed alone sets how fast images change
        return _whole_turns(omega, self.period), a, b

    def at(self, t: float | np.ndarray) -> np.ndarray:
        """(T, D) float32 latents at walk times t (a scalar gives (1, D))."""
        times = np.atleast_1d(np.asarray(t, np.float64))[:, None, None]
        omega, a, b = self._waves
        phase = omega * times  # (T, D, K)
        z = (a * np.cos(phase) + b * np.sin(phase)).sum(axis=-1) / math.sqrt(self.components)
        return (_on_shell(z) if self.shell else z).astype(np.float32)


@dataclass(frozen=True, eq=False)
class VectorWalk:
    """origin + amplitude * sin(t) * vector: back and forth along `vector`, through `origin` (at t = 0,
    moving towards +vector). One full swing takes 2 pi of walk time (about 12.6 s at speed 0.5)."""

    origin: np.ndarray
    vector: np.ndarray
    amplitude: float = 2.0
    period: float | None = None

    @property
    def dim(self) -> int:
        return int(np.asarray(self.origin).size)

    def at(self, t: float | np.ndarray) -> np.ndarray:
        times = np.atleast_1d(np.asarray(t, np.float64))
        omega = float(_whole_turns(np.array(1.0), self.period))
        origin = np.asarray(self.origin, np.float64).reshape(-1)
        vector = np.asarray(self.vector, np.float64).reshape(-1)
        return (origin + (self.amplitude * np.sin(omega * times))[:, None] * vector).astype(np.float32)


Walk = RandomWalk | VectorWalk


def looped(walk: Walk, frames: int, fps: float, speed: float) -> Walk:
    """The walk made periodic over `frames` frames at `fps` and `speed`: frame `frames` would equal frame 0."""
    if frames < 2 or fps <= 0 or speed <= 0:
        raise ValueError("a loop needs at least 2 frames and a positive frame rate and speed")
    return replace(walk, period=speed * frames / fps)


def walk_times(frames: int, fps: float, speed: float, start: float = 0.0) -> np.ndarray:
    """Walk times of `frames` frames at `fps` and `speed`, from walk time `start`."""
    return start + speed * np.arange(frames, dtype=np.float64) / fps


def walk_latents(walk: Walk, frames: int, fps: float, speed: float, loop: bool = False) -> np.ndarray:
    """(frames, D) latents of `walk`; with `loop`, the last frame leads into the first (see `looped`)."""
    if loop:
        walk = looped(walk, frames, fps, speed)
    return walk.at(walk_times(frames, fps, speed))


def iter_walk(walk: Walk, fps: float, speed: float, start: float = 0.0, chunk: int = 64) -> Iterator[np.ndarray]:
    """Endless (D,) latents of `walk`, one per frame at `fps`, evaluated `chunk` frames at a time."""
    t0 = start
    while True:
        yield from walk.at(walk_times(chunk, fps, speed, t0))
        t0 += speed * chunk / fps


# --- keyframe paths --------------------------------------------------------------------------------------
def closed_path(keyframes: np.ndarray, frames: int, mode: str = "spherical") -> np.ndarray:
    """(frames, D) latents through K >= 2 keyframes and back to the first: the frame after the last would
    be keyframe 0, so the path plays as a seamless loop (interpolate_path of K + 1 keyframes, its
    repeated first keyframe dropped)."""
    keys = np.asarray(keyframes, np.float32)
    if keys.ndim != 2 or len(keys) < 2:
        raise ValueError("a closed path needs a (K, D) array of at least 2 keyframes")
    if frames < len(keys):
        raise ValueError(f"{frames} frames cannot show {len(keys)} keyframes; use at least {len(keys)}")
    return interpolate_path(np.concatenate([keys, keys[:1]]), frames + 1, mode)[:-1]


def path_position(keyframes: np.ndarray, position: float, mode: str = "spherical", closed: bool = False) -> np.ndarray:
    """The (D,) latent at `position` in [0, 1] along the path through the keyframes (segments equally
    long in position; `closed` adds the segment from the last keyframe back to the first)."""
    keys = np.asarray(keyframes, np.float32)
    if keys.ndim != 2 or len(keys) < 2:
        raise ValueError("a path needs a (K, D) array of at least 2 keyframes")
    segments = len(keys) if closed else len(keys) - 1
    x = float(np.clip(position, 0.0, 1.0)) * segments
    i = min(int(x), segments - 1)
    step = slerp if mode == "spherical" else lerp
    return step(keys[i], keys[(i + 1) % len(keys)], x - i)


@dataclass(frozen=True)
class WalkSettings:
    """What a walk player or renderer needs besides the latents: the kind and its knobs, in one record
    that sessions and the CLI share. `vector` names an attribute vector (kind "vector")."""

    kind: str = "random"
    speed: float = 0.5
    smoothness: float = 0.5
    seed: int = 0
    shell: bool = True
    vector: str | None = None
    amplitude: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in WALK_KINDS:
            raise ValueError(f"walk kind must be one of {WALK_KINDS}, not {self.kind!r}")

    def build(self, dim: int, origin: np.ndarray | None = None, vector: np.ndarray | None = None) -> Walk:
        """The walk these settings describe in `dim` dimensions (a vector walk needs `vector`, and goes
        through `origin`, default 0)."""
        if self.kind == "random":
            return RandomWalk(dim, self.seed, self.smoothness, self.shell)
        if vector is None:
            raise ValueError("a walk along a vector needs the vector")
        start = np.zeros(dim, np.float32) if origin is None else origin
        return VectorWalk(np.asarray(start, np.float32), np.asarray(vector, np.float32), self.amplitude)
