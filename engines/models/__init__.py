"""The generative models, and a registry to rebuild one from its kind and config."""

from __future__ import annotations

from typing import Any

from .base import GenerativeModel
from .gan import GAN, GANConfig
from .pixelcnn import GatedPixelCNN, PixelCNNConfig, SampleStep
from .vae import VAE, ELBOTerms, VAEConfig

MODEL_CLASSES: dict[str, type[GenerativeModel]] = {cls.kind: cls for cls in (VAE, GAN, GatedPixelCNN)}


def build_model(kind: str, config: dict[str, Any]) -> GenerativeModel:
    """A freshly initialised model of `kind` ("vae", "gan", "pixelcnn") from a config dict.

    Raises KeyError for an unknown kind and TypeError/ValueError for a config that does not fit.
    """
    cls = MODEL_CLASSES[kind]
    return cls(cls.config_class(**config))


__all__ = [
    "GAN", "VAE", "MODEL_CLASSES", "ELBOTerms", "GANConfig", "GatedPixelCNN", "GenerativeModel",
    "PixelCNNConfig", "SampleStep", "VAEConfig", "build_model",
]
