"""A new training run, as `latent-explorer train` and the Train tab both describe it: its settings,
the defaults it gets from (model kind, dataset), which settings apply to which model, and the data
spec, model config and TrainConfig they make. One implementation for the CLI, the GUI and the tests.

Which model a setting applies to follows from the model classes (a setting applies when the model's
config has its key), and the defaults a run takes from its data from `data_defaults` on each model
class, so no kind is named here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..data import CHANNEL_COUNTS, IMAGE_SIZES, DatasetError, DataSpec, dataset_classes, default_shape
from ..models import MODEL_CLASSES
from ..models.gan import LOSSES as GAN_LOSSES
from ..models.pixelcnn import default_levels
from .trainer import TrainConfig

__all__ = [
    "ARCHITECTURE",
    "CHANNEL_COUNTS",
    "CONDITIONAL",
    "EMA_DECAY",
    "GAN_LOSSES",
    "IMAGE_SIZES",
    "STEERING",
    "TRAIN_DEFAULTS",
    "RunSettings",
    "applies",
    "class_config",
    "config_default",
    "default_latent_dim",
    "default_levels",
    "kinds_for",
    "run_data_spec",
    "run_model_config",
]

# Settings that fix a run's model (a resumed run cannot change them): RunSettings field -> config key.
ARCHITECTURE: dict[str, str] = {
    "latent_dim": "latent_dim",
    "gan_loss": "loss",
    "levels": "levels",
    "hidden": "hidden",
    "layers": "n_layers",
    "code_classes": "code_classes",
}
# The setting that makes a model class-conditional, and the config key that says a model is: the classes
# come from the dataset (engines.data.dataset_classes), so a resumed run keeps them with its config.
CONDITIONAL: dict[str, str] = {"conditional": "num_classes"}
# Model settings that only steer training (a resumed run may change them): RunSettings field -> config key.
STEERING: dict[str, str] = {"beta": "beta", "d_steps": "d_steps"}
# The TrainConfig settings of a run, with a new run's defaults (a resumed run keeps its own).
TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "max_steps": None,
    "batch_size": 128,
    "lr": None,
    "seed": 0,
    "precision": "fp32",
    "sample_every": 0,
    "checkpoint_every": 0,
    "ema": 0.0,
}
EMA_DECAY = 0.999  # the weight average a run keeps when asked for one without a decay (the Train tab's)


def _config_fields(kind: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(MODEL_CLASSES[kind].config_class)}


def applies(setting: str, kind: str) -> bool:
    """Whether a model setting (an ARCHITECTURE or STEERING field) applies to models of `kind`: its
    config has the key, and is built from settings (a classifier's comes from its data's labels)."""
    key = ARCHITECTURE.get(setting) or STEERING.get(setting) or CONDITIONAL[setting]
    return not MODEL_CLASSES[kind].config_from_data and key in _config_fields(kind)


def kinds_for(setting: str) -> tuple[str, ...]:
    """The model kinds a setting applies to, in the registry's order."""
    return tuple(kind for kind in MODEL_CLASSES if applies(setting, kind))


def config_default(kind: str, key: str) -> Any:
    """The default of a model config's field (None when the config has no such field)."""
    f = _config_fields(kind).get(key)
    return None if f is None else f.default


def default_latent_dim(kind: str) -> int | None:
    """The latent size a new model of `kind` gets (its config's default); None without a latent."""
    return config_default(kind, "latent_dim")


def run_data_spec(
    kind: str,
    dataset: str,
    root: str | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    levels: int | None = None,
    binarize: str | None = None,
) -> DataSpec:
    """The dataset's own shape unless overridden; a model reading 2 intensity levels (a binarizing
    PixelCNN) trains on stochastically binarized data unless `binarize` says otherwise."""
    size, natural_channels = default_shape(dataset)
    size, channels = image_size or size, channels or natural_channels
    if binarize is None:
        if not applies("levels", kind):
            levels = None
        elif levels is None:
            levels = MODEL_CLASSES[kind].data_defaults(channels).get("levels", config_default(kind, "levels"))
        binarize = "stochastic" if levels == 2 else "none"
    return DataSpec(dataset, root=root or None, image_size=size, channels=channels, binarize=binarize)


