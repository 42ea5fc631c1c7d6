"""The shape every tab shares (explorer.panels.tab.Tab) and the one worker mechanism (explorer.workers),
driven with real widgets and real threads (pytest-qt)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import re  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from engines import latent  # noqa: E402
from explorer.image_view import ImageView  # noqa: E402
from explorer.panels import EXTRA_PANELS  # noqa: E402
from explorer.panels import tab as tab_module  # noqa: E402
from explorer.panels.arithmetic import ArithmeticPanel  # noqa: E402
from explorer.panels.tab import Tab  # noqa: E402
from explorer.pixels import image_array  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402
from explorer.workers import Latest, running_jobs, start_job  # noqa: E402

WAIT = 15_000


def docstring_example() -> dict:
    """The example of explorer/panels/tab.py's docstring, run as written."""
    code = re.search(r"For example::\n\n(.*?)\n\n(?=\S)", tab_module.__doc__, re.S).group(1)
    names = {"Tab": Tab, "ImageView": ImageView, "latent": latent}
    exec(compile("\n".join(line[4:] for line in code.splitlines()), "tab.py docstring", "exec"), names)  # noqa: S102
    return names


# --- the base ------------------------------------------------------------------------------------
def test_the_docstring_tab_is_gated_decodes_only_when_shown_and_resets(qtbot, vae_checkpoint, pixelcnn_checkpoint):
    state = ExplorerState()
    tab = docstring_example()["PictureTab"](state)
    qtbot.addWidget(tab)
    assert tab.gate.currentIndex() == 0 and "Open a checkpoint" in tab.gate.message.text()
    state.open_checkpoint(pixelcnn_checkpoint, device="cpu")
    assert tab.gate.currentIndex() == 0 and "VAE or GAN" in tab.gate.message.text() and not tab.usable

    state.open_checkpoint(vae_checkpoint, device="cpu")
    state.randomize(3)
    assert tab.usable and tab.gate.currentIndex() == 1
    assert tab.is_dirty() and tab.decodes.started == 0  # hidden: nothing decoded yet

    tab.show()
    qtbot.waitUntil(lambda: tab.view.array() is not None and not tab.busy(), timeout=WAIT)
    np.testing.assert_array_equal(tab.view.array(), image_array(state.decode(state.z)[0]))
    started = tab.decodes.started

    tab.hide()
    state.randomize(4)
    state.randomize(5)
    assert tab.decodes.started == started and tab.is_dirty()  # hidden: the change waits for the show
    tab.show()
    qtbot.waitUntil(lambda: not tab.busy(), timeout=WAIT)
    assert tab.decodes.started == started + 1  # one decode, of the newest z
    np.testing.assert_array_equal(tab.view.array(), image_array(state.decode(state.z)[0]))

    state.open_checkpoint(pixelcnn_checkpoint, device="cpu")  # reset_for_model clears the view
    assert tab.view.array() is None and tab.gate.currentIndex() == 0


def test_stop_work_and_a_model_change_cancel_the_tabs_jobs(qtbot, state_with_vae, vae_checkpoint):
    release = threading.Event()
    results = []

    def slow(job):
        while not (release.is_set() or job.cancelled):
            release.wait(0.01)
        return "done"

    state = state_with_vae
    tab = Tab(state)
    qtbot.addWidget(tab)
    slot = tab.job_slot()
    tab.set_content(ImageView())
    job = slot.start(slow, on_result=results.append)
    qtbot.waitUntil(job.is_running, timeout=WAIT)
    tab.stop_work()
    with qtbot.waitSignal(job.finished, timeout=WAIT):
        pass
    assert job.cancelled and results == [] and not tab.busy()

    job = slot.start(slow, on_result=results.append)
    qtbot.waitUntil(job.is_running, timeout=WAIT)
    with qtbot.waitSignal(job.finished, timeout=WAIT):
        state.open_checkpoint(vae_checkpoint, device="cpu")  # another model: the old one's work is dropped
    assert job.cancelled and results == []


# --- the worker mechanism ------------------------------------------------------------------------
def gated(release: threading.Event, started: list):
    def work(job, value):
        started.append(value)
        while not (release.is_set() or job.cancelled):
            release.wait(0.005)
        return value

    return work


def test_a_coalescing_slot_finishes_the_running_job_and_runs_only_the_newest_request(qtbot):
    release, started, shown = threading.Event(), [], []
    slot = Latest(interrupt=False)
    work = gated(release, started)
    first = slot.start(work, 0, on_result=shown.append)
    qtbot.waitUntil(lambda: started == [0], timeout=WAIT)
    waiting = [slot.start(work, k, on_result=shown.append) for k in range(1, 20)]  # while 0 runs
    assert all(job.cancelled for job in waiting[:-1]) and not waiting[-1].cancelled
    release.set()
    qtbot.waitUntil(lambda: shown == [0, 19] and not slot.busy(), timeout=WAIT)  # the one in flight, then the newest
    assert started == [0, 19] and slot.started == 2 and not first.cancelled and not slot.busy()


def test_an_interrupting_slot_cancels_the_running_job_and_drops_its_result(qtbot):
    release, started, shown = threading.Event(), [], []
    slot = Latest()
    work = gated(release, started)
    old = slot.start(work, "old", on_result=shown.append)
    qtbot.waitUntil(lambda: started == ["old"], timeout=WAIT)
    new = slot.start(work, "new", on_result=shown.append)
    assert old.cancelled
    qtbot.waitUntil(lambda: started == ["old", "new"], timeout=WAIT)  # once the old one has stopped
    release.set()
    with qtbot.waitSignal(new.finished, timeout=WAIT):
        pass
    assert shown == ["new"]
    slot.start(work, "dropped", on_result=shown.append)
    slot.cancel()
    qtbot.waitUntil(lambda: not slot.busy(), timeout=WAIT)
    assert shown == ["new"]


