"""Saving and loading an exploration session as JSON (no Qt).

A session records which checkpoint it belongs to (path and sha256, so a changed file is noticed),
the current z, the seed and temperature, bookmarks, attribute vectors, and one top-level key per
panel that offers `session_data()` (e.g. "interpolation"), holding whatever dict that panel gave.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .state import Bookmark

FORMAT = "latent-explorer-session/1"
_CORE_KEYS = {"format", "checkpoint", "sha256", "z", "seed", "temperature", "bookmarks", "vectors"}


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
        }
        for key, data in self.panels.items():
            if key in _CORE_KEYS:
                raise ValueError(f"panel key {key!r} clashes with a session field")
            doc[key] = data
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> Session:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise SessionError(f"not a Latent Explorer session (format {found!r})")
        try:
            return cls(
                checkpoint=doc.get("checkpoint"),
                sha256=doc.get("sha256"),
                z=_array(doc["z"]),
                seed=int(doc.get("seed", 0)),
                temperature=float(doc.get("temperature", 1.0)),
                bookmarks=[Bookmark(str(m["name"]), _array(m["z"])) for m in doc.get("bookmarks", [])],
                vectors={str(k): _array(v) for k, v in doc.get("vectors", {}).items()},
                panels={k: v for k, v in doc.items() if k not in _CORE_KEYS and isinstance(v, dict)},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise SessionError(f"the session file is incomplete or damaged ({type(error).__name__}: {error})") from error


def _floats(array: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(array, dtype=np.float32).reshape(-1)]


def _array(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(array)):
        raise ValueError("a latent holds a non-finite value")
    return array


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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SessionError(f"cannot read {path.name}: {error}") from error
    return Session.from_json(doc)
