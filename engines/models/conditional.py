"""Class conditioning shared by the conditional generators (a GAN or a style-based one with classes).

A conditional model draws images of a class: decode(z, classes=y) and sample(n, classes=y) take the class
input as a *blend vector* y (B, K): a one-hot row for a single class, a convex blend of rows for class
interpolation. Every use of y is linear in it (the generator's class embedding is y @ E), so blending
two classes blends their embeddings. A model with no classes has num_classes 0 and takes no y.

The config holds `num_classes` and `class_names` (one name per class, the dataset's label names), so a
checkpoint rebuilds a conditional model, and names its classes, from its config alone.
"""

from __future__ import annotations

from typing import Any

import torch

from .view import ModelView

MAX_CLASSES = 1000
ClassInput = int | torch.Tensor | None


def check_classes(config: Any) -> None:
    """After check_fields (num_classes is a whole number): 0..MAX_CLASSES classes, one short name each."""
    names = tuple(config.class_names)  # JSON gives a list back
    object.__setattr__(config, "class_names", names)
    if not 0 <= config.num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be between 0 and {MAX_CLASSES}, not {config.num_classes}")
    if len(names) != config.num_classes:
        raise ValueError(f"class_names must name each of the {config.num_classes} classes, not {len(names)}")
    if not all(isinstance(n, str) and 0 < len(n) <= 100 for n in names):
        raise ValueError("class_names must be non-empty strings of at most 100 characters")
    if config.num_classes == 1:
        raise ValueError("a conditional model needs at least two classes")


def one_hot(index: int | torch.Tensor, num_classes: int) -> torch.Tensor:
    """A class index (or (B,) indices) as one-hot float rows, (K,) or (B, K)."""
    return torch.nn.functional.one_hot(torch.as_tensor(index, dtype=torch.int64), num_classes).float()


def blend(a: int, b: int, t: float, num_classes: int) -> torch.Tensor:
    """(1 - t) onehot(a) + t onehot(b), (K,): class interpolation."""
    return torch.lerp(one_hot(a, num_classes), one_hot(b, num_classes), float(t))


def class_input(classes: ClassInput, n: int, num_classes: int, device: torch.device) -> torch.Tensor:
    """The class blend y (n, K) float on `device` for a batch of n: from a class index (all rows), (n,)
    indices, a (K,) blend (all rows) or an (n, K) blend. Raises ValueError for a wrong shape or an index
    out of range, and for no classes at all (a conditional model is always told which class to draw)."""
    if classes is None:
        raise ValueError(f"a conditional model needs classes=: a class index or blend over its {num_classes} classes")
    y = torch.as_tensor(classes)
    if not y.is_floating_point():
        if y.ndim > 1 or (y.numel() and not bool(((y >= 0) & (y < num_classes)).all())):
            raise ValueError(f"class indices must be in 0..{num_classes - 1}")
        y = one_hot(y, num_classes)
    if y.ndim == 1:
        y = y.expand(n, -1)
    if y.shape != (n, num_classes):
        raise ValueError(f"classes must be (K,) or (B, K) with K = {num_classes}, B = {n}, not {tuple(y.shape)}")
    return y.to(device=device, dtype=torch.float32)


def optional_class_input(
    classes: ClassInput, n: int, num_classes: int, device: torch.device, what: str
) -> torch.Tensor | None:
    """class_input for a model that may be unconditional (num_classes 0: None, and `classes` refused,
    naming the model as `what`)."""
    if not num_classes:
        if classes is not None:
            raise ValueError(f"this {what} is not conditional: it takes no classes")
        return None
    return class_input(classes, n, num_classes, device)


def balanced_classes(n: int, num_classes: int) -> torch.Tensor:
    """(n,) class indices 0, 1, ..., K-1, 0, ...: what sample() draws when no class is named (the uniform
    label prior, without sampling noise in the class fractions)."""
    return torch.arange(n) % num_classes


def sampled_classes(classes: ClassInput, n: int, num_classes: int) -> ClassInput:
    """What sample() draws: `classes` as named, else, for a conditional model, every class in turn."""
    return balanced_classes(n, num_classes) if num_classes and classes is None else classes


class ClassView(ModelView):
    """A conditional model with its class blend fixed: decode(z) = model.decode(z, classes=y) for one
    blend y (K,), the same for every row. What the explorer drives (every tab decodes `state.model`):
    the state makes a new view whenever the user picks another class, so the blend is never state
    of the model itself, and a view, once made, always draws the same images. Anything not defined here
    (kind, config, latent_dim, image_shape, latent_weight, ...) is the model's own."""

    def __init__(self, model: torch.nn.Module, classes: torch.Tensor) -> None:
        super().__init__(model)
        y = torch.as_tensor(classes, dtype=torch.float32).reshape(-1)
        if y.shape != (model.num_classes,):
            raise ValueError(f"the class blend must have {model.num_classes} weights, not {y.shape[0]}")
        self.register_buffer("classes", y.to(model.device), persistent=False)

    def decode(self, z: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.base.decode(z, *args, classes=self.classes.to(z.device), **kwargs)

    generate = decode

    def mapping(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """A style model's w = mapping(z, class): W spaces over this view map with its class."""
        return self.base.mapping(z, psi, classes=self.classes.to(z.device))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, **options: Any) -> torch.Tensor:
        return self.base.sample(n, generator=generator, classes=self.classes, **options)
