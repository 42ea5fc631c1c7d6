"""The command line: `latent-explorer train | eval | sample | export | render`. No Qt is imported here.

Every argument is checked before anything heavy runs (argparse `type=` functions for ranges and
finite numbers, then the combinations, paths, devices and the model config), so a mistake costs a
second, not a training run. Exit status: 0 done; 1 a file, dataset or run failed; 2 bad arguments
(argparse's convention), each with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import SUFFIX, CheckpointError, is_safetensors, load_checkpoint, read_metadata, update_checkpoint
from .data import (
    BINARIZE_MODES,
    DATA_ROOT_ENV,
    DATASET_NAMES,
    DatasetError,
    DataSpec,
    default_data_root,
    load_dataset,
    load_splits,
)
from .data.sample import sample_dataset
from .data.spec import CHANNEL_COUNTS, IMAGE_SIZES
from .data.split import describe_record
from .device import pick_device
from .evaluation import classifier_filename
from .export import FILTERS, MAX_SIDE, VideoSettings, mp4_writer, render_latents
from .export import FORMATS as EXPORT_FORMATS
from .images import save_png, to_grid
from .latent import PATH_MODES, interpolate_path
from .memory import MemoryEstimateError, check_training_memory
from .models import MODEL_CLASSES, make_config
from .models.classifier import config_for_dataset
from .models.conditional import ClassView, one_hot
from .references import HIGHER_IS_BETTER, meets, references_for, target_for
from .training import (
    PRECISIONS,
    CheckpointSaved,
    Diverged,
    EpochEnd,
    Finished,
    Health,
    SampleGrid,
    Started,
    StepDone,
    TrainConfig,
    Trainer,
    create_model,
    distributed,
)
from .training.run import (
    ARCHITECTURE,
    CONDITIONAL,
    GAN_LOSSES,
    STEERING,
    TRAIN_DEFAULTS,
    RunSettings,
    applies,
    config_default,
    kinds_for,
)
from .training.tensorboard import TensorBoardLogger
from .walks import WALK_KINDS, WalkSettings, closed_path, walk_latents

log = logging.getLogger(__name__)

TORCHVISION_SETS = ("mnist", "fashion-mnist", "cifar10", "celeba")
PROCEDURAL_SETS = ("shapes", "faces")
MAX_GRID_MEGAPIXELS = 50  # `sample`: the PNG written stays below this (about 150 MB of RGB in memory)


class CLIError(Exception):
    """A user mistake or a failure, reported as one line; exit status 1."""

    exit_code = 1


class UsageError(CLIError):
    """A bad argument (or combination) found before anything ran; exit status 2, as argparse's."""

    exit_code = 2


# --- argument types: ranges and finite numbers, checked while parsing ----------------------------------
def _int_in(low: int, high: int | None = None):
    """An argparse type: a whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, not {value}")
        return value

    parse.__name__ = "int"
    return parse


def _float_in(low: float, high: float, low_inclusive: bool = True):
    """An argparse type: a finite number in [low, high] (or (low, high] when not low_inclusive)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        if value < low or (value == low and not low_inclusive):
            bound = f"at least {low:g}" if low_inclusive else f"greater than {low:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, not {text}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:g}, not {text}")
        return value

    parse.__name__ = "float"
    return parse


_positive = _int_in(1)
_non_negative = _int_in(0)
_seed = _int_in(0, 2**32 - 1)
_finite_positive_float = _float_in(0.0, 1e6, low_inclusive=False)
# The types of train's settings: the parser's, and the check of the settings a resumed run stored.
TRAIN_TYPES = {
    "epochs": _int_in(1, 100_000),
    "max_steps": _int_in(1, 10**9),
    "batch_size": _int_in(1, 65536),
    "lr": _float_in(0.0, 1.0, low_inclusive=False),
    "seed": _seed,
    "sample_every": _non_negative,
    "checkpoint_every": _non_negative,
    "beta": _float_in(0.0, 1000.0),
    "d_steps": _int_in(1, 100),
    "ema": _float_in(0.0, 0.9999),
}


