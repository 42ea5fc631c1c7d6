"""Training timelines (engines.timeline): light float16 decoder snapshots kept during a run, thinned evenly
under a cap, stored and validated in the checkpoint, kept on resume; shown live in the Train tab and for an
opened checkpoint in the Timeline tab, with a second checkpoint compared on the same latents."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from engines.checkpoint import META_KEY, CheckpointError, load_checkpoint  # noqa: E402
from engines.data import DataSpec, ShapesDataset  # noqa: E402
from engines.timeline import MAX_BYTES, MAX_SNAPSHOTS, Timeline, apply_snapshot, capacity, snapshot_bytes, snapshot_of  # noqa: E402
from engines.training import Snapshot, TrainConfig, Trainer, create_model  # noqa: E402
from tests.helpers import TINY  # noqa: E402

WAIT = 60_000


def shapes(n: int = 256) -> ShapesDataset:
    return ShapesDataset(DataSpec("shapes", image_size=28, channels=1), True, length=n)


def test_snapshots_are_float16_decoder_weights_thinned_evenly_under_the_cap() -> None:
    vae = create_model("vae", TINY["vae"])
    snap = snapshot_of(vae)
    assert set(snap) == {k for k in vae.state_dict() if k.startswith(("decoder_fc.", "decoder_conv."))}
    assert all(t.dtype == torch.float16 for t in snap.values())
    timeline = Timeline(every=1)
    for step in range(1, 46):
        if timeline.due(step):  # as the trainer asks
            timeline.add(step, vae)
    assert len(timeline.steps) <= MAX_SNAPSHOTS and timeline.every == 4
    assert np.all(np.diff(timeline.steps) == 4) and timeline.steps[-1] == 44
    gan = create_model("gan", {"image_size": 32, "channels": 3})  # a default DCGAN: 1.8 MB a snapshot
    big = snapshot_bytes(snapshot_of(gan))
    assert capacity(big) == MAX_BYTES // big < MAX_SNAPSHOTS and capacity(big) * big <= MAX_BYTES


def test_a_run_stores_its_timeline_and_a_snapshot_decodes_as_the_weights_did(tmp_path: Path) -> None:
    path = tmp_path / "run.safetensors"
    config = TrainConfig(max_steps=40, batch_size=32, snapshot_every=10, checkpoint_path=str(path), sample_every=None)
    trainer = Trainer(create_model("vae", TINY["vae"]), shapes(), config)
    events = list(trainer.run())
    live = [e for e in events if isinstance(e, Snapshot)]
    assert [e.step for e in live] == [10, 20, 30, 40] and live[0].reconstructions is not None
    ckpt = load_checkpoint(path)
    assert ckpt.timeline["steps"] == [10, 20, 30, 40]
    z = torch.randn(5, 4)
    with torch.no_grad():
        final = ckpt.model.decode(z)
        last = apply_snapshot(ckpt.model, ckpt.timeline["snapshots"][-1]).decode(z)
        first = apply_snapshot(ckpt.model, ckpt.timeline["snapshots"][0]).decode(z)
    assert torch.allclose(last, final, atol=5e-3) and not torch.allclose(first, final, atol=5e-2)
    resumed = Trainer.from_checkpoint(path, shapes(), replace(config, max_steps=60))
    list(resumed.run())
    assert load_checkpoint(path).timeline["steps"] == [10, 20, 30, 40, 50, 60]


def _rewrite(path: Path, out: Path, change) -> Path:
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    change(meta, tensors)
    save_file(tensors, str(out), metadata={META_KEY: json.dumps(meta)})
    return out


def test_hostile_timelines_are_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "run.safetensors"
    config = TrainConfig(max_steps=20, batch_size=32, snapshot_every=10, checkpoint_path=str(path), sample_every=None)
    list(Trainer(create_model("gan", TINY["gan"]), shapes(), config).run())
    key = load_checkpoint(path).timeline and "timeline/0/generator.0.weight"

    def wrong_shape(meta, tensors):
        tensors[key] = torch.zeros(3, 3, dtype=torch.float16)

    def extra(meta, tensors):
        tensors["timeline/9/generator.0.weight"] = tensors[key].clone()

    def more_steps(meta, tensors):
        meta["timeline"]["steps"].append(30)

    def foreign_key(meta, tensors):
        meta["timeline"]["keys"].append("discriminator.0.weight")

    def wrong_dtype(meta, tensors):
        tensors[key] = tensors[key].float()

    def huge(meta, tensors):
        meta["timeline"]["steps"] = list(range(10**5))

    def orphan(meta, tensors):
        del meta["timeline"]

    for change in (wrong_shape, extra, more_steps, foreign_key, wrong_dtype, huge, orphan):
        bad = _rewrite(path, tmp_path / f"{change.__name__}.safetensors", change)
        with pytest.raises(CheckpointError, match="timeline") as error:
            load_checkpoint(bad)
        assert "\n" not in str(error.value)


def test_the_train_tab_scrubs_its_timeline_live(qtbot, tmp_path: Path) -> None:
    from explorer.panels.training import TrainingPanel
    from explorer.state import ExplorerState
    from tests.helpers import tiny_vae_run

    panel = TrainingPanel(ExplorerState(), None)
    qtbot.addWidget(panel)
    tiny_vae_run(panel, tmp_path / "live.safetensors", max_steps=40, train_overrides={"snapshot_every": 10})
    with qtbot.waitSignal(panel.runFinished, timeout=WAIT):
        assert panel.start() is not None
    assert "validation: 5,000 of the 50,000 training images, held out" in panel.log_view.toPlainText()
    strip = panel.timeline
    assert [f[0] for f in strip.frames] == ["step 10", "step 20", "step 30", "step 40"]
    assert strip.shown == 3 and not strip.recon_view.isHidden()  # followed the newest; a VAE reconstructs
    strip.slider.setValue(0)
    assert strip.shown == 0 and np.array_equal(strip.samples_view.array()[..., 0], strip.frames[0][1][..., 0])
    assert "step 10 (1/4)" == strip.label.text()


def test_the_timeline_tab_shows_a_checkpoints_snapshots_and_compares_a_second(qtbot, tmp_path: Path) -> None:
    from explorer.panels.timeline import TimelinePanel, fixed_latents
    from explorer.state import ExplorerState

    paths = []
    for name, seed in (("a", 0), ("b", 1)):
        path = tmp_path / f"{name}.safetensors"
        config = TrainConfig(max_steps=30, batch_size=32, snapshot_every=10, checkpoint_path=str(path), seed=seed)
        list(Trainer(create_model("vae", TINY["vae"], seed=seed), shapes(), config).run())
        paths.append(path)
    state = ExplorerState()
    state.open_checkpoint(paths[0], device="cpu")
    panel = TimelinePanel(state)
    qtbot.addWidget(panel)
    panel.resize(1000, 500)
    panel.show()
    qtbot.waitUntil(lambda: len(panel.strip.frames) == 4, timeout=WAIT)
    assert [f[0] for f in panel.strip.frames] == ["step 10", "step 20", "step 30", "final (step 30)"]
    ckpt = load_checkpoint(paths[0])
    from engines.timeline import timeline_grids

    expected, _ = timeline_grids(apply_snapshot(ckpt.model, ckpt.timeline["snapshots"][1]), fixed_latents(4))
    assert np.array_equal(panel.strip.frames[1][1], expected)
    assert panel.strip.frames[0][2] is not None  # held-out shapes above their reconstructions
    panel.strip.slider.setValue(2)
    assert panel.strip.label.text() == "step 30 (3/4)"
    with qtbot.waitSignal(panel.open_comparison(paths[1]).finished, timeout=WAIT):
        pass
    other = load_checkpoint(paths[1])
    theirs, _ = timeline_grids(other.model, fixed_latents(4))
    assert np.array_equal(panel.other_strip.frames[-1][1], theirs) and "b.safetensors" in panel.other_strip.title.text()
    wrong = tmp_path / "wide.safetensors"
    config = TrainConfig(max_steps=2, batch_size=32, checkpoint_path=str(wrong))
    list(Trainer(create_model("vae", {**TINY["vae"], "latent_dim": 6}), shapes(), config).run())
    with qtbot.waitSignal(panel.open_comparison(wrong).finished, timeout=WAIT):
        pass
    assert "latent of size 6, not 4" in panel.other_strip.title.text()
