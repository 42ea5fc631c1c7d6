"""Writing a path through latent space to disk: a PNG strip, an animated GIF or an MP4 (H.264), each
with the latents of every frame beside it (`<stem>_latents.npy`) and a JSON describing the path
(`<stem>_latents.json`).

Qt-free (the Interpolate and Control tabs run `render_latents` in a worker; `latent-explorer render`
runs it in the terminal). Frames are decoded in batches and streamed to the encoder, so a long render
holds one batch in memory, reports progress after each, and stops at the next batch when asked; the
video is written to a temporary file beside the target and renamed at the end, so a cancelled or
failed render leaves nothing behind. The image files hold the decoded frames rounded to uint8 exactly
as engines.images does and then scaled (`VideoSettings`: size and filter) by `resize_frames`, so
decoding the saved latents and resizing them the same way reproduces them (exactly for PNG, within the
codec's loss for GIF palettes and H.264).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .images import unit_to_uint8
from .latent import decode_latents

log = logging.getLogger(__name__)

FORMATS = ("png", "gif", "mp4")
FILTERS = ("nearest", "smooth")
MP4_MIN_SIDE = 256  # small frames are enlarged (nearest) so players show more than a speck
MAX_SIDE = 1024  # the largest frame side offered: 16x the 64 px models, 36x the 28 px ones
MP4_CRF = 17  # x264 constant-rate factor: visually lossless on these flat images (a decoded frame is > 40 dB)
RENDER_BATCH = 32  # latents decoded (and frames held) at a time


@dataclass(frozen=True)
class VideoSettings:
    """How frames are written: `fps`; `size`, the longer side in pixels (None: the model's own pixels,
    for MP4 enlarged to at least MP4_MIN_SIDE); `filter`, "nearest" (crisp model pixels) or "smooth"
    (bicubic)."""

    fps: float = 12.0
    size: int | None = None
    filter: str = "nearest"

    def __post_init__(self) -> None:
        if not 0 < self.fps <= 240:
            raise ValueError(f"fps must be in (0, 240], not {self.fps}")
        if self.size is not None and not 8 <= self.size <= MAX_SIDE:
            raise ValueError(f"the frame size must be between 8 and {MAX_SIDE} px, not {self.size}")
        if self.filter not in FILTERS:
            raise ValueError(f"filter must be one of {FILTERS}, not {self.filter!r}")

    def frame_shape(self, height: int, width: int, kind: str) -> tuple[int, int]:
        """The (height, width) of written frames for model images of height x width (even for MP4,
        as yuv420p needs)."""
        if self.size is None:
            scale = max(1, -(-MP4_MIN_SIDE // height)) if kind == "mp4" else 1
            h, w = height * scale, width * scale
        else:
            ratio = self.size / max(height, width)
            h, w = max(1, round(height * ratio)), max(1, round(width * ratio))
        if kind == "mp4":
            h, w = max(2, h // 2 * 2), max(2, w // 2 * 2)
        return h, w


def resize_frames(frames: np.ndarray, shape: tuple[int, int], filter: str = "nearest") -> np.ndarray:
    """(N, h, w, C) uint8 -> (N, H, W, C) uint8. Whole-number nearest enlargements repeat pixels;
    anything else goes through Pillow (NEAREST or BICUBIC), so the same call always gives the same pixels."""
    n, h, w, c = frames.shape
    height, width = shape
    if (height, width) == (h, w):
        return frames
    if filter == "nearest" and height % h == 0 and width % w == 0:
        return frames.repeat(height // h, axis=1).repeat(width // w, axis=2)
    resample = Image.Resampling.NEAREST if filter == "nearest" else Image.Resampling.BICUBIC
    out = np.empty((n, height, width, c), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = np.asarray(_pil(frame).resize((width, height), resample)).reshape(height, width, c)
    return out


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


class _Sink:
    """Receives frames batch by batch and writes `kind` to `target` via a temporary file beside it
    (renamed by `commit`, deleted by `discard`). MP4 frames stream to ffmpeg; GIF and PNG frames are
    kept (a PNG strip and Pillow's GIF writer need them all) and written at the end."""

    def __init__(self, target: Path, kind: str, fps: float) -> None:
        self.target, self.kind, self.fps = target, kind, fps
        self.partial = target.with_name(f".{target.stem}.partial{target.suffix or '.' + kind}")
        self.frames: list[np.ndarray] = []
        self.writer = None
        if kind == "mp4":
            backend = mp4_writer()
            if backend is None:
                raise RuntimeError("MP4 needs imageio-ffmpeg or PyAV (pip install imageio-ffmpeg)")
            import imageio

            if backend == "FFMPEG":
                self.writer = imageio.v2.get_writer(
                    self.partial,
                    format="FFMPEG",
                    fps=fps,
                    codec="libx264",
                    quality=None,
                    pixelformat="yuv420p",
                    macro_block_size=1,
                    ffmpeg_params=["-crf", str(MP4_CRF)],
                )
            else:
                self.writer = imageio.v3.imopen(self.partial, "w", plugin="pyav")
                self.writer.init_video_stream("libx264", fps=fps)

    def add(self, frames: np.ndarray) -> None:
        if self.kind != "mp4":
            self.frames.extend(frames)
            return
        rgb = np.ascontiguousarray(frames.repeat(3, axis=3) if frames.shape[3] == 1 else frames)
        for frame in rgb:
            if hasattr(self.writer, "append_data"):
                self.writer.append_data(frame)
            else:
                self.writer.write_frame(frame)

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def commit(self) -> None:
        if self.kind == "png":
            write_png_strip(self.partial, np.stack(self.frames))
        elif self.kind == "gif":
            write_gif(self.partial, np.stack(self.frames), self.fps)
        self._close()
        os.replace(self.partial, self.target)

    def discard(self) -> None:
        try:
            self._close()
        finally:
            self.partial.unlink(missing_ok=True)


def _write_sidecars(path: Path, kind: str, latents: np.ndarray, meta: dict, fps: float) -> list[Path]:
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
    return [path, npy, js]


def export_frames(
    path: str | Path, kind: str, frames: np.ndarray, latents: np.ndarray, meta: dict, fps: float = 12.0
) -> list[Path]:
    """Write `frames` ((N, H, W, C) uint8, already decoded) as `kind` to `path` at the model's pixels
    (MP4: enlarged as VideoSettings(size=None) does), and the latents and `meta` beside it."""
    if kind not in FORMATS:
        raise ValueError(f"unknown export format {kind!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = VideoSettings(fps=fps)
    sink = _Sink(path, kind, fps)
    try:
        sink.add(resize_frames(frames, settings.frame_shape(*frames.shape[1:3], kind)))
        sink.commit()
    except BaseException:
        sink.discard()
        raise
    log.info("exported %d frames to %s", len(frames), path)
    return _write_sidecars(path, kind, latents, meta, fps)


def render_latents(
    model,
    latents: np.ndarray,
    kind: str,
    path: str | Path,
    meta: dict,
    settings: VideoSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Path]:
    """Decode (N, D) `latents` with `model` in batches, scale each frame (`settings`) and write them as
    `kind` ("png", "gif", "mp4") to `path`, with `<stem>_latents.npy` and `.json` beside it; returns
    the files written. `progress(done, total)` is called after each batch; when `should_stop()` turns
    true nothing is left on disk and the list is empty."""
    if kind not in FORMATS:
        raise ValueError(f"unknown export format {kind!r}")
    settings = settings or VideoSettings()
    latents = np.atleast_2d(np.asarray(latents, np.float32))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = _Sink(path, kind, settings.fps)
    total = len(latents)
    try:
        for start in range(0, total, RENDER_BATCH):
            if should_stop is not None and should_stop():
                sink.discard()
                log.info("render to %s stopped after %d of %d frames; nothing written", path, start, total)
                return []
            images = unit_to_uint8(decode_latents(model, latents[start : start + RENDER_BATCH]))
            sink.add(resize_frames(images, settings.frame_shape(*images.shape[1:3], kind), settings.filter))
            if progress is not None:
                progress(min(start + RENDER_BATCH, total), total)
        sink.commit()
    except BaseException:
        sink.discard()
        raise
    log.info("rendered %d frames to %s", total, path)
    return _write_sidecars(path, kind, latents, {**meta, "video": asdict(settings)}, settings.fps)


def export_latents(
    model,
    latents: np.ndarray,
    kind: str,
    path: str | Path,
    meta: dict,
    fps: float = 12.0,
    should_stop: Callable[[], bool] | None = None,
) -> list[Path]:
    """Decode (N, D) `latents` with `model` and write them at the model's pixels (render_latents with
    VideoSettings(fps)). When should_stop() turns true nothing is written and the list is empty."""
    return render_latents(model, latents, kind, path, meta, VideoSettings(fps=fps), should_stop=should_stop)
