"""The generative models and the classifiers, and a registry to rebuild one from its kind and config."""

from __future__ import annotations

from typing import Any

from .base import ConfigModel, GenerativeModel
from .classifier import Classifier, ClassifierConfig
from .gan import GAN, GANConfig
from .pixelcnn import GatedPixelCNN, PixelCNNConfig, SampleStep
from .stylegan import StyleGAN, StyleGANConfig
from .vae import VAE, ELBOTerms, VAEConfig

# Every kind a checkpoint can hold: the generative models, and the classifiers that evaluate them.
MODEL_CLASSES: dict[str, type[ConfigModel]] = {cls.kind: cls for cls in (VAE, GAN, StyleGAN, GatedPixelCNN, Classifier)}


def build_model(kind: str, config: dict[str, Any]) -> ConfigModel:
    """A freshly initialised model of `kind` ("vae", "gan", "stylegan", "pixelcnn", "classifier") from a config dict.

    Raises KeyError for an unknown kind and TypeError/ValueError for a config that does not fit.
    """
    cls = MODEL_CLASSES[kind]
    return cls(cls.config_class(**config))


__all__ = [
    "GAN",
    "VAE",
    "MODEL_CLASSES",
    "Classifier",
    "ClassifierConfig",
    "ConfigModel",
    "ELBOTerms",
    "GANConfig",
    "GatedPixelCNN",
    "GenerativeModel",
    "PixelCNNConfig",
    "SampleStep",
    "StyleGAN",
    "StyleGANConfig",
    "VAEConfig",
    "build_model",
]
