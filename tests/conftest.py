"""Shared test setup.

Qt runs offscreen (QT_QPA_PLATFORM=offscreen unless already set) and torch on one thread (tiny
models; the test machine may be shared). Every test gets:

- `isolated_settings` (autouse): QSettings (INI and native, user and system scope) live in a fresh
  temporary folder per test, so no test reads or writes the user's recent files or window layout.
  Returns that folder.
- `no_modal_dialogs` (autouse): a static QMessageBox call fails the test instead of waiting forever.
- `no_running_threads` (autouse): at teardown, stops every job (explorer.workers: every background
  thread of the app, the decoder's included) and fails the test if any thread is still running.

Session-scoped checkpoints (written once, in a temp folder; < 10 s in all), all on the procedural
"shapes" dataset at 28x28x1, so they need no files:
- `vae_checkpoint`: a VAE with latent_dim 4, trained 30 steps (with a training summary and a metric).
- `vae12_checkpoint`: a VAE with latent_dim 12 (principal-direction sliders are offered above 8).
- `gan_checkpoint`: a DCGAN with latent_dim 16, trained 10 steps.
- `pixelcnn_checkpoint`: an untrained, tiny Gated PixelCNN (2 levels).
- `stylegan_checkpoint`: a tiny style-based generator (tests.helpers.TINY) trained 6 steps on the shapes
  at 32x32x1 (a style generator needs a size that halves to 4x4).
Each is a pathlib.Path; treat the files as read-only (copy one to change it).

Function-scoped helpers:
- `state_with_vae` / `state_with_gan`: an ExplorerState (explorer.state) with that checkpoint open.
- `make_window(*argv)`: builds the main window as `latent-explorer *argv` would (explorer.app.build_window,
  no event loop), registered with qtbot and shut down (threads stopped) at teardown.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # tiny models: more threads only contend, badly so on a shared 2-core machine

SPEC_28 = {"name": "shapes", "image_size": 28, "channels": 1}


def _train(kind: str, config: dict, steps: int, path: Path, metrics: dict | None = None) -> Path:
    from engines.checkpoint import update_checkpoint
    from engines.data import DataSpec, load_dataset
    from engines.training.trainer import TrainConfig, Trainer, create_model

    spec = DataSpec(**SPEC_28)
    model = create_model(kind, {"image_size": 28, "channels": 1, **config}, seed=0)
    run = TrainConfig(max_steps=steps, batch_size=32, sample_every=0, device="cpu", checkpoint_path=str(path), seed=0)
    for _ in Trainer(model, load_dataset(spec, train=True), run).run():
        pass
    if metrics:
        update_checkpoint(path, metrics=metrics)
    return path


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="session")
def vae_checkpoint(checkpoint_dir) -> Path:
    return _train(
        "vae",
        {"latent_dim": 4, "width": 8, "fc_dim": 32},
        30,
        checkpoint_dir / "vae4.safetensors",
        metrics={"test_neg_elbo": 123.4},
    )


@pytest.fixture(scope="session")
def vae12_checkpoint(checkpoint_dir) -> Path:
    return _train("vae", {"latent_dim": 12, "width": 8, "fc_dim": 32}, 20, checkpoint_dir / "vae12.safetensors")


@pytest.fixture(scope="session")
def gan_checkpoint(checkpoint_dir) -> Path:
    return _train("gan", {"latent_dim": 16, "g_width": 8, "d_width": 8}, 10, checkpoint_dir / "gan16.safetensors")


@pytest.fixture(scope="session")
def pixelcnn_checkpoint(checkpoint_dir) -> Path:
    from engines.checkpoint import save_checkpoint
    from engines.training.trainer import create_model

    model = create_model("pixelcnn", {"image_size": 28, "channels": 1, "levels": 2, "hidden": 8, "n_layers": 2}, seed=0)
    return save_checkpoint(checkpoint_dir / "pixelcnn.safetensors", model.eval(), dataset=SPEC_28)


@pytest.fixture(scope="session")
def stylegan_checkpoint(checkpoint_dir) -> Path:
    from engines.data import DataSpec, load_dataset
    from engines.training.trainer import TrainConfig, Trainer, create_model
    from tests.helpers import TINY

    spec = DataSpec("shapes", image_size=32, channels=1)
    path = checkpoint_dir / "stylegan.safetensors"
    model = create_model("stylegan", {**TINY["stylegan"], "image_size": 32, "channels": 1}, seed=0)
    run = TrainConfig(max_steps=6, batch_size=16, sample_every=0, device="cpu", checkpoint_path=str(path), seed=0)
    for _ in Trainer(model, load_dataset(spec, train=True), run).run():
        pass
    return path


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory) -> Path:
    from PySide6.QtCore import QSettings

    folder = tmp_path_factory.mktemp("settings")  # not in tmp_path: tests may list that folder
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
        QSettings.setPath(fmt, QSettings.Scope.SystemScope, str(folder / "system"))
    return folder


@pytest.fixture(autouse=True)
def no_modal_dialogs(monkeypatch):
    """A modal question nobody answers would hang the run (pytest-qt closes windows at teardown, and a
    window closed while training asks): every static QMessageBox call fails the test instead. Tests that
    expect a question replace the panel's own asking method (e.g. TrainingPanel.confirm_close)."""
    from PySide6.QtWidgets import QMessageBox

    def unexpected(parent, title, text, *args, **kwargs):
        raise AssertionError(f"unexpected modal dialog: {title}: {text}")

    for name in ("question", "warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(unexpected))


@pytest.fixture(autouse=True)
def no_running_threads():
    yield
    from explorer.workers import running_jobs, stop_all_jobs

    stopped = stop_all_jobs(timeout_ms=10_000)
    left = running_jobs()
    assert stopped and not left, f"threads still running after the test: {left}"


@pytest.fixture
def state_with_vae(qapp, vae_checkpoint):
    from explorer.state import ExplorerState

    state = ExplorerState()
    state.open_checkpoint(vae_checkpoint, device="cpu")
    return state


@pytest.fixture
def state_with_gan(qapp, gan_checkpoint):
    from explorer.state import ExplorerState

    state = ExplorerState()
    state.open_checkpoint(gan_checkpoint, device="cpu")
    return state


@pytest.fixture
def make_window(qtbot):
    from explorer.app import build_window

    windows = []

    def build(*argv: str | Path):
        window = build_window([str(a) for a in argv] + ["--device", "cpu"])
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield build
    for window in windows:
        if window.message_box is not None:
            window.message_box.close()
        window.shutdown()
