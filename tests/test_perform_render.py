"""Video rendering (engines.export.render_latents) and `latent-explorer render`, on real files: the MP4
is decoded again with imageio and each frame compared with the decode of the latent saved beside it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from engines.checkpoint import load_checkpoint
from engines.export import VideoSettings, mp4_writer, render_latents, resize_frames, sidecar_paths
from engines.images import unit_to_uint8
from engines.latent import decode_latents
from engines.walks import RandomWalk, walk_latents
from tests.test_cli import cli

REPO = Path(__file__).resolve().parents[1]
MNIST_2D = REPO / "checkpoints" / "vae-mnist-2d.safetensors"
needs_mp4 = pytest.mark.skipif(mp4_writer() is None, reason="no MP4 writer (imageio-ffmpeg) installed")


def read_video(path: Path) -> np.ndarray:
    """Every frame of a video file, (N, H, W, 3) uint8, decoded by imageio-ffmpeg's ffmpeg (run here as
    a subprocess: imageio's readers leave a pipe open, which filterwarnings=error turns into a failure)."""
    run = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    )
    video = re.search(r"Stream #.*Video: h264.*?, (\d+)x(\d+)", run.stderr.decode())
    assert video is not None, run.stderr.decode()
    width, height = int(video[1]), int(video[2])
    return np.frombuffer(run.stdout, np.uint8).reshape(-1, height, width, 3)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def expected_frames(model, latents: np.ndarray, settings: VideoSettings, kind: str) -> np.ndarray:
    """What each frame should hold: the decode of its latent, rounded, scaled as the renderer does, RGB."""
    images = unit_to_uint8(decode_latents(model, latents))
    frames = resize_frames(images, settings.frame_shape(*images.shape[1:3], kind), settings.filter)
    return frames.repeat(3, axis=3) if frames.shape[3] == 1 else frames


@pytest.fixture(scope="module")
def mnist_vae():
    return load_checkpoint(MNIST_2D, device="cpu")


@needs_mp4
@pytest.mark.parametrize("filter_", ["nearest", "smooth"])
def test_mp4_has_the_frames_asked_for_and_each_is_its_saved_latent(mnist_vae, tmp_path, filter_) -> None:
    settings = VideoSettings(fps=24.0, size=200, filter=filter_)
    latents = walk_latents(RandomWalk(2, seed=4), 48, settings.fps, 0.8, loop=True)
    seen: list[tuple[int, int]] = []
    files = render_latents(
        mnist_vae.model,
        latents,
        "mp4",
        tmp_path / "walk.mp4",
        {"what": "test"},
        settings,
        progress=lambda d, t: seen.append((d, t)),
    )
    npy, js = sidecar_paths(tmp_path / "walk.mp4")
    assert files == [tmp_path / "walk.mp4", npy, js]
    assert seen[-1] == (48, 48) and len(seen) == 2  # after each batch of 32
    video = read_video(tmp_path / "walk.mp4")
    assert video.shape == (48, 200, 200, 3)
    saved = np.load(npy)
    np.testing.assert_array_equal(saved, latents)
    expected = expected_frames(mnist_vae.model, saved, settings, "mp4")
    worst = min(psnr(video[i], expected[i]) for i in range(48))
    assert worst > 35, f"the worst frame is {worst:.1f} dB from its latent's decode"
    # and the frames really differ from one another (a still video would pass the above too easily)
    assert psnr(video[0], expected[24]) < worst
    meta = json.loads(js.read_text())
    assert meta["frame_count"] == 48 and meta["video"] == {"fps": 24.0, "size": 200, "filter": filter_}


def test_gif_and_png_at_a_chosen_size(mnist_vae, tmp_path) -> None:
    latents = walk_latents(RandomWalk(2, seed=1), 5, 10.0, 1.0)
    settings = VideoSettings(fps=10.0, size=84, filter="nearest")  # 3x the 28 px images: repeated pixels
    render_latents(mnist_vae.model, latents, "png", tmp_path / "s.png", {}, settings)
    strip = np.asarray(Image.open(tmp_path / "s.png"))
    expected = expected_frames(mnist_vae.model, latents, settings, "png")[..., 0]
    np.testing.assert_array_equal(strip, np.concatenate(list(expected), axis=1))
    render_latents(mnist_vae.model, latents, "gif", tmp_path / "a.gif", {}, settings)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 5 and gif.size == (84, 84)


