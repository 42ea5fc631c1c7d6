"""Slider to pixels: a latent slider moves in the real main window -> the new image is painted.

What is measured, per move: from just before `QSlider.setValue` (the same signal path a drag takes:
valueChanged -> LatentSliders -> ExplorerState.set_z -> ExplorePanel -> LatentDecoder.request ->
decode in the decoder thread -> queued back to the GUI thread -> ImageView.set_image -> update())
to the end of the ImageView's next paint event after the image of that very z was set (an event
filter on the view runs the view's own paintEvent and stamps the time when it returns). Moves are
one at a time (each waits for its image), to random slider positions, cycling through the latent
dimensions, in `explorer.app.build_window` with the window shown (offscreen platform).

Baseline, interleaved move by move: `model.decode` of the same z (1 x D) under no_grad, on the GUI
thread, with nothing else running: the part of the latency the model itself needs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import Row, models_of, module_main, no_jobs_running, p50_p95, percentile, shown_window, wait_for

TARGET_P95 = 0.016


def _probe_class():
    from PySide6.QtCore import QEvent, QObject

    class PaintProbe(QObject):
        """Stamps the end of the view's first paint after `expect(z)`'s image was set."""

        def __init__(self, view, decoder, state) -> None:
            super().__init__()
            self.view, self.state = view, state
            self.image_set = False
            self.painted_at: float | None = None
            self.on_painted = None
            view.installEventFilter(self)
            decoder.decoded.connect(self._on_decoded)  # connected after the panel's slot: runs after set_image

        def arm(self, on_painted) -> None:
            self.image_set, self.painted_at, self.on_painted = False, None, on_painted

        def _on_decoded(self, z, _image) -> None:
            if np.array_equal(z, self.state.z):
                self.image_set = True

        def eventFilter(self, obj, event) -> bool:
            if obj is self.view and event.type() == QEvent.Type.Paint and self.image_set and self.painted_at is None:
                self.view.paintEvent(event)  # the view's own painting, so the stamp is after it
                self.painted_at = time.perf_counter()
                if self.on_painted is not None:
                    self.on_painted()
                return True
            return False

    return PaintProbe


def measure(path: Path, moves: int, warmup: int = 10) -> tuple[list[float], list[float], str]:
    import torch
    from PySide6.QtCore import QEventLoop, QTimer

    with shown_window(str(path)) as window:
        panel, state = window.explore, window.state
        if not wait_for(lambda: panel.last_decoded_z is not None, 60) or not wait_for(no_jobs_running, 180):
            raise RuntimeError("the window did not settle (first image or dataset statistics)")
        probe = _probe_class()(panel.image_view, window.decoder, state)
        model = state.model
        dim = state.latent_dim
        rng = np.random.default_rng(0)
        gui, bare = [], []
        loop = QEventLoop()
        for i in range(warmup + moves):
            slider = panel.sliders.slider(i % dim)
            value = slider.value()
            while value == slider.value():
                value = int(rng.integers(slider.minimum(), slider.maximum() + 1))
            probe.arm(loop.quit)
            watchdog = QTimer()
            watchdog.setSingleShot(True)
            watchdog.timeout.connect(loop.quit)
            watchdog.start(10_000)
            t0 = time.perf_counter()
            slider.setValue(value)
            if probe.painted_at is None:
                loop.exec()
            watchdog.stop()
            if probe.painted_at is None:
                raise RuntimeError(f"move {i}: no image painted within 10 s")
            latency = probe.painted_at - t0
            z = torch.as_tensor(state.z.copy()).reshape(1, -1)
            t0 = time.perf_counter()
            with torch.no_grad():
                model.decode(z)
            decode = time.perf_counter() - t0
            if i >= warmup:
                gui.append(latency)
                bare.append(decode)
        size = panel.image_view.image_rect()
        where = f"{size.width()}x{size.height()} px"
        return gui, bare, where


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    rows = []
    moves = 60 if quick else 200
    for name, path in models_of(paths, ("vae", "gan")).items():
        gui, bare, where = measure(path, moves)
        p95 = percentile(gui, 95)
        rows.append(
            Row(
                "Slider to pixels",
                f"{name} ({len(gui)} moves, image drawn at {where})",
                p50_p95(gui),
                p50_p95(bare),
                f"{percentile(gui, 50) / percentile(bare, 50):.1f}x decode (p50)",
                "p95 <= 16 ms",
                p95 <= TARGET_P95,
            )
        )
    return rows


if __name__ == "__main__":
    raise SystemExit(module_main("slider", run))
