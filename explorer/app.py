"""`latent-explorer [CHECKPOINT] [--device D]`: the desktop app."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from engines.checkpoint import SUFFIX, CheckpointError, read_metadata
from engines.device import available_devices, pick_device
from engines.models import MODEL_CLASSES

from . import threads
from .main_window import MainWindow
from .settings import APPLICATION, ORGANIZATION
from .state import ExplorerState

log = logging.getLogger(__name__)
# Checkpoints shipped with (or trained into) the repository; the first one opens when none is named.
DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
_pyqtgraph_configured = False


def configure_pyqtgraph() -> None:
    """Once per process: numpy images are (rows, columns), as everywhere else in this app."""
    global _pyqtgraph_configured
    if not _pyqtgraph_configured:
        import pyqtgraph as pg

        pg.setConfigOptions(imageAxisOrder="row-major")
        _pyqtgraph_configured = True


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="latent-explorer",
        description="Explore the latent spaces of VAEs and GANs, and sample PixelCNNs.",
        epilog="Other commands (no GUI): `latent-explorer train ...` trains a model, `latent-explorer eval "
        "CHECKPOINT` measures one, `latent-explorer sample CHECKPOINT` writes samples, `latent-explorer "
        "export CHECKPOINT --onnx DIR` writes its decoder (and encoder) as ONNX; add --help to any of them.",
    )
    parser.add_argument(
        "checkpoint",
        nargs="?",
        help=f"a {SUFFIX} checkpoint, an .onnx decoder (with its sidecar "
        "and encoder) or a file an installed plugin opens (default: the "
        f"first checkpoint in {DEFAULT_CHECKPOINT_DIR})",
    )
    parser.add_argument("--device", default="auto", help=f"where models run: auto, {', '.join(available_devices())}")
    args = parser.parse_args(argv)
    try:
        args.torch_device = pick_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    return args


DEFAULT_CHECKPOINT_NAME = "vae-mnist-2d.safetensors"  # the classic 2-D manifold: a good first look


def find_default_checkpoint(folder: Path | None = None) -> Path | None:
    """The preferred bundled model, else the first explorable one (the bundled classifiers are not)."""
    folder = DEFAULT_CHECKPOINT_DIR if folder is None else folder
    if (folder / DEFAULT_CHECKPOINT_NAME).is_file():
        return folder / DEFAULT_CHECKPOINT_NAME
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        try:
            if MODEL_CLASSES[read_metadata(path)["kind"]].can_sample:
                return path
        except CheckpointError:
            continue
    return None


def _application() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "latent-explorer"])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    return app


def build_window(argv: list[str]) -> MainWindow:
    """Everything `main` does except showing the window and running the event loop.

    Raises SystemExit (from argparse) for bad arguments."""
    args = parse_args(argv)
    app = _application()
    configure_pyqtgraph()
    state = ExplorerState()
    state.device = args.torch_device
    window = MainWindow(state)
    state.setParent(window)
    path = Path(args.checkpoint) if args.checkpoint else find_default_checkpoint()
    if path is not None:
        window.open_checkpoint(path)
    else:
        window.statusBar().showMessage("File > Open a checkpoint or ONNX model (Ctrl+O) to start")
    app.aboutToQuit.connect(window.shutdown)  # emitted in the GUI thread
    return window


def run_window(window: MainWindow) -> int:
    """Show the window and run the event loop until the app quits; returns the exit code.

    Closing the window waits (visibly) for background threads before it closes; should the loop end some
    other way while a thread still runs, this waits for it here rather than let the process abort."""
    app = QApplication.instance()
    window.show()
    code = app.exec()
    if threads.running():
        log.info("waiting for background threads to finish before exiting")
    threads.wait_for_all(process_events=False)
    return code


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        window = build_window(sys.argv[1:] if argv is None else argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return run_window(window)
