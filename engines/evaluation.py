"""Held-out metrics of a checkpoint: VAE test ELBO and importance-weighted NLL; PixelCNN NLL; a
classifier's accuracy; and, judged by a trained classifier, GAN sample scores (Inception Score,
Frechet distance; a conditional model's class agreement) and latent-arithmetic success on `faces`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from . import metrics as M
from .checkpoint import Checkpoint, CheckpointError, read_metadata
from .data import DataSpec, load_dataset
from .models import VAE, Classifier, GatedPixelCNN
from .styles import StyleSpace, has_styles, ppl_report

REPO = Path(__file__).resolve().parents[1]
# The bundled classifier of each dataset, looked for in checkpoints/ then runs/ (see find_classifier).
CLASSIFIER_FILES = {"mnist": "lenet-mnist.safetensors", "faces": "attributes-faces.safetensors"}
ARITHMETIC_ATTRIBUTES = ("glasses", "smiling")  # attribute-vector edits scored on `faces`

Progress = Callable[[int, int], None]  # (images done, images in all)


def heldout_spec(ckpt: Checkpoint, data_root: str | None = None, binarize: str | None = None) -> DataSpec:
    """The DataSpec of the checkpoint's data, read from `data_root` (None: the default data root,
    engines.data.default_data_root; the root recorded in the file is a path on the machine that trained
    it, so it is not used), with its binarization unless `binarize` overrides it."""
    spec = DataSpec.from_dict(ckpt.dataset) if ckpt.dataset else None
    if spec is None:
        raise ValueError("the checkpoint does not say which dataset it was trained on")
    changes: dict[str, Any] = {"root": data_root}
    if binarize is not None:
        changes["binarize"] = binarize
    return replace(spec, **changes)


def heldout_dataset(ckpt: Checkpoint, data_root: str | None = None, binarize: str | None = None):
    """The held-out split of the data the checkpoint was trained on (see heldout_spec for the root)."""
    return load_dataset(heldout_spec(ckpt, data_root, binarize), train=False)


@torch.no_grad()
def evaluate(
    ckpt: Checkpoint,
    dataset,
    k: int = 100,
    limit: int | None = None,
    batch_size: int = 100,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Metrics in nats per image (and bits/dim for the PixelCNN) over the first `limit` test images.

    Sampling uses a generator seeded with `seed`, so the same call gives the same numbers.
    """
    model = ckpt.model.eval()
    n = len(dataset) if limit is None else min(limit, len(dataset))
    spec = getattr(dataset, "spec", None)
    result: dict[str, Any] = {
        "dataset": spec.name if spec else None,
        "split": "test",
        "images": n,
        "binarize": spec.binarize if spec else None,
    }
    gen = torch.Generator(device=model.device).manual_seed(seed)
    sums: dict[str, float] = {}
    start = time.perf_counter()
    for begin in range(0, n, batch_size):
        idx = torch.arange(begin, min(begin + batch_size, n))
        images, labels = dataset.get_batch(idx)
        images = images.to(model.device)
        for key, value in _batch_metrics(model, images, k, gen, labels.to(model.device)).items():
            sums[key] = sums.get(key, 0.0) + value
        if progress:
            progress(int(idx[-1]) + 1, n)
    result.update({key: value / n for key, value in sums.items()})
    if isinstance(model, GatedPixelCNN):
        result["bits_per_dim"] = model.bits_per_dim(result["nll"])
    result["seconds"] = round(time.perf_counter() - start, 1)
    if isinstance(model, VAE):
        result["iw_k"] = k
        result["active_units"] = active_units(model, dataset, n=min(n, 1000))
    return result


def _batch_metrics(
    model, images: torch.Tensor, k: int, gen: torch.Generator, labels: torch.Tensor | None = None
) -> dict[str, float]:
    if isinstance(model, VAE):
        terms = model.elbo(images, generator=gen)
        neg_elbo = terms.recon + terms.kl.sum(1)
        return {
            "elbo": -neg_elbo.sum().item(),
            "neg_elbo": neg_elbo.sum().item(),
            "recon": terms.recon.sum().item(),
            "kl": terms.kl.sum().item(),
            "iw_nll": model.iw_nll(images, k=k, generator=gen).sum().item(),
        }
    if isinstance(model, GatedPixelCNN):
        return {"nll": -model.log_prob(model.quantize(images)).sum().item()}
    if isinstance(model, Classifier):
        outputs = model(images)
        return {"loss": model.loss(outputs, labels).item() * images.shape[0], **model.score(outputs, labels)}
    raise ValueError(
        f"no held-out likelihood for a {model.kind}: its metrics (Inception Score, Frechet distance) "
        "are judged by a trained classifier (classifier_metrics; `latent-explorer eval FILE --classifier FILE`)"
    )


