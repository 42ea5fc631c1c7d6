"""Saving and loading an exploration session as JSON (no Qt).

A session records which checkpoint it belongs to (path and sha256, so a changed file is noticed),
the current z, the seed and temperature, bookmarks, attribute vectors, and one top-level key per
panel that offers `session_data()` (e.g. "interpolation"), holding whatever dict that panel gave.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .state import Bookmark

FORMAT = "latent-explorer-session/1"
MAX_SEED = 2**31 - 1  # the seeds the Explore tab offers
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 3.0  # the Explore tab's temperature range
MAX_LATENT = 1 << 16  # values per latent, far above any model here
_CORE_KEYS = {
    "format",
    "checkpoint",
    "sha256",
    "z",
    "seed",
    "temperature",
    "bookmarks",
    "vectors",
    "space",
    "class_mix",
}
MAX_CLASSES = 1000  # engines.models.conditional.MAX_CLASSES
SPACES = ("Z", "W", "W+")  # engines.styles.SPACES: the latent space z, bookmarks and vectors live in


class SessionError(Exception):
    """A session file cannot be read; the message is one line, fit to show a user."""


@dataclass
class Session:
    checkpoint: str | None
    sha256: str | None
    z: np.ndarray
    seed: int = 0
    temperature: float = 1.0
    bookmarks: list[Bookmark] = field(default_factory=list)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    panels: dict[str, dict[str, Any]] = field(default_factory=dict)  # top-level key -> panel's own dict
    space: str = "Z"  # Z, or W / W+ of a style-based generator
    psi: float = 1.0  # the truncation of W / W+
    class_mix: np.ndarray | None = None  # a conditional model's class blend (K,); None: unconditional

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "checkpoint": self.checkpoint,
            "sha256": self.sha256,
            "z": _floats(self.z),
            "seed": int(self.seed),
            "temperature": float(self.temperature),
            "bookmarks": [{"name": m.name, "z": _floats(m.z)} for m in self.bookmarks],
            "vectors": {name: _floats(v) for name, v in self.vectors.items()},
            "space": {"name": self.space, "psi": float(self.psi)},
        }
        if self.class_mix is not None:
            doc["class_mix"] = _floats(self.class_mix)
        for key, data in self.panels.items():
            if key in _CORE_KEYS:
                raise ValueError(f"panel key {key!r} clashes with a session field")
            doc[key] = data
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> Session:
        """Check every field's type and value, then build the session; SessionError (one line naming the
        field) for anything else, so a damaged file never half-applies."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise SessionError(f"not a Latent Explorer session (format {found!r})")
        checkpoint = _optional_str(doc, "checkpoint")
        sha256 = _optional_str(doc, "sha256")
        if "z" not in doc:
            raise SessionError("the session has no z")
        z = _latent(doc["z"], "z")
        seed = doc.get("seed", 0)
        if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
            raise SessionError(f"seed must be a whole number from 0 to {MAX_SEED}, not {_show(seed)}")
        temperature = doc.get("temperature", 1.0)
        if not _is_number(temperature) or not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:
            raise SessionError(
                f"temperature must be a number from {MIN_TEMPERATURE} to {MAX_TEMPERATURE}, not {_show(temperature)}"
            )
        marks = doc.get("bookmarks", [])
        if not isinstance(marks, list):
            raise SessionError(f"bookmarks must be a list, not {type(marks).__name__}")
        bookmarks = []
        for i, mark in enumerate(marks):
            if not isinstance(mark, dict) or not isinstance(mark.get("name"), str):
                raise SessionError(f"bookmarks[{i}] must be an object with a text name and a z")
            bookmarks.append(Bookmark(mark["name"], _latent(mark.get("z"), f"bookmark {mark['name']!r}")))
        vectors = doc.get("vectors", {})
        if not isinstance(vectors, dict):
            raise SessionError(f"vectors must be an object (name: list of numbers), not {type(vectors).__name__}")
        space = doc.get("space", {"name": "Z", "psi": 1.0})
        if (
            not isinstance(space, dict)
            or space.get("name", "Z") not in SPACES
            or not _is_number(space.get("psi", 1.0))
            or not 0 <= space.get("psi", 1.0) <= 2
        ):
            raise SessionError(
                f"space must be an object with a name in {SPACES} and a psi from 0 to 2, not {_show(space)}"
            )
        class_mix = doc.get("class_mix")
        if class_mix is not None:
            if (
                not isinstance(class_mix, list)
                or not 2 <= len(class_mix) <= MAX_CLASSES
                or not all(_is_number(v) and math.isfinite(v) and v >= 0 for v in class_mix)
                or not sum(class_mix) > 0
            ):
                raise SessionError(
                    f"class_mix must be a list of non-negative weights, not all zero, not {_show(class_mix)}"
                )
            class_mix = np.asarray(class_mix, np.float32)
        return cls(
            class_mix=class_mix,
            space=space.get("name", "Z"),
            psi=float(space.get("psi", 1.0)),
            checkpoint=checkpoint,
            sha256=sha256,
            z=z,
            seed=int(seed),
            temperature=float(temperature),
            bookmarks=bookmarks,
            vectors={str(k): _latent(v, f"vector {k!r}") for k, v in vectors.items()},
            panels={k: v for k, v in doc.items() if k not in _CORE_KEYS and isinstance(v, dict)},
        )

    def check_fits(self, latent_dim: int, num_classes: int = 0) -> None:
        """Raise SessionError unless z, every bookmark and every vector has `latent_dim` values, and a class
        blend (if any) has one weight per class of the model (`num_classes`; 0: unconditional)."""
        if self.class_mix is not None and self.class_mix.size != num_classes:
            what = f"{num_classes} classes" if num_classes else "no classes"
            raise SessionError(f"its class blend has {self.class_mix.size} weights; the model has {what}")
        for what, value in [
            ("z", self.z),
            *((f"bookmark {m.name!r}", m.z) for m in self.bookmarks),
            *((f"vector {name!r}", v) for name, v in self.vectors.items()),
        ]:
            if value.size != latent_dim:
                raise SessionError(f"its {what} has {value.size} values; the model's latent has {latent_dim}")


def _floats(array: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(array, dtype=np.float32).reshape(-1)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite JSON number (not a boolean, not a string)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= 2**64  # math.isfinite raises for a huge int
    return isinstance(value, float) and math.isfinite(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _optional_str(doc: dict, key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise SessionError(f"{key} must be text, not {type(value).__name__}")
    return value


def _latent(values: Any, what: str) -> np.ndarray:
    """A list of finite numbers (JSON) -> float32 array; SessionError naming `what` otherwise."""
    if not isinstance(values, list):
        raise SessionError(f"{what} must be a list of numbers, not {type(values).__name__}")
    if len(values) > MAX_LATENT:
        raise SessionError(f"{what} has {len(values)} values (at most {MAX_LATENT})")
    if not all(_is_number(x) for x in values):
        bad = next(x for x in values if not _is_number(x))
        raise SessionError(f"{what} must hold finite numbers only, not {_show(bad)}")
    array = np.asarray(values, dtype=np.float64)
    if np.any(np.abs(array) > np.finfo(np.float32).max):
        raise SessionError(f"{what} holds a number too large for float32")
    return array.astype(np.float32)


def save_session(path: str | os.PathLike, session: Session) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a session."""
    path = Path(path)
    text = json.dumps(session.to_json(), indent=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_session(path: str | os.PathLike) -> Session:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise SessionError(f"cannot read {path.name}: {error}") from error
    return Session.from_json(doc)
