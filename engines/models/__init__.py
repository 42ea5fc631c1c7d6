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
    return MODEL_CLASSES[kind](make_config(kind, config))


def make_config(kind: str, config: dict[str, Any]) -> Any:
    """The config dataclass of `kind` from a dict (which it checks), less the fields that older checkpoints
    carry and that no longer mean anything (the config class's RETIRED, where it has one)."""
    cls = MODEL_CLASSES[kind].config_class
    retired = getattr(cls, "RETIRED", frozenset())
    return cls(**{k: v for k, v in config.items() if k not in retired})


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
    "make_config",
]
