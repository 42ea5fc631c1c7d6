"""Live control: OSC and MIDI in, OSC out, mappings from controls to targets, and the walk player, all
driven by one frame clock in the GUI thread.

Messages arrive off the GUI thread (the OSC server's thread, a MIDI port's callback thread) and go into
an `Inbox`: per source only the newest value (and the peak since the last frame, for buttons) is kept,
plus a short list of recent messages. The inbox wakes the GUI with one queued Qt signal when it goes
from empty to non-empty, never once per message, so a flood cannot fill Qt's event queue. The frame
clock (`LiveControl`, a 66.7 Hz QTimer that runs only while there is something to do) drains the inbox
once per frame, maps each source to its target (newest value wins), advances a playing walk and sets
z at most once per frame; then, when OSC out is on, it sends z and the frame number.

`LiveControl.midi_message(msg)` is the very callback a mido input port calls, so MIDI is testable by
feeding it mido.Message objects where no MIDI backend (python-rtmidi) is installed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal

from engines.latent import lerp
from engines.walks import RandomWalk, VectorWalk, WalkSettings, path_position
from explorer.state import ExplorerState

log = logging.getLogger(__name__)

FRAME_MS = 15  # the frame clock: at most one z per frame; 66.7 Hz, so a late tick still leaves >= 60 fps
EDIT_QUIET_MS = 400  # live edits separated by less than this are one undo step
RECENT = 30  # recent messages kept for the panel's list
BLEND_S = 0.6  # a walk starts from the current z and blends into the walk over this long
OSC_Z, OSC_FRAME = "/latent/z", "/latent/frame"
TARGET_KINDS = ("dim", "vector", "walk_speed", "keyframe", "randomize")
RANGES = {"dim": (-3.0, 3.0), "vector": (-3.0, 3.0), "walk_speed": (0.0, 2.0), "keyframe": (0.0, 1.0)}


@dataclass(frozen=True)
class Target:
    """What a control drives: latent dimension `index` ("dim"), the strength of attribute vector `name`
    ("vector"), the walk's speed, the position along the path through the bookmarks ("keyframe"), or a
    new random z ("randomize", on a press: a value rising through 0.5). Incoming values are taken as
    0..1 (MIDI's 0..127 is scaled) and mapped onto RANGES."""

    kind: str
    index: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"unknown target {self.kind!r}")

    def label(self) -> str:
        return {
            "dim": f"z[{self.index}] slider",
            "vector": f"vector {self.name!r} strength",
            "walk_speed": "walk speed",
            "keyframe": "keyframe position (bookmarks)",
            "randomize": "randomize",
        }[self.kind]

    def value(self, unit: float) -> float:
        lo, hi = RANGES.get(self.kind, (0.0, 1.0))
        return lo + float(np.clip(unit, 0.0, 1.0)) * (hi - lo)

    def to_json(self) -> dict:
        return {"kind": self.kind, "index": self.index, "name": self.name}

    @classmethod
    def from_json(cls, d: dict) -> Target:
        return cls(str(d["kind"]), int(d.get("index", 0)), str(d.get("name", "")))


# --- message sources ---------------------------------------------------------------------------------------
def midi_source(msg) -> tuple[str, float] | None:
    """(source, value in 0..1) of a mido message, or None for messages that carry no control value."""
    channel = getattr(msg, "channel", 0) + 1
    if msg.type == "control_change":
        return f"midi cc {channel}:{msg.control}", msg.value / 127
    if msg.type in ("note_on", "note_off"):
        velocity = msg.velocity if msg.type == "note_on" else 0
        return f"midi note {channel}:{msg.note}", velocity / 127
    if msg.type == "pitchwheel":
        return f"midi pitch {channel}", (msg.pitch + 8192) / 16383
    return None


def midi_problem() -> str | None:
    """Why MIDI ports cannot be listed here (no backend), or None."""
    try:
        import mido

        mido.get_input_names()
    except Exception as error:  # noqa: BLE001 - ImportError of rtmidi, or a backend that fails to start
        return f"MIDI ports need python-rtmidi (pip install python-rtmidi): {str(error).splitlines()[0]}."
    return None


