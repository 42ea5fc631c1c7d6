"""The GUI thread's garbage collector (explorer.workers): a full collection freezes its survivors, so the
next one does not walk the whole heap again, and opening a checkpoint thaws them, so a replaced model's
reference cycles are still freed."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gc  # noqa: E402
import weakref  # noqa: E402
from pathlib import Path  # noqa: E402

from explorer import workers  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[1] / "checkpoints"


class Cycle:
    """An object that refers to itself: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def _full_collection_by_the_collector() -> None:
    """Bring every generation's count past its threshold, then let the collector's timer slot run."""
    collector = workers._collector
    for _ in range(collector.thresholds[2] + 1):
        gc.collect(1)  # each one counts towards generation 2
    for _ in range(collector.thresholds[1] + 1):
        gc.collect(0)  # each one counts towards generation 1
    allocations = [[] for _ in range(collector.thresholds[0] + 100)]  # noqa: F841 - count towards generation 0
    collector.check()


def test_a_full_collection_freezes_the_survivors_and_opening_a_checkpoint_thaws_them(qapp) -> None:
    workers.collect_in_gui_thread()
    assert workers._collector is not None and not gc.isenabled()
    try:
        old = Cycle()
        alive = weakref.ref(old)
        _full_collection_by_the_collector()
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()

        del old  # garbage now, but frozen: full collections no longer visit it
        gc.collect()
        assert alive() is not None
        assert gc.get_freeze_count() >= frozen - 1

        ExplorerState().open_checkpoint(BUNDLED / "vae-mnist-2d.safetensors")  # a model replaced: thawed
        assert gc.get_freeze_count() == 0
        _full_collection_by_the_collector()  # the next full collection frees the cycle
        assert alive() is None
        assert gc.get_freeze_count() > 0  # and freezes what is left again
    finally:
        gc.unfreeze()
