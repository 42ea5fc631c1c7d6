"""Latent Explorer's benchmarks: `python -m benchmarks [--quick] [--only NAME ...] [--write]`.

Each module measures one thing the user feels, always next to a baseline measured in the same run
(so a busy, shared machine shows up in both) and prints rows of one Markdown table:

- `slider`: latent slider moved -> new image painted in the real main window; baseline model.decode.
- `maps`: a 16 x 16 tile map decoded and painted in the real Maps panel; baseline one batched decode.
- `onnx`: the slider and map benchmarks on a model exported with `export --onnx`, beside the same
  checkpoint in PyTorch; and onnxruntime vs the torch interpreter of the graph vs the PyTorch module.
- `pixelcnn`: naive vs cached PixelCNN sampling of a 28 x 28 binarized image, batch 1 and 16.
- `training`: images/s of the app's Trainer vs a plain PyTorch loop of the same model and batch.
- `stall`: the longest GUI event-loop stall while the Train panel trains; baseline the same probe idle.
- `startup`: `python -m explorer CHECKPOINT` launched -> first decoded image painted; baseline
  `python -c "import torch, PySide6.QtWidgets"`.
- `perform`: frames per second of a walk shown live in the presentation window (baseline: bare decodes
  per second), a 10-second 512 px MP4 rendered (baseline: decoding its latents), and the longest GUI
  stall under a flood of 10,000 OSC messages per second (baseline: idle).

Every module runs on its own too (`python -m benchmarks.slider`) and, under `python -m benchmarks`,
in its own process, so no Qt or torch state leaks from one to the next. They are benchmarks, not
tests: nothing fails when a target is missed; the table says so.

Models: the bundled checkpoints (checkpoints/*.safetensors), and for each MNIST-sized configuration
of tools/train_bundled.sh that none of them has (VAE latent 2 and 16, DCGAN latent 64, PixelCNN of
the default size), an untrained model of it (untrained weights run at the same speed).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "checkpoints"
MNIST_ROOT = REPO.parent / "shared" / "datasets"  # where tools/train_bundled.sh finds MNIST


@dataclass
class Row:
    """One line of the results table; the cells are formatted text, with their units."""

    benchmark: str
    case: str
    measured: str  # e.g. "p50 4.1 / p95 6.0 ms"
    baseline: str  # what the baseline measured, same format
    ratio: str  # measured / baseline (or baseline / measured for speed-ups; the text says which)
    target: str = ""
    met: bool | None = None  # None: no target for this row

    def cells(self) -> list[str]:
        status = "" if self.met is None else ("met" if self.met else "**missed**")
        return [self.benchmark, self.case, self.measured, self.baseline, self.ratio, self.target, status]


HEADER = ["Benchmark", "Case", "Measured", "Baseline (same run)", "Ratio", "Target", "Status"]


# --- timing helpers ---------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between order statistics (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    value = seconds * 1e3
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def p50_p95(seconds: list[float]) -> str:
    return f"p50 {ms(percentile(seconds, 50))} / p95 {ms(percentile(seconds, 95))}"


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# --- threads -------------------------------------------------------------------------------------------
THREADS_ENV = "LATENT_EXPLORER_BENCH_THREADS"


def default_threads() -> int:
    """0, torch's default (one thread per core: what the app itself runs with), unless
    LATENT_EXPLORER_BENCH_THREADS says otherwise. Run the suite on a quiet machine: on one shared with
    other work, every op waits for the busiest core and the figures measure the neighbours more than the
    code; `--threads 1` (or the variable) is then the steadier, if slower, choice."""
    return int(os.environ.get(THREADS_ENV, "0"))


def set_threads(n: int) -> None:
    """Use n torch threads here (0: torch's default) and in child processes (OMP_NUM_THREADS), and the
    app's allocator policy (engines.allocator), so the figures are the app's."""
    import torch

    from engines.allocator import retain_freed_memory

    retain_freed_memory()

    if n > 0:
        torch.set_num_threads(n)
        os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ[THREADS_ENV] = str(n)


# --- the machine ------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    import PySide6

    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "load": load,
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "pyside6": PySide6.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)",
    }


# --- models -------------------------------------------------------------------------------------------
# The bundled configurations (tools/train_bundled.sh), MNIST-sized, default widths.
REPRESENTATIVE = {
    "vae-2d": ("vae", {"latent_dim": 2}),
    "vae-16d": ("vae", {"latent_dim": 16}),
    "dcgan-64d": ("gan", {"latent_dim": 64}),
    "pixelcnn": ("pixelcnn", {"levels": 2}),  # hidden 64, 10 gated layers: the defaults
}


def dataset_spec() -> dict:
    """MNIST where tools/train_bundled.sh finds it (the app then computes its dataset statistics as
    it would for the bundled models), else the procedural shapes at 28 x 28 x 1 (no files)."""
    if (MNIST_ROOT / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        return {"name": "mnist", "root": str(MNIST_ROOT), "image_size": 28, "channels": 1}
    return {"name": "shapes", "image_size": 28, "channels": 1}


def _signature(kind: str, config: dict) -> tuple:
    """What makes two checkpoints the same benchmark case: kind, latent size (or levels), image shape."""
    return (
        kind,
        config.get("latent_dim", config.get("levels")),
        config.get("image_size", 28),
        config.get("channels", 1),
    )


def make_models(folder: Path, skip: set[tuple] = frozenset()) -> dict[str, Path]:
    """Untrained models of the representative configurations not in `skip` (signatures), written as
    checkpoints in `folder`."""
    from engines.checkpoint import save_checkpoint
    from engines.training.trainer import create_model

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (kind, config) in REPRESENTATIVE.items():
        config = {"image_size": 28, "channels": 1, **config}
        if _signature(kind, config) in skip:
            continue
        path = folder / f"{name}.safetensors"
        if not path.is_file():
            model = create_model(kind, config, seed=0).eval()
            spec = dataset_spec()
            if kind == "pixelcnn":
                spec = {**spec, "binarize": "threshold"}
            save_checkpoint(path, model, dataset=spec)
        out[name] = path
    return out


def checkpoints_in(folder: Path) -> dict[str, Path]:
    """name -> path of the generative-model checkpoints in `folder`."""
    from engines.checkpoint import CheckpointError, read_metadata

    found = {}
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            meta = read_metadata(path)
        except CheckpointError:
            continue
        if meta["kind"] in ("vae", "gan", "stylegan", "pixelcnn"):
            found[path.stem] = path
    return found


def is_bundled(path: Path) -> bool:
    return path.resolve().parent == BUNDLED.resolve()


def find_models(folder: Path | None = None) -> dict[str, Path]:
    """name -> checkpoint. The checkpoints in `folder` if it has any; else `folder` (a new temporary
    one when None) is filled with links to the bundled checkpoints and, for each representative
    configuration that no bundled checkpoint has, an untrained model of it."""
    from engines.checkpoint import read_metadata

    found = checkpoints_in(folder) if folder is not None else {}
    if found:
        return found
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="latent-explorer-bench-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    covered = set()
    for path in checkpoints_in(BUNDLED).values():
        meta = read_metadata(path)
        covered.add(_signature(meta["kind"], meta["config"]))
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    make_models(folder, covered)
    return checkpoints_in(folder)


def models_of(paths: dict[str, Path], kinds: tuple[str, ...]) -> dict[str, Path]:
    from engines.checkpoint import read_metadata

    return {name: p for name, p in paths.items() if read_metadata(p)["kind"] in kinds}


# --- Qt ------------------------------------------------------------------------------------------------
def qt_app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([sys.argv[0]])


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, poll_ms: int = 5) -> bool:
    """Run the event loop (sleeping between polls, not spinning) until condition() or timeout."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.perf_counter() + timeout
    loop = QEventLoop()
    while not condition():
        if time.perf_counter() > deadline:
            return False
        QTimer.singleShot(poll_ms, loop.quit)
        loop.exec()
    return True


def settle(seconds: float) -> None:
    """Let the event loop run for a while (queued signals, paints, late results)."""
    wait_for(lambda: False, timeout=seconds)


def no_jobs_running() -> bool:
    from explorer.workers import running_jobs

    return not running_jobs()


def decode_seconds(model, latents) -> float:
    """One `model.decode` of `latents` (array-like, (N, D)) under no_grad on this thread, timed: the
    baselines of the GUI latencies."""
    import torch

    z = torch.as_tensor(latents, dtype=torch.float32)
    t0 = time.perf_counter()
    with torch.no_grad():
        model.decode(z)
    return time.perf_counter() - t0


def paint_probe(widget, paint: Callable[[object], object]):
    """A probe that times from an action to the end of `widget`'s first paint after the probe is made
    `ready` (by whoever sees the new content set): its event filter runs `paint(event)`, the widget's own
    painting, itself and stamps the time after it. `probe.time(action, timeout_s)` returns the seconds."""
    from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer

    class PaintProbe(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.ready = False
            self.painted_at: float | None = None
            self.loop = QEventLoop()
            widget.installEventFilter(self)

        def time(self, action: Callable[[], object], timeout_s: float) -> float:
            self.ready, self.painted_at = False, None
            watchdog = QTimer()
            watchdog.setSingleShot(True)
            watchdog.timeout.connect(self.loop.quit)
            watchdog.start(int(timeout_s * 1000))
            t0 = time.perf_counter()
            action()
            if self.painted_at is None:
                self.loop.exec()
            watchdog.stop()
            if self.painted_at is None:
                raise RuntimeError(f"nothing was painted within {timeout_s:.0f} s")
            return self.painted_at - t0

        def eventFilter(self, obj, event) -> bool:
            if obj is widget and event.type() == QEvent.Type.Paint and self.ready and self.painted_at is None:
                paint(event)
                self.painted_at = time.perf_counter()
                self.loop.quit()
                return True
            return False

    return PaintProbe()


@contextmanager
def shown_window(*argv: str):
    """The main window as `latent-explorer *argv --device cpu` builds it (explorer.app.build_window), at
    1280 x 860 and shown (offscreen), its settings kept from the user's; shut down (every thread waited
    for) and closed afterwards."""
    from explorer.app import build_window

    qt_app()
    isolated_settings()
    window = build_window([*argv, "--device", "cpu"])
    window.resize(1280, 860)
    window.show()
    try:
        yield window
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()


def isolated_settings() -> None:
    """Keep the window's QSettings (recent files, layout) away from the user's."""
    from PySide6.QtCore import QSettings

    folder = Path(tempfile.mkdtemp(prefix="latent-explorer-bench-settings-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
        QSettings.setPath(fmt, QSettings.Scope.SystemScope, str(folder / "system"))


# --- running one module --------------------------------------------------------------------------------
def module_main(name: str, run: Callable[[dict[str, Path], bool], list[Row]], argv: list[str] | None = None) -> int:
    """The command line every benchmark module shares: `python -m benchmarks.NAME [--quick]
    [--models DIR] [--json FILE]`. Prints the module's rows (or writes them as JSON)."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--models",
        type=Path,
        help="folder of checkpoints to use (default: the bundled checkpoints, else fresh representative models)",
    )
    parser.add_argument("--json", type=Path, help="write the rows here as JSON instead of printing a table")
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="torch intra-op threads (0: torch's default); default %(default)s",
    )
    args = parser.parse_args(argv)
    set_threads(args.threads)
    paths = find_models(args.models)
    rows = run(paths, args.quick)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows]))
    else:
        print(table(rows))
    return 0


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r.cells()) + " |" for r in rows]
    return "\n".join(lines)
