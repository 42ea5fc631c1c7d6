"""Trusted plugins: Python model classes from packages the user installed.

A package declares an entry point in the group `latent_explorer.models`:

    [project.entry-points."latent_explorer.models"]
    my-vae = "my_package.explorer_plugin:loader"

The object it names (an instance, a class or a module) has

    suffixes: tuple[str, ...]          # the files it opens, e.g. (".myvae",) or (".pt",)
    def load(path: Path) -> model      # the model, on the CPU

and optionally `name` (shown to the user; default: the entry point's name). The model has the
protocol the engines use (README "Open your own model"): `latent_dim`, `image_shape` (C, H, W),
`decode(z)` mapping (N, latent_dim) to images (N, C, H, W) in [0, 1]; optionally `encode(images)`
returning the mean (and log-variance) of q(z|x), `kind` ("vae" or "gan"), `dataset`, `label_names`,
`can_project` (default: True for a torch module: its decode is differentiable) and `to(device)`.
A plugin may also return one of engines.models' own classes (a GatedPixelCNN with its own weights,
say), which then works everywhere ours do.

Only installed code runs: the entry points are read from the installed packages' metadata, and a
plugin module is imported only when a file with one of its suffixes is opened (or the app lists the
plugins). Files are never executed by the app itself; what a plugin does with the files it claims is
that plugin's business (it may, for instance, read .pt files with torch.load(weights_only=True)).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import SUFFIX, Checkpoint, CheckpointError
from ..data.spec import DatasetError, DataSpec
from ..models import ConfigModel
from .base import ForeignModel

log = logging.getLogger(__name__)

GROUP = "latent_explorer.models"
RESERVED_SUFFIXES = (SUFFIX, ".onnx", ".json")  # ours: a plugin cannot take them over


class PluginError(CheckpointError):
    """A plugin could not open a file, or gave something without the models' protocol; one line."""


@dataclass
class Plugin:
    name: str  # the entry point's name
    value: str  # "package.module:object"
    distribution: str | None
    _loader: Any = None

    def loader(self) -> Any:
        """The plugin's loader object, imported on first use (runs the installed package's code)."""
        if self._loader is None:
            ep = next((e for e in entry_points(group=GROUP) if e.name == self.name and e.value == self.value), None)
            if ep is None:
                raise PluginError(f"the plugin {self.name} is no longer installed")
            try:
                self._loader = ep.load()
            except Exception as error:  # noqa: BLE001 - a broken plugin must not take the app down
                raise PluginError(
                    f"the plugin {self.name} ({self.value}) failed to import: {type(error).__name__}: {error}"
                ) from error
        return self._loader

    def suffixes(self) -> tuple[str, ...]:
        raw = getattr(self.loader(), "suffixes", ())
        if isinstance(raw, str):
            raw = (raw,)
        out = tuple(s.lower() if s.startswith(".") else f".{s.lower()}" for s in raw if isinstance(s, str))
        return tuple(s for s in out if s not in RESERVED_SUFFIXES)

    @property
    def title(self) -> str:
        name = getattr(self._loader, "name", None)
        return name if isinstance(name, str) and name else self.name


def installed_plugins() -> list[Plugin]:
    """The plugins installed in this environment (nothing is imported)."""
    found = []
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        found.append(Plugin(ep.name, ep.value, getattr(dist, "name", None) if dist else None))
    return sorted(found, key=lambda p: p.name)


def plugin_suffixes() -> dict[str, Plugin]:
    """suffix -> the plugin that opens it (the first by name when two claim one); broken plugins are skipped."""
    claimed: dict[str, Plugin] = {}
    for plugin in installed_plugins():
        try:
            suffixes = plugin.suffixes()
        except PluginError as error:
            log.warning("%s", error)
            continue
        for suffix in suffixes:
            claimed.setdefault(suffix, plugin)
    return claimed


def plugin_for(path: Path) -> Plugin | None:
    suffix = path.suffix.lower()
    if not suffix or suffix in RESERVED_SUFFIXES:
        return None
    plugins = installed_plugins()
    if not plugins:
        return None
    return plugin_suffixes().get(suffix)


