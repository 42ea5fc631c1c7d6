"""Image classifiers for evaluating generative models: a LeNet-5-like conv net with one head per label.

MNIST's one-hot class columns become one softmax head (the classifier behind the Inception Score
and the Frechet distance of MNIST models); binary attributes get a logit each (BCE), continuous
ones a regression output each (MSE), categorical ones (a class index stored as a float) a softmax
each. So one model serves `mnist` (the "lenet") and `faces` (the attribute classifier), and its
outputs line up with the dataset's own label columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import ConfigModel, check_fields, check_image_config

LABEL_KINDS = ("class", "categorical", "binary", "continuous")
# Weight of each continuous label's squared error against a binary label's BCE. Heavier weights (10 was
# tried) let the regressions crowd out the binary heads early on: glasses took 4x longer to learn.
REGRESSION_WEIGHT = 1.0
# Categories of the categorical labels of the procedural sets (a dataset does not list them itself).
KNOWN_CATEGORIES = {("shapes", "shape"): 3}


@dataclass(frozen=True)
class ClassifierConfig:
    image_size: int = 28
    channels: int = 1
    label_names: tuple[str, ...] = tuple(str(d) for d in range(10))
    # one of LABEL_KINDS per label: all "class" columns together form one softmax (one-hot labels)
    label_kinds: tuple[str, ...] = ("class",) * 10
    categories: tuple[int, ...] = ()  # number of categories of each "categorical" label, in label order
    width: int = 32  # channels of the first conv stage (LeNet-5 has 6); doubles each stage
    hidden: int = 256  # LeNet-5's 120
    feature_dim: int = 128  # the penultimate layer (LeNet-5's 84): the features of the Frechet distance

    def __post_init__(self) -> None:
        check_fields(self, {"width": (1, 256), "hidden": (1, 4096), "feature_dim": (1, 4096)})
        check_image_config(self.image_size, self.channels)
        for name in ("label_names", "label_kinds", "categories"):  # JSON gives lists back
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.label_names) > 1000 or not all(isinstance(n, str) for n in self.label_names + self.label_kinds):
            raise ValueError("label names and kinds must be at most 1000 strings")
        if not all(isinstance(k, int) and not isinstance(k, bool) and k <= 1000 for k in self.categories):
            raise ValueError("categories must be whole numbers of at most 1000")
        if not self.label_names or len(self.label_names) != len(self.label_kinds):
            raise ValueError("a classifier needs one kind per label and at least one label")
        bad = sorted(set(self.label_kinds) - set(LABEL_KINDS))
        if bad:
            raise ValueError(f"label kinds must be among {LABEL_KINDS}, not {bad}")
        if self.label_kinds.count("class") == 1:
            raise ValueError("one-hot 'class' labels need at least two columns")
        if len(self.categories) != self.label_kinds.count("categorical") or any(k < 2 for k in self.categories):
            raise ValueError("categories must give a count of at least 2 for each 'categorical' label")


class Head(NamedTuple):
    name: str  # "class" for the one-hot group, else the label's name
    kind: str  # one of LABEL_KINDS
    columns: tuple[int, ...]  # the label columns it predicts
    start: int  # its slice of the output vector
    stop: int


def plan_heads(config: ClassifierConfig) -> list[Head]:
    heads: list[Head] = []
    classes = tuple(j for j, k in enumerate(config.label_kinds) if k == "class")
    pos = 0
    if classes:
        heads.append(Head("class", "class", classes, 0, len(classes)))
        pos = len(classes)
    counts = iter(config.categories)
    for j, (name, kind) in enumerate(zip(config.label_names, config.label_kinds)):
        if kind == "class":
            continue
        size = next(counts) if kind == "categorical" else 1
        heads.append(Head(name, kind, (j,), pos, pos + size))
        pos += size
    return heads


class Classifier(ConfigModel):
    """LeNet-5-like: two 5x5 conv + max-pool stages (three, with a 3x3 one, at 64 px), two fully
    connected layers, then the heads. `features` is the penultimate layer, `forward` the raw outputs
    (logits, and regression values for continuous labels)."""

    kind = "classifier"
    config_class = ClassifierConfig
    config_from_data = True  # config_for_dataset: one head per label of the dataset

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__(config)
        c = config
        self.heads = plan_heads(c)
        w = c.width
        layers: list[nn.Module] = [  # (B, C, S, S) -> (B, w, S/2, S/2) -> (B, 2w, S/4, S/4)
            nn.Conv2d(c.channels, w, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        width, size = 2 * w, c.image_size // 4
        if c.image_size > 32:  # 64 px: one more stage, (B, 2w, 16, 16) -> (B, 4w, 8, 8)
            layers += [nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            width, size = 2 * width, size // 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width * size * size, c.hidden),
            nn.ReLU(),
            nn.Linear(c.hidden, c.feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(c.feature_dim, self.heads[-1].stop)

    # --- what it computes -------------------------------------------------------------------------
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The penultimate layer (B, feature_dim) for images in [0, 1]."""
        return self.fc(self.conv(images * 2 - 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw outputs (B, n_outputs): the heads' logits and regression values side by side."""
        return self.head(self.features(images))

    @property
    def label_kinds(self) -> dict[str, str]:
        return dict(zip(self.config.label_names, self.config.label_kinds))

    @property
    def class_head(self) -> Head | None:
        """The head behind class probabilities (the Inception Score): the one-hot class group, else the
        first categorical label; None for a classifier of binary/continuous attributes only."""
        return next((h for h in self.heads if h.kind in ("class", "categorical")), None)

    @torch.no_grad()
    def class_probs(self, images: torch.Tensor) -> torch.Tensor:
        """p(y|x) (B, K) of `class_head`."""
        head = self.class_head
        if head is None:
            raise ValueError("this classifier predicts no classes (only binary or continuous attributes)")
        return F.softmax(self(images)[:, head.start : head.stop], dim=1)

    def to_labels(self, outputs: torch.Tensor) -> torch.Tensor:
        """Raw outputs -> (B, L) predictions laid out like the dataset's labels: one-hot classes,
        category indices, binary 0/1, continuous values."""
        labels = torch.zeros(outputs.shape[0], len(self.config.label_names), device=outputs.device)
        for h in self.heads:
            out = outputs[:, h.start : h.stop]
            if h.kind == "class":
                labels[:, list(h.columns)] = F.one_hot(out.argmax(1), len(h.columns)).to(labels.dtype)
            elif h.kind == "categorical":
                labels[:, h.columns[0]] = out.argmax(1).to(labels.dtype)
            elif h.kind == "binary":
                labels[:, h.columns[0]] = (out[:, 0] > 0).to(labels.dtype)
            else:
                labels[:, h.columns[0]] = out[:, 0]
        return labels

    @torch.no_grad()
    def predict_labels(self, images: torch.Tensor) -> torch.Tensor:
        return self.to_labels(self(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """name -> (B,) values: class and binary labels as probabilities, categorical ones as the most
        likely index, continuous ones as the regressed value."""
        outputs = self(images)
        result: dict[str, torch.Tensor] = {}
        for h in self.heads:
            out = outputs[:, h.start : h.stop]
            if h.kind == "class":
                probs = F.softmax(out, dim=1)
                result.update({self.config.label_names[j]: probs[:, i] for i, j in enumerate(h.columns)})
            elif h.kind == "categorical":
                result[h.name] = out.argmax(1).to(outputs.dtype)
            elif h.kind == "binary":
                result[h.name] = torch.sigmoid(out[:, 0])
            else:
                result[h.name] = out[:, 0]
        return result

    # --- training and scoring ---------------------------------------------------------------------
    def loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of: cross-entropy per class/categorical head, BCE per binary label and
        REGRESSION_WEIGHT x squared error per continuous label, summed over heads."""
        total = outputs.new_zeros(())
        for h in self.heads:
            out = outputs[:, h.start : h.stop]
            if h.kind == "class":
                total = total + F.cross_entropy(out, labels[:, list(h.columns)].argmax(1))
            elif h.kind == "categorical":
                total = total + F.cross_entropy(out, labels[:, h.columns[0]].round().long())
            elif h.kind == "binary":
                total = total + F.binary_cross_entropy_with_logits(
                    out[:, 0], (labels[:, h.columns[0]] > 0.5).to(out.dtype)
                )
            else:
                total = total + REGRESSION_WEIGHT * F.mse_loss(out[:, 0], labels[:, h.columns[0]])
        return total

    @torch.no_grad()
    def score(self, outputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """Per-batch sums: "accuracy" of the class group, "<name>_acc" of each binary/categorical
        label, "<name>_mae" of each continuous one (divide by the batch size for means)."""
        pred = self.to_labels(outputs)
        sums: dict[str, float] = {}
        for h in self.heads:
            if h.kind == "class":
                cols = list(h.columns)
                sums["accuracy"] = (pred[:, cols].argmax(1) == labels[:, cols].argmax(1)).sum().item()
                continue
            j = h.columns[0]
            if h.kind == "categorical":
                sums[f"{h.name}_acc"] = (pred[:, j] == labels[:, j].round()).sum().item()
            elif h.kind == "binary":
                sums[f"{h.name}_acc"] = (pred[:, j] == (labels[:, j] > 0.5).to(pred.dtype)).sum().item()
            else:
                sums[f"{h.name}_mae"] = (pred[:, j] - labels[:, j]).abs().sum().item()
        return sums


def config_for_dataset(dataset, **overrides: Any) -> dict[str, Any]:
    """A ClassifierConfig dict for an engines.data dataset: its image shape, label names and kinds.

    A categorical label's number of categories comes from KNOWN_CATEGORIES, else from the largest
    index among the first 2,000 labels. Raises ValueError for a dataset without labels.
    """
    names = list(dataset.label_names)
    if not names:
        raise ValueError(f"{dataset.spec.name} has no labels to train a classifier on")
    kinds = [dataset.attribute_kinds.get(n, "continuous") for n in names]
    categories = []
    for j, (name, kind) in enumerate(zip(names, kinds)):
        if kind == "categorical":
            count = KNOWN_CATEGORIES.get((dataset.spec.name, name))
            if count is None:
                _, labels = dataset.get_batch(np.arange(min(len(dataset), 2000)))
                count = int(labels[:, j].max().item()) + 1
            categories.append(max(count, 2))
    config = {
        "image_size": dataset.spec.image_size,
        "channels": dataset.spec.channels,
        "label_names": names,
        "label_kinds": kinds,
        "categories": categories,
    }
    return {**config, **overrides}
