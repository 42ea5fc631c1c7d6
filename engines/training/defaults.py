"""The defaults a new run gets from (model kind, dataset), shared by the CLI and the Train panel."""

from __future__ import annotations

from typing import Any

from ..data import DataSpec, default_shape

DEFAULT_LATENT_DIM = {"vae": 16, "gan": 64}


def default_levels(channels: int) -> int:
    """PixelCNN intensity levels: binarized grayscale, or 16 levels of colour (256 is slow on a CPU)."""
    return 2 if channels == 1 else 16


def run_data_spec(kind: str, dataset: str, root: str | None = None, image_size: int | None = None,
                  channels: int | None = None, levels: int | None = None, binarize: str | None = None) -> DataSpec:
    """The dataset's own shape unless overridden; a 2-level PixelCNN trains on binarized data."""
    size, natural_channels = default_shape(dataset)
    size, channels = image_size or size, channels or natural_channels
    if binarize is None:
        binarize = "stochastic" if kind == "pixelcnn" and (levels or default_levels(channels)) == 2 else "none"
    return DataSpec(dataset, root=root or None, image_size=size, channels=channels, binarize=binarize)


def run_model_config(kind: str, spec: DataSpec, latent_dim: int | None = None, levels: int | None = None,
                     hidden: int | None = None, layers: int | None = None, gan_loss: str = "ns", d_steps: int = 0,
                     beta: float = 1.0) -> dict[str, Any]:
    """A generative model's config for `spec` (classifiers take theirs from the dataset's labels)."""
    config: dict[str, Any] = {"image_size": spec.image_size, "channels": spec.channels}
    if kind == "vae":
        config.update(latent_dim=latent_dim or DEFAULT_LATENT_DIM["vae"], beta=beta,
                      likelihood="bernoulli" if spec.channels == 1 else "gaussian")
    elif kind == "gan":
        config.update(latent_dim=latent_dim or DEFAULT_LATENT_DIM["gan"], loss=gan_loss, d_steps=d_steps)
    else:
        config.update(levels=levels or default_levels(spec.channels),
                      hidden=hidden or (64 if spec.channels == 1 else 96), n_layers=layers or 10)
    return config
