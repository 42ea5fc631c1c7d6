"""Every background job of the app goes through this module: a function run in a worker object moved to
its own QThread (`Job`), and `Latest`, a slot of jobs for one purpose in which the newest request wins.

The function receives its Job and may call `job.report(value)` for progress and check `job.cancelled`
between chunks of work; a Python thread cannot be killed, so work stops itself. A function that builds
something steerable in the worker (a Trainer, with pause/resume/stop) hands it to `job.steer(target)`:
`job.pause()`, `job.resume()` and `job.cancel()` are then forwarded to it, also when they came first.
Payloads crossing threads should already be numpy (`.detach().cpu().numpy()`).

    job = start_job(fn, *args)              # fn(job, *args) runs in a new QThread
    job.progress / result / failed / finished  # signals, delivered in the GUI thread

    decodes = Latest(parent, interrupt=False)
    decodes.start(fn, *args, on_result=show)   # newest wins; see Latest

Every job is registered until its thread has ended, so quitting can cancel them all (`cancel_all_jobs`)
and wait for every thread (`running_jobs`, explorer.threads): a QThread destroyed while it runs aborts
the process ("QThread: Destroyed while thread is still running").

Thread policy: a job is "interactive" (the decode behind the sliders and the presentation window: a user
waits on every one) or "background" (maps, encodes, galleries, training, renders: everything else).
Torch's intra-op thread count is per thread here (OpenMP), so each job sets its own when it starts,
out of the app's budget (the GUI thread's torch thread count: every core unless lowered): an
interactive job uses the whole budget (the slider's one-image decodes cap it at one thread: too little
work to split, they took longer on two: slider-to-pixels p50 7.0 vs 4.7 ms, p95 under load 19.5 vs
11.7 ms); the background jobs running at the time share the cores (each gets cores // running, at
least one), so a training run alone keeps every core and a map decoded beside it does not
oversubscribe them. A long job re-takes its share between steps (`Job.share_cores`, which the
training worker calls per step), so it grows back when the others end. On Linux a background job's
thread (with the OpenMP helpers it spawns) also runs 10 nice levels lower, so the scheduler gives an
interactive decode the cores first whenever both want them (`apply_thread_policy`).

Once jobs run, Python's cyclic garbage collector runs only in the GUI thread (`collect_in_gui_thread`):
left automatic, it runs in whichever thread allocates, and a worker thread freeing a garbage window's Qt
objects deadlocks with the GUI thread (both wait on a Qt mutex and the GIL; seen in the test suite).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

from engines.checkpoint import CheckpointError
from engines.data import DatasetError

log = logging.getLogger(__name__)


INTERACTIVE, BACKGROUND = "interactive", "background"
BACKGROUND_NICE = 10


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_background_lock = threading.Lock()
_background_running = 0  # background jobs whose functions run now


def thread_count(priority: str, budget: int | None = None) -> int:
    """Torch threads for a job of this priority now (see the module docstring), out of `budget` (the
    GUI thread's own torch thread count, which a user or a test may have lowered; default the cores)."""
    cores = min(usable_cores(), budget or usable_cores())
    if priority == INTERACTIVE:
        return cores
    with _background_lock:
        return max(1, cores // max(1, _background_running))


def apply_thread_policy(priority: str, budget: int | None = None, lower: bool = True) -> None:
    """Set the calling (worker) thread's torch thread count and, for background work on Linux, lower its
    scheduling priority (`lower`: once, when the job starts)."""
    wanted = thread_count(priority, budget)
    if torch.get_num_threads() != wanted:  # setting it rebuilds the thread pools: only when it changes
        torch.set_num_threads(wanted)
    if lower and priority == BACKGROUND and hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))
        except OSError as error:  # not permitted here: the thread counts still apply
            log.debug("cannot lower a background thread's priority: %s", error)


def torch_threads() -> int:
    """The calling thread's torch thread count (its job's share of the cores)."""
    return torch.get_num_threads()


