"""2-D maps: 16 x 16 and 32 x 32 tile maps decoded and shown in the real Maps panel.

What is measured, per map: from `MapPanel.refresh()` (what the panel's debounce timer, a tab switch
or a change of z calls; the 30 ms debounce of typed values is left out) with a new span, so the key
differs and every tile is decoded again: plane -> grid -> decode job in a worker thread, chunk by
chunk of tile rows from the middle out (`maps.chunk_rows`), each chunk queued back and painted into the
mosaic -> until the end of the plot viewport's next paint after the LAST chunk ("map") or after the
FIRST chunk ("first tiles"; maps alternate between the two). An event filter runs the viewport's own
painting, where pyqtgraph renders the image, and stamps the time after it. The decode is the panel's
own choice (`fast_decode.pick_decoder`, measured when the Maps tab first decodes; named in the row).
The panel is the "Maps" tab of `explorer.app.build_window`, shown, with the encoded-dataset scatter
already computed (a one-off per checkpoint) so that it does not overlap the measurement.

Baseline, interleaved map by map: one batched PyTorch `model.decode` of the same latents under
no_grad on the GUI thread (what the map cost before: one eager decode of the whole grid).
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

TARGETS = {16: 0.050, 32: 0.200}  # the whole map, p50
FIRST_TILES_TARGET = 0.016  # the first chunk on screen: one frame


def measure(path: Path, maps: int, resolution: int, warmup: int = 3) -> dict:
    from superqt.utils import signals_blocked

    with shown_window(str(path)) as window:
        panel = window.extra_panels["maps"]
        window.show_tab("Maps")
        with signals_blocked(panel.res_spin):
            panel.res_spin.setValue(resolution)
        panel.refresh()
        encoded = panel.encoded
        if not wait_for(lambda: panel.tiles is not None and panel.tiles.resolution == resolution, 120):
            raise RuntimeError("the first map never appeared")
        if not wait_for(
            lambda: no_jobs_running() and (encoded.data is not None or encoded.error or window.state.kind != "vae"), 300
        ):
            raise RuntimeError("the encoded dataset never arrived")
        if not wait_for(lambda: panel.decoder is not None, 120):
            raise RuntimeError("the panel never picked its decoder")
        viewport = panel.plot.viewport()
        probe = paint_probe(viewport, panel.plot.viewportEvent)  # QGraphicsView paints its scene there
        wants = {"first": False, "drawn": 0}

        def chunk_drawn(n: int) -> None:  # the chunk is set in the image: the next paint shows it
            wants["drawn"] += n
            if wants["first"] or wants["drawn"] == resolution * resolution:
                probe.ready = True

        panel.tilesDrawn.connect(chunk_drawn)
        model = window.state.model
        full, first, bare = [], [], []
        for i in range(warmup + 2 * maps):
            wants["first"], wants["drawn"] = i % 2 == 1, 0
            with signals_blocked(panel.span_spin):
                panel.span_spin.setValue(2.0 + 0.01 * (i % 50) + (0.5 if i % 4 < 2 else 0.0))
            try:
                latency = probe.time(panel.refresh, 30)
            except RuntimeError as error:
                raise RuntimeError(f"map {i}: the tiles: {error}") from None
            if not wait_for(lambda: not panel.busy(), 60):  # the rest of a first-tiles map, before the next
                raise RuntimeError(f"map {i} never finished")
            if i >= warmup:
                (first if wants["first"] else full).append(latency)
                if not wants["first"]:
                    bare.append(decode_seconds(model, panel.tiles.grid))
        return {"map": full, "first": first, "bare": bare, "decoder": panel.decoder.name}


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    rows = []
    maps = 6 if quick else 15
    for resolution in (16, 32):
        for name, path in models_of(paths, ("vae", "gan", "stylegan")).items():
            m = measure(path, maps, resolution)
            gui, bare, first = m["map"], m["bare"], m["first"]
            target = TARGETS[resolution]
            rows.append(
                Row(
                    f"2-D map {resolution}x{resolution}",
                    f"{name}, {m['decoder']} ({len(gui)} maps)",
                    p50_p95(gui),
                    p50_p95(bare) + f" (PyTorch decode of {resolution * resolution})",
                    f"{percentile(bare, 50) / percentile(gui, 50):.2f}x faster than the decode (p50)",
                    f"p50 <= {target * 1000:.0f} ms",
                    percentile(gui, 50) <= target,
                )
            )
            if resolution == 16:
                rows.append(
                    Row(
                        "2-D map first tiles",
                        f"{name}, {m['decoder']} ({len(first)} maps, 16x16: the middle row)",
                        p50_p95(first),
                        p50_p95(gui) + " (the whole map)",
                        f"{percentile(first, 50) / percentile(gui, 50):.2f}x the whole map (p50)",
                        f"p50 <= {FIRST_TILES_TARGET * 1000:.0f} ms",
                        percentile(first, 50) <= FIRST_TILES_TARGET,
                    )
                )
    return rows


if __name__ == "__main__":
    raise SystemExit(module_main("maps", run))
