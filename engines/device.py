"""Choosing the torch device: CUDA, then Apple MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    """The devices present on this machine, best first."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def pick_device(override: str | None = None) -> torch.device:
    """The best device present, or `override` ("cpu", "cuda", "cuda:1", "mps", "auto").

    An override that is not present raises ValueError with the devices that are.
    """
    if override in (None, "", "auto"):
        return torch.device(available_devices()[0])
    try:
        device = torch.device(override)
    except RuntimeError as error:
        raise ValueError(f"unknown device {override!r}; present: {', '.join(available_devices())}") from error
    if device.type not in available_devices():
        raise ValueError(f"device {override!r} is not available here; present: {', '.join(available_devices())}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {override!r} is not available; this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