def _data_root_help(what: str) -> str:
    return f"{what} (default: ${DATA_ROOT_ENV} if set, else ./data; now {default_data_root()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="latent-explorer",
        description="Train, evaluate and sample generative image models.",
        epilog=f"Data root: --data-root, else ${DATA_ROOT_ENV}, else ./data, for every command. "
        "Exit status: 0 done, 1 a file, dataset or run failed, 2 bad arguments.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train a model (also under torchrun)",
        epilog="--resume keeps every setting the run stored (epochs, max steps, batch size, lr, seed, "
        "precision, sample/checkpoint intervals, beta, d-steps, data root, binarization); a "
        "flag given on the command line overrides it, and each override is printed. The model, "
        "its architecture and the dataset cannot change on resume. "
        "Multi-process: torchrun --nproc_per_node N -m explorer train ... (DDP; gloo on CPU, "
        "nccl on GPU)",
    )
    t.add_argument("--model", choices=sorted(MODEL_CLASSES), help="required unless --resume")
    t.add_argument("--dataset", choices=DATASET_NAMES, help="required unless --resume")
    t.add_argument(
        "--data-root", help=_data_root_help("torchvision root folder, or the image folder for --dataset folder")
    )
    t.add_argument("--epochs", type=TRAIN_TYPES["epochs"], help="default 10")
    t.add_argument(
        "--max-steps", type=TRAIN_TYPES["max_steps"], help="stop after this many steps in all (default: no limit)"
    )
    t.add_argument("--latent-dim", type=_int_in(1, 1024), help="VAE/GAN latent size (VAE default 16, 2 to 256; GAN 64)")
    t.add_argument("--batch-size", type=TRAIN_TYPES["batch_size"], help="per process; default 128")
    t.add_argument(
        "--lr",
        type=TRAIN_TYPES["lr"],
        help="learning rate in (0, 1] (default: the model's: Adam 1e-3, GAN 2e-4, WGAN-GP 1e-4)",
    )
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (a resumed run: auto too)")
    t.add_argument("--seed", type=TRAIN_TYPES["seed"], help="default 0")
    t.add_argument("--image-size", type=int, choices=IMAGE_SIZES, help="default: the dataset's own")
    t.add_argument("--channels", type=int, choices=CHANNEL_COUNTS, help="default: the dataset's own")
    t.add_argument("--binarize", choices=BINARIZE_MODES, help="default: stochastic for a 2-level PixelCNN, else none")
    t.add_argument("--gan-loss", choices=GAN_LOSSES, help="non-saturating GAN (default) or WGAN-GP")
    t.add_argument(
        "--d-steps",
        type=TRAIN_TYPES["d_steps"],
        help="discriminator steps per generator step (default: 1 for ns, 5 for wgan-gp)",
    )
    t.add_argument(
        "--levels", type=_int_in(2, 256), help="PixelCNN intensity levels (default 2 for grayscale, 16 for colour)"
    )
    t.add_argument(
        "--hidden",
        type=_int_in(1, 512),
        help="PixelCNN hidden channels (default 64, colour 96; a multiple of the channels)",
    )
    t.add_argument("--layers", type=_int_in(1, 64), help="PixelCNN gated layers (default 10)")
    t.add_argument(
        "--conditional",
        action="store_true",
        default=None,
        help="a class-conditional GAN or style-based generator on the dataset's classes (mnist, "
        "fashion-mnist, cifar10); kept on --resume",
    )
    t.add_argument(
        "--ema",
        type=TRAIN_TYPES["ema"],
        metavar="DECAY",
        help="keep an exponential moving average of the weights with this decay (e.g. 0.999; default 0: none); "
        "checkpoints and samples then hold the average, which gives a GAN cleaner samples. A resumed run "
        "keeps its own; --ema on the resume of a run without one starts the average there",
    )
    t.add_argument(
        "--code-classes",
        type=_int_in(0, 1024),
        metavar="K",
        help="GAN: learn a K-way categorical code from the first K latent units, without labels (InfoGAN; "
        "G then learns at 5x the rate of D); default 0: none",
    )
    t.add_argument("--beta", type=TRAIN_TYPES["beta"], help="VAE KL weight (default 1 = the ELBO)")
    t.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="fp32 (default), or bf16: bfloat16 autocast, ~2x faster where the CPU/GPU has bf16 units",
    )
    t.add_argument(
        "--sample-every",
        type=TRAIN_TYPES["sample_every"],
        help="steps between sample grids (default 0: each epoch end)",
    )
    t.add_argument(
        "--checkpoint-every",
        type=TRAIN_TYPES["checkpoint_every"],
        help="steps between checkpoints (default 0: each epoch end only)",
    )
    t.add_argument(
        "--resume",
        metavar="FILE",
        help="continue the run saved in FILE with its own settings (writes back to --out, default FILE)",
    )
    t.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard events to DIR")
    t.add_argument(
        "--ignore-memory-check",
        action="store_true",
        help="train even when the estimated memory of the run exceeds what is available (it is "
        "checked before loading the data; see engines/memory.py)",
    )
    t.add_argument(
        "--out",
        help=f"checkpoint file, ending in {SUFFIX} (default: runs/<model>-<dataset>{SUFFIX}); "
        "missing folders are created; an existing file is kept unless --overwrite",
    )
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="let a new run replace an existing --out file (a resumed run writes back to its own file)",
    )

    e = sub.add_parser(
        "eval",
        help="held-out metrics of a checkpoint",
        epilog="Without the dataset's files, a model that carries test images (the bundled MNIST "
        "models carry 1000) is evaluated on those, and says so; --save is then refused.",
    )
    e.add_argument("file")
    e.add_argument("--data-root", help=_data_root_help("torchvision root folder of the test set"))
    e.add_argument(
        "--train-data-root",
        metavar="DIR",
        help="an image folder model's training folder, for the real train-vs-held-out Frechet baseline "
        "(--data-root is then its held-out folder; other datasets take both splits from --data-root)",
    )
    e.add_argument("--k", type=_int_in(1, 100_000), default=100, help="importance samples for the VAE's NLL estimate")
    e.add_argument("--limit", type=_int_in(1, 10**9), help="evaluate the first N test images only")
    e.add_argument("--binarize", choices=BINARIZE_MODES, help="override the binarization of the test data")
    e.add_argument("--batch-size", type=_int_in(1, 1000), default=100)
    e.add_argument("--device", default="auto")
    e.add_argument("--seed", type=_seed, default=0)
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.add_argument("--save", action="store_true", help="store the metrics in the checkpoint's metadata")
    e.add_argument(
        "--classifier",
        metavar="FILE",
        help="classifier checkpoint judging a GAN's samples or faces arithmetic (default: the bundled "
        "checkpoints/lenet-mnist or attributes-faces, else runs/)",
    )
    e.add_argument(
        "--n", type=_int_in(10, 1_000_000), default=10_000, help="samples for the Inception Score and Frechet distance"
    )
    e.add_argument("--edits", type=_int_in(1, 100_000), default=200, help="faces edited per attribute vector (faces)")
    e.add_argument("--trials", type=_int_in(1, 100_000), default=100, help="exemplar-arithmetic trials (faces)")
    e.add_argument(
        "--allow-nonfinite",
        action="store_true",
        help="go on (with a warning) when the weights hold NaN or infinite values",
    )

    x = sub.add_parser(
        "export",
        help="write a VAE's or GAN's decoder (and encoder) as ONNX, with a sidecar",
        epilog="Writes DIR/NAME.onnx (z -> images in [0, 1]), DIR/NAME-encoder.onnx (a VAE's images -> "
        "mean, log-variance) and DIR/NAME.json (the sidecar), then re-opens them and checks "
        "that their images match the checkpoint's within 1e-4. PixelCNNs have no decoder to "
        "export.",
    )
    x.add_argument("file")
    x.add_argument("--onnx", metavar="DIR", required=True, help="folder to write the ONNX files and sidecar into")
    x.add_argument("--name", help="file name stem (default: the checkpoint's)")
    x.add_argument("--overwrite", action="store_true", help="replace files of an earlier export")

    s = sub.add_parser("sample", help="write a grid of samples")
    s.add_argument("file")
    s.add_argument("--n", type=_int_in(1, 4096), default=64, help="how many samples (at most 4096)")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument(
        "--temperature",
        type=_float_in(0.0, 100.0, low_inclusive=False),
        help="latent scale (VAE), softmax temperature (PixelCNN); > 0, default 1",
    )
    s.add_argument(
        "--truncation",
        type=_float_in(0.0, 100.0, low_inclusive=False),
        help="GAN truncation threshold (> 0); for a style-based generator, psi in W (1: none)",
    )
    s.add_argument(
        "--scale",
        type=_int_in(1, 64),
        default=4,
        help=f"enlarge each pixel this many times (the PNG stays under {MAX_GRID_MEGAPIXELS} megapixels)",
    )
    s.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="a conditional model's class to draw (its name or index; default: every class in turn)",
    )
    s.add_argument("--device", default="auto")
    s.add_argument("--out", required=True, help="PNG file to write (missing folders are created)")
    s.add_argument(
        "--allow-nonfinite",
        action="store_true",
        help="go on (with a warning) when the weights hold NaN or infinite values",
    )
    r = sub.add_parser(
        "render",
        help="render a keyframe path or a walk as MP4, GIF or PNG strip, with every frame's latent beside it",
        epilog="Input: --keyframes (.npy files of one latent (D,) or several (K, D)), --session (a saved "
        "session: its Interpolate keyframes, else its bookmarks; its checkpoint unless one is named), or "
        "--walk random|vector. Writes OUT and OUT's <stem>_latents.npy / .json.",
    )
    r.add_argument("file", nargs="?", help="checkpoint or ONNX model (default: the session's)")
    r.add_argument("--out", required=True, help="the .mp4, .gif or .png file to write")
    r.add_argument("--keyframes", nargs="+", metavar="NPY", help="keyframe latents, in order")
    r.add_argument("--session", metavar="JSON", help="a session saved by the app")
    r.add_argument("--walk", choices=WALK_KINDS, help="a random walk, or back and forth along --vector")
    r.add_argument("--mode", choices=PATH_MODES, help="keyframe interpolation (default: the session's, else spherical)")
    r.add_argument("--seconds", type=_float_in(0.0, 3600.0, low_inclusive=False), help="duration (default 10 s)")
    r.add_argument("--fps", type=_float_in(1.0, 120.0), default=30.0, help="frames per second (default 30)")
    r.add_argument("--size", type=_int_in(8, MAX_SIDE), default=512, help="frame side in pixels (default 512)")
    r.add_argument("--filter", choices=FILTERS, default="nearest", help="how model pixels are scaled up")
    r.add_argument("--loop", action="store_true", help="the last frame leads smoothly into the first")
    r.add_argument("--speed", type=_float_in(0.0, 100.0, low_inclusive=False), default=0.5, help="walk speed")
    r.add_argument("--smoothness", type=_float_in(0.0, 1.0), default=0.5, help="random walk smoothness, 0..1")
    r.add_argument("--seed", type=_seed, default=0, help="random walk seed")
    r.add_argument(
        "--free",
        action="store_true",
        help="random walk: let |z| vary as under the prior (default: on the sphere of radius sqrt(D))",
    )
    r.add_argument("--vector", help="vector walk: an attribute vector saved in the checkpoint or session")
    r.add_argument("--vector-file", metavar="NPY", help="vector walk: a (D,) vector from a .npy file")
    r.add_argument(
        "--amplitude",
        type=_float_in(0.0, 100.0, low_inclusive=False),
        default=2.0,
        help="vector walk: strength at the ends",
    )
    r.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="a conditional model's class (its name or index; default: the session's class blend)",
    )
    r.add_argument("--device", default="auto")
    r.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    return parser