class PluginModel(ForeignModel):
    """A plugin's model object behind the protocol (capabilities and defaults filled in)."""

    source = "plugin"

    def __init__(self, inner: Any, plugin: Plugin) -> None:
        name = plugin.title
        for attr in ("latent_dim", "image_shape", "decode"):
            if not hasattr(inner, attr):
                raise PluginError(
                    f"the plugin {name} returned a {type(inner).__name__} without {attr} (see README: "
                    "Open your own model)"
                )
        try:
            latent = int(inner.latent_dim)
            shape = tuple(int(v) for v in inner.image_shape)
        except (TypeError, ValueError) as error:
            raise PluginError(
                f"the plugin {name}: latent_dim must be a whole number and image_shape (C, H, W)"
            ) from error
        if latent < 1 or len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
            raise PluginError(
                f"the plugin {name}: latent_dim {latent} and image_shape {shape} do not describe a "
                "latent model with (1 or 3, H, W) images"
            )
        kind = getattr(inner, "kind", None)
        super().__init__(latent, shape, kind=kind if isinstance(kind, str) and kind else "gan")
        self.inner = inner if isinstance(inner, nn.Module) else None  # registered: .to() and parameters follow
        self._object = inner
        self.plugin = plugin
        self.display_name = getattr(inner, "name", None) if isinstance(getattr(inner, "name", None), str) else None
        self.has_encoder = callable(getattr(inner, "encode", None))
        self.can_project = bool(getattr(inner, "can_project", isinstance(inner, nn.Module)))
        self.encoder_variance = bool(getattr(inner, "encoder_variance", True))
        self._check(name)

    def _check(self, name: str) -> None:
        with torch.no_grad():
            try:
                out = self.decode(torch.zeros((2, self.latent_dim)))
            except Exception as error:  # noqa: BLE001 - the plugin's own code
                raise PluginError(
                    f"the plugin {name}: decode failed on two latents ({type(error).__name__}: {error})"
                ) from error
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, *self.image_shape):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise PluginError(
                f"the plugin {name}: decode gave {got} for 2 latents, not (2, {', '.join(map(str, self.image_shape))})"
            )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._object.decode(z.to(self.device)).float()

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._object.encode(images.to(self.device))
        if isinstance(out, (tuple, list)):
            mu, logvar = out[0], out[1] if len(out) > 1 else torch.zeros_like(out[0])
        else:
            mu, logvar = out, torch.zeros_like(out)
            self.encoder_variance = False
        return mu.float(), logvar.float()

    def moved_to(self, device: torch.device) -> None:
        if self.inner is None and callable(getattr(self._object, "to", None)):
            self._object.to(device)

    def describe(self) -> list[tuple[str, str]]:
        where = f"{self.plugin.value}" + (f" (package {self.plugin.distribution})" if self.plugin.distribution else "")
        rows = [
            ("Format", f"plugin {self.plugin.title}" + (f" — {self.display_name}" if self.display_name else "")),
            ("Loader", where),
        ]
        if not self.can_project:
            rows.append(("Projection", "unavailable (the plugin says its decode has no gradients)"))
        return rows


def load_plugin(plugin: Plugin, path: Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Open `path` with `plugin`; any failure of the plugin's code is a one-line PluginError."""
    loader = plugin.loader()
    load = getattr(loader, "load", None)
    if not callable(load):
        raise PluginError(f"the plugin {plugin.name} ({plugin.value}) has no load(path) function")
    try:
        inner = load(path)
    except CheckpointError:
        raise
    except Exception as error:  # noqa: BLE001 - the plugin's own code: its failure is one line here
        message = str(error).splitlines()[0] if str(error) else ""
        raise PluginError(
            f"the plugin {plugin.title} could not open {path.name}: {type(error).__name__}: {message[:200]}"
        ) from error
    if isinstance(inner, Checkpoint):
        ckpt = inner
    else:
        model = inner if isinstance(inner, ConfigModel) else PluginModel(inner, plugin)
        dataset = getattr(inner, "dataset", None)
        if isinstance(dataset, str):
            c, h, _w = model.image_shape
            dataset = {"name": dataset, "image_size": h, "channels": c}
        if isinstance(dataset, dict):
            try:
                dataset = DataSpec.from_dict(dataset).to_dict()
            except (DatasetError, TypeError) as error:
                raise PluginError(f"the plugin {plugin.title}: its model's dataset is invalid ({error})") from error
        labels = getattr(inner, "label_names", None)
        ckpt = Checkpoint(
            model=model,
            dataset=dict(dataset) if isinstance(dataset, dict) else {},
            label_names=list(labels) if isinstance(labels, (list, tuple)) else [],
        )
    ckpt.path, ckpt.format = path, f"plugin:{plugin.name}"
    ckpt.files = ckpt.files or [path]
    ckpt.model.to(torch.device(device))
    ckpt.model.eval()
    if isinstance(ckpt.model, ForeignModel):
        ckpt.nonfinite = ckpt.model.nonfinite()
    return ckpt
