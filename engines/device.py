"""Choosing the torch device: CUDA, then Apple MPS, then CPU, unless the user says otherwise."""

from __future__ import annotations

import os
import platform
from functools import cache

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
        raise ValueError(
            f"device {override!r} is not available; this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device


@cache
def machine_description(device: str = "cpu") -> str:
    """A one-line description of where a run happened, for training summaries and model cards."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(torch.device(device))} (CUDA)"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__.split('+')[0]} on {device}"