# --- checks shared by the commands ------------------------------------------------------------------
def _reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def _device(name: str) -> torch.device:
    try:
        return pick_device(name)
    except ValueError as error:
        raise UsageError(f"--device: {error}") from None


def _existing_checkpoint(text: str, flag: str = "") -> Path:
    """`text` names an existing file (not a folder); the file's content is checked by whoever reads it."""
    path = Path(text)
    if path.is_dir():
        raise UsageError(f"no checkpoint at {path}: it is a folder ({flag or 'name'} a {SUFFIX} file)")
    if not path.exists():
        raise UsageError(f"no checkpoint at {path}" + (f" ({flag})" if flag else ""))
    return path


def _writable_folder(folder: Path, flag: str, what: str) -> None:
    """`folder` exists (missing folders are created, as the writers would) and accepts new files."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot write {flag} {what}: cannot create the folder {folder} ({_reason(error)})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".latent-explorer-probe.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise UsageError(
            f"cannot write {flag} {what}: the folder {folder} does not accept new files ({_reason(error)})"
        ) from None


def _writable_output(path: Path, flag: str) -> None:
    """Before any work: `path` is not a folder and its folder accepts a new file."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; name a file")
    _writable_folder(path.parent, flag, str(path))


def _check_data_root(dataset: str, root: str | None, source: str = "--data-root") -> None:
    """The folder a torchvision or folder dataset is read from exists (its files are checked on loading)."""
    if dataset in PROCEDURAL_SETS:
        return
    if dataset == "folder":
        if not root:
            raise UsageError("--dataset folder needs --data-root pointing at a folder of images")
        if not Path(root).is_dir():
            raise UsageError(f"{source} {root}: no such folder")
        return
    if root:
        if not Path(root).is_dir():
            raise UsageError(
                f"{source} {root}: no such folder" + (" (pass --data-root DIR)" if source != "--data-root" else "")
            )
        return
    default = Path(default_data_root())
    if not default.is_dir():
        raise UsageError(
            f"no data root for {dataset}: {default.resolve()} does not exist "
            f"(pass --data-root DIR or set {DATA_ROOT_ENV})"
        )


def _check_finite(ckpt, path: Path, allow: bool) -> None:
    """Refuse a model whose weights hold NaN/inf (its images and metrics would be meaningless), unless
    --allow-nonfinite, which turns it into a warning."""
    bad = ckpt.nonfinite  # the weight tensors holding NaN or infinity
    if not bad:
        return
    what = (
        f"{path.name}: {len(bad)} weight tensor{'s' if len(bad) != 1 else ''} hold{'s' if len(bad) == 1 else ''} "
        f"NaN or infinite values (first: {bad[0]})"
    )
    if not allow:
        raise CLIError(f"{what}; its outputs would be meaningless (pass --allow-nonfinite to go on anyway)")
    print(f"warning: {what}; going on (--allow-nonfinite)", file=sys.stderr)


# --- train ------------------------------------------------------------------------------------------
# The settings of a run are engines.training.run's: the TrainConfig settings a run stores and a resume
# keeps unless the flag is given (TRAIN_DEFAULTS, a new run's defaults; the flags default to None: "not
# given"), the model settings that steer training (STEERING) and the architecture (ARCHITECTURE). Each
# flag is its setting's name: --batch-size sets batch_size.
# The data's identity: fixed for a run. dest -> (flag, DataSpec key).
FIXED_DATA = {
    "dataset": ("--dataset", "name"),
    "image_size": ("--image-size", "image_size"),
    "channels": ("--channels", "channels"),
}
_UNSET = {"lr": "default (the model's)", "max_steps": "none (no step limit)", "data_root": "default"}


def _shown(dest: str, value: Any) -> str:
    if value is None:
        return _UNSET.get(dest, "default")
    return f"{value:g}" if isinstance(value, float) else str(value)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _applies(dest: str, kind: str, run: str = "--model") -> None:
    if not applies(dest, kind):
        owner = " and ".join(kinds_for(dest))
        raise UsageError(f"{_flag(dest)} applies to {owner} models only, and {run} is {kind}")


class _Plan:
    """What `train` will do, decided and checked before anything heavy runs."""

    def __init__(
        self,
        kind: str,
        spec: DataSpec,
        model_config: dict[str, Any] | None,
        settings: dict[str, Any],
        out: Path,
        saved: dict[str, Any] | None = None,
        resume: Path | None = None,
        model_changes: dict[str, Any] | None = None,
        overrides: list[str] | None = None,
    ) -> None:
        self.kind, self.spec, self.model_config, self.settings, self.out = kind, spec, model_config, settings, out
        self.saved, self.resume = saved or {}, resume
        self.model_changes, self.overrides = model_changes or {}, overrides or []


def _check_model_config(kind: str, config: dict[str, Any]) -> None:
    """Build the config dataclass: its own checks (types, bounds) give a one-line usage error."""
    try:
        make_config(kind, config)
    except (TypeError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"model config: {message}") from None


def _new_run(args: argparse.Namespace) -> _Plan:
    if not (args.model and args.dataset):
        raise UsageError("--model and --dataset are required (or --resume FILE to continue a run)")
    kind = args.model
    for dest in (*ARCHITECTURE, *STEERING, *CONDITIONAL):
        if getattr(args, dest) is not None:
            _applies(dest, kind)
    if args.data_root is not None and args.dataset in PROCEDURAL_SETS:
        print(f"warning: --data-root is not used: {args.dataset} is generated on the fly", file=sys.stderr)
    _check_data_root(args.dataset, args.data_root)
    given = {
        dest: getattr(args, dest)
        for dest in (*ARCHITECTURE, *STEERING, *CONDITIONAL, *TRAIN_DEFAULTS, "image_size", "channels", "binarize")
        if getattr(args, dest) is not None
    }
    run = RunSettings(kind=kind, dataset=args.dataset, root=args.data_root, **given)
    try:
        spec = run.data_spec()
    except DatasetError as error:
        raise UsageError(str(error)) from None
    config = None
    if not MODEL_CLASSES[kind].config_from_data:  # a classifier's heads come from the dataset's labels, once loaded
        try:
            config = run.model_config(spec)
        except DatasetError as error:  # --conditional on a dataset without classes
            raise UsageError(f"--conditional: {error}") from None
        _check_model_config(kind, config)
    settings = run.train_settings()
    default_name = classifier_filename(args.dataset) if kind == "classifier" else f"{kind}-{args.dataset}{SUFFIX}"
    if run.conditional:
        default_name = f"c{default_name}"
    return _Plan(kind, spec, config, settings, Path(args.out or f"runs/{default_name}"))


