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

Under load (`loaded_rows`, the thread policy of explorer.workers at work): the same moves on the slowest
model (dcgan-faces when bundled) while the Train tab trains a VAE (latent 16, batch 128, on the shapes)
and a 32 x 32 map decodes behind the Explore tab (a new map is started whenever one finishes: the
map a user left decoding); the baseline is the same moves in the same window before the load starts.
"""

from __future__ import annotations

import shutil
import tempfile
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
MAP_RESOLUTION = 32  # the maps decoding under load


class _Mover:
    """Moves the Explore tab's sliders of a shown, settled window one at a time and times each move."""

    def __init__(self, window, seed: int = 0) -> None:
        self.panel, self.state = window.explore, window.state
        if not wait_for(lambda: self.panel.last_decoded_z is not None, 60) or not wait_for(no_jobs_running, 180):
            raise RuntimeError("the window did not settle (first image or dataset statistics)")
        self.probe = paint_probe(self.panel.image_view, self.panel.image_view.paintEvent)
        # Connected after the panel's slot, so it runs after set_image: the image of the z asked for is set.
        window.decoder.decoded.connect(
            lambda z, _image: setattr(self.probe, "ready", self.probe.ready or np.array_equal(z, self.state.z))
        )
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def moves(self, n: int, warmup: int = 10, between=None) -> tuple[list[float], list[float]]:
        """Latencies of n moves (after `warmup` untimed ones) and the bare decode of each move's z;
        `between()` runs before each move."""
        gui, bare = [], []
        for i in range(warmup + n):
            if between is not None:
                between()
            slider = self.panel.sliders.slider(self.count % self.state.latent_dim)
            self.count += 1
            value = slider.value()
            while value == slider.value():
                value = int(self.rng.integers(slider.minimum(), slider.maximum() + 1))
            try:
                latency = self.probe.time(lambda s=slider, v=value: s.setValue(v), 10)
            except RuntimeError as error:
                raise RuntimeError(f"move {i}: {error}") from None
            decode = decode_seconds(self.state.model, self.state.z.reshape(1, -1))
            if i >= warmup:
                gui.append(latency)
                bare.append(decode)
        return gui, bare

    def where(self) -> str:
        size = self.panel.image_view.image_rect()
        return f"{size.width()}x{size.height()} px"


def measure(path: Path, moves: int, warmup: int = 10) -> tuple[list[float], list[float], str]:
    with shown_window(str(path)) as window:
        mover = _Mover(window)
        gui, bare = mover.moves(moves, warmup)
        return gui, bare, mover.where()


def measure_loaded(path: Path, moves: int) -> tuple[list[float], list[float], int, int]:
    """Slider moves idle, then with a training run and maps decoding; returns both latency lists, the
    training steps and the maps started during the loaded moves."""
    folder = Path(tempfile.mkdtemp(prefix="latent-explorer-bench-slider-"))
    try:
        with shown_window(str(path)) as window:
            mover = _Mover(window)
            idle, _ = mover.moves(moves)
            maps, training = window.extra_panels["maps"], window.extra_panels["training"]
            maps.scatter_check.setChecked(False)
            maps.res_spin.setValue(MAP_RESOLUTION)
            training.configure(
                model="vae",
                dataset="shapes",
                image_size=28,
                channels=1,
                latent_dim=16,
                batch_size=128,
                max_steps=100_000,
                checkpoint_path=str(folder / "run.safetensors"),
            )
            if training.start() is None:
                raise RuntimeError(f"the training panel did not start: {training.banner_text()}")
            if not wait_for(lambda: training.step > 0, 120):
                raise RuntimeError("the training run took no step")
            started = [0]

            def keep_a_map_decoding() -> None:
                if not maps.busy():  # as if the user had started a map and come back to Explore
                    maps.span_spin.setValue(2.75 if maps.span_spin.value() == 2.5 else 2.5)
                    maps.update_view()  # the Maps tab is hidden: start its map as it would when shown
                    started[0] += 1

            steps = training.step
            loaded, _ = mover.moves(moves, between=keep_a_map_decoding)
            steps = training.step - steps
            training.stop()
            if not wait_for(lambda: training.phase == "idle", 120):
                raise RuntimeError("the training run did not stop")
            return loaded, idle, steps, started[0]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    rows = []
    moves = 60 if quick else 200
    for name, path in models_of(paths, ("vae", "gan", "stylegan")).items():
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
    return rows + loaded_rows(paths, quick)


def loaded_rows(paths: dict[str, Path], quick: bool) -> list[Row]:
    models = models_of(paths, ("vae", "gan"))
    name = "dcgan-faces" if "dcgan-faces" in models else next(iter(models))
    moves = 60 if quick else 200
    loaded, idle, steps, maps = measure_loaded(models[name], moves)
    return [
        Row(
            "Slider to pixels under load",
            f"{name} ({len(loaded)} moves) while the Train tab trains a VAE ({steps} steps meanwhile) and "
            f"{maps} maps of {MAP_RESOLUTION}x{MAP_RESOLUTION} decode behind the tab",
            p50_p95(loaded),
            p50_p95(idle) + " (the same moves, idle)",
            f"{percentile(loaded, 95) / percentile(idle, 95):.1f}x idle (p95)",
            "p95 <= 16 ms",
            percentile(loaded, 95) <= TARGET_P95,
        )
    ]


if __name__ == "__main__":
    raise SystemExit(module_main("slider", run))
