"""Writing a path through latent space to disk: a PNG strip, an animated GIF or an MP4, each with the
latents of every frame beside it (`<stem>_latents.npy`) and a JSON describing the path
(`<stem>_latents.json`).

Qt-free (the Interpolate tab runs `export_latents` in a worker). The image files hold the decoded
frames rounded to uint8 exactly as engines.images does, so decoding the saved latents reproduces them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .images import unit_to_uint8
from .latent import decode_latents

log = logging.getLogger(__name__)

FORMATS = ("png", "gif", "mp4")
MP4_MIN_SIDE = 256  # small frames are enlarged (nearest) so players show more than a speck


def mp4_writer() -> str | None:
    """Which imageio backend can write MP4 here ("FFMPEG" or "pyav"), or None."""
    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        return "FFMPEG"
    if importlib.util.find_spec("av") is not None:
        return "pyav"
    return None


def sidecar_paths(path: str | Path) -> tuple[Path, Path]:
    """(<stem>_latents.npy, <stem>_latents.json) next to an exported file."""
    path = Path(path)
    return path.with_name(f"{path.stem}_latents.npy"), path.with_name(f"{path.stem}_latents.json")


def _strip(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 -> (H, N*W, C): frames side by side, no gaps, so frame i is columns i*W..(i+1)*W."""
    n, h, w, c = frames.shape
    return frames.transpose(1, 0, 2, 3).reshape(h, n * w, c)


def _pil(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(frame[:, :, 0] if frame.shape[2] == 1 else frame)


def write_png_strip(path: Path, frames: np.ndarray) -> None:
    _pil(_strip(frames)).save(path)


def write_gif(path: Path, frames: np.ndarray, fps: float) -> None:
    """Animated GIF that loops forever. Pillow merges a frame identical to the one before into it
    (adding its duration), so a path that stands still shows fewer frames for the same time."""
    images = [_pil(f) for f in frames]
    images[0].save(
        path, save_all=True, append_images=images[1:], duration=max(20, round(1000 / fps)), loop=0, optimize=False
    )


def write_mp4(path: Path, frames: np.ndarray, fps: float) -> None:
    writer = mp4_writer()
    if writer is None:
        raise RuntimeError("MP4 needs imageio-ffmpeg or PyAV (pip install imageio-ffmpeg)")
    import imageio

    scale = max(1, -(-MP4_MIN_SIDE // frames.shape[1]))
    big = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    if big.shape[3] == 1:
        big = big.repeat(3, axis=3)
    big = big[:, : big.shape[1] // 2 * 2, : big.shape[2] // 2 * 2]  # yuv420p needs even sides
    big = np.ascontiguousarray(big)
    if writer == "FFMPEG":
        imageio.v2.mimwrite(path, list(big), format="FFMPEG", fps=fps, macro_block_size=1)
    else:
        imageio.v3.imwrite(path, big, plugin="pyav", codec="libx264", fps=fps, out_pixel_format="yuv420p")


def export_frames(
    path: str | Path, kind: str, frames: np.ndarray, latents: np.ndarray, meta: dict, fps: float = 12.0
) -> list[Path]:
    """Write `frames` ((N, H, W, C) uint8) as `kind` to `path`, and the latents and `meta` beside it."""
    if kind not in FORMATS:
        raise ValueError(f"unknown export format {kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "png":
        write_png_strip(path, frames)
    elif kind == "gif":
        write_gif(path, frames, fps)
    else:
        write_mp4(path, frames, fps)
    npy, js = sidecar_paths(path)
    np.save(npy, np.asarray(latents, np.float32))
    js.write_text(
        json.dumps(
            {
                **meta,
                "file": path.name,
                "format": kind,
                "fps": fps,
                "frame_count": int(len(latents)),
                "latents": npy.name,
            },
            indent=2,
        )
    )
    log.info("exported %d frames to %s", len(frames), path)
    return [path, npy, js]


def export_latents(
    model,
    latents: np.ndarray,
    kind: str,
    path: str | Path,
    meta: dict,
    fps: float = 12.0,
    should_stop: Callable[[], bool] | None = None,
) -> list[Path]:
    """Decode (N, D) `latents` with `model` and write them with export_frames. When should_stop()
    turns true during the decode nothing is written and the list is empty."""
    images = decode_latents(model, latents, batch=64, should_stop=should_stop)
    if len(images) < len(np.atleast_2d(latents)):
        log.info("export to %s stopped before it was written", path)
        return []
    return export_frames(path, kind, unit_to_uint8(images), latents, meta, fps)
