"""Settings that persist between runs (QSettings): recent files, window layout.

Always the INI format in the user scope, so `QSettings.setPath(IniFormat, UserScope, folder)`
moves every setting (tests point it at a temporary folder)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "LatentExplorer"
APPLICATION = "Latent Explorer"
MAX_RECENT = 10


def app_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def recent_files() -> list[str]:
    value = app_settings().value("recentFiles", [])
    if isinstance(value, str):  # an INI list of one comes back as a plain string
        value = [value] if value else []
    return [str(v) for v in (value or [])]


def add_recent_file(path: str | Path) -> list[str]:
    """Put `path` first in the recent list (no duplicates, at most MAX_RECENT); returns the list."""
    path = str(Path(path).resolve())
    files = [path] + [f for f in recent_files() if f != path]
    files = files[:MAX_RECENT]
    app_settings().setValue("recentFiles", files)
    return files


def remove_recent_file(path: str | Path) -> list[str]:
    files = [f for f in recent_files() if f != str(path)]
    app_settings().setValue("recentFiles", files)
    return files


def clear_recent_files() -> None:
    app_settings().setValue("recentFiles", [])
