"""Slider-driven decoding off the GUI thread, where the latest request wins.

`LatentDecoder.request(z)` stores z as the one pending request and wakes a worker thread; the
worker decodes only the newest pending z, so while a decode runs any number of newer requests
collapse into one and stale ones are never decoded. The result arrives as `decoded(z, image)` in
the GUI thread. The GUI thread never waits: `request` only swaps a reference under a lock.
"""

from __future__ import annotations

import logging
import threading
import weakref

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from engines.latent import decode_latents

log = logging.getLogger(__name__)
_decoders: weakref.WeakSet[LatentDecoder] = weakref.WeakSet()


class _DecodeThread(QThread):
    """Loops: wait for a pending request, take the newest, decode it, hand the image back."""

    done = Signal(int, object, object)  # generation, z (D,), image (H, W, C) float32
    error = Signal(int, str)

    def __init__(self, owner: LatentDecoder) -> None:
        super().__init__()
        self._owner = owner  # only its lock-protected fields are touched from this thread

    def run(self) -> None:
        owner = self._owner
        while True:
            with owner._wake:
                while owner._pending is None and not owner._stopping:
                    owner._wake.wait()
                if owner._stopping:
                    return
                generation, model, z = owner._pending
                owner._pending = None
            try:
                image = _decode(model, z)
            except Exception as error:  # noqa: BLE001 - reported to the GUI; the loop must live on
                log.exception("decoding failed")
                self.error.emit(generation, str(error).splitlines()[0] if str(error) else type(error).__name__)
                continue
            with owner._wake:
                owner.decode_count += 1
            self.done.emit(generation, z, image)


def _decode(model, z: np.ndarray) -> np.ndarray:
    return decode_latents(model, z)[0]


class LatentDecoder(QObject):
    """Decodes the latest requested z of `model` (set with `set_model`) in its own thread."""

    decoded = Signal(object, object)  # z (D,) float32, image (H, W, C) float32 in [0, 1]; GUI thread
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._wake = threading.Condition()
        self._pending: tuple[int, object, np.ndarray] | None = None
        self._stopping = False
        self._model = None
        self._generation = 0  # bumped per model, so images of a replaced model are dropped
        self.request_count = 0
        self.decode_count = 0  # decodes actually run (for tests and diagnostics)
        self._thread = _DecodeThread(self)
        # Queued to a slot of this GUI-thread object: the worker never runs GUI code.
        self._thread.done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._thread.error.connect(self._report, Qt.ConnectionType.QueuedConnection)
        self._thread.start()
        _decoders.add(self)

    def set_model(self, model) -> None:
        """Decode with `model` from now on (None: nothing); pending and in-flight work is dropped."""
        with self._wake:
            self._model = model
            self._generation += 1
            self._pending = None

    def request(self, z: np.ndarray) -> None:
        """Decode z soon; replaces any request not yet started. Never blocks on the worker."""
        z = np.array(z, dtype=np.float32).reshape(-1)  # a copy: the caller may change its array
        with self._wake:
            if self._model is None or self._stopping:
                return
            self.request_count += 1
            self._pending = (self._generation, self._model, z)
            self._wake.notify()

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, timeout_ms: int) -> bool:
        """Block up to timeout_ms for the thread to end (after request_stop); True when it has."""
        return self._thread.wait(timeout_ms)

    def request_stop(self) -> None:
        """Ask the worker thread to end after the decode in progress; returns at once."""
        with self._wake:
            self._stopping = True
            self._pending = None
            self._wake.notify_all()

    def stop(self, timeout_ms: int = 5000) -> bool:
        """End the worker thread (after the decode in progress) and wait for it; True when it has stopped."""
        self.request_stop()
        ok = self._thread.wait(timeout_ms)
        if not ok:
            log.warning("the decoder thread did not stop within %d ms", timeout_ms)
        return ok

    @Slot(int, object, object)
    def _deliver(self, generation: int, z: np.ndarray, image: np.ndarray) -> None:
        if generation == self._generation and not self._stopping:
            self.decoded.emit(z, image)

    @Slot(int, str)
    def _report(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self.failed.emit(message)


def running_decoders() -> list[LatentDecoder]:
    return [d for d in list(_decoders) if d.is_running()]


def request_stop_all_decoders() -> None:
    for decoder in list(_decoders):
        decoder.request_stop()


def stop_all_decoders(timeout_ms: int = 5000) -> bool:
    return all([d.stop(timeout_ms) for d in list(_decoders)])
