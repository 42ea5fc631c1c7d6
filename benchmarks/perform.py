"""Perform and render: a walk played live in the presentation window, a 10-second 512 px MP4 rendered,
and the GUI's longest stall under a flood of OSC messages.

- Live walk: the main window (`explorer.app.build_window`, shown offscreen) on each latent model, View >
  Present (the presentation window full screen, nearest scaling), and a random walk played from the
  Control tab for `seconds`; measured: new images painted per second by the presentation window
  (`PresentationWindow.frames_shown`), i.e. frames decoded in its worker and drawn scaled to the screen.
  Baseline: the rate of bare `model.decode` of one latent on the GUI thread (the ceiling of any live view).
  The frame clock ticks every 15 ms (66.7 Hz, the most it can show), so that a late tick on a busy
  machine still leaves >= 60 fps, the target.
- Render: `engines.export.render_latents` of a 10-second random walk at 30 fps (300 frames) as a 512 x 512
  H.264 MP4 (nearest scaling), timed whole; baseline the batched decode of the same 300 latents alone.
- OSC flood: the Control tab listening on a UDP port with one mapping to a latent slider, a 1 ms timer in
  the GUI thread measuring the longest gap between its ticks (benchmarks.stall's probe) while another
  process sends 10,000 OSC messages per second to it; baseline the same probe idle.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from . import Row, models_of, module_main, no_jobs_running, settle, shown_window, wait_for
from .stall import _stall_row, _TickProbe

TARGET_FPS = 60.0
FLOOD_RATE = 10_000  # OSC messages per second


def live_fps(path: Path, seconds: float) -> tuple[float, float, str]:
    """(frames shown per second during a walk, bare decodes per second, the drawn size)."""
    import torch

    with shown_window(str(path)) as window:
        wait_for(no_jobs_running, 180)
        presentation = window.present()
        panel = window.extra_panels["control"]
        panel.play_button.click()
        settle(1.0)  # past the blend from the current z, decoder warm
        start_frames, t0 = presentation.frames_shown, time.perf_counter()
        settle(seconds)
        fps = (presentation.frames_shown - start_frames) / (time.perf_counter() - t0)
        panel.play_button.click()
        rect = presentation.image_rect()
        z = torch.zeros(1, window.state.latent_dim)
        model = window.state.model
        with torch.no_grad():
            for _ in range(5):
                model.decode(z)
            t0 = time.perf_counter()
            for _ in range(50):
                model.decode(z)
        bare = 50 / (time.perf_counter() - t0)
        presentation.close()
        return fps, bare, f"{rect.width()}x{rect.height()} px"


def render_mp4(path: Path) -> tuple[float, float]:
    """(seconds to render a 10 s 512 px MP4, seconds to decode its 300 latents alone)."""
    from engines.checkpoint import load_checkpoint
    from engines.export import VideoSettings, render_latents
    from engines.latent import decode_latents
    from engines.walks import RandomWalk, walk_latents

    model = load_checkpoint(path, device="cpu").model
    latents = walk_latents(RandomWalk(model.latent_dim, seed=0), 300, 30.0, 0.5, loop=True)
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        render_latents(model, latents, "mp4", Path(folder) / "walk.mp4", {}, VideoSettings(30.0, 512))
        render = time.perf_counter() - t0
    t0 = time.perf_counter()
    decode_latents(model, latents, batch=32)
    return render, time.perf_counter() - t0


SENDER = textwrap.dedent(
    """
    import sys, time
    from pythonosc.udp_client import SimpleUDPClient
    port, rate, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    client = SimpleUDPClient("127.0.0.1", port)
    sent, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        due = int((time.perf_counter() - t0) * rate)
        while sent < due:
            try:
                client.send_message("/flood", (sent % 1000) / 999)
            except BlockingIOError:
                break
            sent += 1
        time.sleep(0.001)
    print(sent)
    """
)


def osc_flood(path: Path, seconds: float) -> tuple[list[float], list[float], int, int]:
    """(busy gaps, idle gaps, messages sent, messages received)."""
    from explorer.live import Target

    with shown_window(str(path)) as window:
        panel = window.extra_panels["control"]
        window.show_tab("Control")
        wait_for(no_jobs_running, 180)
        port = panel.live.start_osc(0)
        panel.live.assign("osc /flood", Target("dim", 0))
        settle(0.5)
        probe = _TickProbe()
        idle = probe.run_for(seconds)
        sender = subprocess.Popen(
            [sys.executable, "-c", SENDER, str(port), str(FLOOD_RATE), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        busy = probe.run_for(seconds + 0.3)
        sent = int(sender.communicate(timeout=60)[0].strip() or 0)
        settle(0.3)
        received = panel.live.inbox.count
        panel.live.stop()
        return busy, idle, sent, received


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    seconds = 3.0 if quick else 8.0
    rows = []
    latent = models_of(paths, ("vae", "gan"))
    for name, path in latent.items():
        fps, bare, where = live_fps(path, seconds)
        target = "mnist" in name or name.startswith(("vae-2d", "vae-16d", "dcgan-64d"))
        rows.append(
            Row(
                "Live walk (presentation)",
                f"{name}, random walk, {seconds:.0f} s, image drawn at {where} (nearest)",
                f"{fps:.1f} fps",
                f"bare decode of 1 latent: {bare:.0f}/s",
                f"decode headroom {bare / fps:.0f}x",
                ">= 60 fps (MNIST)" if target else "",
                fps >= TARGET_FPS if target else None,
            )
        )
    for name in [n for n in ("vae-mnist-2d", "dcgan-faces") if n in latent] or list(latent)[:1]:
        render, decode = render_mp4(latent[name])
        rows.append(
            Row(
                "Render MP4",
                f"{name}, 10 s random walk, 30 fps (300 frames), 512x512 H.264",
                f"{render:.2f} s ({10 / render:.1f}x real time)",
                f"decode of the 300 latents: {decode:.2f} s",
                f"{render / decode:.1f}x decode",
            )
        )
    name, path = next(iter(latent.items()))
    busy, idle, sent, received = osc_flood(path, seconds)
    row = _stall_row(
        "GUI stall, OSC flood",
        f"{name}, Control tab, {sent} OSC messages sent in {seconds:.0f} s from another process "
        f"({received} received), mapped to a latent slider, 1 ms timer",
        busy,
        idle,
    )
    rows.append(row)
    return rows


if __name__ == "__main__":
    raise SystemExit(module_main("perform", run))
