"""Latent Explorer engines: models, data, training, checkpoints and latent maths.

This package never imports Qt, so it runs headless: in the CLI, in tests and under torchrun.
"""

__version__ = "0.1.0"