def test_a_cancelled_render_leaves_nothing(mnist_vae, tmp_path) -> None:
    latents = walk_latents(RandomWalk(2), 100, 10.0, 1.0)
    calls = []
    result = render_latents(
        mnist_vae.model,
        latents,
        "gif",
        tmp_path / "c.gif",
        {},
        VideoSettings(size=64),
        progress=lambda d, t: calls.append(d),
        should_stop=lambda: len(calls) >= 2,
    )
    assert result == [] and calls == [32, 64]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="frame size"):
        VideoSettings(size=4096)


# --- the command line -----------------------------------------------------------------------------------
@needs_mp4
def test_cli_renders_a_looping_random_walk(mnist_vae, tmp_path) -> None:
    out = tmp_path / "walk.mp4"
    args = ["render", str(MNIST_2D), "--walk", "random", "--seconds", "2", "--fps", "15", "--size", "128", "--loop"]
    result = cli(*args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 30 frames (128x128 px, 15 fps)" in result.stdout
    video = read_video(out)
    assert video.shape == (30, 128, 128, 3)
    latents = np.load(sidecar_paths(out)[0])
    np.testing.assert_allclose(np.linalg.norm(latents, axis=1), np.sqrt(2), rtol=1e-5)
    expected = expected_frames(mnist_vae.model, latents, VideoSettings(15.0, 128), "mp4")
    assert min(psnr(video[i], expected[i]) for i in range(30)) > 35
    again = cli(*args, "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_cli_renders_keyframes_and_a_session(tmp_path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", rng.standard_normal(2).astype(np.float32))
    np.save(tmp_path / "bc.npy", rng.standard_normal((2, 2)).astype(np.float32))
    out = tmp_path / "keys.gif"
    result = cli(
        "render", str(MNIST_2D), "--keyframes", str(tmp_path / "a.npy"), str(tmp_path / "bc.npy"),
        "--seconds", "1", "--fps", "8", "--size", "56", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    latents = np.load(sidecar_paths(out)[0])
    assert latents.shape == (8, 2)
    np.testing.assert_allclose(latents[0], np.load(tmp_path / "a.npy"), atol=1e-6)
    np.testing.assert_allclose(latents[-1], np.load(tmp_path / "bc.npy")[1], atol=1e-6)
    session = {
        "format": "latent-explorer-session/1",
        "checkpoint": str(MNIST_2D),
        "z": [0.5, -0.5],
        "bookmarks": [],
        "vectors": {"up": [0.0, 1.0]},
        "interpolation": {"keyframes": [{"z": [1.0, 0.0]}, {"z": [0.0, 1.0]}], "mode": "linear"},
    }
    (tmp_path / "s.json").write_text(json.dumps(session))
    result = cli(
        "render",
        "--session",
        str(tmp_path / "s.json"),
        "--seconds",
        "0.5",
        "--fps",
        "10",
        "--out",
        str(tmp_path / "s.png"),
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(sidecar_paths(tmp_path / "s.png")[0])[2], [0.5, 0.5], atol=1e-6)  # linear
    vec = cli(
        "render", "--session", str(tmp_path / "s.json"), "--walk", "vector", "--vector", "up",
        "--seconds", "1", "--fps", "10", "--out", str(tmp_path / "v.png"),
    )  # fmt: skip
    assert vec.returncode == 0, vec.stderr
    walked = np.load(sidecar_paths(tmp_path / "v.png")[0])
    np.testing.assert_allclose(walked[:, 0], 0.5, atol=1e-6)  # through the session's z, along "up" only
    assert np.ptp(walked[:, 1]) > 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--walk", "random", "--out", "x.avi"], "--out must end in"),
        (["--out", "x.mp4"], "say what to render"),
        (["--walk", "vector", "--out", "x.gif"], "needs --vector"),
        (["--walk", "vector", "--vector", "nope", "--out", "x.gif"], "not saved"),
        (["--walk", "random", "--size", "5000", "--out", "x.gif"], "--size"),
    ],
)
def test_cli_render_refuses_mistakes_with_one_line(tmp_path, args, message) -> None:
    args = [a if not a.startswith("x.") else str(tmp_path / a) for a in args]
    result = cli("render", str(MNIST_2D), *args)
    assert result.returncode == 2 and message in result.stderr
    assert not any(tmp_path.iterdir())


def test_cli_render_refuses_keyframes_of_the_wrong_size(tmp_path) -> None:
    np.save(tmp_path / "k.npy", np.zeros((2, 5), np.float32))
    result = cli("render", str(MNIST_2D), "--keyframes", str(tmp_path / "k.npy"), "--out", str(tmp_path / "k.gif"))
    assert result.returncode == 2 and "has 5 values per latent; the model's latent has 2" in result.stderr
