"""Every background thread of the app at once, for quitting: ask them all to stop, see which still run,
and wait for them without freezing the window.

A Python thread cannot be killed, and a QThread destroyed while it runs aborts the process ("QThread:
Destroyed while thread is still running"), so quitting asks each job (explorer.workers: every background
thread is one) to stop at its next safe point (a training run between steps, a decode after the current
one) and waits until every thread has ended.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QCoreApplication, QEventLoop

from .workers import Job, cancel_all_jobs, running_jobs

log = logging.getLogger(__name__)
SLICE_MS = 50  # the longest the GUI thread blocks at a time while waiting


def request_stop() -> None:
    """Ask every job to stop; returns at once."""
    cancel_all_jobs()


def running() -> list[Job]:
    """The jobs whose threads still run."""
    return running_jobs()


def wait_for_all(timeout_ms: int | None = None, process_events: bool = True) -> bool:
    """Stop every background thread and wait until none runs; True when none does.

    Waits in slices of SLICE_MS, processing events in between (user input excluded) so the window keeps
    painting and queued results are delivered; `timeout_ms=None` waits as long as it takes (a step that
    cannot be interrupted is waited for, never cut short)."""
    start = time.monotonic()
    next_note = start + 10.0
    app = QCoreApplication.instance()
    while True:
        request_stop()  # again each time: something woken by a delivered event may have started a job
        busy = running()
        if not busy:
            return True
        now = time.monotonic()
        if timeout_ms is not None and (now - start) * 1000 >= timeout_ms:
            log.warning("%d background thread(s) still running after %d ms", len(busy), timeout_ms)
            return False
        if now >= next_note:
            log.info("still waiting for %d background thread(s) to finish", len(busy))
            next_note = now + 10.0
        busy[0].wait(SLICE_MS)
        if process_events and app is not None:
            app.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