def _check_stored(dest: str, flag: str, value: Any, path: Path) -> None:
    """A setting read from a file is held to the flag's own rules (a file's metadata may lie)."""
    if value is None and dest in ("lr", "max_steps", "sample_every", "data_root"):
        return  # None: the default (lr), no limit (max_steps), no grids (sample_every), the default root
    problem = None
    if dest == "precision":
        problem = None if value in PRECISIONS else f"must be one of {', '.join(PRECISIONS)}"
    elif dest in ("data_root", "binarize"):
        problem = None if isinstance(value, str) else "must be a string"
    elif dest in TRAIN_TYPES:
        check = TRAIN_TYPES[dest]
        wanted = (int, float) if check.__name__ == "float" else (int,)
        if isinstance(value, bool) or not isinstance(value, wanted):
            problem = f"must be a {check.__name__}"
        else:
            try:
                check(repr(value))
            except argparse.ArgumentTypeError as error:
                problem = str(error)
    if problem:
        raise CLIError(f"{path.name}: the run's stored {flag} {value!r} is invalid ({problem}); pass {flag} to set it")


def _resumed_run(args: argparse.Namespace) -> _Plan:
    """The run's own settings, the flags given on the command line over them (each reported), and a
    refusal for what a run cannot change (the model, its architecture, the data)."""
    path = _existing_checkpoint(args.resume, "--resume")
    meta = read_metadata(path)
    if "train_state" not in meta:
        raise CLIError(f"{path.name} holds no training state to resume from (a published model: start a new run)")
    kind = meta["kind"]
    config, data, training = meta.get("config"), meta.get("dataset"), meta.get("training") or {}
    saved = training.get("train_config") if isinstance(training, dict) else None
    if not isinstance(config, dict) or not isinstance(data, dict) or not isinstance(saved or {}, dict):
        raise CLIError(f"{path.name}: its config, dataset or training settings are missing or malformed")
    saved = dict(saved or {})
    run = f"the run in {path.name}"

    def refuse(flag: str, given: Any, stored: Any) -> None:
        raise UsageError(
            f"{flag} {_shown('', given)} differs from the run's {_shown('', stored)}: a resumed run keeps "
            f"its model and data (start a new run with another --out to change it)"
        )

    if args.model is not None and args.model != kind:
        refuse("--model", args.model, kind)
    for dest, (flag, key) in FIXED_DATA.items():
        given = getattr(args, dest)
        if given is not None and given != data.get(key):
            refuse(flag, given, data.get(key))
    for dest, key in ARCHITECTURE.items():
        given = getattr(args, dest)
        if given is not None:
            _applies(dest, kind, run)
            if given != config.get(key):
                refuse(_flag(dest), given, config.get(key))
    if args.conditional and not config.get(CONDITIONAL["conditional"]):  # the classes are in the stored config
        refuse("--conditional", "on", "unconditional model")

    overrides: list[str] = []

    def keep(dest: str, flag: str, stored: Any) -> Any:
        given = getattr(args, dest)
        if given is None:
            _check_stored(dest, flag, stored, path)
            return stored
        if given != stored:
            overrides.append(f"resume: {flag} {_shown(dest, given)} overrides the run's {_shown(dest, stored)}")
        return given

    settings = {dest: keep(dest, _flag(dest), saved.get(dest, default)) for dest, default in TRAIN_DEFAULTS.items()}
    changes: dict[str, Any] = {}
    for dest, key in STEERING.items():
        if getattr(args, dest) is not None:
            _applies(dest, kind, run)
            stored = config.get(key, config_default(kind, key))
            value = keep(dest, _flag(dest), stored)
            if value != stored:
                changes[key] = value
    if changes:
        _check_model_config(kind, {**config, **changes})
    root = keep("data_root", "--data-root", data.get("root"))
    binarize = keep("binarize", "--binarize", data.get("binarize", "none"))
    try:
        spec = DataSpec.from_dict({**data, "root": root, "binarize": binarize})
    except (DatasetError, TypeError) as error:
        raise CLIError(f"{path.name}: its dataset description is malformed ({error})") from None
    _check_data_root(spec.name, spec.root, "--data-root" if args.data_root is not None else "the run's data root")
    out = Path(args.out) if args.out else path
    return _Plan(
        kind,
        spec,
        {**config, **changes},
        settings,
        out,
        saved=saved,
        resume=path,
        model_changes=changes,
        overrides=overrides,
    )


def _check_memory(kind: str, config: dict[str, Any], batch_size: int, device: torch.device) -> None:
    """Refuse a run whose estimated peak memory exceeds what the device has free (engines.memory)."""
    try:
        check_training_memory(kind, config, batch_size, device)
    except MemoryEstimateError as error:
        raise UsageError(f"{error} (or pass --ignore-memory-check)") from None


def cmd_train(args: argparse.Namespace) -> int:
    plan = _resumed_run(args) if args.resume else _new_run(args)
    if plan.out.suffix != SUFFIX:
        raise UsageError(f"--out must end in {SUFFIX}, not {plan.out.name}")
    target = _device(args.device)
    _writable_output(plan.out, "--out")
    own_file = args.resume and Path(args.resume).resolve() == plan.out.resolve()
    if plan.out.exists() and not own_file and not args.overwrite:  # another run's checkpoint: never lost silently
        raise UsageError(f"--out {plan.out} already exists; pass --overwrite to replace it, or choose another --out")
    if args.tensorboard:
        _writable_folder(Path(args.tensorboard), "--tensorboard", args.tensorboard)
    if plan.model_config is not None and not args.ignore_memory_check:  # a classifier's: once the data is loaded
        _check_memory(plan.kind, plan.model_config, plan.settings["batch_size"], target)
    main_process = distributed.is_main_process()
    for line in plan.overrides if main_process else ():
        print(line, file=sys.stderr)
    board = TensorBoardLogger(args.tensorboard) if args.tensorboard and main_process else None
    out, settings = plan.out, plan.settings
    ctx, device = distributed.setup(args.device)  # torchrun: join the process group
    try:
        # Validation: a fixed slice of the training split, the same on a resume; the test split is eval's.
        stored = read_metadata(plan.resume).get("training", {}) if plan.resume is not None else {}
        resumed_at = stored.get("step", 0) if plan.resume is not None and "validation" not in stored else 0
        splits = load_splits(plan.spec, stored.get("validation"), since_step=resumed_at)
        train_data, val_data = splits.train, splits.val
        skipped = getattr(train_data, "skipped", {})
        if skipped and ctx.is_main:
            print(
                f"skipped {sum(skipped.values())} file(s): " + ", ".join(f"{n} {why}" for why, n in skipped.items()),
                file=sys.stderr,
            )
        config = TrainConfig(
            **settings,
            device=str(device),
            checkpoint_path=str(out),
            n_samples=plan.saved.get("n_samples"),  # None: the model's grid_samples
            eval_batches=plan.saved.get("eval_batches"),
        )
        command = "latent-explorer " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
        if plan.resume is not None:
            trainer = Trainer.from_checkpoint(plan.resume, train_data, config, val_data, dist=ctx)
            trainer.summary["validation"] = splits.record
            if plan.model_changes:  # --beta / --d-steps: steer training, stored with the model's config
                trainer.model.config = replace(trainer.model.config, **plan.model_changes)
            if command:  # the card shows how the run was made: its first command, then each resume
                trainer.summary["resumed_with"] = [*trainer.summary.get("resumed_with", []), command]
            if trainer.step >= trainer.total_steps and ctx.is_main:
                print(
                    f"resume: the run is already at step {trainer.step} of {trainer.total_steps}; pass a larger "
                    "--max-steps or --epochs to train on",
                    file=sys.stderr,
                )
        else:
            model_config = plan.model_config
            if model_config is None:  # a classifier: heads from the dataset's labels
                model_config = config_for_dataset(train_data)
                if not args.ignore_memory_check:
                    _check_memory(plan.kind, model_config, config.batch_size, device)
            model = create_model(plan.kind, model_config, seed=config.seed)
            summary = {"command": command} if command else {}
            summary["validation"] = splits.record
            trainer = Trainer(model, train_data, config, val_data, summary=summary, dist=ctx)
        if ctx.is_main:
            print(f"validation: {describe_record(splits.record)}", file=sys.stderr)
        if ctx.enabled and ctx.is_main:
            print(f"distributed: {ctx.world_size} processes, {device.type}", file=sys.stderr)
        return _run_training(trainer, out, quiet=not ctx.is_main, board=board)
    finally:
        distributed.teardown()


