"""Interpolate: a path through keyframes, previewed as a filmstrip, played back and exported.

Keyframes come from the current z, a bookmark, a seeded random sample or (VAE) an encoded dataset
image. The path (linear or spherical) is decoded in a worker; the newest request wins.

Playback steps the frame slider with a QTimer and shows frames in the panel only; the main view
is left alone unless "Follow in the main view" is ticked, in which case every played frame is sent
to the state and the whole playback is one undo step. "Go to frame" sends the shown frame's z.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shiboken6
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from engines import latent
from engines.export import mp4_writer
from engines.walks import closed_path
from explorer.pixels import to_pixmap
from explorer.state import ExplorerState
from explorer.workers import Job

from .panel_tools import MAX_SEED, debounce, decode_job, laid_out, spin_box
from .render_box import RenderBox, ask_video_path
from .tab import Tab
from .thumbnails import Thumbnails, icon_list

log = logging.getLogger(__name__)

THUMB_PX = 56
FRAME_PX = 256


@dataclass
class Keyframe:
    label: str
    z: np.ndarray


def _decode_path(job, model, keys: np.ndarray, frames: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    path = latent.interpolate_path(keys, frames, mode)
    return path, decode_job(job, model, path)


def _encode_index(job, state: ExplorerState, model, index: int) -> tuple[int, np.ndarray]:
    dataset = state.dataset(train=False)  # the held-out split, as in the other panels
    if not 0 <= index < len(dataset):
        raise ValueError(f"the dataset has {len(dataset)} images; index {index} is out of range")
    return index, latent.encode_indices(model, dataset, np.array([index])).latents[0]


class InterpolationPanel(Tab):
    """The Interpolate tab. Public state: `keyframes`, `path` and `images` (the decoded preview),
    `export_job`, `mode`; `thumbnail_count()` (keyframe thumbnails shown)."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.keyframes: list[Keyframe] = []
        self.path: np.ndarray | None = None  # (frames, D) latents of the preview
        self.images: np.ndarray | None = None  # (frames, H, W, C) decoded preview
        self._following = False
        self._job = self.job_slot()
        self._encode_job = self.job_slot()
        self.export_job: Job | None = None
        self._preview_timer = debounce(self, self.refresh, 40)
        self._play_timer = QTimer(self)
        self._play_timer.timeout.connect(self._next_frame)
        content = self._build_ui()
        state.bookmarksChanged.connect(self._fill_bookmarks)
        self.set_content(content)

    # --- layout ---------------------------------------------------------------------------------
    def _build_ui(self) -> QWidget:
        content, row = laid_out(QHBoxLayout)

        left, col = laid_out(QVBoxLayout, width=300, margins=(0, 0, 4, 0))
        keys_box, keys = laid_out(QVBoxLayout, QGroupBox("Keyframes"), margins=None)
        self.key_list = QListWidget()
        self.key_list.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.thumbnails = Thumbnails(self.key_list, THUMB_PX, self.job_slot())
        keys.addWidget(self.key_list, 1)
        grid = QGridLayout()
        self.add_current_button = QPushButton("Add current z")
        grid.addWidget(self.add_current_button, 0, 0, 1, 2)
        self.bookmark_combo = QComboBox()
        self.add_bookmark_button = QPushButton("Add bookmark")
        grid.addWidget(self.bookmark_combo, 1, 0)
        grid.addWidget(self.add_bookmark_button, 1, 1)
        self.seed_spin = spin_box(0, MAX_SEED, prefix="seed ")
        self.add_random_button = QPushButton("Add random")
        self.add_random_button.setToolTip("z ~ N(0, I) drawn from this seed (the same seed gives the same z)")
        grid.addWidget(self.seed_spin, 2, 0)
        grid.addWidget(self.add_random_button, 2, 1)
        self.index_spin = spin_box(0, 10**7, prefix="image #")
        self.add_image_button = QPushButton("Add dataset image")
        grid.addWidget(self.index_spin, 3, 0)
        grid.addWidget(self.add_image_button, 3, 1)
        keys.addLayout(grid)
        edit_row = QHBoxLayout()
        self.remove_button, self.up_button, self.down_button = (
            QPushButton("Remove"),
            QPushButton("Up"),
            QPushButton("Down"),
        )
        for button in (self.remove_button, self.up_button, self.down_button):
            edit_row.addWidget(button)
        keys.addLayout(edit_row)
        col.addWidget(keys_box, 1)

        path_box, form = laid_out(QFormLayout, QGroupBox("Path"), margins=None)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(latent.PATH_MODES)
        self.mode_combo.setToolTip("spherical: along great circles, keeping the latent's length typical of N(0, I)")
        form.addRow("Interpolation", self.mode_combo)
        self.frames_spin = spin_box(2, 600, 16)
        form.addRow("Frames", self.frames_spin)
        col.addWidget(path_box)
        row.addWidget(left)

        right, rcol = laid_out(QVBoxLayout)
        self.frame_view = QLabel()
        self.frame_view.setFixedSize(FRAME_PX, FRAME_PX)
        self.frame_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.frame_view.setStyleSheet("background: #202124; border: 1px solid #555;")
        rcol.addWidget(self.frame_view, 0, Qt.AlignmentFlag.AlignHCenter)
        self.frame_caption = QLabel()
        self.frame_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        rcol.addWidget(self.frame_caption)
        play_row = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.fps_spin = spin_box(1.0, 60.0, 12.0, suffix=" fps")
        self.goto_button = QPushButton("Go to frame")
        self.goto_button.setToolTip("Make this frame's latent the current z")
        for w in (self.play_button, self.frame_slider, self.fps_spin, self.goto_button):
            play_row.addWidget(w, 1 if w is self.frame_slider else 0)
        rcol.addLayout(play_row)
        self.follow_check = QCheckBox("Follow in the main view while playing (one undo step)")
        rcol.addWidget(self.follow_check)
        self.strip = icon_list(72, one_row=True)
        self.strip.setFixedHeight(118)
        self.strip.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        rcol.addWidget(self.strip)
        export_row = QHBoxLayout()
        self.png_button, self.gif_button, self.mp4_button = (QPushButton(t) for t in ("PNG strip…", "GIF…", "MP4…"))
        for button in (self.png_button, self.gif_button, self.mp4_button):
            export_row.addWidget(button)
        export_row.addStretch(1)
        rcol.addLayout(export_row)
        self.render = RenderBox("Export settings")  # size, filter, loop; progress and Cancel
        rcol.addWidget(self.render)
        if mp4_writer() is None:
            self.mp4_button.setEnabled(False)
            self.mp4_button.setToolTip("No MP4 writer here: install imageio-ffmpeg (or PyAV) to export MP4.")
        self.status = QLabel()
        self.status.setWordWrap(True)
        rcol.addWidget(self.status)
        rcol.addStretch(1)
        row.addWidget(right, 1)

        self.add_current_button.clicked.connect(lambda: self.add_keyframe(self.state.z, "current z"))
        self.add_bookmark_button.clicked.connect(self._add_bookmark)
        self.add_random_button.clicked.connect(self._add_random)
        self.add_image_button.clicked.connect(self._add_dataset_image)
        self.remove_button.clicked.connect(self._remove)
        self.up_button.clicked.connect(lambda: self._move(-1))
        self.down_button.clicked.connect(lambda: self._move(1))
        self.mode_combo.currentIndexChanged.connect(self._preview_timer.start)
        self.frames_spin.valueChanged.connect(self._preview_timer.start)
        self.frame_slider.valueChanged.connect(self._show_frame)
        self.strip.currentRowChanged.connect(lambda r: r >= 0 and self.frame_slider.setValue(r))
        self.play_button.toggled.connect(self._play)
        self.fps_spin.valueChanged.connect(lambda: self._play_timer.setInterval(round(1000 / self.fps_spin.value())))
        self.goto_button.clicked.connect(self.go_to_frame)
        self.png_button.clicked.connect(lambda: self._export_dialog("png"))
        self.gif_button.clicked.connect(lambda: self._export_dialog("gif"))
        self.mp4_button.clicked.connect(lambda: self._export_dialog("mp4"))
        return content

    # --- model ----------------------------------------------------------------------------------
    def reset_for_model(self) -> None:
        self._stop_playing()
        self.thumbnails.forget()
        self.keyframes, self.path, self.images = [], None, None
        self.strip.clear()
        self.frame_view.clear()
        self.frame_caption.clear()
        self.status.clear()
        if not self.usable:
            self.key_list.clear()
            return
        encodes = self.state.has_encoder
        self.add_image_button.setEnabled(encodes)
        self.index_spin.setEnabled(encodes)
        self.add_image_button.setToolTip(
            "Encoder mean of this held-out image"
            if encodes
            else "This model has no encoder (a GAN), so dataset images have no latent"
        )
        self._fill_bookmarks()
        for seed in (1, 2):  # something to look at straight away
            self.keyframes.append(Keyframe(f"random (seed {seed})", self._random_z(seed)))
        self.seed_spin.setValue(3)
        self._keyframes_changed()

    def _random_z(self, seed: int) -> np.ndarray:
        # The same draw as ExplorerState.randomize(seed), so "seed 5" means one z everywhere.
        return np.random.default_rng(seed).standard_normal(self.state.latent_dim).astype(np.float32)

    def _fill_bookmarks(self) -> None:
        with signals_blocked(self.bookmark_combo):
            self.bookmark_combo.clear()
            self.bookmark_combo.addItems([m.name for m in self.state.bookmarks])
        self.add_bookmark_button.setEnabled(bool(self.state.bookmarks))

    # --- keyframes ------------------------------------------------------------------------------
    def add_keyframe(self, z: np.ndarray, label: str) -> None:
        z = np.asarray(z, np.float32).reshape(-1)
        if z.shape != (self.state.latent_dim,):
            raise ValueError(f"a keyframe needs {self.state.latent_dim} values, not {z.shape[0]}")
        self.keyframes.append(Keyframe(label, z.copy()))
        self._keyframes_changed(select=len(self.keyframes) - 1)

    def _add_bookmark(self) -> None:
        i = self.bookmark_combo.currentIndex()
        if 0 <= i < len(self.state.bookmarks):
            mark = self.state.bookmarks[i]
            self.add_keyframe(mark.z, f"bookmark {mark.name}")

    def _add_random(self) -> None:
        seed = self.seed_spin.value()
        self.add_keyframe(self._random_z(seed), f"random (seed {seed})")
        self.seed_spin.setValue(seed + 1)

    def _add_dataset_image(self) -> Job | None:
        ckpt = self.state.checkpoint
        if ckpt is None or not self.state.has_encoder:
            return None
        self.status.setText(f"Encoding dataset image #{self.index_spin.value()}…")
        return self._encode_job.start(
            _encode_index,
            self.state,
            ckpt.model,
            self.index_spin.value(),
            on_result=self._dataset_image_encoded,
            on_failed=lambda msg: self.status.setText(f"Could not encode: {msg}"),
        )

    def _dataset_image_encoded(self, result: tuple[int, np.ndarray]) -> None:
        index, z = result
        self.status.clear()
        self.add_keyframe(z, f"dataset image #{index}")

    def _remove(self) -> None:
        row = self.key_list.currentRow()
        if 0 <= row < len(self.keyframes):
            del self.keyframes[row]
            self._keyframes_changed(select=min(row, len(self.keyframes) - 1))

    def _move(self, step: int) -> None:
        row = self.key_list.currentRow()
        other = row + step
        if 0 <= row < len(self.keyframes) and 0 <= other < len(self.keyframes):
            self.keyframes[row], self.keyframes[other] = self.keyframes[other], self.keyframes[row]
            self._keyframes_changed(select=other)

    def _keyframes_changed(self, select: int | None = None) -> None:
        self.key_list.clear()
        for k, key in enumerate(self.keyframes):  # thumbnails: known ones now, new ones from a worker
            self.key_list.addItem(self.thumbnails.item(key.z, f"{k + 1}. {key.label}"))
        if select is not None and select >= 0:
            self.key_list.setCurrentRow(select)
        self.frames_spin.setMinimum(max(2, len(self.keyframes)))
        enough = len(self.keyframes) >= 2
        for button in (self.png_button, self.gif_button, self.goto_button, self.play_button):
            button.setEnabled(enough)
        self.mp4_button.setEnabled(enough and mp4_writer() is not None)
        self._preview_timer.start()

    def thumbnail_count(self) -> int:
        """How many keyframes show their thumbnail."""
        return self.thumbnails.shown()

    # --- preview --------------------------------------------------------------------------------
    def hideEvent(self, event) -> None:
        # A hidden tab should not keep stepping (or moving z). This also runs while the window is
        # destroyed, when the child widgets may be gone already: touch them only if they are alive.
        alive = shiboken6.isValid(self._play_timer) and shiboken6.isValid(self.play_button)
        if alive and (self._play_timer.isActive() or self._following):
            self._stop_playing()
        super().hideEvent(event)

    def class_changed(self) -> None:
        """Another class: the keyframes stay, their thumbnails and the path are decoded again."""
        self.thumbnails.forget()
        self.refresh()

    def update_view(self) -> None:
        """Decode the keyframes' thumbnails and the path in workers."""
        self.thumbnails.decode_missing(self.state.model, [key.z for key in self.keyframes])
        if len(self.keyframes) < 2:
            self.path, self.images = None, None
            self.strip.clear()
            self.frame_view.clear()
            self.frame_caption.setText("Add at least two keyframes.")
            return
        keys = np.stack([k.z for k in self.keyframes])
        self.status.setText("Decoding frames…")
        self._job.start(
            _decode_path,
            self.state.model,
            keys,
            self.frames_spin.value(),
            self.mode,
            on_result=self._show_path,
            on_failed=lambda msg: self.status.setText(f"Decoding failed: {msg}"),
        )

    @property
    def mode(self) -> str:
        return self.mode_combo.currentText()

    def _show_path(self, result: tuple[np.ndarray, np.ndarray]) -> None:
        self.path, self.images = result
        self.status.clear()
        keys = set(latent.keyframe_positions(len(self.keyframes), len(self.path)).tolist())
        with signals_blocked(self.strip):
            self.strip.clear()
            for i, image in enumerate(self.images):
                item = QListWidgetItem(QIcon(to_pixmap(image, 72)), f"{i + 1}{' ◆' if i in keys else ''}")
                item.setToolTip(f"frame {i + 1} (a keyframe)" if i in keys else f"frame {i + 1}")
                self.strip.addItem(item)
        with signals_blocked(self.frame_slider):
            self.frame_slider.setRange(0, len(self.path) - 1)
            self.frame_slider.setValue(min(self.frame_slider.value(), len(self.path) - 1))
        self._show_frame(self.frame_slider.value())

    def _show_frame(self, i: int) -> None:
        if self.images is None or not 0 <= i < len(self.images):
            return
        self.frame_view.setPixmap(to_pixmap(self.images[i], FRAME_PX - 4))
        self.frame_caption.setText(f"frame {i + 1} of {len(self.images)}")
        with signals_blocked(self.strip):
            self.strip.setCurrentRow(i)
        if self._following:
            self.state.set_z(self.path[i], record=False)

    def go_to_frame(self) -> None:
        if self.path is not None:
            self.state.set_z(self.path[self.frame_slider.value()])

    # --- playback -------------------------------------------------------------------------------
    def _play(self, on: bool) -> None:
        if on and self.path is not None:
            self.play_button.setText("Pause")
            self._play_timer.start(round(1000 / self.fps_spin.value()))
            if self.follow_check.isChecked():
                self.state.begin_edit()
                self._following = True
        else:
            self._stop_playing()

    def _stop_playing(self) -> None:
        self._play_timer.stop()
        if self._following:
            self._following = False
            self.state.end_edit()
        with signals_blocked(self.play_button):
            self.play_button.setChecked(False)
        self.play_button.setText("Play")

    def _next_frame(self) -> None:
        if self.path is None:
            self._stop_playing()
            return
        self.frame_slider.setValue((self.frame_slider.value() + 1) % len(self.path))

    # --- export ---------------------------------------------------------------------------------
    def _export_dialog(self, kind: str) -> None:
        path = ask_video_path(self, kind, "interpolation")
        if path:
            self.export(kind, path)

    def export(self, kind: str, path: str | Path) -> Job | None:
        """Decode the path and write it as `kind` ("png", "gif", "mp4") to `path` in a worker, at the
        export settings' size and filter (with "Seamless loop", a path that returns to the first
        keyframe), with `<stem>_latents.npy` and `<stem>_latents.json` beside it; the job's result lists
        the files. Progress and Cancel are in the export settings box."""
        if len(self.keyframes) < 2 or self.state.model is None:
            return None
        keys = np.stack([k.z for k in self.keyframes])
        frames = self.frames_spin.value()
        loop = self.render.loop_check.isChecked()
        path_latents = (
            closed_path(keys, frames, self.mode) if loop else latent.interpolate_path(keys, frames, self.mode)
        )
        ckpt = self.state.checkpoint
        meta = {
            "mode": self.mode,
            "frames": frames,
            "loop": loop,
            "keyframes": [{"label": k.label, "z": k.z.tolist()} for k in self.keyframes],
            "keyframe_frames": latent.keyframe_positions(len(keys) + loop, frames + loop).tolist()[: len(keys)],
            "checkpoint": str(ckpt.path) if ckpt.path else None,
            "model": ckpt.kind,
        }
        self.export_job = self.render.start(self.state.model, path_latents, kind, path, meta, fps=self.fps_spin.value())
        return self.export_job

    # --- sessions -------------------------------------------------------------------------------
    def session_data(self) -> dict:
        return {
            "keyframes": [{"label": k.label, "z": k.z.tolist()} for k in self.keyframes],
            "mode": self.mode,
            "frames": self.frames_spin.value(),
            "fps": self.fps_spin.value(),
            "loop": self.render.loop_check.isChecked(),
        }

    def load_session_data(self, d: dict) -> None:
        dim = self.state.latent_dim
        keys = [
            Keyframe(str(k.get("label", "keyframe")), np.asarray(k["z"], np.float32))
            for k in d.get("keyframes", [])
            if len(k.get("z", [])) == dim
        ]
        if len(keys) != len(d.get("keyframes", [])):
            log.warning(
                "dropped %d keyframes that do not fit this model's %d-D latent",
                len(d.get("keyframes", [])) - len(keys),
                dim,
            )
        self.keyframes = keys
        with signals_blocked(self.mode_combo), signals_blocked(self.frames_spin):
            if d.get("mode") in latent.PATH_MODES:
                self.mode_combo.setCurrentText(d["mode"])
            self.frames_spin.setMinimum(max(2, len(keys)))
            self.frames_spin.setValue(int(d.get("frames", self.frames_spin.value())))
        self.fps_spin.setValue(float(d.get("fps", self.fps_spin.value())))
        self.render.loop_check.setChecked(bool(d.get("loop", False)))
        self._keyframes_changed()

    def stop_work(self) -> None:
        self._stop_playing()
        self.render.cancel()
        super().stop_work()

    def stopping_message(self) -> str | None:
        return "Stopping the export…" if self.render.busy() else None
