"""PixelCNN surprise maps and mask-and-resample (engines.surprise), on a tiny model and the bundled one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engines.checkpoint import load_checkpoint
from engines.data import DataSpec, ShapesDataset
from engines.surprise import resample_region, surprise_maps
from engines.training import create_model
from tests.helpers import TINY

BUNDLED = Path(__file__).resolve().parents[1] / "checkpoints" / "pixelcnn-mnist.safetensors"


@pytest.fixture(scope="module")
def colour_model():
    return create_model(
        "pixelcnn", {**TINY["pixelcnn"], "image_size": 28, "channels": 3, "levels": 4, "hidden": 9}, seed=1
    ).eval()


def colour_image() -> np.ndarray:
    return ShapesDataset(DataSpec("shapes", image_size=28, channels=3), length=4)[2][0].numpy()


def test_per_pixel_nll_sums_to_the_models_nll_and_entropy_is_a_real_entropy(colour_model) -> None:
    maps = surprise_maps(colour_model, colour_image())
    levels = torch.from_numpy(maps.levels)[None]
    with torch.no_grad():
        nll = -colour_model.log_prob(levels).item()
    assert maps.nll.shape == maps.entropy.shape == (28, 28)
    assert maps.total_nll == pytest.approx(nll, rel=1e-5)
    assert np.all(maps.nll >= 0) and np.all(maps.entropy >= 0) and np.all(maps.entropy <= 3 * np.log(4) + 1e-5)


def test_resampling_keeps_unmasked_pixels_and_changes_masked_ones(colour_model) -> None:
    image = colour_image()
    region = np.zeros((28, 28), bool)
    region[8:20, 6:22] = True
    before = surprise_maps(colour_model, image).levels
    after = resample_region(colour_model, image, region, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(after[:, ~region], before[:, ~region])
    assert (after[:, region] != before[:, region]).mean() > 0.3  # an untrained model draws almost anything
    with pytest.raises(ValueError, match="region"):
        resample_region(colour_model, image, region[:10])


def test_temperature_zero_is_deterministic(colour_model) -> None:
    image, region = colour_image(), np.zeros((28, 28), bool)
    region[20:, :] = True
    runs = [
        resample_region(colour_model, image, region, temperature=0.0, generator=torch.Generator().manual_seed(s))
        for s in (0, 1)
    ]
    assert np.array_equal(runs[0], runs[1])
    warm = [
        resample_region(colour_model, image, region, temperature=1.0, generator=torch.Generator().manual_seed(s))
        for s in (0, 1)
    ]
    assert not np.array_equal(warm[0], warm[1])  # a real temperature does draw


def test_the_bundled_pixelcnn_is_surprised_by_a_corrupted_patch() -> None:
    model = load_checkpoint(BUNDLED).model.eval()
    ckpt = load_checkpoint(BUNDLED)
    digit = ckpt.sample["images"][0].float().numpy() / 255.0  # a carried test image, binarized
    clean = surprise_maps(model, digit)
    corrupted = digit.copy()
    corrupted[0, 2:6, 2:6] = 1.0 - corrupted[0, 2:6, 2:6]  # flip a corner patch that is background
    noisy = surprise_maps(model, corrupted)
    assert noisy.nll[2:6, 2:6].sum() > 5 * clean.nll[2:6, 2:6].sum() + 5
    region = np.zeros((28, 28), bool)
    region[2:6, 2:6] = True
    repaired = resample_region(model, corrupted, region, temperature=0.0)
    assert surprise_maps(model, repaired).total_nll < noisy.total_nll
