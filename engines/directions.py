"""Directions in a latent space: discovered without labels, learned from labels, and made conditional.

Discovery (no labels):
- `sefa`: closed-form factorization (Shen & Zhou 2021): the top eigenvectors of A^T A for the weight A
  of the generator's first layer, the directions that layer stretches most.
- `jacobian_basis`: the right singular vectors of dG/dz at one z (central differences, so it works for
  every generator, ours, ONNX or a plugin), with the singular values: how many pixels move per unit.
- `pca_directions`: GANSpace-style principal directions of a set of latents.

Supervised (InterFaceGAN, Shen et al. 2020):
- `fit_boundary`: a linear classifier (logistic regression) separating latents with an attribute from
  latents without; the direction is the unit normal, and the signed distance z.n + offset says how far
  a latent is on either side. `fit_readout` does the same for a continuous attribute (ridge regression).
- `conditional`: "change A, keep B": A's normal with the span of the kept normals projected out.
- `edit_to_distance`: InterFaceGAN's edit, moving each latent along a direction until its signed
  distance to the boundary is a chosen value (latents far from the boundary move further).
- `ConditionalShift`: the mean change of z when the attribute turns on and every other attribute stays
  as it is, from a regression of z on the labels with the attribute's interactions; unlike one global
  vector it adapts to the latent's other attributes (glasses are drawn differently over large eyes).

Qt-free, numpy in and out; scikit-learn fits the linear models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .latent import decode_latents, principal_directions

COSINE_MATCH = 0.5  # a discovered direction "is" an attribute when |cos| with its boundary exceeds this


@dataclass(frozen=True)
class Direction:
    """A unit direction in latent space and where it came from."""

    name: str
    vector: np.ndarray  # (D,) float32, unit length
    method: str  # "sefa", "jacobian", "pca", "boundary", "conditional", ...
    value: float | None = None  # eigenvalue, singular value, explained variance or held-out accuracy


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm < 1e-12:
        raise ValueError("the direction has zero length")
    return v / norm


def _fix_signs(rows: np.ndarray) -> np.ndarray:
    """Each row's largest-magnitude entry made positive, so the same input gives the same axes."""
    signs = np.sign(rows[np.arange(len(rows)), np.argmax(np.abs(rows), axis=1)])
    return rows * np.where(signs == 0, 1.0, signs)[:, None]


# --- discovery ----------------------------------------------------------------------------------
def sefa(model: torch.nn.Module, k: int | None = None) -> list[Direction]:
    """The top-k eigenvectors of A^T A, A = model.latent_weight() (out_features, D), largest first;
    `value` is the eigenvalue. Raises ValueError for a model whose weights are not ours to read."""
    if not hasattr(model, "latent_weight"):
        raise ValueError(
            f"SeFa needs the weights of the generator's first layer, which a {getattr(model, 'kind', 'model')} "
            "does not expose; use the Jacobian basis instead"
        )
    with torch.no_grad():
        a = model.latent_weight().detach().double().cpu().numpy()
    values, vectors = np.linalg.eigh(a.T @ a)
    order = np.argsort(values)[::-1][: k or len(values)]
    rows = _fix_signs(vectors[:, order].T)
    return [
        Direction(f"SeFa {i + 1}", rows[i].astype(np.float32), "sefa", float(values[j])) for i, j in enumerate(order)
    ]


def jacobian(model: torch.nn.Module, z: np.ndarray, eps: float = 1e-2) -> np.ndarray:
    """dG/dz at z as a (pixels, D) matrix, by central differences on the decoded images in [0, 1]
    (one batched decode of 2D latents)."""
    z = np.asarray(z, np.float32).reshape(-1)
    d = z.shape[0]
    steps = np.eye(d, dtype=np.float32) * eps
    images = decode_latents(model, np.concatenate([z + steps, z - steps])).reshape(2 * d, -1).astype(np.float64)
    return ((images[:d] - images[d:]) / (2 * eps)).T


def jacobian_basis(model: torch.nn.Module, z: np.ndarray, k: int | None = None, eps: float = 1e-2) -> list[Direction]:
    """The right singular vectors of dG/dz at z, largest singular value first; `value` is the singular
    value (the image's change, in [0, 1] pixel units summed in quadrature, per unit step along it)."""
    _, s, vt = np.linalg.svd(jacobian(model, z, eps), full_matrices=False)
    rows = _fix_signs(vt[: k or len(s)])
    return [Direction(f"Jacobian {i + 1}", r.astype(np.float32), "jacobian", float(s[i])) for i, r in enumerate(rows)]


