"""Small shared helpers for the engine tests (tiny models, procedural data)."""

from __future__ import annotations

from engines.data import DataSpec, ShapesDataset

TINY = {
    "vae": {"latent_dim": 4, "width": 8, "fc_dim": 32},
    "gan": {"latent_dim": 8, "g_width": 8, "d_width": 8},
    "pixelcnn": {"hidden": 8, "n_layers": 2, "first_kernel": 5},
}


def shapes(n: int = 256, train: bool = True, binarize: str = "none") -> ShapesDataset:
    """A small grayscale 28x28 procedural dataset (no files needed)."""
    return ShapesDataset(DataSpec("shapes", image_size=28, channels=1, binarize=binarize), train, length=n)
