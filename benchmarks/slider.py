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

from pathlib import Path

import numpy as np

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

TARGET_P95 = 0.016


def measure(path: Path, moves: int, warmup: int = 10) -> tuple[list[float], list[float], str]:

    with shown_window(str(path)) as window:
        panel, state = window.explore, window.state
        if not wait_for(lambda: panel.last_decoded_z is not None, 60) or not wait_for(no_jobs_running, 180):
            raise RuntimeError("the window did not settle (first image or dataset statistics)")
        probe = paint_probe(panel.image_view, panel.image_view.paintEvent)
        # Connected after the panel's slot, so it runs after set_image: the image of the z asked for is set.
        window.decoder.decoded.connect(
            lambda z, _image: setattr(probe, "ready", probe.ready or np.array_equal(z, state.z))
        )
        model = state.model
        dim = state.latent_dim
        rng = np.random.default_rng(0)
        gui, bare = [], []
        for i in range(warmup + moves):
            slider = panel.sliders.slider(i % dim)
            value = slider.value()
            while value == slider.value():
                value = int(rng.integers(slider.minimum(), slider.maximum() + 1))
            try:
                latency = probe.time(lambda s=slider, v=value: s.setValue(v), 10)
            except RuntimeError as error:
                raise RuntimeError(f"move {i}: {error}") from None
            decode = decode_seconds(model, state.z.reshape(1, -1))
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
