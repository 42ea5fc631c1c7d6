"""GUI stall: the longest the event loop cannot run while the Train panel trains, and while the latent
tabs are used with a map decoding behind them.

A 1 ms QTimer (precise) in the GUI thread records the time between its ticks; the longest gap is the
longest time nothing else (input, paint) could have run either. Measured for a few seconds with the
Train tab of `explorer.app.build_window` showing and nothing running (the baseline), then for as
long again from `TrainingPanel.start()` of a VAE run (latent 16, batch 128) on the data the app
would load (MNIST when it is where tools/train_bundled.sh finds it, else shapes 28 x 28): data
loading, model building and training steps with the panel's live curves, its sample grid every 100
steps and its progress redraws. The window first finishes its own start-up jobs (the open VAE's
dataset statistics), so their imports do not fall into either measurement.

The latent tabs (`latent_tab_rows`): the window opened on a GAN (decodes are slowest there; the bundled
dcgan-faces when it is present), a 32 x 32 tile map started in the Maps tab (a change of span, so all
1024 tiles are decoded again in a worker), then, while that map still decodes, the tab under test shown
and driven through its widgets:
- Arithmetic: a saved vector applied with the strength slider dragged back and forth, one move every
  16 ms (each move sets z, and the tab shows decode(z) in its apply box);
- Interpolate: every 100 ms a random keyframe added, or the last one removed, in turn (keyframe
  thumbnails), and the frame count changed (the path is decoded again);
- Bookmarks: every 100 ms a random z bookmarked, the oldest bookmark removed past six (thumbnails).
The probe runs from the switch to the tab until the map's job ends (at most 1.5 s), again with a new
map until `seconds` of probing are gathered; the baseline is the same probe idle on the same tab.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import (
    MNIST_ROOT,
    Row,
    module_main,
    no_jobs_running,
    percentile,
    settle,
    shown_window,
    wait_for,
)

TARGET_STALL = 0.050
BATCH = 128
MAP_RESOLUTION = 32
CHUNK_S = 1.5  # the longest one probe window waits for its map


class _TickProbe:
    """A 1 ms precise timer in the GUI thread; `gaps` are the times between consecutive ticks, and
    `ticks` the time of each tick (perf_counter)."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)
        self.last: float | None = None
        self.gaps: list[float] = []
        self.ticks: list[float] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.gaps.append(now - self.last)
            self.ticks.append(now)
        self.last = now

    def run_for(self, seconds: float) -> list[float]:
        self.gaps, self.ticks, self.last = [], [], None
        self.timer.start()
        settle(seconds)
        self.timer.stop()
        return self.gaps


def _stall_row(benchmark: str, case: str, busy: list[float], idle: list[float]) -> Row:
    """The longest gap (and p99) while busy against the same probe idle; the target is 50 ms."""
    return Row(
        benchmark,
        case,
        f"longest gap {max(busy) * 1e3:.1f} ms (p99 {percentile(busy, 99) * 1e3:.1f} ms)",
        f"idle: longest {max(idle) * 1e3:.1f} ms (p99 {percentile(idle, 99) * 1e3:.1f} ms)",
        f"{max(busy) / max(idle):.1f}x idle",
        "longest <= 50 ms",
        max(busy) <= TARGET_STALL,
    )


def _train_and_probe(panel, probe: _TickProbe, seconds: float, folder: Path, options: dict) -> tuple[list[float], int]:
    panel.configure(
        model="vae",
        **options,
        latent_dim=16,
        batch_size=BATCH,
        max_steps=100_000,
        checkpoint_path=str(folder / f"run-{time.monotonic_ns()}.safetensors"),
    )
    if panel.start() is None:
        raise RuntimeError(f"the training panel did not start: {panel.banner_text()}")
    gaps = probe.run_for(seconds)
    steps = panel.step
    panel.stop()
    if not wait_for(lambda: panel.phase == "idle", 120):
        raise RuntimeError("the training run did not stop")
    return gaps, steps


