"""Running slow work off the GUI thread: a function in a worker object moved to its own QThread.

The function receives the Job and may call `job.report(value)` for progress and check
`job.cancelled` between chunks of work; a Python thread cannot be killed, so work stops itself.
Payloads crossing threads should already be numpy (`.detach().cpu().numpy()`).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from engines.checkpoint import CheckpointError
from engines.data import DatasetError

log = logging.getLogger(__name__)


class WorkError(Exception):
    """An expected failure of a work function (say, a broken model's NaN output): its one-line message
    is shown to the user, without a traceback in the log."""


_live: set[Job] = set()  # jobs whose threads may still run; kept referenced until they finish


class _Runner(QObject):
    """Lives in the worker thread and runs the function there."""

    progress = Signal(object)
    result = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, job: Job, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        super().__init__()
        self._job, self._fn, self._args, self._kwargs = job, fn, args, kwargs

    @Slot()
    def run(self) -> None:
        try:
            value = self._fn(self._job, *self._args, **self._kwargs)
            if not self._job.cancelled:
                self.result.emit(value)
        except (DatasetError, CheckpointError, WorkError) as error:  # expected (missing data, bad file): no traceback
            log.warning("job failed: %s", error)
            self.failed.emit(str(error).splitlines()[0])
        except Exception as error:  # noqa: BLE001 - shown to the user; must not end the thread silently
            log.error("job failed: %s", traceback.format_exc())
            self.failed.emit(str(error).splitlines()[0] if str(error) else type(error).__name__)
        finally:
            self.finished.emit()


class Job(QObject):
    """A handle that lives in the GUI thread: its signals arrive there, so any slot may touch widgets.

    (Connecting a worker-thread signal straight to a plain Python callable would run the callable
    in the worker thread; relaying through this main-thread object avoids that trap.)
    """

    progress = Signal(object)
    result = Signal(object)
    failed = Signal(str)  # a one-line message for the user
    finished = Signal()  # always last, after result/failed, also when cancelled

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._runner = _Runner(self, fn, args, kwargs)
        self.thread = QThread()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def report(self, value: Any) -> None:
        """Called by the work function (worker thread) to send progress to the GUI."""
        self._runner.progress.emit(value)

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, timeout_ms: int) -> bool:
        """Block up to timeout_ms for the thread to end; True when it has."""
        return self.thread.wait(timeout_ms)

    @Slot()
    def _release(self) -> None:
        self.thread.wait()  # QThread.finished comes from the thread's last moments: let it end
        _live.discard(self)


def start_job(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
    """Run fn(job, *args, **kwargs) in a new QThread; connect to the job's signals right away
    (they are delivered through the event loop, so none is missed)."""
    job = Job(fn, *args, **kwargs)
    runner, thread = job._runner, job.thread
    runner.moveToThread(thread)
    for name in ("progress", "result", "failed", "finished"):
        getattr(runner, name).connect(getattr(job, name))  # queued: re-emitted in the GUI thread
    thread.started.connect(runner.run)
    # Direct: QThread.quit is thread-safe, and a queued call would wait for a GUI thread that may
    # itself be blocked waiting for this thread (stop_all_jobs at exit).
    runner.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    # Forget the job only once its thread has really ended: `finished` is emitted while the thread still
    # runs, and a QThread destroyed (garbage-collected) before it ends aborts the process.
    thread.finished.connect(job._release)  # queued to the job, in the GUI thread
    _live.add(job)
    thread.start()
    return job


def running_jobs() -> list[Job]:
    return [job for job in _live if job.is_running()]


def cancel_all_jobs() -> None:
    """Ask every job to stop (each stops at its next check); returns at once."""
    for job in list(_live):
        job.cancel()


def stop_all_jobs(timeout_ms: int = 5000) -> bool:
    """Cancel every job and wait for its thread; True when none is left running."""
    jobs = list(_live)
    for job in jobs:
        job.cancel()
    ok = True
    for job in jobs:
        if not job.thread.wait(timeout_ms):
            log.warning("a worker thread did not stop within %d ms", timeout_ms)
            ok = False
    return ok
