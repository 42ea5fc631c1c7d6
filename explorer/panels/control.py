"""Control: live control over OSC and MIDI, with learn mode; walks (random, along a vector) played live
or rendered to video; z sent out over OSC.

A thin view over `explorer.live.LiveControl` (the inbox, mappings, frame clock and walk player): enable
the OSC server or a MIDI port, press Learn, move a knob (or send a message), then click a target in the
list. Mappings, walk settings and the OSC settings are saved in the session. The walk keeps playing when
another tab is shown (View > Present shows it full screen).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from engines.export import mp4_writer
from engines.walks import WALK_KINDS, WalkSettings, walk_latents
from explorer.live import LiveControl, Target, midi_problem
from explorer.state import ExplorerState
from explorer.workers import Job

from .panel_tools import MAX_SEED, laid_out, spin_box
from .render_box import RenderBox, ask_video_path
from .tab import Tab

log = logging.getLogger(__name__)

SHOWN_MESSAGES = 12
LIST_REFRESH_MS = 100  # the message list redraws at most this often, however many messages come
WALK_LABELS = {"random": "Random walk", "vector": "Along a vector (back and forth)"}


class ControlPanel(Tab):
    """The Control tab. Public: `live` (the LiveControl), its widgets by name (see _build_ui), and
    `learned_source` (the source learn mode caught, waiting for a target click)."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.live = LiveControl(state, self)
        self.learned_source: str | None = None
        self._list_timer = QTimer(self)
        self._list_timer.setSingleShot(True)
        self._list_timer.setInterval(LIST_REFRESH_MS)
        self._list_timer.timeout.connect(self._show_messages)
        content = self._build_ui()
        self.live.learned.connect(self._learned)
        self.live.mappingsChanged.connect(self._show_mappings)
        self.live.walkChanged.connect(self._show_walk)
        self.live.applied.connect(lambda: self._list_timer.isActive() or self._list_timer.start())
        self.live.problem.connect(self.status.setText)
        state.vectorsChanged.connect(self._fill_targets)
        state.vectorsChanged.connect(self._fill_vectors)
        self.set_content(content)

    # --- layout ---------------------------------------------------------------------------------------
    def _build_ui(self) -> QWidget:
        content, row = laid_out(QHBoxLayout)

        left, col = laid_out(QVBoxLayout, width=290, margins=(0, 0, 4, 0))
        inputs, form = laid_out(QFormLayout, QGroupBox("Inputs"), margins=None)
        self.osc_check = QCheckBox("OSC on UDP port")
        self.osc_port_spin = spin_box(0, 65535, 9000, tip="0: any free port")
        osc_row = QHBoxLayout()
        osc_row.addWidget(self.osc_check)
        osc_row.addWidget(self.osc_port_spin)
        form.addRow(osc_row)
        self.osc_status = QLabel("Off. Messages: any address, first argument 0..1.")
        self.osc_status.setWordWrap(True)
        form.addRow(self.osc_status)
        self.midi_combo = QComboBox()
        self.midi_check = QCheckBox("MIDI in")
        midi_row = QHBoxLayout()
        midi_row.addWidget(self.midi_check)
        midi_row.addWidget(self.midi_combo, 1)
        form.addRow(midi_row)
        self.midi_status = QLabel()
        self.midi_status.setWordWrap(True)
        form.addRow(self.midi_status)
        col.addWidget(inputs)

        out, oform = laid_out(QFormLayout, QGroupBox("OSC out: /latent/z (floats), /latent/frame (int)"), margins=None)
        self.out_check = QCheckBox("Send to")
        self.out_host = QLineEdit("127.0.0.1")
        self.out_port_spin = spin_box(1, 65535, 9001)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_check)
        out_row.addWidget(self.out_host, 1)
        out_row.addWidget(self.out_port_spin)
        oform.addRow(out_row)
        col.addWidget(out)

        recent, rcol = laid_out(QVBoxLayout, QGroupBox("Recent messages"), margins=None)
        self.message_count = QLabel("0 messages")
        rcol.addWidget(self.message_count)
        self.messages = QListWidget()
        self.messages.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        rcol.addWidget(self.messages, 1)
        col.addWidget(recent, 1)
        row.addWidget(left)

        middle, mcol = laid_out(QVBoxLayout, width=280, margins=(4, 0, 4, 0))
        maps, mapcol = laid_out(QVBoxLayout, QGroupBox("Mappings"), margins=None)
        self.learn_button = QPushButton("Learn")
        self.learn_button.setCheckable(True)
        self.learn_button.setToolTip("Move a knob or send a message, then click the target it should drive")
        self.learn_status = QLabel("Press Learn, move a control, then click a target below.")
        self.learn_status.setWordWrap(True)
        mapcol.addWidget(self.learn_button)
        mapcol.addWidget(self.learn_status)
        mapcol.addWidget(QLabel("Targets"))
        self.targets = QListWidget()
        mapcol.addWidget(self.targets, 1)
        self.mapping_table = QTableWidget(0, 2)
        self.mapping_table.setHorizontalHeaderLabels(["Control", "Drives"])
        self.mapping_table.horizontalHeader().setStretchLastSection(True)
        self.mapping_table.verticalHeader().setVisible(False)
        self.mapping_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.mapping_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        mapcol.addWidget(self.mapping_table, 1)
        self.remove_mapping_button = QPushButton("Remove mapping")
        mapcol.addWidget(self.remove_mapping_button)
        mcol.addWidget(maps, 1)
        row.addWidget(middle)

        right, wcol = laid_out(QVBoxLayout, margins=(4, 0, 0, 0))
        walk, wform = laid_out(QFormLayout, QGroupBox("Walk"), margins=None)
        self.walk_kind = QComboBox()
        for kind in WALK_KINDS:
            self.walk_kind.addItem(WALK_LABELS[kind], kind)
        wform.addRow("Walk", self.walk_kind)
        self.walk_vector = QComboBox()
        self.walk_vector.setToolTip("An attribute vector (made or loaded in the Arithmetic tab)")
        wform.addRow("Vector", self.walk_vector)
        self.speed_spin = spin_box(0.01, 5.0, 0.5, step=0.05, tip="prior standard deviations per second")
        wform.addRow("Speed", self.speed_spin)
        self.smooth_spin = spin_box(0.0, 1.0, 0.5, step=0.1, tip="1: slow, similar waves; 0: a rougher mix")
        wform.addRow("Smoothness", self.smooth_spin)
        self.shell_check = QCheckBox("Stay on the sphere |z| = sqrt(D)")
        self.shell_check.setChecked(True)
        self.shell_check.setToolTip("Off: |z| varies as it does under the prior (every frame is a prior draw)")
        wform.addRow(self.shell_check)
        self.amplitude_spin = spin_box(0.1, 10.0, 2.0, step=0.1, tip="vector strength at the ends of the swing")
        wform.addRow("Amplitude", self.amplitude_spin)
        self.walk_seed = spin_box(0, MAX_SEED, 0, prefix="seed ")
        wform.addRow("Seed", self.walk_seed)
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        wform.addRow(self.play_button)
        wcol.addWidget(walk)

        self.render = RenderBox("Render the walk", timing=True, size=512)
        buttons = QHBoxLayout()
        self.mp4_button, self.gif_button = QPushButton("Export MP4…"), QPushButton("Export GIF…")
        buttons.addWidget(self.mp4_button)
        buttons.addWidget(self.gif_button)
        self.render.layout().addRow(buttons)
        if mp4_writer() is None:
            self.mp4_button.setEnabled(False)
            self.mp4_button.setToolTip("No MP4 writer here: install imageio-ffmpeg.")
        wcol.addWidget(self.render)
        self.status = QLabel()
        self.status.setWordWrap(True)
        wcol.addWidget(self.status)
        wcol.addStretch(1)
        row.addWidget(right, 1)

        self.osc_check.toggled.connect(self._toggle_osc)
        self.midi_check.toggled.connect(self._toggle_midi)
        self.out_check.toggled.connect(self._toggle_out)
        self.learn_button.toggled.connect(self._toggle_learn)
        self.targets.itemClicked.connect(self._target_clicked)
        self.remove_mapping_button.clicked.connect(self._remove_mapping)
        self.play_button.toggled.connect(self._toggle_play)
        self.speed_spin.valueChanged.connect(self.live.set_speed)
        self.mp4_button.clicked.connect(lambda: self._export_dialog("mp4"))
        self.gif_button.clicked.connect(lambda: self._export_dialog("gif"))
        self._fill_midi()
        return content

    # --- model ------------------------------------------------------------------------------------------------
    def reset_for_model(self) -> None:
        self._fill_targets()
        self._fill_vectors()
        self._show_walk()

    def _fill_targets(self) -> None:
        self.targets.clear()
        targets = [Target("dim", i) for i in range(self.state.latent_dim)]
        targets += [Target("vector", name=name) for name in sorted(self.state.vectors)]
        targets += [Target("walk_speed"), Target("keyframe"), Target("randomize")]
        for target in targets:
            item = QListWidgetItem(target.label())
            item.setData(Qt.ItemDataRole.UserRole, target)
            self.targets.addItem(item)

    def target_item(self, target: Target) -> QListWidgetItem | None:
        """The list item of `target` (for clicking it), or None."""
        for i in range(self.targets.count()):
            if self.targets.item(i).data(Qt.ItemDataRole.UserRole) == target:
                return self.targets.item(i)
        return None

    def _fill_vectors(self) -> None:
        with signals_blocked(self.walk_vector):
            previous = self.walk_vector.currentText()
            self.walk_vector.clear()
            self.walk_vector.addItems(sorted(self.state.vectors))
            if previous in self.state.vectors:
                self.walk_vector.setCurrentText(previous)

    # --- inputs -----------------------------------------------------------------------------------------------
    def _toggle_osc(self, on: bool) -> None:
        if not on:
            self.live.stop_osc()
            self.osc_status.setText("Off.")
            return
        try:
            port = self.live.start_osc(self.osc_port_spin.value())
        except OSError as error:
            self.osc_status.setText(
                f"Cannot listen on UDP port {self.osc_port_spin.value()}: {error.strerror or error}"
            )
            with signals_blocked(self.osc_check):
                self.osc_check.setChecked(False)
            return
        self.osc_status.setText(f"Listening on UDP port {port}. Any address; first argument 0..1.")

    def _fill_midi(self) -> None:
        problem = midi_problem()
        if problem is not None:
            self.midi_status.setText(problem + " OSC works without it.")
            self.midi_check.setEnabled(False)
            self.midi_combo.setEnabled(False)
            return
        import mido

        names = mido.get_input_names()
        self.midi_combo.addItems(names)
        self.midi_status.setText(f"{len(names)} MIDI input port(s)." if names else "No MIDI input ports found.")
        self.midi_check.setEnabled(bool(names))

    def _toggle_midi(self, on: bool) -> None:
        if not on:
            self.live.close_midi()
            return
        try:
            self.live.open_midi(self.midi_combo.currentText())
        except (OSError, ImportError, ValueError) as error:
            self.midi_status.setText(f"Cannot open {self.midi_combo.currentText()}: {error}")
            with signals_blocked(self.midi_check):
                self.midi_check.setChecked(False)
            return
        self.midi_status.setText(f"Listening to {self.midi_combo.currentText()}.")

    def _toggle_out(self, on: bool) -> None:
        try:
            self.live.send_osc_to(self.out_host.text().strip() if on else None, self.out_port_spin.value())
        except (OSError, ValueError) as error:
            self.status.setText(f"Cannot send OSC to {self.out_host.text()}: {error}")
            with signals_blocked(self.out_check):
                self.out_check.setChecked(False)

    def _show_messages(self) -> None:
        count, recent = self.live.inbox.snapshot()
        self.message_count.setText(f"{count} message{'s' if count != 1 else ''}")
        self.messages.clear()
        for when, source, value in reversed(recent[-SHOWN_MESSAGES:]):
            target = self.live.mappings.get(source)
            drives = f"  → {target.label()}" if target else ""
            self.messages.addItem(f"{time.strftime('%H:%M:%S', time.localtime(when))}  {source}  {value:.3f}{drives}")

    # --- learn and mappings ---------------------------------------------------------------------------------
    def _toggle_learn(self, on: bool) -> None:
        self.live.set_learning(on)
        self.learned_source = None
        self.learn_status.setText("Move a control or send a message…" if on else "Learn is off.")

    def _learned(self, source: str) -> None:
        self.learned_source = source
        self.learn_status.setText(f"Caught {source}: now click the target it should drive.")

    def _target_clicked(self, item: QListWidgetItem) -> None:
        if self.learned_source is None:
            return
        target = item.data(Qt.ItemDataRole.UserRole)
        self.live.assign(self.learned_source, target)
        self.learn_status.setText(f"{self.learned_source} drives {target.label()}.")
        self.learned_source = None
        with signals_blocked(self.learn_button):
            self.learn_button.setChecked(False)

    def _show_mappings(self) -> None:
        self.mapping_table.setRowCount(0)
        for source, target in self.live.mappings.items():
            row = self.mapping_table.rowCount()
            self.mapping_table.insertRow(row)
            self.mapping_table.setItem(row, 0, QTableWidgetItem(source))
            self.mapping_table.setItem(row, 1, QTableWidgetItem(target.label()))
        self.mapping_table.resizeColumnToContents(0)

    def _remove_mapping(self) -> None:
        row = self.mapping_table.currentRow()
        if row >= 0:
            self.live.unassign(self.mapping_table.item(row, 0).text())

    # --- the walk ---------------------------------------------------------------------------------------------
    def walk_settings(self) -> WalkSettings:
        return WalkSettings(
            kind=self.walk_kind.currentData(),
            speed=self.speed_spin.value(),
            smoothness=self.smooth_spin.value(),
            seed=self.walk_seed.value(),
            shell=self.shell_check.isChecked(),
            vector=self.walk_vector.currentText() or None,
            amplitude=self.amplitude_spin.value(),
        )

    def _toggle_play(self, on: bool) -> None:
        if not on:
            self.live.stop_walk()
            return
        try:
            self.live.play_walk(self.walk_settings())
        except ValueError as error:
            self.status.setText(str(error))
            with signals_blocked(self.play_button):
                self.play_button.setChecked(False)

    def _show_walk(self) -> None:
        playing = self.live.player.playing
        with signals_blocked(self.play_button), signals_blocked(self.speed_spin):
            self.play_button.setChecked(playing)
            self.play_button.setText("Stop" if playing else "Play")
            self.speed_spin.setValue(self.live.player.settings.speed)

    def export_walk(self, kind: str, path: str | Path) -> Job | None:
        """Render `render.seconds` of the walk set here, from the current z, to `path` in a worker."""
        settings = self.walk_settings()
        vector = self.state.vectors.get(settings.vector or "") if settings.kind == "vector" else None
        if settings.kind == "vector" and vector is None:
            self.status.setText("Pick an attribute vector to walk along (make one in the Arithmetic tab).")
            return None
        frames, fps = self.render.frames(), self.render.fps_spin.value()
        walk = settings.build(self.state.latent_dim, self.state.z.copy(), vector)
        latents = walk_latents(walk, frames, fps, settings.speed, loop=self.render.loop_check.isChecked())
        ckpt = self.state.checkpoint
        meta = {
            "walk": asdict(settings),
            "loop": self.render.loop_check.isChecked(),
            "seconds": frames / fps,
            "start_z": self.state.z.tolist(),
            "checkpoint": str(ckpt.path) if ckpt.path else None,
            "model": ckpt.kind,
        }
        return self.render.start(self.state.model, latents, kind, path, meta)

    def _export_dialog(self, kind: str) -> None:
        path = ask_video_path(self, kind, "walk")
        if path:
            self.export_walk(kind, path)

    # --- sessions and stopping ------------------------------------------------------------------------------
    def session_data(self) -> dict:
        return {
            "mappings": self.live.mappings_json(),
            "walk": asdict(self.walk_settings()),
            "osc_port": self.osc_port_spin.value(),
            "osc_out": {"host": self.out_host.text(), "port": self.out_port_spin.value()},
        }

    def load_session_data(self, d: dict) -> None:
        self.live.load_mappings(d.get("mappings", []))
        walk = d.get("walk", {})
        kind = walk.get("kind", "random")
        if kind in WALK_KINDS:
            self.walk_kind.setCurrentIndex(WALK_KINDS.index(kind))
        for spin, key in (
            (self.speed_spin, "speed"),
            (self.smooth_spin, "smoothness"),
            (self.amplitude_spin, "amplitude"),
        ):
            if key in walk:
                spin.setValue(float(walk[key]))
        self.walk_seed.setValue(int(walk.get("seed", self.walk_seed.value())))
        self.shell_check.setChecked(bool(walk.get("shell", True)))
        if walk.get("vector") in self.state.vectors:
            self.walk_vector.setCurrentText(walk["vector"])
        self.osc_port_spin.setValue(int(d.get("osc_port", self.osc_port_spin.value())))
        out = d.get("osc_out", {})
        self.out_host.setText(str(out.get("host", self.out_host.text())))
        self.out_port_spin.setValue(int(out.get("port", self.out_port_spin.value())))

    def stop_work(self) -> None:
        self.live.stop()
        self.render.cancel()
        super().stop_work()

    def stopping_message(self) -> str | None:
        return "Stopping the video render…" if self.render.busy() else None
