"""Running the trainer under torchrun: PyTorch's own DistributedDataParallel, nothing home-made.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `setup` joins the process group (nccl on CUDA,
gloo on the CPU) and picks this process's device. Without torchrun everything is a no-op.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..device import pick_device


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, logs and sample grids."""
        return self.rank == 0


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """Rank 0 under torchrun, or a single process; known before the process group exists."""
    return int(os.environ.get("RANK", "0")) == 0


def setup(device: str | None = None) -> tuple[DistContext, torch.device]:
    """Join the torchrun process group if there is one; returns the context and this rank's device."""
    if not launched_by_torchrun():
        return SINGLE, pick_device(device)
    ctx = DistContext(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    target = pick_device(device)
    if target.type == "cuda":
        target = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(target)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if target.type == "cuda" else "gloo")
    return ctx, target


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        try:
            # Every rank reaches the end before any destroys the group: a rank that tore gloo down while
            # another still finished its last collective aborted ("terminate called without an active
            # exception", SIGABRT) about once in three runs on a busy 2-core machine.
            dist.barrier()
        except RuntimeError:  # a rank already failed: tear down what is left anyway
            pass
        gc.collect()  # work objects of freed DDP wrappers go now, not during interpreter shutdown
        dist.destroy_process_group()


def wrapper(ctx: DistContext, device: torch.device):
    """A function that wraps a module in DDP under torchrun, and leaves it alone otherwise."""
    if not ctx.enabled:
        return lambda module: module

    def wrap(module: nn.Module) -> nn.Module:
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    return wrap


def any_rank(flags: list[bool], ctx: DistContext, device: torch.device) -> list[bool]:
    """For each flag, whether it is set on any rank, so every rank stops (or diverges) at the same step."""
    if not ctx.enabled:
        return flags
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]