class Steered:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")

    def stop(self) -> None:
        self.calls.append("stop")


def test_a_job_steers_what_its_work_builds_and_keeps_earlier_requests(qtbot):
    built, handed = threading.Event(), threading.Event()
    target = Steered()

    def work(job):
        built.wait(5)
        ok = job.steer(target)
        handed.set()
        return ok

    job = start_job(work)
    job.pause()  # before the target exists
    results = []
    job.result.connect(results.append)
    built.set()
    qtbot.waitUntil(handed.is_set, timeout=WAIT)
    job.resume()
    job.cancel()
    assert target.calls == ["pause", "resume", "stop"]
    qtbot.waitUntil(lambda: not job.is_running(), timeout=WAIT)

    built.clear()
    late = Steered()
    steered = []
    job = start_job(lambda j: (built.wait(5), steered.append(j.steer(late))))
    job.cancel()  # before the target exists: the work is told not to run it
    built.set()
    qtbot.waitUntil(lambda: steered == [False], timeout=WAIT)
    assert late.calls == []


# --- no decode on the GUI thread, and the window stops every tab ----------------------------------
@pytest.fixture
def decode_threads(monkeypatch):
    """Patches the VAE class's decode to record the thread of every call."""
    from engines.models.vae import VAE

    calls: list[bool] = []  # True: on the GUI (main) thread
    real = VAE.decode

    def decode(self, z):
        calls.append(threading.current_thread() is threading.main_thread())
        return real(self, z)

    monkeypatch.setattr(VAE, "decode", decode)
    return calls


def test_arithmetic_interpolate_and_bookmarks_decode_in_workers(make_window, vae_checkpoint, qtbot, decode_threads):
    window = make_window(vae_checkpoint)
    window.resize(1100, 760)
    window.show()
    state = window.state
    tabs = {window.tabs.tabText(i): i for i in range(window.tabs.count())}
    arithmetic, interpolation = window.extra_panels["arithmetic"], window.extra_panels["interpolation"]

    window.tabs.setCurrentIndex(tabs["Arithmetic"])
    qtbot.waitUntil(lambda: arithmetic.gallery.count() == 24, timeout=WAIT)
    for slot, row in zip("ABC", (0, 1, 2), strict=True):
        arithmetic.add_latent(slot, arithmetic.gallery_latents[row])
    state.set_vector("v", np.ones(4, np.float32))
    arithmetic.vector_combo.setCurrentText("v")
    for value in (50, 100, 150):
        arithmetic.strength_slider.setValue(value)
    qtbot.waitUntil(
        lambda: (
            not arithmetic.operand_views["result"].pixmap().isNull()
            and not arithmetic.apply_preview.pixmap().isNull()
            and not arithmetic.busy()
        ),
        timeout=WAIT,
    )

    window.tabs.setCurrentIndex(tabs["Interpolate"])
    interpolation.add_random_button.click()
    interpolation.frames_spin.setValue(7)
    qtbot.waitUntil(
        lambda: (
            interpolation.thumbnail_count() == 3 and interpolation.images is not None and len(interpolation.images) == 7
        ),
        timeout=WAIT,
    )

    window.bookmark_action.trigger()
    state.randomize(9)
    window.bookmark_action.trigger()
    qtbot.waitUntil(lambda: window.bookmarks.thumbnail_count() == 2, timeout=WAIT)
    qtbot.waitUntil(lambda: not running_jobs(), timeout=WAIT)
    assert len(decode_threads) > 10 and not any(decode_threads), "a view decoded on the GUI thread"


def test_a_hidden_arithmetic_tab_decodes_nothing_until_shown(qtbot, state_with_vae, decode_threads):
    state = state_with_vae
    panel = ArithmeticPanel(state)
    qtbot.addWidget(panel)
    state.set_vector("v", np.ones(4, np.float32))
    panel.vector_combo.setCurrentText("v")
    panel.strength_slider.setValue(120)
    panel.add_latent("A", np.zeros(4, np.float32))
    qtbot.wait(100)
    assert decode_threads == [] and panel.apply_preview.pixmap().isNull()
    panel.show()
    qtbot.waitUntil(
        lambda: (
            not panel.apply_preview.pixmap().isNull()
            and panel.gallery.count() == 24
            and not panel.operand_views["A"].pixmap().isNull()
        ),
        timeout=WAIT,
    )
    assert decode_threads and not any(decode_threads)


def test_closing_the_window_stops_every_tab(make_window, vae_checkpoint, qtbot):
    window = make_window(vae_checkpoint)
    window.show()
    stopped = []
    for tab in window.tab_views():
        real = tab.stop_work
        tab.stop_work = lambda real=real, tab=tab: (stopped.append(type(tab).__name__), real())
    interpolation = window.extra_panels["interpolation"]
    window.show_tab("Interpolate")
    qtbot.waitUntil(lambda: interpolation.images is not None, timeout=WAIT)
    interpolation.play_button.click()
    assert interpolation.play_button.isChecked()
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT)
    assert set(stopped) == {type(tab).__name__ for tab in window.tab_views()} and len(window.tab_views()) == 1 + len(
        EXTRA_PANELS
    )
    assert not interpolation.play_button.isChecked() and not running_jobs()
