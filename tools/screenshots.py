"""Regenerate README screenshots of each panel from the real app (offscreen).

    QT_QPA_PLATFORM=offscreen python tools/screenshots.py [--checkpoint FILE] [--pixelcnn FILE] [--faces FILE]
        [--styles FILE] [--conditional FILE] [--coded FILE] [--out docs/screenshots]
        [--only explore maps interpolate arithmetic nearest train control directions styles replay surprise timeline
                explore-conditional maps-code]

Opens the main window on a checkpoint (default: the bundled one the app opens), shows every tab in
turn, waits for its background work to finish, and saves `<tab>.png`. Panels that need another kind
of model (the PixelCNN replay and its surprise maps) are shot with `--pixelcnn`; the Directions tab is
shot on `--faces` (default: the bundled vae-faces), whose classifier names its directions; the Styles
tab (style mixing and the layer view) on `--styles` (default: the bundled stylegan-faces, in W); the Explore
tab's class picker (`explore-conditional`) on `--conditional` (default: the bundled cdcgan-mnist); a map over
the first two units of a categorical code (`maps-code`) on `--coded` (default: the bundled dcgan-mnist). `nearest`
needs the model's training data ($LATENT_EXPLORER_DATA, e.g. ../shared/datasets); `timeline` trains a
short run (400 steps of a 2-D VAE on MNIST, else on the procedural shapes), opens it and compares it
with the checkpoint. `--only` shoots only those.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtWidgets import QApplication  # noqa: E402

from explorer.app import build_window, find_default_checkpoint  # noqa: E402
from explorer.workers import running_jobs, stop_all_jobs  # noqa: E402


def settle(seconds: float = 1.5, timeout: float = 60.0) -> None:
    """Let the event loop run until no background job is left (and at least `seconds`)."""
    app = QApplication.instance()
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        app.processEvents()
        if time.monotonic() - start >= seconds and not running_jobs():
            break
        time.sleep(0.02)
    app.processEvents()


def shoot(window, out: Path, names: list[str] | None = None, prepare=None) -> list[Path]:
    written = []
    for index in range(window.tabs.count()):
        title = window.tabs.tabText(index)
        slug = title.lower().replace(" ", "-")
        if names is not None and slug not in names:
            continue
        window.tabs.setCurrentIndex(index)
        settle()
        if prepare is not None:
            prepare(window, slug)
            settle(3.0)
        path = out / f"{slug}.png"
        window.grab().save(str(path))
        written.append(path)
        print(f"wrote {path}")
    return written


def prepare(window, slug: str) -> None:
    """Give the panels that start empty something to show."""
    if slug == "train":
        panel = window.extra_panels["training"]
        run = Path(tempfile.mkdtemp()) / "shapes-vae.safetensors"
        panel.configure(
            model="vae",
            dataset="shapes",
            image_size=28,
            channels=1,
            latent_dim=8,
            batch_size=64,
            max_steps=300,
            epochs=1,
            sample_every=25,
            seed=0,
            checkpoint_path=str(run),
        )
        panel.start()
        wait_until(lambda: panel.step >= 120, timeout=240)
    elif slug == "control":
        from explorer.live import Target

        panel = window.extra_panels["control"]
        panel.osc_check.setChecked(True)  # port 9000 (the status says why if it is taken)
        live = panel.live
        live.assign("osc /knob/1", Target("dim", 0))
        live.assign("osc /knob/2", Target("dim", 1))
        live.assign("midi cc 1:7", Target("walk_speed"))
        live.assign("osc /pad/1", Target("randomize"))
        for source, value in [
            ("osc /knob/1", 0.62),
            ("osc /knob/2", 0.35),
            ("midi cc 1:7", 0.4),
            ("osc /knob/1", 0.66),
        ]:
            live.inbox.put(source, value)  # as the OSC server's thread and a MIDI port would
        panel.render.loop_check.setChecked(True)
        panel.learn_button.click()
        live.inbox.put("osc /fader/3", 0.5)  # learn mode catches it: "now click a target"
    elif slug == "directions":
        panel = window.extra_panels["directions"]
        panel.fit_boundaries()
        panel.compute_sefa()
        wait_until(lambda: not panel.busy(), timeout=120)
        settle(0.5)
        # the SeFa direction that is most like the glasses boundary: its strip reads at a glance
        sefa = [n for n, d in panel.directions.items() if d.method == "sefa"]
        panel.select(
            max(sefa, key=lambda n: abs(float(panel.directions[n].vector @ panel.boundaries["glasses"].normal)))
        )
    elif slug == "nearest":
        panel = window.extra_panels["nearest"]
        wait_until(lambda: bool(panel.results), timeout=600)
    elif slug == "timeline":
        panel = window.extra_panels["timeline"]
        wait_until(lambda: len(panel.strip.frames) > 1, timeout=120)
        panel.strip.slider.setValue(len(panel.strip.frames) // 3)
        if window.compare_with is not None:
            panel.open_comparison(window.compare_with)
            wait_until(lambda: bool(panel.other_strip.frames), timeout=120)
    elif slug == "surprise":
        page = window.extra_panels["replay"].surprise
        window.extra_panels["replay"].pages.setCurrentWidget(page)
        page.show_image(7)
        wait_until(lambda: page.levels is not None, timeout=60)
        for row in range(4, 13):
            for col in range(6, 22):
                page.paint(row, col)
        page.temperature_spin.setValue(1.0)
        page.seed_spin.setValue(2)
        page.resample()
        wait_until(lambda: not running_jobs(), timeout=300)
        settle(0.5)
    elif slug == "styles":
        panel = window.extra_panels["styles"]
        panel.a_count.setValue(4)
        panel.b_count.setValue(5)
        panel.preset_combo.setCurrentText("coarse")
        wait_until(lambda: not panel.busy(), timeout=120)
        settle(0.5)
        panel.set_layer(min(2, len(panel.layers) - 1))
    elif slug == "replay":
        panel = window.extra_panels["replay"]
        panel.sample(0)
        wait_until(lambda: not running_jobs(), timeout=600)
        settle(0.5)  # the last chunks of the recording arrive through the event loop
        panel.show_step(int(len(panel.recording) * 0.6))
        panel.field_check.setChecked(True)


def timeline_run(folder: Path) -> Path:
    """A short run that keeps a timeline: a 2-D VAE, 400 steps, a snapshot every 20 (MNIST when it is there)."""
    from engines.data import DatasetError, DataSpec, load_splits
    from engines.training import TrainConfig, Trainer, create_model

    try:
        spec = DataSpec("mnist")
        splits = load_splits(spec)
    except DatasetError:
        spec = DataSpec("shapes", image_size=28, channels=1)
        splits = load_splits(spec)
    path = folder / f"{spec.name}-vae-2d-timeline.safetensors"
    model = create_model("vae", {"image_size": 28, "channels": 1, "latent_dim": 2}, seed=0)
    config = TrainConfig(max_steps=400, batch_size=64, snapshot_every=20, checkpoint_path=str(path), eval_batches=2)
    trainer = Trainer(model, splits.train, config, splits.val, summary={"validation": splits.record})
    for _ in trainer.run():
        pass
    return path


def wait_until(condition, timeout: float) -> None:
    app = QApplication.instance()
    start = time.monotonic()
    while not condition() and time.monotonic() - start < timeout:
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="VAE or GAN checkpoint for the latent panels")
    parser.add_argument("--pixelcnn", help="PixelCNN checkpoint for the replay panel")
    parser.add_argument("--faces", default=str(REPO / "checkpoints" / "vae-faces.safetensors"))
    parser.add_argument("--styles", default=str(REPO / "checkpoints" / "stylegan-faces.safetensors"))
    parser.add_argument("--conditional", default=str(REPO / "checkpoints" / "cdcgan-mnist.safetensors"))
    parser.add_argument("--coded", default=str(REPO / "checkpoints" / "dcgan-mnist.safetensors"))
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--only", nargs="+", help="tab names to shoot (default: all)")
    args = parser.parse_args()
    wanted = set(args.only) if args.only else None

    def only(names: list[str]) -> list[str]:
        return [n for n in names if wanted is None or n in wanted]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint or find_default_checkpoint()
    if checkpoint is None:
        sys.exit("no checkpoint: pass --checkpoint")

    window = build_window([str(checkpoint)])
    window.compare_with = None  # the Timeline shot compares its run with the checkpoint
    window.resize(1280, 860)
    window.show()
    window.state.randomize(seed=3, temperature=0.8)
    settle(2.0)
    shoot(
        window,
        out,
        names=only(["explore", "maps", "interpolate", "arithmetic", "nearest", "train", "control"]),
        prepare=prepare,
    )
    window.extra_panels["training"].stop_and_wait()
    if only(["train"]):  # the same run's timeline, scrubbed to its middle
        panel = window.extra_panels["training"]
        window.show_tab("Train")
        panel.sample_tabs.setCurrentWidget(panel.timeline)
        panel.timeline.slider.setValue(len(panel.timeline.frames) // 3)
        settle(0.5)
        window.grab().save(str(out / "train-timeline.png"))
        print(f"wrote {out / 'train-timeline.png'}")
        panel.sample_tabs.setCurrentIndex(0)
    if only(["directions"]):
        window.open_checkpoint(args.faces)
        window.state.randomize(seed=3, temperature=0.8)
        settle(2.0)
        shoot(window, out, names=["directions"], prepare=prepare)
    if only(["timeline"]):
        window.compare_with = str(checkpoint)
        window.open_checkpoint(str(timeline_run(Path(tempfile.mkdtemp()))))
        settle(2.0)
        shoot(window, out, names=["timeline"], prepare=prepare)
    if only(["styles"]) and Path(args.styles).is_file():
        window.open_checkpoint(args.styles)
        window.state.set_space("W")
        window.state.randomize(seed=3)
        settle(2.0)
        shoot(window, out, names=["styles"], prepare=prepare)
    if only(["explore-conditional"]) and Path(args.conditional).is_file():
        window.open_checkpoint(args.conditional)
        window.show_tab("Explore")
        window.state.randomize(seed=3)
        window.explore.set_class(4, 9, 0.4)  # a blend: 0.6 of "4", 0.4 of "9"
        settle(2.0)
        window.grab().save(str(out / "explore-conditional.png"))
        print(f"wrote {out / 'explore-conditional.png'}")
    if only(["maps-code"]) and Path(args.coded).is_file():
        window.open_checkpoint(args.coded)
        window.show_tab("Maps")
        window.state.randomize(seed=29)  # z[2:10] at most 0.57: z[0] and z[1] win the code over most of the map
        maps = window.extra_panels["maps"]
        maps.x_spin.setValue(0)
        maps.y_spin.setValue(1)
        maps.res_spin.setValue(16)
        settle(3.0)
        window.grab().save(str(out / "maps-code.png"))
        print(f"wrote {out / 'maps-code.png'}")
    if args.pixelcnn and only(["replay"]):
        window.open_checkpoint(args.pixelcnn)
        settle(2.0)
        shoot(window, out, names=["replay"], prepare=prepare)
    if args.pixelcnn and only(["surprise"]):
        window.open_checkpoint(args.pixelcnn)
        settle(2.0)
        window.show_tab("Replay")
        settle()
        prepare(window, "surprise")
        window.grab().save(str(out / "surprise.png"))
        print(f"wrote {out / 'surprise.png'}")
    stop_all_jobs()
    window.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