def pca_directions(latents: np.ndarray, k: int | None = None) -> list[Direction]:
    """GANSpace-style principal directions of (N, D) latents; `value` is the explained variance."""
    _, comps, var = principal_directions(latents)
    n = k or len(comps)
    return [Direction(f"PC {i + 1}", comps[i], "pca", float(var[i])) for i in range(min(n, len(comps)))]


# --- supervised boundaries ----------------------------------------------------------------------
@dataclass(frozen=True)
class Boundary:
    """A hyperplane in latent space: signed distance(z) = z . normal + offset (normal is unit)."""

    attribute: str
    normal: np.ndarray  # (D,) float32, unit; points toward "has the attribute" / larger values
    offset: float
    accuracy: float | None  # held-out accuracy (binary) or R^2 (continuous); None when too few labels
    kind: str  # "binary" or "continuous"
    n: int  # latents it was fitted on

    def distance(self, latents: np.ndarray) -> np.ndarray:
        return np.atleast_2d(np.asarray(latents, np.float64)) @ self.normal.astype(np.float64) + self.offset

    def direction(self) -> Direction:
        return Direction(self.attribute, self.normal, "boundary", self.accuracy)


def _holdout(n: int, seed: int, fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * (1 - fraction)))
    return order[:cut], order[cut:]


