"""Slider-driven decoding off the GUI thread, where the latest request wins.

`LatentDecoder.request(z)` asks a `workers.Latest` slot (interrupt=False) to decode z: while a decode
runs, any number of newer requests collapse into one, the newest, which runs when that decode ends;
stale ones are never decoded, and the decode in progress still shows (it is newer than the image on
screen). The result arrives as `decoded(z, image)` in the GUI thread, which never waits.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QObject, Signal

from engines.latent import decode_latents

from .workers import INTERACTIVE, Job, Latest

log = logging.getLogger(__name__)


def _decode_job(job: Job, model, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return z, decode_latents(model, z)[0]


class LatentDecoder(QObject):
    """Decodes the latest requested z of `model` (set with `set_model`) in a worker thread."""

    decoded = Signal(object, object)  # z (D,) float32, image (H, W, C) float32 in [0, 1]; GUI thread
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = None
        # a user waits on every one; one image is too little work to split over threads (explorer.workers)
        self._slot = Latest(self, interrupt=False, priority=INTERACTIVE, threads=1)
        self._asked: np.ndarray | None = None  # the newest z asked for, with this model
        self.request_count = 0

    @property
    def decode_count(self) -> int:
        """Decodes actually run (for tests and diagnostics)."""
        return self._slot.started

    def set_model(self, model) -> None:
        """Decode with `model` from now on (None: nothing); waiting and in-flight work is dropped."""
        self._model, self._asked = model, None
        self._slot.cancel()

    def request(self, z: np.ndarray) -> None:
        """Decode z soon; replaces any request not yet started (the z asked for last is not asked for
        again: its image is on its way or shown). Never blocks on the worker."""
        if self._model is None:
            return
        z = np.array(z, dtype=np.float32).reshape(-1)  # a copy: the caller may change its array
        self.request_count += 1
        if self._asked is not None and np.array_equal(z, self._asked):
            return
        self._asked = z
        self._slot.start(
            _decode_job, self._model, z, on_result=lambda pair: self.decoded.emit(*pair), on_failed=self.failed.emit
        )

    def is_running(self) -> bool:
        """True while a decode runs or waits."""
        return self._slot.busy()

    def request_stop(self) -> None:
        """Decode nothing more (the decode in progress ends by itself); returns at once."""
        self.set_model(None)

    def stop(self, timeout_ms: int = 5000) -> bool:
        """Decode nothing more and wait for the decode in progress; True when none runs."""
        self.request_stop()
        ok = self._slot.wait(timeout_ms)
        if not ok:
            log.warning("the decoder thread did not stop within %d ms", timeout_ms)
        return ok