def stall_rows(quick: bool) -> list[Row]:
    """Two runs in one fresh window (no checkpoint named): the session's first training run, on the
    procedural shapes, then one on MNIST (shapes again without the files)."""
    seconds = 4.0 if quick else 10.0
    folder = Path(tempfile.mkdtemp(prefix="latent-explorer-bench-train-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with shown_window() as window:  # opens the first bundled checkpoint, if any
        panel = window.extra_panels["training"]
        window.show_tab("Train")
        wait_for(no_jobs_running, 180)
        settle(0.5)
        probe = _TickProbe()
        idle = probe.run_for(seconds)
        fresh = "torch._dynamo" not in sys.modules  # torch.optim imports it on first use: seconds, in the worker
        shapes = {"dataset": "shapes", "image_size": 28, "channels": 1}
        mnist = (MNIST_ROOT / "MNIST" / "raw").is_dir()
        runs = [
            ("first run of the session" + (" (imports torch._dynamo)" if fresh else ""), "shapes 28x28", shapes),
            (
                "second run",
                "MNIST" if mnist else "shapes 28x28",
                {"dataset": "mnist", "root": str(MNIST_ROOT)} if mnist else shapes,
            ),
        ]
        rows = []
        for what, dataset, options in runs:
            busy, steps = _train_and_probe(panel, probe, seconds, folder, options)
            settle(0.5)
            case = f"Train panel, VAE on {dataset}, {what}: {seconds:.0f} s from start ({steps} steps), 1 ms timer"
            rows.append(_stall_row("GUI stall while training", case, busy, idle))
        return rows


def _latent_checkpoint(paths: dict[str, Path]) -> tuple[str, Path]:
    from . import models_of

    gans = models_of(paths, ("gan",))
    if "dcgan-faces" in gans:
        return "dcgan-faces", gans["dcgan-faces"]
    if gans:
        return next(iter(gans.items()))
    return next(iter(models_of(paths, ("vae",)).items()))


class _Driver:
    """Calls `step(k)` every `interval_ms` on the GUI thread while started (k counts the calls)."""

    def __init__(self, step, interval_ms: int) -> None:
        from PySide6.QtCore import QTimer

        self.step, self.count = step, 0
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)

    def tick(self) -> None:
        self.step(self.count)
        self.count += 1


def _drivers(window) -> dict[str, tuple[str, str, _Driver, object, object]]:
    """Scenario -> (the tab shown, what is done, driver, before(), after()) for the latent-tab scenarios."""
    import numpy as np

    state = window.state
    arithmetic = window.extra_panels["arithmetic"]
    interpolation = window.extra_panels["interpolation"]
    slider = arithmetic.strength_slider
    sweep = [int(v) for v in np.round(150 * np.sin(np.linspace(0, 2 * np.pi, 60, endpoint=False)))]

    def arithmetic_before() -> None:
        rng = np.random.default_rng(0)
        state.set_vector("bench", rng.standard_normal(state.latent_dim).astype(np.float32))
        arithmetic.vector_combo.setCurrentText("bench")
        slider.setSliderDown(True)

    def interpolate_step(k: int) -> None:
        if k % 2 == 0:
            if len(interpolation.keyframes) < 6:
                interpolation.add_random_button.click()
            else:
                interpolation.key_list.setCurrentRow(len(interpolation.keyframes) - 1)
                interpolation.remove_button.click()
        interpolation.frames_spin.setValue(16 + k % 8)

    def bookmark_step(k: int) -> None:
        state.randomize(1000 + k)
        window.bookmark_action.trigger()
        if len(state.bookmarks) > 6:
            state.remove_bookmark(0)

    return {
        "Arithmetic": (
            "Arithmetic",
            "strength slider dragged, a move every 16 ms",
            _Driver(lambda k: slider.setValue(sweep[k % len(sweep)]), 16),
            arithmetic_before,
            lambda: slider.setSliderDown(False),
        ),
        "Interpolate": (
            "Interpolate",
            "a keyframe added or removed and the frame count changed every 100 ms",
            _Driver(interpolate_step, 100),
            lambda: None,
            lambda: None,
        ),
        "Bookmarks strip": (
            "Explore",
            "a random z bookmarked every 100 ms (six kept)",
            _Driver(bookmark_step, 100),
            lambda: None,
            lambda: None,
        ),
    }


def _probe_during_maps(
    window, title: str, driver: _Driver, probe: _TickProbe, seconds: float
) -> tuple[list[float], int, float]:
    """Probe `title` driven by `driver` while the Maps tab's map decodes, in windows of at most CHUNK_S
    (a new map each), until `seconds` of probing; returns the gaps, the number of maps and the longest
    display of finished tiles. The gaps holding the map's own display of its tiles (what benchmarks.maps
    measures) are left out."""
    maps = window.extra_panels["maps"]
    shown: list[tuple[float, float]] = []  # (start, end) of each MapPanel._draw_chunk (a chunk of tiles put on screen)
    show_tiles = maps._draw_chunk

    def timed_show_tiles(*args) -> None:  # the panel looks the method up when its job returns
        t0 = time.perf_counter()
        show_tiles(*args)
        shown.append((t0, time.perf_counter()))

    maps._draw_chunk = timed_show_tiles
    gaps, probed, count = [], 0.0, 0
    while probed < seconds:
        window.show_tab("Maps")
        maps.span_spin.setValue(2.75 if maps.span_spin.value() == 2.5 else 2.5)  # a new map: every tile decoded again
        if not wait_for(maps.busy, 30):
            raise RuntimeError("the map did not start decoding")
        window.show_tab(title)
        settle(0.05)  # the tab's first paint and its catching up on show are not what is measured
        probe.gaps, probe.ticks, probe.last = [], [], None
        probe.timer.start()
        start = time.perf_counter()
        driver.tick()  # at once, and then every interval: a map now decodes in less than one interval
        driver.timer.start()
        wait_for(lambda t0=start: not maps.busy() or time.perf_counter() - t0 >= CHUNK_S, CHUNK_S + 5)
        driver.timer.stop()
        probe.timer.stop()
        probed += time.perf_counter() - start
        gaps += [
            gap
            for gap, end in zip(probe.gaps, probe.ticks, strict=True)
            if not any(end - gap <= b and a <= end for a, b in shown)
        ]
        count += 1
    del maps._draw_chunk
    return gaps, count, max((b - a for a, b in shown), default=0.0)


def latent_tab_rows(paths: dict[str, Path], quick: bool) -> list[Row]:
    """Arithmetic, Interpolate and the Bookmarks strip used while a 32 x 32 map decodes."""
    seconds = 4.0 if quick else 10.0
    name, path = _latent_checkpoint(paths)
    with shown_window(str(path)) as window:
        maps = window.extra_panels["maps"]
        maps.scatter_check.setChecked(False)
        maps.res_spin.setValue(MAP_RESOLUTION)
        probe = _TickProbe()
        rows = []
        for title, (tab, what, driver, before, after) in _drivers(window).items():
            window.show_tab(tab)
            wait_for(no_jobs_running, 180)
            settle(0.5)
            idle = probe.run_for(min(seconds, 4.0))
            before()
            busy, count, display = _probe_during_maps(window, tab, driver, probe, seconds)
            after()
            wait_for(no_jobs_running, 60)
            case = (
                f"{title} on {name}: {what}, while a {MAP_RESOLUTION}x{MAP_RESOLUTION} map decodes "
                f"({count} maps, {driver.count} actions), 1 ms timer; the map's own display of its "
                f"tiles left out (longest {display * 1e3:.0f} ms)"
            )
            rows.append(_stall_row("GUI stall, latent tabs", case, busy, idle))
        return rows


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    return stall_rows(quick) + latent_tab_rows(paths, quick)


if __name__ == "__main__":
    raise SystemExit(module_main("stall", run))