def _run_training(trainer: Trainer, out: Path, quiet: bool = False, board: TensorBoardLogger | None = None) -> int:
    from tqdm import tqdm

    def on_interrupt(signum, frame):  # first Ctrl+C: stop cleanly after this step, with a checkpoint
        tqdm.write("stopping after this step (Ctrl+C again to abort without saving)...")
        trainer.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    bar = None
    code = 0
    try:
        for event in trainer.run():
            if board is not None:
                board.log(event)
            if quiet:  # other ranks of a distributed run: the main process reports
                continue
            if isinstance(event, Started):
                bar = tqdm(
                    total=event.total_steps,
                    initial=event.step,
                    unit="step",
                    dynamic_ncols=True,
                    desc=f"train {trainer.model.kind} on {event.device}",
                )
            elif isinstance(event, StepDone):
                bar.update(1)
                if event.step % 10 == 0 or event.step == trainer.total_steps:
                    shown = {k: f"{v:.4g}" for k, v in event.losses.items()}
                    bar.set_postfix(shown | {"img/s": f"{event.images_per_s:.0f}"}, refresh=False)
            elif isinstance(event, EpochEnd):
                train = ", ".join(f"{k} {v:.3f}" for k, v in event.train_losses.items())
                val = ", ".join(f"{k} {v:.3f}" for k, v in event.val_losses.items()) or "-"
                tqdm.write(f"epoch {event.epoch + 1}: train {train} | val {val} | {event.seconds / 60:.2f} min")
            elif isinstance(event, SampleGrid):
                save_png(event.grid, out.with_name(out.stem + "_samples.png"), scale=2)
            elif isinstance(event, Health):
                tqdm.write(
                    f"warning at step {event.step}: {event.warning}" if event.warning else "the collapse is gone"
                )
            elif isinstance(event, CheckpointSaved):
                log.info("checkpoint written: %s", event.path)
            elif isinstance(event, Diverged):
                tqdm.write(f"error: {event.message}")
                code = 1
            elif isinstance(event, Finished):
                if bar is not None:
                    bar.close()
                kept = " (last good checkpoint kept)" if event.reason == "diverged" else ""
                print(f"{event.reason} at step {event.step} in {event.seconds / 60:.1f} min; checkpoint: {out}{kept}")
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
        if board is not None:
            board.close()
    return code


