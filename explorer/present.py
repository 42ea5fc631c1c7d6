"""The presentation window (View > Present): borderless and full screen, only the live image.

It shows decode(state.z) scaled to fill the screen (aspect kept, black around it) with nearest or smooth
filtering. Each change of z (a walk's frame, set at most once per frame by explorer.live's frame clock)
asks its own `LatentDecoder` for the newest z, and a 60 Hz timer asks again for any z it missed; decodes
run in a worker where the newest wins, so a walk or a flood of control messages never queues stale
frames, and each decoded image is painted at once. The main
window keeps every control; Esc (or closing) leaves.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QImage, QKeyEvent, QPainter, QPaintEvent, QScreen
from PySide6.QtWidgets import QWidget

from .decoder import LatentDecoder
from .pixels import to_qimage
from .state import ExplorerState

log = logging.getLogger(__name__)

DEFAULT_FPS = 60.0


class PresentationWindow(QWidget):
    """Public: `smooth` (filter), `frames_shown` (new images painted), `image` (the QImage shown)."""

    closed = Signal()

    def __init__(self, state: ExplorerState, smooth: bool = False, fps: float = DEFAULT_FPS) -> None:
        super().__init__(None, Qt.WindowType.Window | Qt.WindowType.FramelessWindowHint)
        self.setObjectName("presentation")
        self.setWindowTitle("Latent Explorer — presentation (Esc leaves)")
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setCursor(Qt.CursorShape.BlankCursor)
        self.state = state
        self.smooth = smooth
        self.image: QImage | None = None
        self.frames_shown = 0
        self._fresh = False
        self._asked: np.ndarray | None = None
        self.decoder = LatentDecoder(self)
        self.decoder.decoded.connect(self._decoded)
        self.decoder.failed.connect(lambda message: log.warning("presentation decode failed: %s", message))
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(max(1, round(1000 / fps)))
        self.timer.timeout.connect(self.tick)
        state.modelChanged.connect(self._model_changed)
        state.latentChanged.connect(self._z_changed)  # a walk's frame is asked for as soon as it is set
        self._model_changed()

    def present(self, screen: QScreen | None = None) -> None:
        """Show full screen on `screen` (default: the one the window is on) and start the clock."""
        if screen is not None:
            self.setScreen(screen)
            self.setGeometry(screen.geometry())
        self.showFullScreen()
        self.timer.start()
        self.tick()

    def set_smooth(self, smooth: bool) -> None:
        self.smooth = smooth
        self.update()

    def _model_changed(self) -> None:
        self.decoder.set_model(self.state.model if self.state.has_latent else None)
        self._asked = None
        self.image = None
        self.update()

    def _z_changed(self) -> None:
        if self.isVisible():
            self.tick()

    def tick(self) -> None:
        """One frame: ask for the newest z if it changed (the decode arrives later, in `_decoded`)."""
        if not self.state.has_latent:
            return
        z = self.state.z
        if self._asked is None or not np.array_equal(z, self._asked):
            self._asked = z.copy()
            self.decoder.request(z)

    def _decoded(self, z: np.ndarray, image: np.ndarray) -> None:
        self.image = to_qimage(image)
        self._fresh = True
        self.update()

    def image_rect(self) -> QRect:
        """Where the image is drawn: as large as fits, centred."""
        if self.image is None:
            return QRect()
        w, h = self.image.width(), self.image.height()
        scale = min(self.width() / w, self.height() / h)
        dw, dh = round(w * scale), round(h * scale)
        return QRect((self.width() - dw) // 2, (self.height() - dh) // 2, dw, dh)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), QColor(0, 0, 0))
            if self.image is not None:
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
                painter.drawImage(self.image_rect(), self.image)
                if self._fresh:
                    self._fresh = False
                    self.frames_shown += 1
        finally:
            painter.end()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close()
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.timer.stop()
        self.decoder.request_stop()
        self.closed.emit()
        super().closeEvent(event)