@torch.no_grad()
def active_units(model: VAE, dataset, n: int = 1000, threshold: float = 0.01) -> int:
    """Latent dimensions whose encoder mean varies across data: Cov_x(E_q[z_d]) > threshold (Burda et al.)."""
    images, _ = dataset.get_batch(torch.arange(min(n, len(dataset))))
    mu, _ = model.encode(images.to(model.device))
    return int((mu.var(dim=0) > threshold).sum().item())


# --- judged by a classifier ------------------------------------------------------------------------
def classifier_filename(dataset: str) -> str:
    """The file name of a dataset's classifier: lenet-mnist / attributes-faces, else classifier-<dataset>."""
    return CLASSIFIER_FILES.get(dataset, f"classifier-{dataset}.safetensors")


def classifier_folders() -> tuple[Path, ...]:
    """Where classifiers are looked for, in order: the repository's checkpoints/ (bundled), its runs/, ./runs/."""
    return (REPO / "checkpoints", REPO / "runs", Path.cwd() / "runs")


def find_classifier(
    dataset: str,
    explicit: str | Path | None = None,
    data: dict | None = None,
    labels: Sequence[str] = (),
    folders: Sequence[Path] | None = None,
) -> Path:
    """`explicit` if given; else the dataset's classifier in `folders` (default classifier_folders()).
    An image folder has no name to look up: its classifier is one trained on a folder of images of the
    model's size and channels (`data`, the model's dataset record) with the model's classes (`labels`),
    e.g. the bundled classifier-cifar10 for a model of the CIFAR-10 JPEGs; a folder model without
    classes has none (any classifier of the same size would read its images, but say nothing of them).
    Raises ValueError (one line, naming --classifier) when there is none."""
    if explicit:
        return Path(explicit)
    folders = classifier_folders() if folders is None else folders
    if dataset == "folder":
        return _folder_classifier(data or {}, list(labels), folders)
    name = classifier_filename(dataset)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise ValueError(
        f"no classifier for {dataset} (looked for {name} in checkpoints/ and runs/): pass --classifier FILE, "
        f"e.g. one trained with `latent-explorer train --model classifier --dataset {dataset}`"
    )


def _folder_classifier(data: dict, labels: list[str], folders: Sequence[Path]) -> Path:
    shape = (data.get("image_size"), data.get("channels"))
    for folder in folders:
        for path in sorted(folder.glob("classifier-*.safetensors")):
            try:
                meta = read_metadata(path)
            except CheckpointError:
                continue  # a broken file among the runs is not this model's classifier
            trained = meta.get("dataset") or {}
            if (
                meta.get("kind") == "classifier"
                and trained.get("name") == "folder"
                and (trained.get("image_size"), trained.get("channels")) == shape
                and labels
                and list(meta.get("label_names") or []) == labels
            ):
                return path
    if not labels:
        raise ValueError(
            "no classifier for an image folder without classes (images in class subfolders give it classes): "
            "pass --classifier FILE"
        )
    classes = f" with the classes {', '.join(labels[:4])}{'...' if len(labels) > 4 else ''}"
    raise ValueError(
        f"no classifier for this image folder (none trained on {shape[0]}x{shape[0]} folder images{classes} in "
        "checkpoints/ or runs/): pass --classifier FILE, e.g. one trained with `latent-explorer train --model "
        "classifier --dataset folder --data-root DIR` on a folder of class subfolders"
    )


def has_heldout_metrics(model) -> bool:
    """Whether `evaluate` measures the model on held-out data: a likelihood (VAE, PixelCNN) or a
    classifier's own loss. A model without (a GAN) is judged by a classifier reading its samples."""
    return isinstance(model, (VAE, GatedPixelCNN, Classifier))


def needs_classifier(ckpt: Checkpoint) -> bool:
    """Models without held-out metrics (GANs) and latent models on `faces` (attribute arithmetic) are
    judged by a classifier."""
    model = ckpt.model
    return not has_heldout_metrics(model) or (model.has_latent and ckpt.dataset.get("name") == "faces")


def _edit_metrics(result: dict, model, clf, test, attributes: list[str], edits: int, trials: int, seed: int) -> None:
    """The faces edit metrics into `result`: vector and exemplar arithmetic and the clean-edit rates, and
    for a style model the clean-edit rates in W too (same rule and settings; latents w = mapping(z))."""
    result["attribute_arithmetic"] = {
        a: M.attribute_arithmetic_success(model, clf, test, a, n=edits, seed=seed, strengths=M.DEFAULT_STRENGTHS)
        for a in attributes
    }
    if len(attributes) == 2:
        result["exemplar_arithmetic"] = M.exemplar_arithmetic_success(
            model, clf, test, "smiling", "glasses", trials=trials, seed=seed
        )
    result["clean_edits"] = M.clean_edit_rates(model, clf, test, attributes, n=edits, seed=seed)
    if has_styles(model):
        w_space = StyleSpace(model, "W")
        result["clean_edits_w"] = M.clean_edit_rates(w_space, clf, test, attributes, n=edits, seed=seed)
        result["clean_edits_w"]["latents"] += f" (in W: mapping(z), centred on mean w, in units of {w_space.sigma:.4g})"