# --- eval and sample --------------------------------------------------------------------------------
def _heldout(ckpt, data_root: str | None, binarize: str | None, file: Path):
    """The checkpoint's held-out split read from the data root (--data-root, else the default one);
    where its files are missing and the checkpoint carries test images, those (marked is_sample), with
    a note saying where the full set was looked for. Returns (dataset, note or None)."""
    from .evaluation import heldout_spec

    spec = heldout_spec(ckpt, data_root, binarize)
    try:
        return load_dataset(spec, train=False), None
    except DatasetError:
        if ckpt.sample is None:
            raise
    stored = ckpt.dataset.get("binarize", "none")
    if binarize is not None and binarize != stored:
        raise UsageError(
            f"--binarize {binarize}: the full test set was not found, and the test images carried in "
            f"{file.name} are stored with binarize={stored}"
        )
    where = Path(spec.root or default_data_root()).resolve()
    recorded = ckpt.dataset.get("root")
    hint = f" (the model was trained with --data-root {recorded})" if recorded and recorded != data_root else ""
    return sample_dataset(
        {**ckpt.dataset, "root": spec.root}, ckpt.sample
    ), f"the full test set was not found at {where}{hint}"


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import classifier_metrics, evaluate, find_classifier, has_heldout_metrics, needs_classifier

    path = _existing_checkpoint(args.file)
    if args.data_root is not None and not Path(args.data_root).is_dir():
        raise UsageError(f"--data-root {args.data_root}: no such folder")
    if args.train_data_root is not None and not Path(args.train_data_root).is_dir():
        raise UsageError(f"--train-data-root {args.train_data_root}: no such folder")
    if args.classifier is not None:
        _existing_checkpoint(args.classifier, "--classifier")
    if args.save:  # the file is rewritten (atomically) in its folder
        if not is_safetensors(path):
            raise UsageError(
                f"--save stores metrics in a {SUFFIX} checkpoint's metadata; {path.name} is not one "
                "(print them, or --json)"
            )
        _writable_folder(path.parent, "--save", str(path))
    device = _device(args.device)
    ckpt = load_checkpoint(path, device=device)
    _check_finite(ckpt, path, args.allow_nonfinite)
    if not ckpt.dataset:
        hint = ' (name it in its sidecar, e.g. "dataset": "mnist")' if ckpt.format == "onnx" else ""
        raise CLIError(f"{path.name} names no dataset, and every metric here is measured on one{hint}")
    heldout = has_heldout_metrics(ckpt.model)  # a likelihood or loss on held-out data (not a GAN's)
    judged = needs_classifier(ckpt) or (args.classifier is not None and ckpt.model.has_latent)
    judge = None
    if judged:  # find the classifier before any long computation, so a missing one fails at once
        judge_path = find_classifier(ckpt.dataset.get("name", ""), args.classifier, ckpt.dataset, ckpt.label_names)
        judge = load_checkpoint(judge_path, device=device)
        _check_finite(judge, judge_path, args.allow_nonfinite)
    test, missing = None, None
    if heldout or judge is not None:
        test, missing = _heldout(ckpt, args.data_root, args.binarize if heldout else None, path)
    if missing and args.save:
        raise UsageError(
            f"--save refused: {missing}, and metrics of the {len(test)} test images carried in the file "
            "must not replace full-set ones (pass --data-root DIR)"
        )
    metrics: dict[str, Any] = {}
    if heldout:  # a GAN has no likelihood: only classifier-judged metrics
        from tqdm import tqdm

        with tqdm(total=min(args.limit or len(test), len(test)), unit="img", disable=args.json, leave=False) as bar:
            metrics = evaluate(
                ckpt,
                test,
                k=args.k,
                limit=args.limit,
                batch_size=args.batch_size,
                seed=args.seed,
                progress=lambda done, total: bar.update(done - bar.n),
            )
    if judge is not None:
        own_test = test if args.binarize is None or not heldout or missing else None
        judged_metrics = classifier_metrics(
            ckpt,
            judge,
            args.data_root,
            n=args.n,
            edits=args.edits,
            trials=args.trials,
            batch_size=args.batch_size,
            seed=args.seed,
            sample_scores=not heldout or args.classifier is not None,
            test=own_test,
            train_root=args.train_data_root,
        )
        seconds = metrics.get("seconds", 0.0) + judged_metrics["seconds"]
        metrics = {**judged_metrics, **metrics, "seconds": round(seconds, 1)}
    note = None
    if missing:
        used = metrics.get("images", metrics.get("samples", {}).get("real_images", len(test)))
        of = "the" if used == len(test) else f"{used} of the"
        note = f"evaluated on {of} {len(test)} test images carried in the file; {missing}"
        metrics.update(carried_sample=True, carried_images=len(test), full_test_set_missing=missing)
    if args.save:
        update_checkpoint(path, metrics={"eval": metrics})
    refs = references_for(
        ckpt.kind,
        ckpt.dataset.get("name"),
        metrics.get("binarize", ckpt.dataset.get("binarize")),
        latent_dim=ckpt.model.latent_dim or None,
    )
    if args.json:
        if note:
            print(f"note: {note}", file=sys.stderr)
        print(json.dumps({**metrics, "references": [r.to_dict() for r in refs]}, indent=2))
        return 0
    if not heldout:
        print(f"{path.name}: {ckpt.kind} on {metrics['dataset']}")
    else:
        split = "test images carried in the file" if missing else "test set"
        print(
            f"{path.name}: {ckpt.kind} on {metrics['dataset']} {split} ({metrics['images']} images, binarize={metrics['binarize']})"
        )
    if note:
        print(f"  note               {note}")
    if "elbo" in metrics:
        print(
            f"  ELBO               {metrics['elbo']:.2f} nats  (negative ELBO {metrics['neg_elbo']:.2f}: recon {metrics['recon']:.2f} + KL {metrics['kl']:.2f})"
        )
        print(f"  IW NLL (k={metrics['iw_k']:<4})    {metrics['iw_nll']:.2f} nats")
        print(f"  active units       {metrics['active_units']} of {ckpt.model.latent_dim}")
    elif "bits_per_dim" in metrics:
        print(f"  NLL                {metrics['nll']:.2f} nats  ({metrics['bits_per_dim']:.4f} bits/dim)")
    elif "loss" in metrics:
        print(f"  loss               {metrics['loss']:.4f}")
        for key, value in metrics.items():
            if key == "accuracy" or key.endswith(("_acc", "_mae")):
                print(f"  {key:<18} {value:.4f}")
    if judge is not None:
        _print_judged(metrics, judge)
    _print_references(ckpt.kind, metrics, refs, targets=not missing)
    print(f"  ({metrics['seconds']} s)")
    return 0


def _print_references(kind: str, m: dict[str, Any], refs, targets: bool = True) -> None:
    """Published figures measured under the same protocol, and the project's targets (unless `targets` is
    False: metrics of a partial test set), beside the model's."""
    flat = {**m, **m.get("samples", {})}
    for name, r in m.get("attribute_arithmetic", {}).items():
        flat[f"{name}_rate"] = r["rate"]
    for r in refs:
        if r.metric in flat:
            print(f"  published          {r.metric} {r.value:g} ({r.source}); this model: {flat[r.metric]:.4g}")
    if not targets:
        return
    dataset, binarize = m.get("dataset"), m.get("binarize")
    for metric in ("iw_nll", "nll", "inception_score"):
        target = target_for(kind, dataset, metric, binarize)
        if target is not None and metric in flat:
            sign = ">=" if metric in HIGHER_IS_BETTER else "<="
            print(f"  target             {metric} {sign} {target:g}: {_met(meets(metric, flat[metric], target))}")
    target = target_for(kind, dataset, "arithmetic_rate")
    for name in m.get("attribute_arithmetic", {}) if target is not None else ():
        rate = flat[f"{name}_rate"]
        print(
            f"  target             {name} vector success >= {target:.0%}: {_met(meets('arithmetic_rate', rate, target))}"
        )


def _met(met: bool) -> str:
    return "met" if met else "not met"


def _print_judged(m: dict[str, Any], judge) -> None:
    """The classifier-judged part of `eval`'s report."""
    test = ", ".join(f"{k} {v:.3f}" for k, v in m.get("classifier_test", {}).items() if k != "loss")
    print(
        f"  judged by          {Path(m['classifier']).name}"
        + (f" (its held-out figures in training: {test})" if test else "")
    )
    s = m.get("samples")
    if s:
        real = f"{s['real_images']} real held-out images" if "real_images" in s else "no real data"
        print(f"  samples            {s['samples']} (against {real})")
        if "inception_score" in s:
            k = len(s["class_fractions"])
            line = f"  Inception Score    {s['inception_score']:.3f} +- {s['inception_score_std']:.3f}  (max {k}"
            if "real_inception_score" in s:
                line += (
                    f"; real held-out images: {s['real_inception_score']:.3f} +- {s['real_inception_score_std']:.3f}"
                )
            print(line + ")")
            print("  class fractions    " + " ".join(f"{i}:{f:.3f}" for i, f in enumerate(s["class_fractions"])))
        if "fid" in s:
            line = f"  Frechet distance   {s['fid']:.4g}  (classifier features"
            if "train_test_fid" in s:
                line += f"; real train vs held-out: {s['train_test_fid']:.4g}"
            print(line + ")")
    agreement = m.get("class_agreement")
    if agreement:
        print(
            f"  class agreement    {agreement['overall']:.2%} of {agreement['samples_per_class']} samples per class "
            "read as the class asked for"
        )
        print("    " + " ".join(f"{name}:{v:.3f}" for name, v in agreement["per_class"].items()))
    arithmetic = m.get("attribute_arithmetic", {})
    if arithmetic:
        first = next(iter(arithmetic.values()))
        print(
            f"  attribute vectors  z + s v, v = mean z with - mean z without (latents: {first['latents']}), on faces"
            f" without the attribute;\n                     success = gains it, other binary attributes unchanged,"
            f" continuous ones within {first['tolerance']}"
        )
        for name, r in arithmetic.items():
            line = (
                f"    {name:<16} {r['rate']:.3f} at s=1 of {r['n']} (gained {r['gained']:.3f}, binary kept "
                f"{r['others_kept']:.3f}, continuous kept {r['continuous_kept']:.3f})"
            )
            if "tuned_strength" in r:
                line += f"; s={r['tuned_strength']:g} (tuned on other faces): {r['tuned_rate']:.3f}"
            print(line)
    e = m.get("exemplar_arithmetic")
    if e:
        a, b = e["first"], e["second"]
        print(
            f"  exemplar arithmetic {a} - neutral + {b} -> {a} with {b} ({e['k']} exemplars each, {e['trials']} trials): "
            f"{e['rate']:.3f} strict ({a} {e[f'has_{a}']:.3f}, {b} {e[f'has_{b}']:.3f}, both {e['attributes_rate']:.3f})"
        )
    edits = m.get("clean_edits")
    if edits:
        attributes = list(edits["best"])
        print(
            "  clean edits        same latents, same strict rule; each method's setting tuned on other faces"
            " (boundary accuracy on held-out latents: "
            + ", ".join(f"{k} {v:.3f}" for k, v in edits["boundaries"].items() if v is not None)
            + ")"
        )
        w_edits = m.get("clean_edits_w")
        spaces = [("", edits)] + ([(" in W", w_edits)] if w_edits else [])

        def cell(r: dict) -> str:
            return f"{r['rate']:.3f} ({r['setting']:g})" if r.get("rate") is not None else "-"

        print("    " + f"{'method':<22}" + "".join(f"{a + s:>18}" for s, _ in spaces for a in attributes))
        for method in edits["methods"]:
            cells = "".join(cell(e["methods"][method][a]).rjust(18) for _, e in spaces for a in attributes)
            print(f"    {method:<22}{cells}")
    if "edits_error" in m:
        print(f"  edits              not measured: {m['edits_error']}")
    ppl = m.get("perceptual_path_length")
    if ppl:
        print(
            f"  path length (PPL)  Z {ppl['z']['ppl']:.4g}, W {ppl['w']['ppl']:.4g} (W/Z {ppl['w_over_z']:.3f}; "
            f"{ppl['z']['pairs']} paths, epsilon {ppl['z']['epsilon']:g}, full paths, in the {ppl['feature_space']})"
        )


