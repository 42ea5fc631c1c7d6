"""Sample-quality and latent-arithmetic metrics judged by a trained classifier (pure torch/numpy).

- `classifier_inception_score`: exp(E_x KL(p(y|x) || p(y))) from a classifier's class probabilities
  (Salimans et al. 2016, with an MNIST LeNet standing in for Inception: at most K for K classes).
- `frechet_distance`: ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two feature sets
  (Heusel et al. 2017), here on the classifier's penultimate layer, not Inception's.
- `gan_scores`: both, for a model's samples and, for scale, for real data.
- `attribute_arithmetic_success` / `exemplar_arithmetic_success`: how often adding an attribute vector
  (or exemplar arithmetic, Radford et al. 2016) gives an image the classifier reads as intended.

A classifier here is anything with `label_kinds` (dict name -> "class" | "categorical" | "binary" |
"continuous", in label order) and `predict_labels(images) -> (B, L)` (one-hot classes, category
indices, binary 0/1, continuous values), plus `class_probs` and `features` for the sample scores:
engines.models.Classifier is one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import directions as dirs
from .latent import attribute_vector, encode_indices, exemplar_arithmetic

log = logging.getLogger(__name__)

ArrayLike = np.ndarray | torch.Tensor
DEFAULT_TOLERANCE = 0.15  # a continuous attribute is "kept" when it moves by less than this
DEFAULT_STRENGTHS = (0.5, 1.0, 1.5, 2.0, 3.0)


def _f64(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _device(module: Any) -> torch.device:
    device = getattr(module, "device", None)  # the models' own (ours and engines.foreign's)
    if isinstance(device, torch.device):
        return device
    params = getattr(module, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")


# --- the two scores -----------------------------------------------------------------------------
def classifier_inception_score(probs: ArrayLike, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over `splits` consecutive parts of exp(mean_x KL(p(y|x) || p(y))), p(y) the part's
    mean prediction. probs: (N, K) rows summing to 1. 1 when every prediction is the same; K when
    predictions are confident and the classes equally frequent (in every part)."""
    p = _f64(probs)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError("probs must be an (N, K) array with N >= 1")
    scores = []
    for part in np.array_split(p, max(1, min(int(splits), p.shape[0]))):
        py = part.mean(axis=0, keepdims=True)
        positive = part > 0  # 0 log 0 = 0; where p(y|x) > 0, p(y) > 0 too
        terms = np.where(
            positive, part * (np.log(np.where(positive, part, 1.0)) - np.log(np.where(positive, py, 1.0))), 0.0
        )
        scores.append(float(np.exp(terms.sum(axis=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))


def feature_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) in float64 of (N, D) features, N >= 2."""
    x = _f64(features)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("features must be an (N, D) array with N >= 2")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues from
    rounding are clamped to 0)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_statistics(
    mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of sqrt(S_a) S_b sqrt(S_a)), a symmetric PSD matrix
    with the same eigenvalues as S_a S_b: eigh on it is stable where a general sqrtm of the
    non-symmetric product is not, and its tiny negative eigenvalues are clamped to 0.
    """
    mu_a, mu_b, sigma_a, sigma_b = (_f64(x) for x in (mu_a, mu_b, sigma_a, sigma_b))
    root_a = _psd_sqrt(sigma_a)
    middle = root_a @ sigma_b @ root_a
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    diff = mu_a - mu_b
    return float(max(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * tr_covmean, 0.0))


def frechet_distance(feats_a: ArrayLike, feats_b: ArrayLike) -> float:
    """Frechet distance between Gaussians fitted to two (N, D) feature sets (FID on whatever features)."""
    return frechet_distance_from_statistics(*feature_statistics(feats_a), *feature_statistics(feats_b))


# --- running models in batches ------------------------------------------------------------------
def adapt_images(images: torch.Tensor, classifier: Any) -> torch.Tensor:
    """Images as the classifier takes them: RGB -> gray (ITU-R 601 luma) or gray -> RGB, and resized
    (bilinear, antialiased) when the classifier was trained at another size. Non-image tensors pass."""
    shape = getattr(classifier, "image_shape", None)
    if shape is None or images.dim() != 4:
        return images
    channels, size = shape[0], shape[1]
    if images.shape[1] == 3 and channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        images = (images * weights).sum(1, keepdim=True)
    elif images.shape[1] == 1 and channels == 3:
        images = images.expand(-1, 3, -1, -1)
    if images.shape[-1] != size or images.shape[-2] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return images


def sample_batches(model: Any, n: int, batch_size: int = 500, seed: int = 0) -> Iterator[torch.Tensor]:
    """n samples of a generative model (in eval mode), in batches, from a generator seeded with `seed`."""
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        yield model.sample(min(batch_size, n - start), generator=gen)


def dataset_batches(dataset: Any, indices: Sequence[int] | np.ndarray, batch_size: int = 500) -> Iterator[torch.Tensor]:
    indices = np.asarray(indices, np.int64)
    for start in range(0, len(indices), batch_size):
        images, _ = dataset.get_batch(indices[start : start + batch_size])
        yield images


@torch.no_grad()
def classify_batches(classifier: Any, batches: Iterable[torch.Tensor], probs: bool = True) -> dict[str, np.ndarray]:
    """{"features": (N, F)} and, when asked and the classifier predicts classes, {"probs": (N, K)}."""
    device = _device(classifier)
    want_probs = probs and getattr(classifier, "class_head", None) is not None
    feats, ps = [], []
    for images in batches:
        x = adapt_images(images.to(device), classifier)
        feats.append(classifier.features(x).double().cpu().numpy())
        if want_probs:
            ps.append(classifier.class_probs(x).double().cpu().numpy())
    out = {"features": np.concatenate(feats)}
    if want_probs:
        out["probs"] = np.concatenate(ps)
    return out


@torch.no_grad()
def decode_to_labels(model: Any, classifier: Any, latents: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The classifier's reading (N, L) of the model's decoded latents (N, D)."""
    z = np.atleast_2d(np.asarray(latents, np.float32))
    device, c_device = _device(model), _device(classifier)
    out = []
    for start in range(0, z.shape[0], batch_size):
        images = model.decode(torch.as_tensor(z[start : start + batch_size], device=device))
        out.append(classifier.predict_labels(adapt_images(images.to(c_device), classifier)).float().cpu().numpy())
    names = list(classifier.label_kinds)
    return np.concatenate(out) if out else np.zeros((0, len(names)), np.float32)


# --- sample quality -----------------------------------------------------------------------------
@torch.no_grad()
def class_agreement(
    model: Any, classifier: Any, per_class: int = 1000, batch_size: int = 500, seed: int = 0
) -> dict[str, Any]:
    """How often a class-conditional model draws the class it is asked for: `per_class` samples of each
    class (sample(n, classes=c), seeded), each read by the classifier's class head (argmax). The
    classifier's classes must be the model's, in the same order.

    Keys: "overall" (the fraction agreeing over every sample), "per_class" {name: fraction},
    "confused_with" {name: the other class read most often}, "samples_per_class".
    """
    names = list(model.class_names)
    head = getattr(classifier, "class_head", None)
    if not names or head is None or len(head.columns) != len(names):
        raise ValueError("class agreement needs a conditional model and a classifier of the same classes")
    gen = torch.Generator().manual_seed(seed)
    per, confused = {}, {}
    for c, name in enumerate(names):
        reads = []
        for start in range(0, per_class, batch_size):
            images = model.sample(min(batch_size, per_class - start), generator=gen, classes=c)
            x = adapt_images(images.to(_device(classifier)), classifier)
            reads.append(classifier.class_probs(x).argmax(1).cpu().numpy())
        read = np.concatenate(reads)
        per[name] = round(float(np.mean(read == c)), 4)
        others = np.bincount(read[read != c], minlength=len(names))
        confused[name] = names[int(others.argmax())] if others.any() else None
    overall = round(float(np.mean(list(per.values()))), 4)
    return {"overall": overall, "per_class": per, "confused_with": confused, "samples_per_class": int(per_class)}


def code_purity(model: Any, classifier: Any, n: int = 10_000, batch_size: int = 500, seed: int = 0) -> dict[str, Any]:
    """What a GAN's unsupervised categorical code (engines.models.gan, code_classes) came to mean: n
    samples z ~ N(0, I) (seeded), each sample's category (the largest of z's first K units) against the
    class the classifier reads in its image.

    Keys: "purity" (the fraction of samples whose class is their category's most common one: 1 when each
    category draws one class), "categories" (per category: its most common "class" and that class's
    "fraction" of the category), "samples".
    """
    head = getattr(classifier, "class_head", None)
    k = int(getattr(model.config, "code_classes", 0))
    if not k or head is None:
        raise ValueError("code purity needs a GAN with a categorical code and a classifier with classes")
    z = model.random_latents(n, generator=torch.Generator().manual_seed(seed))
    code = model.code(z).cpu().numpy()
    read = decode_to_labels(model, classifier, z.cpu().numpy(), batch_size)[:, list(head.columns)].argmax(1)
    table = np.zeros((k, len(head.columns)), np.int64)
    np.add.at(table, (code, read), 1)
    categories = [
        {
            "class": classifier.config.label_names[head.columns[int(row.argmax())]],
            "fraction": round(float(row.max() / max(1, row.sum())), 4),
        }
        for row in table
    ]
    return {"purity": round(float(table.max(1).sum() / n), 4), "categories": categories, "samples": int(n)}


def gan_scores(
    model: Any,
    classifier: Any,
    n: int = 10_000,
    batch_size: int = 500,
    seed: int = 0,
    real_dataset: Any = None,
    train_dataset: Any = None,
    splits: int = 10,
) -> dict[str, Any]:
    """Classifier Inception Score and Frechet distance of n samples of `model` (a GAN, or anything with
    `sample(n, generator=)`), and the same numbers for real data, for scale.

    Keys: "samples"; with a class-predicting classifier "inception_score", "inception_score_std" (over
    `splits` parts) and "class_fractions" (how often each class is predicted: mode coverage); with
    `real_dataset` (the held-out set; all of it, or a seeded random min(n, len) of its images): "fid" of
    the samples against it, "real_images", "real_inception_score", "real_inception_score_std"; with
    `train_dataset` too:
    "train_test_fid", the distance of as many (seeded, random) training images from the held-out
    ones: what a perfect model would score at this sample size.
    """
    result: dict[str, Any] = {"samples": int(n)}
    fake = classify_batches(classifier, sample_batches(model, n, batch_size, seed))
    if "probs" in fake:
        result["inception_score"], result["inception_score_std"] = classifier_inception_score(fake["probs"], splits)
        counts = np.bincount(fake["probs"].argmax(1), minlength=fake["probs"].shape[1])
        result["class_fractions"] = [round(float(c) / n, 4) for c in counts]
    if real_dataset is None:
        return result
    m = min(n, len(real_dataset))
    rng = np.random.default_rng(seed)
    # An image folder is listed class by class: a part of it (or of its first m images) holds few classes.
    # So m < len takes a seeded random subset, and the real score's parts are taken from a seeded shuffle.
    chosen = np.arange(m) if m == len(real_dataset) else np.sort(rng.choice(len(real_dataset), m, replace=False))
    real = classify_batches(classifier, dataset_batches(real_dataset, chosen, batch_size))
    result["real_images"] = m
    result["fid"] = frechet_distance(fake["features"], real["features"])
    if "probs" in real:
        result["real_inception_score"], result["real_inception_score_std"] = classifier_inception_score(
            real["probs"][rng.permutation(m)], splits
        )
    if train_dataset is not None:
        idx = np.sort(
            np.random.default_rng(seed).choice(len(train_dataset), size=min(m, len(train_dataset)), replace=False)
        )
        train = classify_batches(classifier, dataset_batches(train_dataset, idx, batch_size), probs=False)
        result["train_test_fid"] = frechet_distance(train["features"], real["features"])
    return result


# --- latent arithmetic --------------------------------------------------------------------------
def _labelled_latents(
    model: Any, classifier: Any, dataset: Any, count: int, seed: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """`count` latents with labels in the classifier's label order, and where they came from.

    A model with an encoder (VAE): encoder means of `count` random dataset images, with the dataset's
    own labels. Without one (GAN): z ~ N(0, I), labelled by the classifier reading G(z).
    """
    names = list(classifier.label_kinds)
    if model.has_encoder:
        if dataset is None:
            raise ValueError("a model with an encoder needs a dataset to encode")
        missing = [name for name in names if name not in dataset.label_names]
        if missing:
            raise ValueError(f"the dataset has no labels {missing} that the classifier predicts")
        count = min(count, len(dataset))
        indices = np.random.default_rng(seed).permutation(len(dataset))[:count]
        encoded = encode_indices(model, dataset, indices, batch=batch_size)
        order = [list(dataset.label_names).index(name) for name in names]
        return encoded.latents, encoded.labels[:, order], "encoded dataset images, labelled by the dataset"
    gen = torch.Generator().manual_seed(seed)
    if hasattr(model, "random_latents"):
        z = model.random_latents(count, generator=gen).cpu().numpy()
    else:
        z = torch.randn((count, model.latent_dim), generator=gen).numpy()
    return (
        z.astype(np.float32),
        decode_to_labels(model, classifier, z, batch_size),
        "generated samples, labelled by the classifier",
    )


def _edit_outcome(
    classifier: Any, attribute: str, before: np.ndarray, after: np.ndarray, tolerance: float
) -> dict[str, Any]:
    """Which edits gained `attribute` while every other attribute kept its reading (per row)."""
    names = list(classifier.label_kinds)
    kinds = classifier.label_kinds
    a = names.index(attribute)
    gained = after[:, a] > 0.5
    kept_by: dict[str, np.ndarray] = {}
    for j, name in enumerate(names):
        if j == a:
            continue
        if kinds[name] == "continuous":
            kept_by[name] = np.abs(after[:, j] - before[:, j]) < tolerance
        else:
            kept_by[name] = np.isclose(after[:, j], before[:, j])
    discrete = [kept_by[n] for n in kept_by if kinds[n] != "continuous"]
    continuous = [kept_by[n] for n in kept_by if kinds[n] == "continuous"]
    ones = np.ones(len(after), bool)
    others = np.logical_and.reduce(discrete) if discrete else ones
    cont = np.logical_and.reduce(continuous) if continuous else ones
    return {
        "success": gained & others & cont,
        "gained": gained,
        "others_kept": others,
        "continuous_kept": cont,
        "kept": kept_by,
    }


def _rate(x: np.ndarray) -> float | None:
    return round(float(np.mean(x)), 4) if len(x) else None


@torch.no_grad()
def attribute_arithmetic_success(
    model: Any,
    classifier: Any,
    dataset: Any = None,
    attribute: str = "glasses",
    n: int = 200,
    seed: int = 0,
    strength: float = 1.0,
    tolerance: float = DEFAULT_TOLERANCE,
    pool: int = 2000,
    strengths: Sequence[float] | None = None,
    vector: np.ndarray | None = None,
    batch_size: int = 256,
) -> dict[str, Any]:
    """How often z + strength * v turns a face WITHOUT `attribute` into one with it and nothing else.

    v = mean latent with the attribute - mean latent without (engines.latent.attribute_vector) over
    `pool` labelled latents (see below), unless `vector` is given. The edits are made on up to n
    other latents, which both their labels and the classifier's reading of decode(z) say lack the
    attribute. An edit succeeds when the classifier reads decode(z + strength v) as having the
    attribute, every other binary/class attribute as it read decode(z), and every continuous one
    within `tolerance` of its reading of decode(z).

    Latents: a model with an encoder (VAE) encodes random `dataset` images (the encoder's means,
    labelled by the dataset); one without (GAN) draws z ~ N(0, I), labelled by the classifier.
    With `strengths`, the best of them (ties: the smallest) is picked on a separate set of n latents
    and the edits are scored with it too ("tuned_strength", "tuned_rate").
    """
    kinds = classifier.label_kinds
    if kinds.get(attribute) != "binary":
        binary = [k for k, v in kinds.items() if v == "binary"]
        raise ValueError(f"{attribute!r} is not a binary attribute of the classifier (it has {binary})")
    a = list(kinds).index(attribute)
    sets = 2 if strengths else 1
    z, labels, source = _labelled_latents(model, classifier, dataset, pool + 4 * sets * n, seed, batch_size)
    z_pool, labels_pool, z_rest, labels_rest = z[:pool], labels[:pool], z[pool:], labels[pool:]
    v = attribute_vector(z_pool, labels_pool[:, a]) if vector is None else np.asarray(vector, np.float32)

    before_rest = decode_to_labels(model, classifier, z_rest, batch_size)
    lacks = np.flatnonzero((labels_rest[:, a] <= 0.5) & (before_rest[:, a] <= 0.5))
    test_rows, tune_rows = lacks[:n], lacks[n : 2 * n] if strengths else lacks[:0]
    if len(test_rows) < n:
        log.warning("only %d latents without %s to edit (asked for %d)", len(test_rows), attribute, n)

    def outcome(rows: np.ndarray, s: float) -> dict[str, Any]:
        after = decode_to_labels(model, classifier, z_rest[rows] + s * v, batch_size)
        return _edit_outcome(classifier, attribute, before_rest[rows], after, tolerance)

    result: dict[str, Any] = {
        "attribute": attribute,
        "latents": source,
        "n": int(len(test_rows)),
        "pool": pool,
        "strength": strength,
        "tolerance": tolerance,
        "vector_norm": round(float(np.linalg.norm(v)), 4),
    }
    base = outcome(test_rows, strength)
    result.update(
        rate=_rate(base["success"]),
        gained=_rate(base["gained"]),
        others_kept=_rate(base["others_kept"]),
        continuous_kept=_rate(base["continuous_kept"]),
        kept={k: _rate(x) for k, x in base["kept"].items()},
    )
    if strengths:
        tuned = [(_rate(outcome(tune_rows, s)["success"]), -s) for s in strengths] if len(tune_rows) else []
        best = -max(tuned)[1] if tuned else strength
        tuned_outcome = outcome(test_rows, best)
        result.update(
            strengths=list(strengths),
            tuned_strength=best,
            tuned_rate=_rate(tuned_outcome["success"]),
            tuned_gained=_rate(tuned_outcome["gained"]),
            tuned_others_kept=_rate(tuned_outcome["others_kept"]),
            tuned_continuous_kept=_rate(tuned_outcome["continuous_kept"]),
        )
    return result


@torch.no_grad()
def exemplar_arithmetic_success(
    model: Any,
    classifier: Any,
    dataset: Any = None,
    first: str = "smiling",
    second: str = "glasses",
    trials: int = 100,
    k: int = 3,
    seed: int = 0,
    pool: int = 2000,
    batch_size: int = 256,
) -> dict[str, Any]:
    """DCGAN-paper arithmetic (Radford et al. 2016): with A = k exemplars with `first` and without
    `second`, B = k with neither, C = k with `second` only, decode mean(A) - mean(B) + mean(C)
    (engines.latent.exemplar_arithmetic); a trial succeeds when the classifier reads both attributes
    in the result ("smiling, no glasses" - "neutral, no glasses" + "neutral, glasses" = "smiling, glasses")
    and, by the vector edits' strict rule, every other attribute as it reads decode(mean(C)), the face
    being edited (continuous ones within the tolerance). `attributes_rate` asks only for the two.

    Exemplars come from `pool` labelled latents: encoded dataset images (with their dataset labels)
    for a model with an encoder, classifier-labelled samples for one without. Returns the success
    rate over `trials` independent draws of exemplars, and how often each attribute was present.
    """
    kinds = classifier.label_kinds
    for name in (first, second):
        if kinds.get(name) != "binary":
            raise ValueError(f"{name!r} is not a binary attribute of the classifier")
    names = list(kinds)
    i, j = names.index(first), names.index(second)
    z, labels, source = _labelled_latents(model, classifier, dataset, pool, seed, batch_size)
    has_i, has_j = labels[:, i] > 0.5, labels[:, j] > 0.5
    groups = {
        "A": np.flatnonzero(has_i & ~has_j),
        "B": np.flatnonzero(~has_i & ~has_j),
        "C": np.flatnonzero(~has_i & has_j),
    }
    short = [f"{g} ({len(rows)})" for g, rows in groups.items() if len(rows) < k]
    if short:
        raise ValueError(f"too few exemplars among {pool} latents for groups {', '.join(short)}; need {k} each")
    rng = np.random.default_rng(seed + 1)
    draws = [[z[rng.choice(groups[g], size=k, replace=False)] for g in "ABC"] for _ in range(trials)]
    results = np.stack([exemplar_arithmetic(*groups_abc) for groups_abc in draws])
    bases = [c.mean(axis=0) for _, _, c in draws]
    after = decode_to_labels(model, classifier, results, batch_size)
    got_i, got_j = after[:, i] > 0.5, after[:, j] > 0.5
    # the strict rule of the vector edits: mean(C) ("neutral, glasses") is the face being edited, so
    # besides gaining `first` and keeping `second`, every other attribute must read as it does on mean(C)
    base = decode_to_labels(model, classifier, np.stack([c for c in bases]), batch_size)
    strict = _edit_outcome(classifier, first, base, after, DEFAULT_TOLERANCE)["success"] & got_j
    return {
        "first": first,
        "second": second,
        "trials": int(trials),
        "k": k,
        "latents": source,
        "rate": _rate(strict),
        "attributes_rate": _rate(got_i & got_j),
        f"has_{first}": _rate(got_i),
        f"has_{second}": _rate(got_j),
    }


# --- clean edits, method by method ---------------------------------------------------------------
EDIT_METHODS = ("mean_vector", "boundary", "conditional_boundary", "conditional_shift", "exemplar")
EDIT_DISTANCES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # signed distances past a boundary, in latent units
EDIT_STRENGTHS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)


@torch.no_grad()
def clean_edit_rates(
    model: Any,
    classifier: Any,
    dataset: Any = None,
    attributes: Sequence[str] = ("glasses", "smiling"),
    n: int = 200,
    seed: int = 0,
    pool: int = 4000,
    tolerance: float = DEFAULT_TOLERANCE,
    k: int = 3,
    batch_size: int = 256,
) -> dict[str, Any]:
    """How often each way of adding an attribute makes a clean edit, all judged by one strict rule on the
    same latents: the classifier reads the edited image as having the attribute, every other binary/class
    attribute as before and every continuous one within `tolerance` (engines.metrics._edit_outcome).

    Methods (engines.directions): "mean_vector" z + s (mean z with - mean z without); "boundary" each z
    moved along the boundary's normal to signed distance d (InterFaceGAN); "conditional_boundary" the same
    along the normal with every other attribute's normal projected out; "conditional_shift" z + s times
    the shift that turns the attribute on with the latent's other labels kept; "exemplar" z + s (mean of k
    exemplars with - mean of k without), fresh exemplars for every edit.

    Boundaries and vectors come from `pool` labelled latents (as in attribute_arithmetic_success); the
    edits are made on n other latents without the attribute, and each method's one setting (s or d) is
    picked on a further n (ties: the smallest). Returns {"methods": {method: {attribute: outcome}},
    "boundaries": {attribute: held-out accuracy or R^2}, "best": {attribute: (method, rate)}, ...}.
    """
    kinds = classifier.label_kinds
    names = list(kinds)
    for attribute in attributes:
        if kinds.get(attribute) != "binary":
            raise ValueError(f"{attribute!r} is not a binary attribute of the classifier")
    z, labels, source = _labelled_latents(model, classifier, dataset, pool + 4 * n * len(attributes), seed, batch_size)
    z_pool, labels_pool, z_rest, labels_rest = z[:pool], labels[:pool], z[pool:], labels[pool:]
    before = decode_to_labels(model, classifier, z_rest, batch_size)
    boundaries = dirs.fit_boundaries(z_pool, labels_pool, names, kinds)
    rng = np.random.default_rng(seed + 2)

    result: dict[str, Any] = {
        "latents": source,
        "pool": pool,
        "tolerance": tolerance,
        "boundaries": {name: b.accuracy for name, b in boundaries.items()},
        "methods": {m: {} for m in EDIT_METHODS},
        "best": {},
    }
    for attribute in attributes:
        a = names.index(attribute)
        lacks = np.flatnonzero((labels_rest[:, a] <= 0.5) & (before[:, a] <= 0.5))
        test_rows, tune_rows = lacks[:n], lacks[n : 2 * n]
        edits = _method_edits(a, names, boundaries, z_pool, labels_pool, z_rest, labels_rest, k, rng)
        for method, built in edits.items():
            if isinstance(built, str):
                result["methods"][method][attribute] = {"rate": None, "unavailable": built}
                continue
            settings, edit = built

            def outcome(rows: np.ndarray, x: float, edit=edit, a=a) -> dict[str, Any]:
                after = decode_to_labels(model, classifier, edit(rows, x), batch_size)
                return _edit_outcome(classifier, names[a], before[rows], after, tolerance)

            tuned = [(_rate(outcome(tune_rows, x)["success"]) or 0.0, -x) for x in settings]
            best = -max(tuned)[1] if len(tune_rows) else settings[0]
            o = outcome(test_rows, best)
            result["methods"][method][attribute] = {
                "rate": _rate(o["success"]),
                "setting": best,
                "n": int(len(test_rows)),
                "gained": _rate(o["gained"]),
                "others_kept": _rate(o["others_kept"]),
                "continuous_kept": _rate(o["continuous_kept"]),
                "kept": {name: _rate(x) for name, x in o["kept"].items()},
            }
        rates = {m: result["methods"][m][attribute]["rate"] or 0.0 for m in EDIT_METHODS}  # unavailable: 0
        top = max(rates, key=lambda m: rates[m])
        result["best"][attribute] = {"method": top, "rate": rates[top]}
    return result


def _method_edits(
    a: int,
    names: list[str],
    boundaries: dict[str, Any],
    z_pool: np.ndarray,
    labels_pool: np.ndarray,
    z_rest: np.ndarray,
    labels_rest: np.ndarray,
    k: int,
    rng: np.random.Generator,
) -> dict[str, tuple[tuple[float, ...], Callable[[np.ndarray, float], np.ndarray]] | str]:
    """method -> (its settings to tune, edit(rows of z_rest, setting) -> edited latents) for attribute a,
    or why the method cannot be built here (e.g. too few latents on one side, or a latent so small that
    the kept normals span it)."""

    def mean_vector():
        v = attribute_vector(z_pool, labels_pool[:, a])
        return EDIT_STRENGTHS, lambda rows, s: z_rest[rows] + s * v

    def boundary():
        b = _boundary(boundaries, names[a])
        return EDIT_DISTANCES, lambda rows, d: dirs.edit_to_distance(z_rest[rows], b, d)

    def conditional_boundary():
        b = _boundary(boundaries, names[a])
        along = dirs.conditional(b.normal, [boundaries[o].normal for o in names if o != names[a] and o in boundaries])
        return EDIT_DISTANCES, lambda rows, d: dirs.edit_to_distance(z_rest[rows], b, d, along)

    def conditional_shift():
        shift = dirs.ConditionalShift(z_pool, labels_pool, a)
        return EDIT_STRENGTHS, lambda rows, s: z_rest[rows] + s * shift.shift(labels_rest[rows])

    def exemplar():
        has, lacks = np.flatnonzero(labels_pool[:, a] > 0.5), np.flatnonzero(labels_pool[:, a] <= 0.5)
        if min(len(has), len(lacks)) < k:
            raise ValueError(f"fewer than {k} exemplars with and without {names[a]}")
        pick = [
            z_pool[rng.choice(has, k, replace=False)].mean(0) - z_pool[rng.choice(lacks, k, replace=False)].mean(0)
            for _ in z_rest
        ]
        vectors = np.stack(pick)  # fresh exemplars for every latent
        return EDIT_STRENGTHS, lambda rows, s: z_rest[rows] + s * vectors[rows]

    out: dict[str, Any] = {}
    for method, build in zip(
        EDIT_METHODS, (mean_vector, boundary, conditional_boundary, conditional_shift, exemplar), strict=True
    ):
        try:
            out[method] = build()
        except ValueError as e:
            out[method] = str(e)
    return out


def _boundary(boundaries: dict[str, Any], name: str) -> Any:
    if name not in boundaries:
        raise ValueError(f"no boundary for {name}: the labelled latents lack one side")
    return boundaries[name]