def classifier_metrics(
    ckpt: Checkpoint,
    classifier: Checkpoint,
    data_root: str | None = None,
    n: int = 10_000,
    edits: int = 200,
    trials: int = 100,
    batch_size: int = 500,
    seed: int = 0,
    sample_scores: bool | None = None,
    test=None,
    ppl_pairs: int = 2000,
    train_root: str | None = None,
) -> dict[str, Any]:
    """Metrics of a generative checkpoint judged by a classifier checkpoint.

    Sample scores (`sample_scores`, default: for a model without held-out metrics, a GAN): metrics.gan_scores on n samples against the
    held-out set, with the real held-out set's own Inception Score and a train-vs-held-out Frechet
    distance for scale. On `faces`, for a VAE or GAN: attribute-vector success for "glasses" and
    "smiling" on `edits` faces (strength 1, and a strength tuned on separate faces), exemplar
    arithmetic (smiling - neutral + glasses) over `trials` draws, and the clean-edit rate of every
    direction-lab method (metrics.clean_edit_rates: one key per method).
    A conditional model (num_classes > 0): its class agreement (metrics.class_agreement, n / K samples
    of each class; key "class_agreement").
    For a style-based generator also: perceptual path length in Z and in W over `ppl_pairs` paths
    (engines.styles.ppl_report, in the classifier's features; key "perceptual_path_length") and, on
    faces, the clean-edit rates in W ("clean_edits_w", beside "clean_edits" in Z).
    `test` (optional) is the held-out dataset to use (e.g. the test images carried in the file, marked
    `is_sample`; then the train-vs-held-out distance is left out); default heldout_dataset(ckpt, data_root).
    The training images of that distance come from the same root, except for an image folder, which
    has no split: they come from `train_root` (the folder it was trained on), and without it the
    distance is left out rather than measured between the held-out folder and itself.
    """
    if not isinstance(classifier.model, Classifier):
        raise ValueError(
            f"{classifier.path.name if classifier.path else 'the classifier'} holds a {classifier.kind}, not a classifier"
        )
    name, judge = ckpt.dataset.get("name"), classifier.dataset.get("name")
    if name and judge and name != judge:
        raise ValueError(f"the classifier was trained on {judge} but the model on {name}")
    model, clf = ckpt.model.eval(), classifier.model.eval()
    start = time.perf_counter()
    result: dict[str, Any] = {
        # the file's name, not its path: metrics are published in model cards and must not name a machine's folders
        "dataset": name,
        "classifier": classifier.path.name if classifier.path else None,
        # its last epoch's held-out figures (validation; "test" in runs from before validation splits)
        "classifier_test": _last_heldout((classifier.training.get("history") or [{}])[-1]),
    }
    test = heldout_dataset(ckpt, data_root) if test is None else test
    if sample_scores is None:
        sample_scores = not has_heldout_metrics(model)
    if sample_scores:
        train = None
        if getattr(test, "is_sample", False):
            pass  # the carried test images: the train split is not here either
        elif ckpt.dataset.get("name") != "folder":
            train = load_dataset(heldout_spec(ckpt, data_root), train=True)
        elif train_root is not None:
            train = load_dataset(heldout_spec(ckpt, train_root), train=True)
        result["samples"] = M.gan_scores(
            model, clf, n=n, batch_size=batch_size, seed=seed, real_dataset=test, train_dataset=train
        )
    if getattr(getattr(model, "config", None), "code_classes", 0):  # what its unsupervised categories came to mean
        result["code_purity"] = M.code_purity(model, clf, n=n, batch_size=batch_size, seed=seed)
    if model.num_classes:  # a conditional model: does it draw the class it is asked for?
        result["class_agreement"] = M.class_agreement(model, clf, per_class=max(1, n // model.num_classes), seed=seed)
    kinds = clf.label_kinds
    attributes = [a for a in ARITHMETIC_ATTRIBUTES if kinds.get(a) == "binary"]
    if has_styles(model) and not model.num_classes:  # PPL over the prior of z: one class would have to be chosen
        result["perceptual_path_length"] = ppl_report(
            model, clf, n=ppl_pairs, seed=seed, classifier_name=result["classifier"]
        )
    if name == "faces" and model.has_latent and attributes:
        try:
            _edit_metrics(result, model, clf, test, attributes, edits, trials, seed)
        except ValueError as error:
            if not has_styles(model):
                raise
            # A generator that never draws one side of an attribute (mode dropping) has nothing to edit;
            # its sample scores and path lengths still stand, so they are kept with the reason.
            result["edits_error"] = str(error)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def _last_heldout(epoch: dict[str, Any]) -> dict[str, Any]:
    return epoch.get("val") or epoch.get("test") or {}