def _grid_pixels(n: int, size: int, scale: int, padding: int = 2) -> tuple[int, int]:
    """(width, height) of the PNG `sample` writes: to_grid's square-ish grid, each pixel scale x scale."""
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    return (cols * (size + padding) + padding) * scale, (rows * (size + padding) + padding) * scale


def cmd_export(args: argparse.Namespace) -> int:
    from .foreign.export import check_exportable, export_onnx, export_targets

    path = _existing_checkpoint(args.file)
    folder = Path(args.onnx)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--onnx {folder} is a file; name a folder")
    _writable_folder(folder, "--onnx", str(folder))
    ckpt = load_checkpoint(path)
    check_exportable(ckpt)
    stem = args.name or path.stem
    if not stem or Path(stem).name != stem:
        raise UsageError(f"--name {stem!r} must be a plain file name stem")
    existing = [p.name for p in export_targets(ckpt, folder, stem) if p.exists()]
    if existing and not args.overwrite:
        raise UsageError(
            f"--onnx {folder} already holds {', '.join(existing)}; pass --overwrite to replace, or another "
            "--name or folder"
        )
    result = export_onnx(ckpt, folder, stem)
    print(f"wrote {result.decoder}" + (f", {result.encoder}" if result.encoder else "") + f" and {result.sidecar}")
    line = f"re-opened: images within {result.max_diff:.2g} of the checkpoint's"
    if result.encoder_max_diff is not None:
        line += f", encoder outputs within {result.encoder_max_diff:.2g}"
    print(f"{line} (tolerance 1e-4)")
    return 0


class _Facts:
    """What `sample` checks before loading: a checkpoint's from its metadata; any other file's from its model."""

    def __init__(self, kind: str, can_sample: bool, sample_options: tuple[str, ...], size: int, ckpt=None) -> None:
        self.kind, self.can_sample, self.sample_options, self.size, self.ckpt = (
            kind,
            can_sample,
            sample_options,
            size,
            ckpt,
        )


def _facts(path: Path, device: torch.device) -> _Facts:
    if is_safetensors(path):
        meta = read_metadata(path)
        model_class = MODEL_CLASSES[meta["kind"]]  # the kind is known: read_metadata checked it
        shape = meta.get("image_shape")
        size = int(shape[-1]) if isinstance(shape, list) and shape and isinstance(shape[-1], int) else 64
        return _Facts(meta["kind"], model_class.can_sample, model_class.sample_options, size)
    ckpt = load_checkpoint(path, device=device)  # ONNX or a plugin's: the model says what it is
    model = ckpt.model
    return _Facts(ckpt.kind, model.can_sample, tuple(model.sample_options), int(model.image_shape[-1]), ckpt)