def fit_boundary(
    latents: np.ndarray, has: np.ndarray, attribute: str = "attribute", seed: int = 0, c: float = 1.0
) -> Boundary:
    """Logistic regression on (N, D) latents and (N,) bool labels. `accuracy` is measured on a held-out
    quarter (stratified so both sides appear), then the boundary is refitted on every latent.
    Needs at least 2 latents on each side (a user's 20-50 tags are enough for a usable direction)."""
    from sklearn.linear_model import LogisticRegression

    z = np.asarray(latents, np.float64)
    y = np.asarray(has, bool).reshape(-1)
    if z.ndim != 2 or len(z) != len(y):
        raise ValueError(f"{len(z)} latents but {len(y)} labels")
    pos, neg = int(y.sum()), int((~y).sum())
    if min(pos, neg) < 2:
        raise ValueError(f"need at least 2 latents with and 2 without {attribute} (have {pos} and {neg})")

    def fit(rows: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=c, max_iter=5000).fit(z[rows], y[rows])

    accuracy = None
    if min(pos, neg) >= 4:
        rng = np.random.default_rng(seed)
        test = np.concatenate(
            [rng.permutation(np.flatnonzero(y == side))[: max(1, (y == side).sum() // 4)] for side in (0, 1)]
        )
        train = np.setdiff1d(np.arange(len(y)), test)
        accuracy = round(float(fit(train).score(z[test], y[test])), 4)
    model = fit(np.arange(len(y)))
    w, b = model.coef_[0], float(model.intercept_[0])
    norm = float(np.linalg.norm(w))
    if norm < 1e-12:
        raise ValueError(f"the labels of {attribute} do not depend on the latent (a zero boundary)")
    return Boundary(attribute, (w / norm).astype(np.float32), b / norm, accuracy, "binary", len(y))


def fit_readout(latents: np.ndarray, values: np.ndarray, attribute: str = "attribute", seed: int = 0) -> Boundary:
    """Ridge regression of a continuous attribute on (N, D) latents: the direction along which it grows
    fastest. `accuracy` is the held-out R^2 (a quarter of the latents), then the fit uses them all."""
    from sklearn.linear_model import Ridge

    z = np.asarray(latents, np.float64)
    y = np.asarray(values, np.float64).reshape(-1)
    if len(z) != len(y) or len(y) < 8:
        raise ValueError(f"need at least 8 latents with values of {attribute} (have {len(y)})")
    train, test = _holdout(len(y), seed)
    r2 = round(float(Ridge(alpha=1.0).fit(z[train], y[train]).score(z[test], y[test])), 4)
    model = Ridge(alpha=1.0).fit(z, y)
    norm = float(np.linalg.norm(model.coef_))
    if norm < 1e-12:
        raise ValueError(f"{attribute} does not depend on the latent (a zero readout)")
    return Boundary(
        attribute, (model.coef_ / norm).astype(np.float32), float(model.intercept_) / norm, r2, "continuous", len(y)
    )


def fit_boundaries(
    latents: np.ndarray, labels: np.ndarray, names: Sequence[str], kinds: dict[str, str]
) -> dict[str, Boundary]:
    """One boundary per labelled attribute: binary and class columns by logistic regression (columns
    with one side empty are left out), continuous ones by ridge regression."""
    out: dict[str, Boundary] = {}
    for j, name in enumerate(names):
        column = np.asarray(labels)[:, j]
        if kinds.get(name) == "continuous":
            out[name] = fit_readout(latents, column, name)
            continue
        has = column > 0.5
        if min(has.sum(), (~has).sum()) >= 2:
            out[name] = fit_boundary(latents, has, name)
    return out


def conditional(normal: np.ndarray, keep: Sequence[np.ndarray]) -> np.ndarray:
    """`normal` with the span of the `keep` normals projected out, renormalised: moving along it leaves
    every kept attribute's linear readout unchanged. Raises ValueError when nothing is left (the
    attribute lies in the span of those it should keep)."""
    v = _unit(normal)
    if len(keep):
        basis, _ = np.linalg.qr(np.stack([np.asarray(k, np.float64) for k in keep], axis=1))
        v = v - basis @ (basis.T @ v)
    if np.linalg.norm(v) < 1e-6:
        raise ValueError("the attribute cannot change while those kept stay fixed (its normal lies in their span)")
    return _unit(v).astype(np.float32)


def edit_to_distance(
    latents: np.ndarray, boundary: Boundary, distance: float, along: np.ndarray | None = None
) -> np.ndarray:
    """Each latent moved along `along` (default: the boundary's normal) until its signed distance to the
    boundary is `distance` (InterFaceGAN's edit). `along` must not be parallel to the boundary."""
    z = np.atleast_2d(np.asarray(latents, np.float64))
    v = boundary.normal.astype(np.float64) if along is None else _unit(along)
    rate = float(v @ boundary.normal)  # distance gained per unit step along v
    if abs(rate) < 1e-6:
        raise ValueError(f"moving along this direction does not cross the {boundary.attribute} boundary")
    step = (distance - boundary.distance(z)) / rate
    return (z + step[:, None] * v[None]).astype(np.float32)


class ConditionalShift:
    """E[z | attribute on, others] - E[z | attribute off, others] from a least-squares fit of z on the
    labels plus the attribute's products with every other label; the shift depends on the latent's
    other attributes (its labels, or a classifier's reading of its image)."""

    def __init__(self, latents: np.ndarray, labels: np.ndarray, index: int) -> None:
        z = np.asarray(latents, np.float64)
        labels = np.asarray(labels, np.float64)
        if len(z) != len(labels) or len(z) < 2 * (2 * labels.shape[1] + 1):
            raise ValueError(f"too few labelled latents ({len(z)}) for a conditional shift")
        self.index = index
        self.weights, *_ = np.linalg.lstsq(self._features(labels), z, rcond=None)

    def _features(self, labels: np.ndarray) -> np.ndarray:
        others = np.delete(labels, self.index, axis=1)
        return np.c_[np.ones(len(labels)), labels, labels[:, self.index : self.index + 1] * others]

    def shift(self, labels: np.ndarray) -> np.ndarray:
        """(N, L) labels of the latents to edit -> (N, D) shifts that turn the attribute on."""
        off = np.atleast_2d(np.asarray(labels, np.float64)).copy()
        off[:, self.index] = 0.0
        on = off.copy()
        on[:, self.index] = 1.0
        return ((self._features(on) - self._features(off)) @ self.weights).astype(np.float32)


# --- explaining directions ----------------------------------------------------------------------
def match_attribute(
    vector: np.ndarray, boundaries: dict[str, Boundary], threshold: float = COSINE_MATCH
) -> tuple[str, float] | None:
    """The attribute whose boundary normal has the largest |cosine| with `vector`, with that signed
    cosine, when it exceeds `threshold`; else None."""
    v = _unit(vector)
    best: tuple[str, float] | None = None
    for name, b in boundaries.items():
        cos = float(v @ b.normal.astype(np.float64))
        if abs(cos) > threshold and (best is None or abs(cos) > abs(best[1])):
            best = (name, round(cos, 3))
    return best


def along(z: np.ndarray, vector: np.ndarray, sigmas: Sequence[float]) -> np.ndarray:
    """(len(sigmas), D) latents z + s * unit(vector): the strip that explains a direction (in units of
    the prior's standard deviation, 1 per axis)."""
    v = _unit(vector)
    return (np.asarray(z, np.float64)[None] + np.asarray(sigmas, np.float64)[:, None] * v[None]).astype(np.float32)


# --- labels for boundaries, and a direction's effect (the explorer's Directions tab) ------------
def sampled_latents(model: torch.nn.Module, n: int, seed: int = 0) -> np.ndarray:
    """(n, D) draws from the model's prior (its own `random_latents` when it has one, else N(0, I))."""
    gen = torch.Generator().manual_seed(seed)
    if hasattr(model, "random_latents"):
        z = model.random_latents(n, generator=gen)
    else:
        z = torch.randn((n, int(model.latent_dim)), generator=gen)
    return z.cpu().numpy().astype(np.float32)


@dataclass(frozen=True)
class Labelled:
    """Latents with labels, the columns a boundary can be fitted to (binary/class as 0/1, continuous as
    values): what boundaries and conditional shifts are fitted on."""

    latents: np.ndarray  # (N, D)
    labels: np.ndarray  # (N, L)
    names: list[str]
    kinds: dict[str, str]

    def boundaries(self) -> dict[str, Boundary]:
        return fit_boundaries(self.latents, self.labels, self.names, self.kinds)

    def shift(self, attribute: str, labels_here: np.ndarray) -> np.ndarray:
        """The conditional shift (ConditionalShift) that turns `attribute` on for a latent whose labels
        (in these columns) are `labels_here`: a (D,) vector, applied in full at strength 1."""
        if self.kinds.get(attribute) == "continuous":
            raise ValueError(f"{attribute} is continuous: a shift turns a binary attribute or a class on")
        return ConditionalShift(self.latents, self.labels, self.names.index(attribute)).shift(labels_here)[0]


def classifier_labelled(model: torch.nn.Module, classifier, n: int = 1000, seed: int = 0) -> Labelled:
    """n generated samples labelled by a classifier's readings (categorical columns, an index, left out)."""
    from .metrics import decode_to_labels

    z = sampled_latents(model, n, seed)
    kinds = dict(classifier.label_kinds)
    names = [name for name in kinds if kinds[name] != "categorical"]  # an index is not a side of a plane
    return Labelled(z, classifier_columns(decode_to_labels(model, classifier, z), classifier, names), names, kinds)


def classifier_columns(readings: np.ndarray, classifier, names: Sequence[str]) -> np.ndarray:
    """The columns `names` of a classifier's (N, L) readings."""
    order = list(classifier.label_kinds)
    return np.asarray(readings)[:, [order.index(name) for name in names]]


def classifier_boundaries(model: torch.nn.Module, classifier, n: int = 1000, seed: int = 0) -> dict[str, Boundary]:
    """Boundaries from a classifier's readings of n generated samples (any model with a latent):
    one per binary attribute and per class, a readout per continuous attribute."""
    return classifier_labelled(model, classifier, n, seed).boundaries()


def dataset_labelled(latents: np.ndarray, labels: np.ndarray, names: Sequence[str], kinds: dict[str, str]) -> Labelled:
    """Encoded dataset images with their own labels; categorical columns become one 0/1 column per
    value ("shape = 2")."""
    labels = np.asarray(labels, np.float64)
    columns, out_names, out_kinds = [], [], {}
    for j, name in enumerate(names):
        if kinds.get(name) == "categorical":
            for value in np.unique(np.round(labels[:, j])):
                out_names.append(f"{name} = {int(value)}")
                out_kinds[out_names[-1]] = "binary"
                columns.append((np.round(labels[:, j]) == value).astype(np.float64))
        else:
            out_names.append(name)
            out_kinds[name] = kinds.get(name, "continuous")
            columns.append(labels[:, j])
    return Labelled(np.asarray(latents), np.stack(columns, axis=1), out_names, out_kinds)


def dataset_boundaries(latents: np.ndarray, labels: np.ndarray, names: Sequence[str], kinds: dict[str, str]):
    """Boundaries from encoded dataset images and their own labels: categorical columns become one
    boundary per value ("shape = 2"), the rest as in fit_boundaries."""
    return dataset_labelled(latents, labels, names, kinds).boundaries()


def scores_along(
    model: torch.nn.Module, classifier, z: np.ndarray, vector: np.ndarray, sigmas: Sequence[float]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The images along a direction ((len(sigmas), H, W, C) in [0, 1]) and, with a classifier, how each
    of its readings moves along it: class and binary attributes as probabilities, continuous ones as
    values (categorical ones, an index, are left out)."""
    from .metrics import adapt_images

    images = decode_latents(model, along(z, vector, sigmas))
    if classifier is None:
        return images, {}
    x = torch.as_tensor(images).permute(0, 3, 1, 2).to(next(classifier.parameters()).device)
    with torch.no_grad():
        readings = classifier.predict(adapt_images(x, classifier))
    kinds = dict(classifier.label_kinds)
    scores = {name: v.float().cpu().numpy() for name, v in readings.items() if kinds.get(name) != "categorical"}
    return images, scores