def decode_on_threads(decode: Callable[[Any], Any], latents: Any, parts: int, min_part: int = 32) -> Any:
    """decode(latents) as `parts` slices decoded at once, each on one torch thread: the calling thread's
    own slice after it drops to one torch thread (for the rest of its life: a job's thread is its own),
    the others on threads started for them; the same images as decode(latents), concatenated.

    Splitting the batch across the cores rather than each op (torch's intra-op threads) avoids what a
    parallel region costs in a worker thread: ~25 us more than on the main thread (GNU OpenMP; a
    200k-element add 37 vs 13 us), paid by every op. On two cores a 240-latent bfloat16 decode of the
    style-based generator goes from 33 to 28 ms (the DCGAN's stays at 17 ms), and one row of 16 tiles
    (parts=1) from 7.7 to 4.7 ms. Fewer parts when a slice would hold under `min_part` latents."""
    parts = max(1, min(parts, len(latents) // min_part))
    bounds = np.linspace(0, len(latents), parts + 1).astype(int)
    out: list[Any] = [None] * parts
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            if torch.get_num_threads() != 1:  # resizes torch's shared pool once; 1 stays 1 after
                torch.set_num_threads(1)
            out[i] = decode(latents[bounds[i] : bounds[i + 1]])
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    helpers = [threading.Thread(target=run, args=(i,), name=f"decode-part-{i}") for i in range(1, parts)]
    for helper in helpers:
        helper.start()
    run(0)
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]
    return out[0] if parts == 1 else np.concatenate(out)


def _count_background(change: int) -> None:
    global _background_running
    with _background_lock:
        _background_running += change


class WorkError(Exception):
    """An expected failure of a work function (say, a broken model's NaN output): its one-line message
    is shown to the user, without a traceback in the log."""


_live: set[Job] = set()  # jobs not yet over (pending or running); kept referenced until their thread ends
GC_INTERVAL_MS = 500


class _GuiThreadCollector(QObject):
    """Automatic garbage collection off; a timer in the GUI thread collects each generation that has
    passed its threshold (the pattern of pyqtgraph.util.garbage_collector).

    After each full collection the survivors are frozen (gc.freeze), so the next full collection visits
    only what was made since. Without that, each one walked the whole heap (~394k objects with a model
    and its tabs open: 225 ms on the GUI thread, collecting nothing), a visible stall every minute or
    so of use. Opening another checkpoint thaws them (`thaw_long_lived`): the old model's reference
    cycles are then found by the next full collection, which freezes what is left again."""

    def __init__(self) -> None:
        super().__init__()
        self.thresholds = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        gc.disable()
        self.timer.start(GC_INTERVAL_MS)

    def check(self) -> None:
        for generation, (count, threshold) in enumerate(zip(gc.get_count(), self.thresholds, strict=True)):
            if count <= threshold:
                break
            gc.collect(generation)
            if generation == 2:
                gc.freeze()


_collector: _GuiThreadCollector | None = None


def thaw_long_lived() -> None:
    """Let the next full collection look at every object again (they were frozen after the last one):
    call it when long-lived objects may have become garbage, such as a replaced model."""
    gc.unfreeze()


def collect_in_gui_thread() -> None:
    """From now on, collect cyclic garbage in the GUI thread only (idempotent; call it from that thread,
    with a QCoreApplication). Job.start calls it."""
    global _collector
    app = QCoreApplication.instance()
    if _collector is None and app is not None and QThread.currentThread() is app.thread():
        _collector = _GuiThreadCollector()


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
        background = self._job.priority == BACKGROUND
        if background:
            _count_background(+1)
        try:
            apply_thread_policy(self._job.priority, self._job.budget)
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
            if background:
                _count_background(-1)
            self.finished.emit()


class Job(QObject):
    """A handle that lives in the GUI thread: its signals arrive there, so any slot may touch widgets.

    (Connecting a worker-thread signal straight to a plain Python callable would run the callable
    in the worker thread; relaying through this main-thread object avoids that trap.)

    Made by `start_job` (started at once) or by a `Latest` slot (started when the slot is free). A job
    cancelled before it started never runs; it still emits `finished`.
    """

    progress = Signal(object)
    result = Signal(object)
    failed = Signal(str)  # a one-line message for the user
    finished = Signal()  # always last, after result/failed, also when cancelled

    def __init__(
        self, fn: Callable[..., Any], *args: Any, priority: str = BACKGROUND, threads: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__()
        if priority not in (INTERACTIVE, BACKGROUND):
            raise ValueError(f"priority must be {INTERACTIVE!r} or {BACKGROUND!r}")
        self.priority = priority
        self.budget = torch.get_num_threads()  # the creating (GUI) thread's: the app's thread budget
        if threads is not None:  # a job too small to split (one image) runs faster on fewer threads
            self.budget = max(1, min(self.budget, threads))
        self._cancel = threading.Event()
        self._lock = threading.Lock()  # guards the steering fields, used from both threads
        self._target: Any = None
        self._paused = False
        self._started = self._over = False
        self._runner = _Runner(self, fn, args, kwargs)
        self.thread = QThread()
        _live.add(self)

    def __repr__(self) -> str:
        fn = self._runner._fn
        state = "running" if self.is_running() else "over" if self._over else "waiting"
        return f"<Job {getattr(fn, '__qualname__', fn)} {state}{' cancelled' if self.cancelled else ''}>"

    # --- asked for from the GUI thread ------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the work to stop at its next check (a steered target is stopped); returns at once. A job
        that has not started yet is over now: it never runs, and emits `finished`."""
        with self._lock:
            self._cancel.set()
            target = self._target
        if target is not None:
            target.stop()
        if not self._started and not self._over:
            self._over = True
            _live.discard(self)
            self.finished.emit()
            self._disconnect_all()

    def pause(self) -> None:
        """Pause the steered target (now, or as soon as the work hands it over)."""
        with self._lock:
            self._paused = True
            if self._target is not None:
                self._target.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self._target is not None:
                self._target.resume()

    def share_cores(self) -> None:
        """Re-take this job's share of the cores (call it from the job's function between steps)."""
        apply_thread_policy(self.priority, self.budget, lower=False)

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, timeout_ms: int) -> bool:
        """Block up to timeout_ms for the thread to end; True when it has (or never started)."""
        return self.thread.wait(timeout_ms)

    # --- called by the work function (worker thread) ----------------------------------------------
    def report(self, value: Any) -> None:
        """Send progress to the GUI."""
        self._runner.progress.emit(value)

    def steer(self, target: Any) -> bool:
        """Hand over an object with pause()/resume()/stop() (a Trainer built in the worker): pause and
        cancel requests, earlier ones included, reach it from now on. False when the job was cancelled
        already (then do not run it)."""
        with self._lock:
            self._target = target
            if self._paused:
                target.pause()
            return not self._cancel.is_set()

    # --- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread (once; a cancelled job is not started)."""
        if self._started or self._over:
            return
        collect_in_gui_thread()
        self._started = True
        runner, thread = self._runner, self.thread
        runner.moveToThread(thread)
        for name in ("progress", "result", "failed", "finished"):
            getattr(runner, name).connect(getattr(self, name))  # queued: re-emitted in the GUI thread
        thread.started.connect(runner.run)
        # Direct: QThread.quit is thread-safe, and a queued call would wait for a GUI thread that may
        # itself be blocked waiting for this thread (stop_all_jobs at exit).
        runner.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        # Forget the job only once its thread has really ended: `finished` is emitted while the thread still
        # runs, and a QThread destroyed (garbage-collected) before it ends aborts the process.
        thread.finished.connect(self._release)  # queued to the job, in the GUI thread
        thread.start()

    @Slot()
    def _release(self) -> None:
        self.thread.wait()  # QThread.finished comes from the thread's last moments: let it end
        self._over = True
        _live.discard(self)
        self._disconnect_all()

    def _disconnect_all(self) -> None:
        """Drop the slots connected to this job, once it is over: a slot that refers to its job (a
        lambda) makes a cycle, and a QObject freed by the cyclic garbage collector is destroyed at a
        random moment (here, right away, in the event loop)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # PySide warns about a signal with no slot
            for signal in (self.progress, self.result, self.failed, self.finished):
                signal.disconnect()


def start_job(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
    """Run fn(job, *args, **kwargs) in a new QThread; connect to the job's signals right away
    (they are delivered through the event loop, so none is missed)."""
    job = Job(fn, *args, **kwargs)
    job.start()
    return job


class Latest(QObject):
    """Jobs for one purpose (a view's tiles, the slider's decodes), one running at a time, where the
    newest request wins: `start` makes a job that waits while an earlier one runs, replacing any job
    still waiting, so however many requests come during a run only the newest of them runs next and
    the others never do.

    `interrupt=True` (the default): a new request also cancels the running job (it stops at its next
    check) and its result is dropped, for work whose old answer is of no use (a map of another plane).
    `interrupt=False`: the running job finishes and its result is delivered (it is newer than what is
    shown), for a stream such as slider decodes. Either way `cancel()` drops everything, and the
    callbacks only ever see results of requests still wanted. The callbacks run in the GUI thread.
    """

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        interrupt: bool = True,
        priority: str = BACKGROUND,
        threads: int | None = None,
    ) -> None:
        super().__init__(parent)
        self.interrupt = interrupt
        self.priority = priority  # of every job it runs (the thread policy above)
        self.threads = threads  # at most this many torch threads per job (None: the policy's share)
        self._running: Job | None = None
        self._waiting: Job | None = None
        self._epoch = 0  # bumped when earlier requests stop being wanted
        self.started = 0  # jobs actually started (for tests and diagnostics)

    @property
    def job(self) -> Job | None:
        """The newest job asked for (waiting or running), or None when nothing is."""
        return self._waiting or self._running

    def start(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None],
        on_failed: Callable[[str], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Job:
        """Ask for fn(job, *args) in a worker thread; returns its Job (which may wait to start)."""
        if self.interrupt:
            self._epoch += 1
            if self._running is not None:
                self._running.cancel()
        epoch = self._epoch
        job = Job(fn, *args, priority=self.priority, threads=self.threads)

        def delivered(value: Any, callback: Callable[[Any], None] | None) -> None:
            self._ended(job)  # the next request may start (this job's thread is ending)
            if callback is not None and epoch == self._epoch:
                callback(value)

        job.result.connect(lambda value: delivered(value, on_result))
        job.failed.connect(lambda message: delivered(message, on_failed))
        if on_progress is not None:
            job.progress.connect(lambda value: epoch == self._epoch and on_progress(value))
        job.finished.connect(lambda: self._ended(job))
        if self._waiting is not None:
            self._waiting.cancel()  # never started: it ends here
        self._waiting = job
        self._launch()
        return job

    def cancel(self) -> None:
        """Drop every request: the waiting job never runs, the running one is asked to stop, and no
        result of either is delivered."""
        self._epoch += 1
        for job in (self._waiting, self._running):
            if job is not None:
                job.cancel()
        self._waiting = None

    def busy(self) -> bool:
        """True while a job of this slot runs or waits (a job whose result or failure has been delivered
        no longer counts)."""
        return self._running is not None or self._waiting is not None

    def wait(self, timeout_ms: int) -> bool:
        """Block up to timeout_ms for the running job's thread to end; True when none runs."""
        running = self._running
        return running is None or running.wait(timeout_ms)

    def _launch(self) -> None:
        if self._running is None and self._waiting is not None:
            job, self._waiting = self._waiting, None
            if not job.cancelled:
                self._running = job
                self.started += 1
                job.start()

    def _ended(self, job: Job) -> None:
        if job is self._running:
            self._running = None
            self._launch()


def running_jobs() -> list[Job]:
    return [job for job in list(_live) if job.is_running()]


def cancel_all_jobs() -> None:
    """Ask every job to stop (each stops at its next check; waiting ones never start); returns at once."""
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