def cmd_sample(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out must be a .png file, not {args.out}")
    path = _existing_checkpoint(args.file)
    device = _device(args.device)
    facts = _facts(path, device)
    kind = facts.kind
    if not facts.can_sample:
        raise CLIError(f"{path.name} is a {kind}; it does not generate images")
    if args.truncation is not None and "truncation" not in facts.sample_options:
        raise UsageError(f"--truncation applies to GANs only, and {path.name} is a {kind}")
    if args.temperature is not None and "temperature" not in facts.sample_options:
        raise UsageError("--temperature applies to VAEs and PixelCNNs; for a GAN use --truncation")
    options = {
        name: value
        for name, value in (("truncation", args.truncation), ("temperature", args.temperature))
        if value is not None
    }
    width, height = _grid_pixels(args.n, facts.size, args.scale)
    if width * height > MAX_GRID_MEGAPIXELS * 1_000_000:
        raise UsageError(
            f"the grid would be {width} x {height} pixels ({width * height / 1e6:.0f} megapixels; the limit "
            f"is {MAX_GRID_MEGAPIXELS}): lower --n or --scale"
        )
    _writable_output(out, "--out")
    ckpt = facts.ckpt or load_checkpoint(path, device=device)
    _check_finite(ckpt, path, args.allow_nonfinite)
    if args.class_name is not None:
        options["classes"] = _class_index(ckpt.model, args.class_name, path)
    gen = torch.Generator().manual_seed(args.seed)
    images = ckpt.model.sample(args.n, generator=gen, **options)
    save_png(to_grid(images), out, scale=args.scale)
    print(f"wrote {args.n} samples to {out}")
    return 0


def _class_index(model, name: str, path: Path) -> int:
    """The index of a conditional model's class given by name (or index)."""
    names = list(getattr(model, "class_names", ()))
    if not names:
        raise UsageError(f"--class applies to class-conditional models, and {path.name} is not one")
    if name in names:
        return names.index(name)
    if name.isdigit() and int(name) < len(names):
        return int(name)
    raise UsageError(f"--class {name!r} is not one of {path.name}'s classes ({', '.join(names)})")


def _render_classes(model, args: argparse.Namespace, doc: dict | None, path: Path) -> torch.Tensor | None:
    """The class blend (K,) a conditional model renders with: --class, else the session's; None without classes."""
    if args.class_name is not None:
        return one_hot(_class_index(model, args.class_name, path), model.num_classes)
    if not model.num_classes:
        return None
    mix = (doc or {}).get("class_mix")
    if isinstance(mix, list) and len(mix) == model.num_classes and all(isinstance(v, (int, float)) for v in mix):
        y = torch.tensor(mix, dtype=torch.float32)
        if bool((y >= 0).all()) and float(y.sum()) > 0:
            return y / y.sum()
    raise UsageError(f"{path.name} is class-conditional: pass --class NAME (or a --session that has a class blend)")


# --- render ---------------------------------------------------------------------------------------------
def _npy_latents(name: str, flag: str) -> np.ndarray:
    try:
        array = np.load(name, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"{flag} {name}: not a readable .npy file ({error})") from None
    array = np.asarray(array, np.float32)
    if array.ndim not in (1, 2) or array.size == 0 or not np.all(np.isfinite(array)):
        raise UsageError(f"{flag} {name}: expected finite latents of shape (D,) or (K, D), not {array.shape}")
    return np.atleast_2d(array)


def _read_session(name: str) -> dict[str, Any]:
    try:
        doc = json.loads(Path(name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"--session {name}: cannot read it ({error})") from None
    if not isinstance(doc, dict) or not str(doc.get("format", "")).startswith("latent-explorer-session/"):
        raise UsageError(f"--session {name}: not a Latent Explorer session")
    return doc


def _session_keyframes(doc: dict[str, Any]) -> tuple[np.ndarray | None, str | None]:
    """The session's Interpolate keyframes (else its bookmarks) and path mode."""
    panel = doc.get("interpolation") if isinstance(doc.get("interpolation"), dict) else {}
    keys = [k.get("z") for k in panel.get("keyframes", []) if isinstance(k, dict)]
    if len(keys) < 2:
        keys = [m.get("z") for m in doc.get("bookmarks", []) if isinstance(m, dict)]
    try:
        array = np.asarray(keys, np.float32) if len(keys) >= 2 else None
    except ValueError:
        raise UsageError("--session: its keyframes are not latents of one size") from None
    return array, panel.get("mode") if panel.get("mode") in PATH_MODES else None


def _render_plan(args: argparse.Namespace, dim: int, vectors: dict[str, np.ndarray], doc: dict | None):
    """(latents, meta) of what `render` was asked for, checked against the model's latent size."""
    fps = args.fps
    seconds = args.seconds if args.seconds is not None else 10.0
    frames = max(2, round(seconds * fps))

    def fits(array: np.ndarray, what: str) -> np.ndarray:
        if array.shape[-1] != dim:
            raise UsageError(f"{what} has {array.shape[-1]} values per latent; the model's latent has {dim}")
        return array

    if args.walk is not None:
        settings = WalkSettings(
            args.walk, args.speed, args.smoothness, args.seed, not args.free, args.vector, args.amplitude
        )
        vector = origin = None
        if args.walk == "vector":
            if args.vector_file:
                vector = fits(_npy_latents(args.vector_file, "--vector-file")[0], "--vector-file")
            elif args.vector:
                if args.vector not in vectors:
                    known = ", ".join(sorted(vectors)) or "none"
                    raise UsageError(f"--vector {args.vector!r} is not saved in the model or session (saved: {known})")
                vector = fits(vectors[args.vector], f"vector {args.vector!r}")
            else:
                raise UsageError("--walk vector needs --vector NAME or --vector-file NPY")
            if doc is not None and isinstance(doc.get("z"), list):
                origin = fits(np.asarray(doc["z"], np.float32), "the session's z")
        walk = settings.build(dim, origin, vector)
        latents = walk_latents(walk, frames, fps, args.speed, loop=args.loop)
        meta = {"walk": asdict(settings), "loop": args.loop, "seconds": frames / fps}
        return latents, meta
    if args.keyframes:
        keys = np.concatenate([_npy_latents(name, "--keyframes") for name in args.keyframes])
        mode = args.mode or "spherical"
    elif doc is not None:
        keys, mode = _session_keyframes(doc)
        if keys is None:
            raise UsageError("--session has fewer than 2 keyframes or bookmarks; pass --walk or --keyframes")
        mode = args.mode or mode or "spherical"
    else:
        raise UsageError("say what to render: --keyframes, --session or --walk")
    keys = fits(keys, "a keyframe")
    if len(keys) < 2:
        raise UsageError("a keyframe path needs at least 2 keyframes")
    frames = max(frames, len(keys))
    latents = closed_path(keys, frames, mode) if args.loop else interpolate_path(keys, frames, mode)
    meta = {
        "mode": mode,
        "loop": args.loop,
        "seconds": frames / fps,
        "keyframes": [{"label": f"keyframe {i + 1}", "z": k.tolist()} for i, k in enumerate(keys)],
    }
    return latents, meta


def cmd_render(args: argparse.Namespace) -> int:
    out = Path(args.out)
    kind = out.suffix.lower().lstrip(".")
    if kind not in EXPORT_FORMATS:
        raise UsageError(f"--out must end in .mp4, .gif or .png, not {args.out}")
    if kind == "mp4" and mp4_writer() is None:
        raise CLIError("MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg)")
    if sum(x is not None and x is not False for x in (args.keyframes, args.walk)) > 1:
        raise UsageError("--keyframes and --walk cannot be combined")
    doc = _read_session(args.session) if args.session else None
    name = args.file or (doc or {}).get("checkpoint")
    if not name:
        raise UsageError("name a checkpoint (or a --session that names one)")
    path = _existing_checkpoint(str(name))
    if out.exists() and not args.overwrite:
        raise UsageError(f"--out {out} exists; pass --overwrite to replace it")
    _writable_output(out, "--out")
    settings = VideoSettings(fps=args.fps, size=args.size, filter=args.filter)
    ckpt = load_checkpoint(path, device=_device(args.device))
    if not ckpt.model.has_latent:
        raise CLIError(f"{path.name} is a {ckpt.kind}: it has no latent space to walk through")
    vectors = dict(ckpt.vectors)
    if doc is not None and isinstance(doc.get("vectors"), dict):
        vectors.update({k: np.asarray(v, np.float32) for k, v in doc["vectors"].items()})
    latents, meta = _render_plan(args, ckpt.model.latent_dim, vectors, doc)
    from tqdm import tqdm

    meta = {**meta, "checkpoint": str(path), "model": ckpt.kind}
    model = ckpt.model
    classes = _render_classes(model, args, doc, path)
    if classes is not None:  # every frame drawn with this class blend
        model = ClassView(model, classes)
        meta["class_mix"] = [round(float(v), 6) for v in classes]
    with tqdm(total=len(latents), unit="frame", desc=f"render {out.name}", disable=None, file=sys.stderr) as bar:
        written = render_latents(
            model, latents, kind, out, meta, settings, progress=lambda done, total: bar.update(done - bar.n)
        )
    h, w = settings.frame_shape(*ckpt.model.image_shape[1:], kind)
    print(f"wrote {len(latents)} frames ({w}x{h} px, {args.fps:g} fps) to {written[0]}, latents in {written[1].name}")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "sample": cmd_sample, "export": cmd_export, "render": cmd_render}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # bad arguments: argparse printed usage and one line (2); --help (0)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    start = time.perf_counter()
    try:
        return COMMANDS[args.command](args)
    except (CLIError, CheckpointError, DatasetError, ValueError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"latent-explorer {args.command}: error: {message}", file=sys.stderr)
        return getattr(error, "exit_code", 1)
    finally:
        log.debug("%s took %.1f s", args.command, time.perf_counter() - start)
