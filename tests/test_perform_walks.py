"""engines.walks without Qt: random walks stay in the prior's typical set, loops close smoothly, vector
walks swing along their vector, closed keyframe paths and positions along a path."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from engines import latent
from engines.walks import (
    RandomWalk,
    VectorWalk,
    WalkSettings,
    closed_path,
    iter_walk,
    path_position,
    walk_latents,
)


def steps(z: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(z, axis=0), axis=1)


@pytest.mark.parametrize("dim", [2, 16, 128])
def test_random_walk_on_the_shell_keeps_length_sqrt_d(dim: int) -> None:
    z = walk_latents(RandomWalk(dim, seed=3), 2000, 30.0, 1.0)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), math.sqrt(dim), rtol=1e-5)
    assert np.ptp(z, axis=0).min() > 0.5  # it moves in every dimension


@pytest.mark.parametrize("dim", [2, 32])
def test_free_random_walk_is_distributed_as_the_prior(dim: int) -> None:
    """Without the shell every frame is a draw of N(0, I): over a long walk |z| stays inside the chi
    distribution's central 99% about 99% of the time and each coordinate has mean 0, variance 1."""
    z = walk_latents(RandomWalk(dim, seed=1, shell=False), 20_000, 10.0, 2.0)
    low, high = stats.chi.ppf([0.005, 0.995], dim)
    inside = np.mean((np.linalg.norm(z, axis=1) >= low) & (np.linalg.norm(z, axis=1) <= high))
    assert inside > 0.95
    # Across many independent walks at one moment, the coordinates are standard normal.
    moment = np.stack([RandomWalk(dim, seed=s, shell=False).at(7.3)[0] for s in range(400)])
    assert abs(moment.mean()) < 0.1 and abs(moment.var() - 1) < 0.15


def test_walk_is_smooth_and_speed_scales_the_steps() -> None:
    walk = RandomWalk(16, seed=0)
    slow, fast = walk_latents(walk, 300, 30.0, 0.25), walk_latents(walk, 300, 30.0, 1.0)
    assert steps(slow).max() < 0.1 * math.sqrt(16)  # no jumps
    assert 3.0 < steps(fast).mean() / steps(slow).mean() < 5.0
    # smoother: fewer changes of direction per coordinate
    rough = walk_latents(RandomWalk(16, seed=0, smoothness=0.0, shell=False), 3000, 30.0, 1.0)
    smooth = walk_latents(RandomWalk(16, seed=0, smoothness=1.0, shell=False), 3000, 30.0, 1.0)

    def turns(z: np.ndarray) -> int:
        return int(np.sum(np.diff(np.sign(np.diff(z, axis=0)), axis=0) != 0))

    assert turns(smooth) < turns(rough)


@pytest.mark.parametrize("walk", [RandomWalk(8, seed=5), RandomWalk(3, seed=2, shell=False, smoothness=0.1)])
def test_looping_walk_leads_from_its_last_frame_into_its_first(walk) -> None:
    z = walk_latents(walk, 240, 24.0, 0.7, loop=True)
    inner = steps(z)
    wrap = float(np.linalg.norm(z[0] - z[-1]))
    assert wrap <= inner.max() * 1.05
    assert 0.5 < wrap / ((inner[0] + inner[-1]) / 2) < 2.0  # like its neighbours
    unlooped = walk_latents(walk, 240, 24.0, 0.7)
    assert np.linalg.norm(unlooped[0] - unlooped[-1]) > 5 * steps(unlooped).max()  # would jump without


def test_vector_walk_swings_back_and_forth_along_the_vector() -> None:
    rng = np.random.default_rng(0)
    origin, vector = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
    z = walk_latents(VectorWalk(origin, vector, amplitude=1.5), 300, 30.0, 1.0, loop=True)
    strength = (z - origin) @ vector / (vector @ vector)
    np.testing.assert_allclose(z, origin + strength[:, None] * vector, atol=1e-5)  # on the line
    assert strength.max() == pytest.approx(1.5, abs=0.02) and strength.min() == pytest.approx(-1.5, abs=0.02)
    assert np.linalg.norm(z[0] - z[-1]) <= steps(z).max() * 1.05


def test_iter_walk_continues_across_chunks_like_the_array_form() -> None:
    walk = RandomWalk(4, seed=9)
    gen = iter_walk(walk, 30.0, 0.5, chunk=7)
    streamed = np.stack([next(gen) for _ in range(50)])
    np.testing.assert_allclose(streamed, walk_latents(walk, 50, 30.0, 0.5), atol=1e-6)


def test_closed_path_and_path_position() -> None:
    keys = np.random.default_rng(4).standard_normal((3, 5)).astype(np.float32)
    path = closed_path(keys, 30, "spherical")
    assert path.shape == (30, 5)
    np.testing.assert_allclose(path[0], keys[0], atol=1e-6)
    inner = steps(path)
    assert np.linalg.norm(path[-1] - keys[0]) <= inner.max() * 1.05
    np.testing.assert_allclose(path_position(keys, 0.0), keys[0], atol=1e-6)
    np.testing.assert_allclose(path_position(keys, 0.5), keys[1], atol=1e-6)
    np.testing.assert_allclose(path_position(keys, 1.0), keys[2], atol=1e-6)
    np.testing.assert_allclose(path_position(keys, 0.25), latent.slerp(keys[0], keys[1], 0.5), atol=1e-6)
    np.testing.assert_allclose(path_position(keys, 1.0, closed=True), keys[0], atol=1e-6)


def test_walk_settings_build_and_refuse() -> None:
    assert isinstance(WalkSettings().build(4), RandomWalk)
    with pytest.raises(ValueError, match="needs the vector"):
        WalkSettings("vector").build(4)
    with pytest.raises(ValueError, match="walk kind"):
        WalkSettings("spiral")
    with pytest.raises(ValueError, match="smoothness"):
        RandomWalk(4, smoothness=2.0)
