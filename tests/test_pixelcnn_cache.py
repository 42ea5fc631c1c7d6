"""The cached PixelCNN sampler (engines.models.pixelcnn_cache) against the naive one.

Same model, same seed: the same SampleStep stream (positions and chosen values exactly equal,
predictive distributions equal to float tolerance). The naive reference runs a full forward pass
per step, so the models are tiny and most runs complete a partly given image (fewer steps).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines.models import GatedPixelCNN, PixelCNNConfig


def _model(seed: int, **config) -> GatedPixelCNN:
    torch.manual_seed(seed)
    model = GatedPixelCNN(PixelCNNConfig(image_size=28, **config)).eval()
    with torch.no_grad():  # biases are zero-initialised only for some layers: make every path matter
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _steps(model: GatedPixelCNN, n: int, seed: int, cached: bool, **kwargs) -> list:
    return list(model.sample_steps(n, generator=torch.Generator().manual_seed(seed), cached=cached, **kwargs))


def assert_same_steps(model: GatedPixelCNN, n: int, seed: int, **kwargs) -> list:
    naive = _steps(model, n, seed, cached=False, **kwargs)
    cached = _steps(model, n, seed, cached=True, **kwargs)
    assert [(s.index, s.row, s.col, s.channel) for s in cached] == [(s.index, s.row, s.col, s.channel) for s in naive]
    for a, b in zip(naive, cached, strict=True):
        assert np.array_equal(a.value, b.value), f"step {a.index} ({a.row}, {a.col}, {a.channel}): values differ"
        np.testing.assert_allclose(b.probs, a.probs, rtol=0, atol=1e-5, err_msg=f"step {a.index}")
    return cached


def _completion(n: int, channels: int, levels: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Known levels, and a mask that gives rows 0..21 in every image (skipped steps), a few pixels
    of the remaining rows in every image, and some positions in only one image."""
    gen = torch.Generator().manual_seed(100 + seed)
    known = torch.randint(0, levels, (n, channels, 28, 28), generator=gen)
    mask = torch.zeros((n, channels, 28, 28), dtype=torch.bool)
    mask[:, :, :22] = True
    mask[:, :, 24, 3:9] = True  # a run of given pixels inside a sampled row
    mask[:, -1, 25, 10] = True  # only the last colour given: the pixel is still visited
    mask[0] |= torch.rand((channels, 28, 28), generator=gen) < 0.3  # given in one image, sampled in the other
    return known, mask


@pytest.mark.parametrize(("channels", "levels", "hidden"), [(1, 2, 8), (3, 4, 6)])
def test_cached_sampler_matches_naive_on_whole_images(channels, levels, hidden) -> None:
    model = _model(0, channels=channels, levels=levels, hidden=hidden, n_layers=2)
    steps = assert_same_steps(model, 2, seed=0)
    assert len(steps) == channels * 28 * 28
    values = np.stack([s.value for s in steps])
    assert len(np.unique(values)) > 1  # a real draw, not a constant image


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("channels", "levels"), [(1, 2), (1, 4), (3, 2), (3, 4)])
def test_cached_sampler_matches_naive_when_completing(channels, levels, seed) -> None:
    model = _model(
        seed, channels=channels, levels=levels, hidden=2 * channels if channels == 3 else 6, n_layers=1 + seed % 2
    )
    known, mask = _completion(2, channels, levels, seed)
    steps = assert_same_steps(model, 2, seed=seed, known=known, known_mask=mask)
    assert steps[0].row == 22
    for s in steps:  # a given value is kept, in the images where it is given
        given = mask[:, s.channel, s.row, s.col].numpy()
        assert np.array_equal(s.value[given], known[:, s.channel, s.row, s.col].numpy()[given])


def test_completion_broadcast_mask_and_temperatures() -> None:
    model = _model(4, channels=1, levels=4, hidden=6, n_layers=2)
    known = torch.randint(0, 4, (1, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    mask = torch.zeros((1, 1, 28, 28), dtype=torch.bool)
    mask[..., :23, :] = True  # (1, 1, H, W): broadcast over a batch of 3
    for temperature in (0.0, 0.5, 2.0):
        steps = assert_same_steps(model, 3, seed=7, known=known, known_mask=mask, temperature=temperature)
        if temperature == 0:
            assert all(s.probs.max() == 1.0 for s in steps)


@pytest.mark.parametrize(("first_kernel", "kernel"), [(3, 5), (1, 3), (5, 1)])
def test_cached_sampler_matches_naive_for_other_kernels(first_kernel, kernel) -> None:
    model = _model(5, channels=3, levels=3, hidden=6, n_layers=2, first_kernel=first_kernel, kernel=kernel)
    known, mask = _completion(2, 3, 3, seed=5)
    assert_same_steps(model, 2, seed=5, known=known, known_mask=mask)


def test_sampling_is_cached_by_default_and_never_runs_the_whole_network(monkeypatch) -> None:
    model = _model(6, channels=1, levels=2, hidden=6, n_layers=1)
    expected = model.sample_levels(2, generator=torch.Generator().manual_seed(3), cached=False)

    def whole_network(*args, **kwargs):
        raise AssertionError("the cached sampler ran the whole network")

    monkeypatch.setattr(model, "logits", whole_network)
    monkeypatch.setattr(model, "net", whole_network)
    assert torch.equal(model.sample_levels(2, generator=torch.Generator().manual_seed(3)), expected)
    images = model.sample(2, generator=torch.Generator().manual_seed(3))  # what the trainer's sample grids call
    assert torch.equal(images, model.dequantize(expected))


def test_replaying_cached_steps_rebuilds_the_sample() -> None:
    model = _model(7, channels=3, levels=4, hidden=6, n_layers=1)
    steps = _steps(model, 2, seed=8, cached=True)
    assert [s.index for s in steps] == list(range(3 * 28 * 28))
    replay = torch.zeros((2, 3, 28, 28), dtype=torch.long)
    for s in steps:
        replay[:, s.channel, s.row, s.col] = torch.from_numpy(s.value)
    assert torch.equal(replay, model.sample_levels(2, generator=torch.Generator().manual_seed(8)))
