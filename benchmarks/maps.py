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

from pathlib import Path

from . import (
    Row,
    decode_seconds,
    models_of,
    module_main,
    no_jobs_running,
    p50_p95,
    paint_probe,
    percentile,
    shown_window,
    wait_for,
)

TARGET = 0.050
RESOLUTION = 16


def measure(path: Path, maps: int, warmup: int = 3) -> tuple[list[float], list[float]]:
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
        viewport = panel.plot.viewport()
        probe = paint_probe(viewport, panel.plot.viewportEvent)  # QGraphicsView paints its scene there
        shown = {"grid": None}
        show = panel._show_tiles

        def show_tiles(tiles, images):  # the panel looks the method up when its job returns
            show(tiles, images)
            shown["grid"] = tiles.grid
            probe.ready = True

        panel._show_tiles = show_tiles
        model = window.state.model
        gui, bare = [], []
        for i in range(warmup + maps):
            with signals_blocked(panel.span_spin):
                panel.span_spin.setValue(2.0 + 0.01 * (i % 50) + (0.5 if i % 2 else 0.0))
            try:
                latency = probe.time(panel.refresh, 30)
            except RuntimeError as error:
                raise RuntimeError(f"map {i}: the tiles: {error}") from None
            decode = decode_seconds(model, shown["grid"])
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
