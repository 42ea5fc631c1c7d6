"""Published figures that `latent-explorer eval` prints beside a model's own, and this project's targets.

A reference applies only under the protocol it was measured with: the likelihoods of binarized MNIST
are not comparable with those of grayscale MNIST, so each entry names the binarization it needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

HIGHER_IS_BETTER = frozenset({"inception_score", "accuracy", "arithmetic_rate"})  # likelihoods (nats): lower


def meets(metric: str, value: float, target: float) -> bool:
    """Whether `value` reaches `target` in the metric's own direction."""
    return value >= target if metric in HIGHER_IS_BETTER else value <= target


@dataclass(frozen=True)
class Reference:
    kind: str  # model kind: vae, gan, pixelcnn, classifier
    dataset: str
    metric: str  # the key in eval's metrics it compares with
    value: float
    source: str
    binarized: bool | None = None  # True: binarized data only; False: grayscale only; None: either
    latent_dim: int | None = None  # the reference model's latent size, where it has one
    lower_is_better: bool = field(init=False)  # from the metric (HIGHER_IS_BETTER)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lower_is_better", self.metric not in HIGHER_IS_BETTER)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


REFERENCES = (
    Reference(
        "vae",
        "mnist",
        "iw_nll",
        86.76,
        "IWAE paper (Burda et al. 2016), VAE with 1 stochastic layer of 50 units, k=5000",
        binarized=True,
        latent_dim=50,
    ),
    Reference(
        "vae",
        "mnist",
        "iw_nll",
        89.8,
        "MLP VAE 784-400-40 (as quoted in the project's issue)",
        binarized=True,
        latent_dim=40,
    ),
    Reference(
        "vae",
        "mnist",
        "neg_elbo",
        105.6,
        "pytorch/examples VAE 784-400-20, 10 epochs, test loss",
        binarized=False,
        latent_dim=20,
    ),
    Reference(
        "pixelcnn",
        "mnist",
        "nll",
        81.30,
        "PixelCNN (van den Oord et al. 2016, Pixel RNN paper, Table 4)",
        binarized=True,
    ),
    Reference(
        "gan",
        "mnist",
        "inception_score",
        9.9,
        "real MNIST test images under a good classifier (issue's figure; eval also prints its own real-data score)",
    ),
    Reference("classifier", "mnist", "accuracy", 0.9905, "LeNet-5 (LeCun et al. 1998): 0.95% test error"),
)

# What this project aims for on its bundled models (the targets); rates are fractions.
TARGETS = {
    ("vae", "mnist", "iw_nll"): 90.0,  # binarized MNIST
    ("pixelcnn", "mnist", "nll"): 85.0,  # binarized MNIST
    ("gan", "mnist", "inception_score"): 9.5,
    ("vae", "faces", "arithmetic_rate"): 0.9,
    ("gan", "faces", "arithmetic_rate"): 0.9,
}


LATENT_RATIO = 2.5  # latent sizes within this factor of each other count as comparable


def _comparable_latent(reference: int | None, model: int | None) -> bool:
    if reference is None or model is None:
        return True
    return max(reference, model) <= LATENT_RATIO * min(reference, model)


def references_for(
    kind: str, dataset: str | None, binarize: str | None, latent_dim: int | None = None
) -> list[Reference]:
    """The published figures comparable with a model of `kind` evaluated on `dataset` as binarized, with
    a latent size within LATENT_RATIO of the reference's (a 2-D VAE is not set beside a 20-D one)."""
    binarized = binarize not in (None, "none")
    return [
        r
        for r in REFERENCES
        if r.kind == kind
        and r.dataset == dataset
        and (r.binarized is None or r.binarized == binarized)
        and _comparable_latent(r.latent_dim, latent_dim)
    ]


def target_for(kind: str, dataset: str | None, metric: str, binarize: str | None = None) -> float | None:
    """The project's target for a metric; likelihood targets hold on binarized MNIST only."""
    if metric in ("iw_nll", "nll") and binarize in (None, "none"):
        return None
    return TARGETS.get((kind, dataset or "", metric))
