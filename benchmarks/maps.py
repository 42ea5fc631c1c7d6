"""2-D map: a 16 x 16 tile map decoded and shown in the real Maps panel.

What is measured, per map: from `MapPanel.refresh()` (what the panel's debounce timer, a tab switch
or a change of z calls; the 30 ms debounce of typed values is left out) with a new span, so the key
differs and all 256 tiles are decoded again: plane -> grid -> decode job in a worker thread
(`latent.decode_latents`, batches of 64) -> result queued back -> mosaic, flip, `ImageItem.setImage`
-> until the end of the plot viewport's next paint after the tiles were set (an event filter runs
the view's own viewport painting, where pyqtgraph renders the image, and stamps the time after it).
The panel is the "Maps" tab of `explorer.app.build_window`, shown, with the encoded-dataset scatter
already computed (a one-off per checkpoint) so that it does not overlap the measurement.

Baseline, interleaved map by map: one batched `model.decode` of the same 256 latents under no_grad
on the GUI thread.
"""

from __future__ import annotations

import time
from pathlib import Path

from . import Row, models_of, module_main, no_jobs_running, p50_p95, percentile, shown_window, wait_for

TARGET = 0.050
RESOLUTION = 16


def _probe_class():
    from PySide6.QtCore import QEvent, QObject

    class TilesProbe(QObject):
        def __init__(self, panel) -> None:
            super().__init__()
            self.panel = panel
            self.tiles_set = False
            self.painted_at: float | None = None
            self.on_painted = None
            self.grid = None
            show = panel._show_tiles

            def show_tiles(tiles, images):  # the panel looks the method up when its job returns
                show(tiles, images)
                self.grid = tiles.grid
                self.tiles_set = True

            panel._show_tiles = show_tiles
            panel.plot.viewport().installEventFilter(self)

        def arm(self, on_painted) -> None:
            self.tiles_set, self.painted_at, self.on_painted, self.grid = False, None, on_painted, None

        def eventFilter(self, obj, event) -> bool:
            if event.type() == QEvent.Type.Paint and self.tiles_set and self.painted_at is None:
                self.panel.plot.viewportEvent(event)  # QGraphicsView paints its scene here
                self.painted_at = time.perf_counter()
                if self.on_painted is not None:
                    self.on_painted()
                return True
            return False

    return TilesProbe


def measure(path: Path, maps: int, warmup: int = 3) -> tuple[list[float], list[float]]:
    import torch
    from PySide6.QtCore import QEventLoop, QTimer
    from superqt.utils import signals_blocked

    with shown_window(str(path)) as window:
        panel = window.extra_panels["maps"]
        window.tabs.setCurrentIndex(next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == "Maps"))
        with signals_blocked(panel.res_spin):
            panel.res_spin.setValue(RESOLUTION)
        panel.refresh()
        encoded = panel.encoded
        if not wait_for(lambda: panel.tiles is not None and panel.tiles.resolution == RESOLUTION, 120):
            raise RuntimeError("the first map never appeared")
        if not wait_for(
            lambda: no_jobs_running() and (encoded.data is not None or encoded.error or window.state.kind != "vae"), 300
        ):
            raise RuntimeError("the encoded dataset never arrived")
        probe = _probe_class()(panel)
        model = window.state.model
        loop = QEventLoop()
        gui, bare = [], []
        for i in range(warmup + maps):
            with signals_blocked(panel.span_spin):
                panel.span_spin.setValue(2.0 + 0.01 * (i % 50) + (0.5 if i % 2 else 0.0))
            probe.arm(loop.quit)
            watchdog = QTimer()
            watchdog.setSingleShot(True)
            watchdog.timeout.connect(loop.quit)
            watchdog.start(30_000)
            t0 = time.perf_counter()
            panel.refresh()
            if probe.painted_at is None:
                loop.exec()
            watchdog.stop()
            if probe.painted_at is None:
                raise RuntimeError(f"map {i}: the tiles were not painted within 30 s")
            latency = probe.painted_at - t0
            z = torch.as_tensor(probe.grid)
            t0 = time.perf_counter()
            with torch.no_grad():
                model.decode(z)
            decode = time.perf_counter() - t0
            if i >= warmup:
                gui.append(latency)
                bare.append(decode)
        return gui, bare


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    rows = []
    maps = 10 if quick else 30
    for name, path in models_of(paths, ("vae", "gan")).items():
        gui, bare = measure(path, maps)
        rows.append(
            Row(
                "2-D map 16x16",
                f"{name} ({len(gui)} maps)",
                p50_p95(gui),
                p50_p95(bare) + " (batched decode of 256)",
                f"{percentile(gui, 50) / percentile(bare, 50):.2f}x decode (p50)",
                "p50 <= 50 ms",
                percentile(gui, 50) <= TARGET,
            )
        )
    return rows


if __name__ == "__main__":
    raise SystemExit(module_main("maps", run))
