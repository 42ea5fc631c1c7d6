"""Perform: the Control tab's OSC and MIDI control (real UDP sockets, the MIDI port callback), learn mode,
mappings in sessions, OSC out, walks played live and rendered, the presentation window, and the
Interpolate tab's loop export. Real windows and threads (pytest-qt, offscreen)."""

from __future__ import annotations

import socket
import threading

import mido
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient

from engines.export import sidecar_paths
from engines.images import unit_to_uint8
from engines.walks import closed_path
from explorer.live import RANGES, Target, midi_problem
from explorer.pixels import to_qimage

WAIT_MS = 15000


def control(window):
    return window.extra_panels["control"]


@pytest.fixture
def clients():
    """UDP clients made by `listen`, closed after the test."""
    made: list[SimpleUDPClient] = []
    yield made
    for client in made:
        client.close()


def listen(clients, panel) -> SimpleUDPClient:
    """Turn the panel's OSC server on, on a free port; a client that sends to it."""
    panel.osc_port_spin.setValue(0)  # any free port
    panel.osc_check.setChecked(True)
    assert panel.live.osc_server is not None, panel.osc_status.text()
    port = panel.live.osc_server.port
    assert f"port {port}" in panel.osc_status.text()
    clients.append(SimpleUDPClient("127.0.0.1", port))
    return clients[-1]