class Inbox:
    """Thread-safe: the newest value and the peak per source since the last drain, a count, and the
    recent messages. `notify` is called (from the sending thread) when the inbox stops being empty."""

    def __init__(self, notify: Callable[[], None]) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[float, float]] = {}  # source -> (newest, peak)
        self.recent: deque[tuple[float, str, float]] = deque(maxlen=RECENT)
        self.count = 0

    def put(self, source: str, value: float) -> None:
        with self._lock:
            was_empty = not self._latest
            old = self._latest.pop(source, None)
            self._latest[source] = (value, value if old is None else max(old[1], value))
            self.recent.append((time.time(), source, value))
            self.count += 1
        if was_empty:
            self._notify()

    def drain(self) -> dict[str, tuple[float, float]]:
        with self._lock:
            out, self._latest = self._latest, {}
        return out

    def snapshot(self) -> tuple[int, list[tuple[float, str, float]]]:
        with self._lock:
            return self.count, list(self.recent)


class OscServer:
    """A python-osc UDP server in its own thread; every message goes to `inbox` as (`osc ADDRESS`, its
    first numeric argument, or 1.0 when it has none)."""

    def __init__(self, inbox: Inbox, host: str = "0.0.0.0", port: int = 9000) -> None:
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import BlockingOSCUDPServer

        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._handle)
        self._inbox = inbox
        self.server = BlockingOSCUDPServer((host, port), dispatcher)  # raises OSError: port in use
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def _handle(self, address: str, *args) -> None:
        value = next((float(a) for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)), 1.0)
        if math.isfinite(value):
            self._inbox.put(f"osc {address}", value)

    def stop(self) -> None:
        self.server.shutdown()  # returns once serve_forever has ended (within its poll interval)
        self.server.server_close()
        self.thread.join(timeout=2)


# --- the walk player ------------------------------------------------------------------------------------
class WalkPlayer:
    """Plays a walk from the current z: walk time advances by speed x real seconds (so a speed change
    never jumps), and the first BLEND_S seconds blend from the z it started at."""

    def __init__(self) -> None:
        self.settings = WalkSettings()
        self.walk: RandomWalk | VectorWalk | None = None
        self.tau = 0.0
        self._start_z: np.ndarray | None = None
        self._elapsed = 0.0

    @property
    def playing(self) -> bool:
        return self.walk is not None

    def start(self, state: ExplorerState) -> None:
        vector = state.vectors.get(self.settings.vector or "") if self.settings.kind == "vector" else None
        if self.settings.kind == "vector" and vector is None:
            raise ValueError("pick an attribute vector to walk along (make or load one in the Arithmetic tab)")
        self.walk = self.settings.build(state.latent_dim, state.z.copy(), vector)
        self.tau, self._elapsed, self._start_z = 0.0, 0.0, state.z.copy()

    def stop(self) -> None:
        self.walk = None

    def reseed(self, seed: int) -> None:
        """A new random walk, blended into from where it is now."""
        self.settings = replace(self.settings, seed=seed)
        if isinstance(self.walk, RandomWalk):
            self._start_z = self.walk.at(self.tau)[0]
            self.walk = replace(self.walk, seed=seed)
            self._elapsed = 0.0

    def step(self, seconds: float) -> np.ndarray:
        assert self.walk is not None
        self.tau += self.settings.speed * seconds
        self._elapsed += seconds
        z = self.walk.at(self.tau)[0]
        if self._start_z is not None and self._elapsed < BLEND_S:
            x = self._elapsed / BLEND_S
            return lerp(self._start_z, z, x * x * (3 - 2 * x))
        return z


