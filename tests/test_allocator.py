"""The allocator policy (engines.allocator): freed decode-sized buffers are reused, not page-faulted in
again, and the program's entry point applies it."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

import explorer.__main__ as entry
from engines import allocator

# Faults per round of 40 MB float32 products (the size of a style-based map decode's activations).
SCRIPT = """
import resource, sys, torch
from engines.allocator import retain_freed_memory
if sys.argv[1] == "on":
    assert retain_freed_memory()
x = torch.ones(10_000_000)
for _ in range(3):
    (x * 2).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    (x * 2).sum()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def _faults(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True, timeout=120)
    return float(out.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's")
def test_freed_large_buffers_are_reused_instead_of_faulted_in_again() -> None:
    off, on = _faults("off"), _faults("on")
    assert off > 5000  # without it, each 40 MB product is mapped afresh: ~10,000 pages faulted in
    assert on < off / 3  # measured: 9,766 and 1,953


def test_the_entry_point_applies_the_policy_for_the_app_and_the_commands(monkeypatch, capsys) -> None:
    calls = []
    monkeypatch.setattr(allocator, "retain_freed_memory", lambda: calls.append(1) or True)
    assert entry.main(["no-such-command"]) == 2  # refused before any work, after the policy was set
    assert calls == [1] and "unknown command" in capsys.readouterr().err