def learn(qtbot, panel, send, target: Target) -> str:
    """Learn mode through the widgets: Learn, a message arrives (`send()`), click the target."""
    panel.learn_button.click()
    send()
    qtbot.waitUntil(lambda: panel.learned_source is not None, timeout=WAIT_MS)
    source = panel.learned_source
    item = panel.target_item(target)
    rect = panel.targets.visualItemRect(item)
    qtbot.mouseClick(panel.targets.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.live.mappings[source] == target
    return source


def image_of(state) -> np.ndarray:
    return unit_to_uint8(state.decode(state.z))[0]


def test_an_osc_message_over_udp_moves_the_mapped_slider_and_the_image(
    qtbot, make_window, vae_checkpoint, clients
) -> None:
    window = make_window(vae_checkpoint)
    state, panel = window.state, control(window)
    window.show()
    client = listen(clients, panel)
    source = learn(qtbot, panel, lambda: client.send_message("/knob/1", 0.5), Target("dim", 1))
    assert source == "osc /knob/1"
    assert not panel.learn_button.isChecked() and "drives z[1] slider" in panel.learn_status.text()
    assert panel.mapping_table.rowCount() == 1 and panel.mapping_table.item(0, 0).text() == "osc /knob/1"
    # learn catches the control heard last, even when others came in the same frame
    panel.live.inbox.put("osc /other", 0.1)
    source = learn(qtbot, panel, lambda: panel.live.inbox.put("osc /fader/3", 0.2), Target("randomize"))
    assert source == "osc /fader/3" and "osc /other" not in panel.live.mappings
    panel.mapping_table.selectRow(1)
    panel.remove_mapping_button.click()
    assert list(panel.live.mappings) == ["osc /knob/1"] and panel.mapping_table.rowCount() == 1
    client.send_message("/knob/1", 0.9)
    expected = RANGES["dim"][0] + 0.9 * (RANGES["dim"][1] - RANGES["dim"][0])  # 2.4
    qtbot.waitUntil(lambda: abs(state.z[1] - expected) < 1e-6, timeout=WAIT_MS)
    assert state.z[0] == 0.0  # only the mapped dimension moved
    slider = window.explore.sliders.slider(1)
    qtbot.waitUntil(lambda: slider.value() == round(expected * 100), timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: window.explore.last_decoded_z is not None and np.array_equal(window.explore.last_decoded_z, state.z),
        timeout=WAIT_MS,
    )
    shown = window.explore.current_image()
    np.testing.assert_allclose(shown, state.decode(state.z)[0], atol=1e-5)
    qtbot.waitUntil(lambda: panel.messages.count() and "/knob/1" in panel.messages.item(0).text(), timeout=WAIT_MS)
    panel.osc_check.setChecked(False)
    assert panel.live.osc_server is None


def test_a_flood_of_osc_messages_is_coalesced_and_ends_at_the_last_value(
    qtbot, make_window, vae_checkpoint, clients
) -> None:
    """10,000 messages within about a second: the GUI thread is woken once per batch (not per message),
    sets z at most once per frame, and ends at the last value sent."""
    window = make_window(vae_checkpoint)
    state, panel = window.state, control(window)
    client = listen(clients, panel)
    panel.live.assign("osc /flood", Target("dim", 0))
    changes, wakes = [], []
    state.latentChanged.connect(lambda: changes.append(1))
    panel.live.wake.connect(lambda: wakes.append(1))
    values = np.linspace(0.0, 1.0, 10_000)
    done = threading.Event()

    def flood() -> None:
        pause = threading.Event()
        for start in range(0, len(values), 100):  # 100 messages every 10 ms: 10,000 in about a second
            for v in values[start : start + 100]:
                client.send_message("/flood", float(v))
            pause.wait(0.01)
        done.set()

    sender = threading.Thread(target=flood)
    sender.start()
    qtbot.waitUntil(done.is_set, timeout=WAIT_MS * 2)
    sender.join()
    qtbot.waitUntil(lambda: state.z[0] == pytest.approx(RANGES["dim"][1]), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not panel.live.timer.isActive(), timeout=WAIT_MS)
    received = panel.live.inbox.count
    assert received > 9000  # UDP on localhost: nearly all arrive (the last one did: z is at 1.0)
    assert len(changes) == panel.live.frames_applied < received / 20  # once per frame, not per message
    assert len(wakes) < received / 20  # the GUI's event queue saw a wake per batch
    qtbot.waitUntil(lambda: panel.message_count.text() == f"{received} messages", timeout=WAIT_MS)


def test_midi_through_the_port_callback_with_learn_mode(qtbot, make_window, vae_checkpoint) -> None:
    """The very callback a mido port calls (from its own thread), fed mido.Message objects."""
    window = make_window(vae_checkpoint)
    state, panel = window.state, control(window)
    if midi_problem() is not None:
        assert "python-rtmidi" in panel.midi_status.text() and not panel.midi_check.isEnabled()

    def from_port_thread(msg: mido.Message) -> None:
        thread = threading.Thread(target=panel.live.midi_message, args=(msg,))
        thread.start()
        thread.join()

    source = learn(
        qtbot,
        panel,
        lambda: from_port_thread(mido.Message("control_change", channel=2, control=7, value=64)),
        Target("dim", 2),
    )
    assert source == "midi cc 3:7"
    from_port_thread(mido.Message("control_change", channel=2, control=7, value=127))
    qtbot.waitUntil(lambda: state.z[2] == pytest.approx(3.0), timeout=WAIT_MS)
    from_port_thread(mido.Message("control_change", channel=2, control=7, value=0))
    qtbot.waitUntil(lambda: state.z[2] == pytest.approx(-3.0), timeout=WAIT_MS)
    # a pad (note on, then off within the same frame) presses "randomize" once
    panel.live.assign("midi note 1:36", Target("randomize"))
    seed = state.seed
    panel.live.midi_message(mido.Message("note_on", note=36, velocity=100))
    panel.live.midi_message(mido.Message("note_off", note=36))
    qtbot.waitUntil(lambda: state.seed == seed + 1, timeout=WAIT_MS)
    qtbot.wait(100)
    assert state.seed == seed + 1
    panel.live.midi_message(mido.Message("clock"))  # no control value: ignored
    assert panel.live.inbox.count == 5


@pytest.mark.skipif(midi_problem() is not None, reason="no MIDI backend (python-rtmidi) installed for virtual ports")
def test_midi_from_a_virtual_port(qtbot, make_window, vae_checkpoint) -> None:  # pragma: no cover - needs rtmidi
    window = make_window(vae_checkpoint)
    state, panel = window.state, control(window)
    with mido.open_output("latent-explorer-test", virtual=True) as out:
        panel.live.open_midi("latent-explorer-test")
        panel.live.assign("midi cc 1:1", Target("dim", 0))
        out.send(mido.Message("control_change", control=1, value=127))
        qtbot.waitUntil(lambda: state.z[0] == pytest.approx(3.0), timeout=WAIT_MS)
        panel.live.close_midi()


def test_vector_speed_and_keyframe_targets(qtbot, make_window, vae_checkpoint) -> None:
    window = make_window(vae_checkpoint)
    state, live = window.state, control(window).live
    vector = np.array([1.0, 0.5, 0.0, -1.0], np.float32)
    state.set_vector("smile", vector)
    assert control(window).target_item(Target("vector", name="smile")) is not None
    live.assign("a", Target("vector", name="smile"))
    live.assign("b", Target("walk_speed"))
    live.assign("c", Target("keyframe"))
    start = state.z.copy()
    live.inbox.put("a", 1.0)  # strength +3
    qtbot.waitUntil(lambda: np.allclose(state.z, start + 3 * vector), timeout=WAIT_MS)
    live.inbox.put("a", 0.5)  # back to strength 0
    qtbot.waitUntil(lambda: np.allclose(state.z, start), timeout=WAIT_MS)
    live.inbox.put("b", 0.25)
    qtbot.waitUntil(lambda: live.player.settings.speed == pytest.approx(0.5), timeout=WAIT_MS)
    assert control(window).speed_spin.value() == pytest.approx(0.5)
    for z in ([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]):
        state.set_z(np.array(z, np.float32))
        state.add_bookmark()
    live.inbox.put("c", 0.5)  # the middle bookmark
    qtbot.waitUntil(lambda: np.allclose(state.z, [0, 1, 0, 0], atol=1e-6), timeout=WAIT_MS)


def test_osc_out_sends_z_and_the_frame_number(qtbot, make_window, vae_checkpoint) -> None:
    window = make_window(vae_checkpoint)
    state, panel = window.state, control(window)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    try:
        panel.out_host.setText("127.0.0.1")
        panel.out_port_spin.setValue(receiver.getsockname()[1])
        panel.out_check.setChecked(True)
        state.set_z(np.array([0.25, -1.0, 2.0, 0.5], np.float32))
        got = {}

        def received() -> bool:  # polled while the event loop runs (the frame clock sends)
            try:
                message = OscMessage(receiver.recv(65536))
            except BlockingIOError:
                return False
            got[message.address] = message.params
            return len(got) == 2

        qtbot.waitUntil(received, timeout=WAIT_MS)
        assert got["/latent/z"] == pytest.approx([0.25, -1.0, 2.0, 0.5])
        assert got["/latent/frame"] == [panel.live.frame] and panel.live.frame >= 1
    finally:
        panel.out_check.setChecked(False)
        receiver.close()


def test_mappings_and_walk_settings_round_trip_through_a_session(qtbot, make_window, vae_checkpoint, tmp_path) -> None:
    window = make_window(vae_checkpoint)
    panel = control(window)
    panel.live.assign("osc /a", Target("dim", 3))
    panel.live.assign("midi cc 1:7", Target("randomize"))
    panel.speed_spin.setValue(1.25)
    panel.smooth_spin.setValue(0.8)
    panel.shell_check.setChecked(False)
    panel.out_port_spin.setValue(7777)
    assert window.save_session(tmp_path / "s.json")
    other = make_window(vae_checkpoint)
    assert other.load_session(tmp_path / "s.json")
    loaded = control(other)
    assert loaded.live.mappings == {"osc /a": Target("dim", 3), "midi cc 1:7": Target("randomize")}
    assert loaded.mapping_table.rowCount() == 2
    assert loaded.walk_settings() == panel.walk_settings()
    assert loaded.walk_settings().speed == 1.25 and loaded.out_port_spin.value() == 7777


def test_presentation_shows_the_live_image_and_the_walk_and_esc_leaves(qtbot, make_window, vae_checkpoint) -> None:
    window = make_window(vae_checkpoint)
    state, panel = window.state, control(window)
    window.show()
    window.present_action.trigger()
    shown = window.presentation
    assert shown is not None and shown.isVisible() and shown.isFullScreen()
    assert shown.windowFlags() & Qt.WindowType.FramelessWindowHint
    state.randomize(5)
    want = to_qimage(state.decode(state.z)[0])
    qtbot.waitUntil(lambda: shown.image is not None and shown.image == want, timeout=WAIT_MS)
    frame = shown.grab().toImage()
    rect = shown.image_rect()
    assert rect.height() == shown.height() or rect.width() == shown.width()  # fills the screen
    image = shown.image
    for y in range(0, image.height(), 3):  # nearest scaling: each model pixel is a block of its colour
        for x in range(0, image.width(), 3):
            sx = rect.x() + int((x + 0.5) * rect.width() / image.width())
            sy = rect.y() + int((y + 0.5) * rect.height() / image.height())
            assert frame.pixelColor(sx, sy).red() == image.pixelColor(x, y).red()
    # a walk plays: z moves on the sphere and the presentation shows new frames
    panel.play_button.click()
    assert panel.live.player.playing and panel.play_button.text() == "Stop"
    before = shown.frames_shown
    qtbot.waitUntil(lambda: shown.frames_shown >= before + 10, timeout=WAIT_MS)
    # after blending in from where it started, the walk stays on the sphere |z| = sqrt(4)
    qtbot.waitUntil(lambda: abs(np.linalg.norm(state.z) - 2.0) < 1e-4, timeout=WAIT_MS)
    panel.play_button.click()
    assert not panel.live.player.playing
    state.undo()  # the whole walk was one undo step
    np.testing.assert_allclose(state.z, np.random.default_rng(5).standard_normal(4).astype(np.float32))
    qtbot.keyClick(shown, Qt.Key.Key_Escape)
    assert window.presentation is None and not shown.isVisible()


def test_walk_export_from_the_control_tab_and_cancel(qtbot, make_window, vae_checkpoint, tmp_path) -> None:
    window = make_window(vae_checkpoint)
    panel = control(window)
    panel.render.seconds_spin.setValue(2.0)
    panel.render.fps_spin.setValue(10.0)
    panel.render.size_combo.setCurrentText("256 px")
    panel.render.loop_check.setChecked(True)
    job = panel.export_walk("gif", tmp_path / "walk.gif")
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        pass
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 20 and gif.size == (256, 256)
    latents = np.load(sidecar_paths(tmp_path / "walk.gif")[0])
    steps = np.linalg.norm(np.diff(latents, axis=0), axis=1)
    assert np.linalg.norm(latents[0] - latents[-1]) <= steps.max() * 1.05  # loops
    assert "Wrote walk.gif" in panel.render.status.text()
    panel.render.seconds_spin.setValue(600.0)
    job = panel.export_walk("gif", tmp_path / "long.gif")
    assert panel.render.cancel_button.isVisibleTo(panel.render)
    panel.render.cancel_button.click()
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        pass
    assert not (tmp_path / "long.gif").exists() and not any(p.name.startswith(".long") for p in tmp_path.iterdir())
    assert "cancelled" in panel.render.status.text()


def test_interpolate_exports_a_seamless_loop_at_a_chosen_size(qtbot, make_window, vae_checkpoint, tmp_path) -> None:
    window = make_window(vae_checkpoint)
    panel = window.extra_panels["interpolation"]
    panel.frames_spin.setValue(12)
    panel.render.size_combo.setCurrentText("256 px")
    panel.render.filter_combo.setCurrentText("smooth")
    panel.render.loop_check.setChecked(True)
    job = panel.export("gif", tmp_path / "loop.gif")
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        pass
    with Image.open(tmp_path / "loop.gif") as gif:
        assert gif.n_frames == 12 and gif.size == (256, 256)
    keys = np.stack([k.z for k in panel.keyframes])
    np.testing.assert_allclose(
        np.load(sidecar_paths(tmp_path / "loop.gif")[0]), closed_path(keys, 12, panel.mode), atol=1e-6
    )
