"""The encoded dataset the latent panels share: encoder means of a few thousand held-out images
(engines.encoded.EncodedData).

One `EncodedSet` per ExplorerState, so the map's scatter, PCA axes and the label vectors of the
arithmetic panel all come from the same latents, computed once per checkpoint in a worker.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, Signal

from engines.encoded import EncodedData, encode_labelled
from explorer.state import ExplorerState
from explorer.workers import Latest

from .panel_tools import require_finite

log = logging.getLogger(__name__)

DEFAULT_COUNT = 2000
ENCODE_SEED = 0


def _encode(job, state: ExplorerState, model, n: int) -> EncodedData:
    # The state loads (and caches) the checkpoint's held-out split; it raises DatasetError when the
    # files are missing, and RuntimeError when another checkpoint was opened meanwhile.
    data = encode_labelled(
        model,
        state.dataset(train=False),
        n,
        seed=ENCODE_SEED,
        should_stop=lambda: job.cancelled,
        progress=lambda done, total: job.report((done, total)),
    )
    require_finite(data.latents, what="the encoder's output")
    return data


class EncodedSet(QObject):
    """Encoder means of `count` held-out images of the checkpoint's dataset, shared by the panels.

    `ensure(n)` returns the data when it is there (with at least n rows) and otherwise starts the
    worker; `ready` follows. Opening another checkpoint drops the data and cancels the worker.
    """

    ready = Signal(object)  # EncodedData
    failed = Signal(str)
    progress = Signal(int, int)

    def __init__(self, state: ExplorerState) -> None:
        super().__init__(state)
        self.state = state
        self.data: EncodedData | None = None
        self.error: str | None = None
        self._pending = 0
        self._job = Latest(self)
        self._model = state.model  # the model the data belongs to
        state.modelChanged.connect(self._reset)

    def available(self) -> str | None:
        """Why nothing can be encoded, or None."""
        if self.state.model is None:
            return "no model"
        if not self.state.has_encoder:
            return "the model has no encoder (a GAN), so dataset images cannot be mapped to latents"
        return None

    def ensure(self, n: int = DEFAULT_COUNT, retry: bool = False) -> EncodedData | None:
        """The data, or None while it is computed (or cannot be). After a failure (say, the dataset's
        files are missing) nothing is retried until `retry` is set by an explicit user action."""
        if self._model is not self.state.model:  # a view asked before this set heard of the new model
            self._reset()
        if self.available() is not None or (self.error is not None and not retry):
            return None
        if self.data is not None and len(self.data.latents) >= min(n, len(self.data.dataset)):
            return self.data
        if self._job.busy() and self._pending >= n:
            return None
        self._pending, self.error = n, None
        self._job.start(
            _encode,
            self.state,
            self.state.model,
            n,
            on_result=self._done,
            on_failed=self._failed,
            on_progress=lambda p: self.progress.emit(*p),
        )
        return None

    def busy(self) -> bool:
        return self._job.busy()

    def report_to(self, label, failure: str) -> None:
        """Say in `label` (a QLabel) how the encoding goes, and "`failure`: why" when it fails."""
        self.progress.connect(lambda done, total: label.setText(f"Encoding dataset… {done}/{total}"))
        self.failed.connect(lambda message: label.setText(f"{failure}: {message}"))

    def _done(self, data: EncodedData) -> None:
        self.data, self._pending = data, 0
        log.info("encoded %d dataset images", len(data.latents))
        self.ready.emit(data)

    def _failed(self, message: str) -> None:
        self.error, self._pending = message, 0
        self.failed.emit(message)

    def _reset(self) -> None:
        self._job.cancel()
        self.data, self.error, self._pending, self._model = None, None, 0, self.state.model


def encoded_set(state: ExplorerState) -> EncodedSet:
    """The one EncodedSet of `state` (a Qt child of it, so it lives and dies with the state)."""
    found = state.findChild(EncodedSet, options=Qt.FindChildOption.FindDirectChildrenOnly)
    return found if found is not None else EncodedSet(state)