def class_config(dataset: str) -> dict[str, Any]:
    """The config keys of a model conditional on `dataset`'s classes; DatasetError for a dataset without."""
    names = dataset_classes(dataset)
    if not names:
        labelled = ", ".join(n for n in ("mnist", "fashion-mnist", "cifar10") if dataset_classes(n))
        raise DatasetError(f"a conditional model needs a dataset labelled by class ({labelled}), not {dataset}")
    return {"num_classes": len(names), "class_names": list(names)}


def run_model_config(kind: str, spec: DataSpec, **settings: Any) -> dict[str, Any]:
    """A model's whole config for `spec`: the config class's defaults, the data's shape, the model's
    defaults for that data, and the ARCHITECTURE/STEERING settings given (not None) that apply to
    `kind` (others are ignored). Not checked: building the config class checks it."""
    config: dict[str, Any] = {
        name: f.default for name, f in _config_fields(kind).items() if f.default is not dataclasses.MISSING
    }
    config.update(
        image_size=spec.image_size, channels=spec.channels, **MODEL_CLASSES[kind].data_defaults(spec.channels)
    )
    for name, value in settings.items():
        key = ARCHITECTURE.get(name) or STEERING.get(name)
        if key is None:
            raise TypeError(f"run_model_config() got an unknown setting {name!r}")
        if value is not None and applies(name, kind):
            config[key] = value
    return config


@dataclass(frozen=True)
class RunSettings:
    """A new run: what the CLI's flags and the Train tab's form say. None means "the default" (the
    dataset's shape, the model's config defaults); `model_overrides`/`train_overrides` reach the
    model config and the TrainConfig as they are (tests and scripts)."""

    kind: str = "vae"
    dataset: str = "shapes"
    root: str | None = None
    image_size: int | None = None
    channels: int | None = None
    binarize: str | None = None  # None: stochastic for a 2-level PixelCNN, else none
    # the model (ARCHITECTURE, STEERING); each applies to some kinds only (see `applies`)
    latent_dim: int | None = None
    gan_loss: str | None = None
    levels: int | None = None
    hidden: int | None = None
    layers: int | None = None
    code_classes: int | None = None
    beta: float | None = None
    d_steps: int | None = None
    conditional: bool = False  # class-conditional on the dataset's classes (CONDITIONAL)
    # the training (TRAIN_DEFAULTS)
    epochs: int = TRAIN_DEFAULTS["epochs"]
    max_steps: int | None = TRAIN_DEFAULTS["max_steps"]
    batch_size: int = TRAIN_DEFAULTS["batch_size"]
    lr: float | None = TRAIN_DEFAULTS["lr"]
    seed: int = TRAIN_DEFAULTS["seed"]
    precision: str = TRAIN_DEFAULTS["precision"]
    sample_every: int | None = TRAIN_DEFAULTS["sample_every"]
    checkpoint_every: int = TRAIN_DEFAULTS["checkpoint_every"]
    ema: float = TRAIN_DEFAULTS["ema"]
    checkpoint_path: str = ""
    device: str | None = None
    model_overrides: dict[str, Any] = field(default_factory=dict)
    train_overrides: dict[str, Any] = field(default_factory=dict)

    def data_spec(self) -> DataSpec:
        """The run's DataSpec; raises DatasetError for a folder run without its folder."""
        if self.dataset == "folder" and not self.root:
            raise DatasetError("Choose the folder of images to train on.")
        return run_data_spec(
            self.kind, self.dataset, self.root, self.image_size, self.channels, self.levels, self.binarize
        )

    def model_settings(self) -> dict[str, Any]:
        """The ARCHITECTURE and STEERING settings, by field name."""
        return {name: getattr(self, name) for name in (*ARCHITECTURE, *STEERING)}

    def model_config(self, spec: DataSpec) -> dict[str, Any]:
        """The model's config for `spec` (not for a model whose config comes from its data). Raises
        DatasetError for a conditional run on a dataset without classes, ValueError for a model without
        classes."""
        config = run_model_config(self.kind, spec, **self.model_settings())
        if self.conditional:
            if not applies("conditional", self.kind):
                raise ValueError(f"a {self.kind} cannot be class-conditional")
            config.update(class_config(spec.name))
        return {**config, **self.model_overrides}

    def train_settings(self) -> dict[str, Any]:
        """The TRAIN_DEFAULTS settings, by name: what a run stores and a resume keeps."""
        return {name: getattr(self, name) for name in TRAIN_DEFAULTS}

    def train_config(self) -> TrainConfig:
        values = dict(self.train_settings(), device=self.device, checkpoint_path=self.checkpoint_path or None)
        return TrainConfig(**{**values, **self.train_overrides})