# --- the frame clock --------------------------------------------------------------------------------------
class LiveControl(QObject):
    """Mappings, learn mode, the walk player, OSC in and out and MIDI in, over `state`; see the module
    docstring. Public: `mappings` (source -> Target), `inbox`, `player`, `frame` (frames sent out)."""

    wake = Signal()  # emitted from any thread when the inbox fills; queued to the GUI thread
    learned = Signal(str)  # learn mode caught this source; the panel asks for its target
    mappingsChanged = Signal()
    walkChanged = Signal()  # the walk started, stopped, or its speed changed
    applied = Signal()  # a frame applied incoming values (for the panel's message list)
    problem = Signal(str)  # a one-line message for the user

    def __init__(self, state: ExplorerState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.inbox = Inbox(self.wake.emit)
        self.mappings: dict[str, Target] = {}
        self.player = WalkPlayer()
        self.learning = False
        self.frame = 0  # frames sent over OSC
        self.frames_applied = 0  # frame-clock ticks that set z (for tests and diagnostics)
        self.osc_server: OscServer | None = None
        self.midi_port = None
        self._osc_out = None
        self._sent_z: np.ndarray | None = None
        self._strengths: dict[str, float] = {}  # vector name -> strength applied so far
        self._last: dict[str, float] = {}  # source -> its newest value at the last frame (button edges)
        self._editing = False
        self._last_tick = time.perf_counter()
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self.tick)
        self._quiet = QTimer(self)
        self._quiet.setSingleShot(True)
        self._quiet.setInterval(EDIT_QUIET_MS)
        self._quiet.timeout.connect(self._end_edit)
        self.wake.connect(self._start_clock, Qt.ConnectionType.QueuedConnection)
        state.latentChanged.connect(self._z_changed)
        state.modelChanged.connect(self._model_changed)

    # --- inputs ---------------------------------------------------------------------------------------
    def start_osc(self, port: int, host: str = "0.0.0.0") -> int:
        """Listen for OSC on UDP `port` (0: any free port); returns the port. Raises OSError."""
        self.stop_osc()
        self.osc_server = OscServer(self.inbox, host, port)
        log.info("OSC server listening on %s:%d", host, self.osc_server.port)
        return self.osc_server.port

    def stop_osc(self) -> None:
        if self.osc_server is not None:
            self.osc_server.stop()
            self.osc_server = None

    def midi_message(self, msg) -> None:
        """The callback a mido input port calls (in its own thread) for every message."""
        source = midi_source(msg)
        if source is not None:
            self.inbox.put(*source)

    def open_midi(self, name: str) -> None:
        """Listen to the MIDI input port `name` (raises OSError/ImportError without a backend)."""
        import mido

        self.close_midi()
        self.midi_port = mido.open_input(name, callback=self.midi_message)

    def close_midi(self) -> None:
        if self.midi_port is not None:
            self.midi_port.close()
            self.midi_port = None

    def send_osc_to(self, host: str | None, port: int = 9001) -> None:
        """Send z and the frame number to host:port on every frame z changes (None: stop sending)."""
        if self._osc_out is not None:
            self._osc_out.close()
            self._osc_out = None
        if host is None:
            return
        from pythonosc.udp_client import SimpleUDPClient

        self._osc_out = SimpleUDPClient(host, port)
        self._sent_z = None
        self._start_clock()

    def stop(self) -> None:
        """Stop inputs, the walk and the clock (the panel's stop_work)."""
        self.stop_osc()
        self.close_midi()
        self.send_osc_to(None)
        self.stop_walk()
        self.timer.stop()
        self._end_edit()

    # --- mappings and learning ----------------------------------------------------------------------------
    def set_learning(self, on: bool) -> None:
        self.learning = on

    def assign(self, source: str, target: Target) -> None:
        self.mappings[source] = target
        self.mappingsChanged.emit()

    def unassign(self, source: str) -> None:
        self.mappings.pop(source, None)
        self.mappingsChanged.emit()

    def mappings_json(self) -> list[dict]:
        return [{"source": s, "target": t.to_json()} for s, t in self.mappings.items()]

    def load_mappings(self, items: list[dict]) -> None:
        self.mappings = {str(d["source"]): Target.from_json(d["target"]) for d in items}
        self.mappingsChanged.emit()

    # --- the walk -------------------------------------------------------------------------------------------
    def play_walk(self, settings: WalkSettings | None = None) -> None:
        """Play a walk from the current z (raises ValueError when it cannot start)."""
        if settings is not None:
            self.player.settings = settings
        self.player.start(self.state)
        self._begin_edit()
        self._last_tick = time.perf_counter()
        self._start_clock()
        self.walkChanged.emit()

    def stop_walk(self) -> None:
        if self.player.playing:
            self.player.stop()
            self._end_edit()  # the walk, from play to stop, is one undo step
            self.walkChanged.emit()

    def set_speed(self, speed: float) -> None:
        self.player.settings = replace(self.player.settings, speed=float(speed))
        self.walkChanged.emit()

    # --- the clock --------------------------------------------------------------------------------------------
    def _start_clock(self) -> None:
        if not self.timer.isActive():
            self._last_tick = time.perf_counter()
            self.timer.start()

    def _z_changed(self) -> None:
        if self._osc_out is not None:
            self._start_clock()

    def _model_changed(self) -> None:
        self.stop_walk()
        self._strengths.clear()

    def tick(self) -> None:
        """One frame: drain the inbox, apply the newest value per target, advance the walk, set z once,
        send it out. The clock stops itself when a frame had nothing to do."""
        now = time.perf_counter()
        seconds, self._last_tick = min(now - self._last_tick, 0.1), now
        messages = self.inbox.drain()
        busy = bool(messages) or self.player.playing
        z = self._apply(messages) if self.state.has_latent else None
        if self.player.playing and self.state.has_latent:
            z = self.player.step(seconds)
        if z is not None and not np.array_equal(z, self.state.z):
            if not self.player.playing:
                self._begin_edit()
                self._quiet.start()
            self.state.set_z(z, record=False)
            self.frames_applied += 1
        if messages:
            self.applied.emit()
        self._send_out()
        if not busy:
            self.timer.stop()

    def _apply(self, messages: dict[str, tuple[float, float]]) -> np.ndarray | None:
        """The z the messages ask for (None: unchanged); walk speed and randomize act at once."""
        z: np.ndarray | None = None
        if self.learning and messages:
            self.learning = False
            self.learned.emit(next(reversed(messages)))  # the source heard last (the inbox keeps arrival order)
        for source, (value, peak) in messages.items():
            previous = self._last.get(source, 0.0)
            self._last[source] = value
            target = self.mappings.get(source)
            if target is None:
                continue
            if target.kind == "walk_speed":
                self.set_speed(target.value(value))
                continue
            if target.kind == "randomize":
                if peak >= 0.5 and previous < 0.5:
                    self._randomize()
                    z = None  # the new z is set; later targets start from it
                continue
            if self.player.playing:
                continue  # the walk owns z while it plays
            base = self.state.z.copy() if z is None else z
            z = self._target_z(target, target.value(value), base)
        return z

    def _target_z(self, target: Target, value: float, z: np.ndarray) -> np.ndarray | None:
        if target.kind == "dim":
            if target.index < z.size:
                z[target.index] = value
            return z
        if target.kind == "vector":
            vector = self.state.vectors.get(target.name)
            if vector is None:
                return z
            z = z + (value - self._strengths.get(target.name, 0.0)) * vector
            self._strengths[target.name] = value
            return z.astype(np.float32)
        if target.kind == "keyframe":
            if len(self.state.bookmarks) < 2:
                self.problem.emit("keyframe position needs at least two bookmarks")
                return z
            keys = np.stack([m.z for m in self.state.bookmarks])
            return path_position(keys, value / RANGES["keyframe"][1], "spherical")
        return z

    def _randomize(self) -> None:
        if self.player.playing:
            self.player.reseed(self.player.settings.seed + 1)
        else:
            self._begin_edit()
            self.state.randomize()
            self._quiet.start()

    def _send_out(self) -> None:
        if self._osc_out is None or not self.state.has_latent:
            return
        z = self.state.z
        if self._sent_z is not None and np.array_equal(z, self._sent_z):
            return
        self._sent_z = z.copy()
        self.frame += 1
        try:
            self._osc_out.send_message(OSC_Z, [float(x) for x in z])
            self._osc_out.send_message(OSC_FRAME, self.frame)
        except OSError as error:
            self.send_osc_to(None)
            self.problem.emit(f"OSC out stopped: {error}")

    # --- undo: a burst of live edits is one step ----------------------------------------------------------------
    def _begin_edit(self) -> None:
        if not self._editing:
            self._editing = True
            self.state.begin_edit()

    def _end_edit(self) -> None:
        if self._editing and not self.player.playing:
            self._editing = False
            self.state.end_edit()
