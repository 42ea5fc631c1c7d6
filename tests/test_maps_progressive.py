"""Maps drawn chunk by chunk, cancelled when the plane moves, and decoded by the measured-fastest runtime
(engines.fast_decode) only where its images match PyTorch's."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QEvent, QObject  # noqa: E402

from engines import fast_decode, latent  # noqa: E402
from engines.checkpoint import load_checkpoint  # noqa: E402
from explorer.panels.maps import MapPanel, chunk_rows  # noqa: E402
from explorer.pixels import mosaic, to_uint8  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402
from explorer.workers import running_jobs, stop_all_jobs  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[1] / "checkpoints"
LATENT_MODELS = ["vae-mnist-2d", "vae-mnist-32d", "vae-faces", "dcgan-mnist", "dcgan-faces"]
EVERY_GENERATOR = [*LATENT_MODELS, "vae-cifar10", "dcgan-cifar10", "cdcgan-mnist", "stylegan-faces"]
WAIT_MS = 30000


@pytest.fixture(autouse=True)
def no_jobs_left():
    yield
    assert stop_all_jobs()
    assert not running_jobs()


def test_chunks_cover_every_row_once_middle_first_then_a_few_large_batches() -> None:
    for res in (2, 3, 12, 16, 32, 64):
        chunks = chunk_rows(res)
        rows = [r for c in chunks for r in c]
        assert sorted(rows) == list(range(res))
        assert chunks[0] == [res // 2]
        assert all(len(c) * res <= max(res, 256) for c in chunks)
    assert [len(c) for c in chunk_rows(16)] == [1, 15]
    assert [len(c) for c in chunk_rows(32)] == [1, 8, 8, 8, 7]


class Gate:
    """A real decode that lets the first `free` calls through at once and holds the rest until opened."""

    def __init__(self, model, free: int = 1) -> None:
        self.model, self.free = model, free
        self.calls = 0
        self.started: list[float] = []  # when each call began
        self.opened = threading.Event()

    def __call__(self, z: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.started.append(time.perf_counter())
        if self.calls > self.free:
            self.opened.wait(20)
        return latent.decode_latents(self.model, z)


def map_panel(qtbot, name: str = "vae-mnist-2d") -> MapPanel:
    state = ExplorerState()
    state.open_checkpoint(BUNDLED / f"{name}.safetensors")
    state.randomize(3)
    panel = MapPanel(state)
    qtbot.addWidget(panel)
    panel.resize(800, 600)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def gated_map(qtbot) -> tuple[MapPanel, Gate, list[int]]:
    """A map panel whose first map is shown, now decoding through a Gate, and the tile counts it draws."""
    panel = map_panel(qtbot)
    # the panel's own decoder pick is in too: arriving later, it would replace the gate
    qtbot.waitUntil(lambda: panel.tiles is not None and panel.decoder is not None and not panel.busy(), timeout=WAIT_MS)
    gate = Gate(panel.state.model)
    panel.decoder = fast_decode.Decoder("gated", gate)
    drawn: list[int] = []
    panel.tilesDrawn.connect(drawn.append)
    return panel, gate, drawn


def expected_picture(panel: MapPanel, grid: np.ndarray) -> np.ndarray:
    """The whole map of `grid` as the image item holds it: decoded by PyTorch, flipped, grayscale."""
    res = panel.res_spin.value()
    whole = to_uint8(mosaic(latent.decode_latents(panel.state.model, grid), res, res))
    return np.ascontiguousarray(whole[::-1])[..., 0]


class PaintLog(QObject):
    """Notes, at each paint of `widget`, how many tiles were drawn by then and when it ended."""

    def __init__(self, widget, drawn: list[int], gate: Gate) -> None:
        super().__init__()
        self.drawn, self.gate, self.seen = drawn, gate, []
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            obj.event(event)  # the paint itself, then note when it ended
            self.seen.append((sum(self.drawn), time.perf_counter()))
            return True
        return False


def test_the_first_chunk_is_on_screen_before_the_last_is_decoded(qtbot) -> None:
    panel, gate, drawn = gated_map(qtbot)
    paints = PaintLog(panel.plot.viewport(), drawn, gate)
    panel.span_spin.setValue(panel.span_spin.value() + 0.5)  # a new map: its middle row, then the rest
    qtbot.waitUntil(lambda: len(drawn) == 1 and gate.calls == 2, timeout=WAIT_MS)
    qtbot.wait(50)
    # the middle row is on screen while the second chunk's decode is still held
    res = panel.res_spin.value()
    assert drawn == [res] and gate.calls == 2 and not gate.opened.is_set()
    # ... and it was painted before the second chunk's decode began (the decode waits for that paint)
    painted = [t for tiles, t in paints.seen if tiles == res]
    assert painted and painted[0] < gate.started[-1], (painted, gate.started)
    middle = res // 2
    grid = latent.plane_grid(panel.plane.center, panel.plane.u, panel.plane.v, panel.span_spin.value(), res)
    row = to_uint8(mosaic(latent.decode_latents(panel.state.model, grid[middle * res : (middle + 1) * res]), 1, res))
    shown = panel.image_item.image  # flipped: mosaic row r is at the bottom-up position
    h = row.shape[0]
    top = (res - 1 - middle) * h
    np.testing.assert_array_equal(shown[top : top + h], row[::-1][..., 0])
    gate.opened.set()
    qtbot.waitUntil(lambda: panel.tiles is not None and panel.tiles.span == panel.span_spin.value(), timeout=WAIT_MS)
    assert sum(drawn) == res * res
    np.testing.assert_array_equal(panel.image_item.image, expected_picture(panel, grid))


def test_a_hidden_tab_keeps_decoding_and_shows_the_map_when_it_is_shown_again(qtbot) -> None:
    panel, gate, drawn = gated_map(qtbot)
    panel.span_spin.setValue(panel.span_spin.value() + 0.5)
    qtbot.waitUntil(lambda: len(drawn) == 1 and gate.calls == 2, timeout=WAIT_MS)
    on_screen = panel.image_item.image.copy()  # the old map with the new middle row
    panel.hide()  # another tab is chosen while the rest decodes
    gate.opened.set()
    qtbot.waitUntil(lambda: panel.tiles is not None and panel.tiles.span == panel.span_spin.value(), timeout=WAIT_MS)
    res = panel.res_spin.value()
    assert sum(drawn) == res * res
    np.testing.assert_array_equal(panel.image_item.image, on_screen)  # pasted, not yet put on screen
    panel.show()
    grid = latent.plane_grid(panel.plane.center, panel.plane.u, panel.plane.v, panel.span_spin.value(), res)
    np.testing.assert_array_equal(panel.image_item.image, expected_picture(panel, grid))


@pytest.mark.parametrize("tiles_per_side", [12, 7])
def test_the_tile_picture_covers_the_plane_it_was_decoded_on(qtbot, tiles_per_side: int) -> None:
    # Each tile is centred on its grid latent, so the picture spans +-(span + half a step) in latent
    # coordinates: for the first map of a panel, and for a map whose picture has a new size.
    panel = map_panel(qtbot)
    qtbot.waitUntil(lambda: panel.tiles is not None and not panel.busy(), timeout=WAIT_MS)
    panel.res_spin.setValue(tiles_per_side)
    qtbot.waitUntil(lambda: panel.tiles.resolution == tiles_per_side and not panel.busy(), timeout=WAIT_MS)
    span = panel.span_spin.value()
    half = span + span / (tiles_per_side - 1)
    placed = panel.image_item.mapRectToView(panel.image_item.boundingRect())
    got = (placed.left(), placed.top(), placed.width(), placed.height())
    np.testing.assert_allclose(got, (-half, -half, 2 * half, 2 * half), rtol=1e-6)


def test_a_new_plane_cancels_the_chunks_still_to_come(qtbot) -> None:
    panel, gate, drawn = gated_map(qtbot)
    res = 32  # a map in 5 chunks (chunk_rows)
    gate.free = 10**6
    panel.res_spin.setValue(res)
    qtbot.waitUntil(lambda: panel.tiles is not None and panel.tiles.resolution == res, timeout=WAIT_MS)
    gate.free, calls_before = gate.calls + 1, gate.calls
    drawn.clear()
    span = panel.span_spin.value()
    panel.span_spin.setValue(span + 0.5)
    qtbot.waitUntil(lambda: len(drawn) == 1 and gate.calls == calls_before + 2, timeout=WAIT_MS)
    panel.span_spin.setValue(span + 1.0)  # the plane changes while chunk 2 of 5 is held
    qtbot.wait(100)
    gate.free = 10**6  # the new map's decodes pass at once
    gate.opened.set()  # the held chunk returns: its result must not be drawn, and chunks 3-5 never run
    qtbot.waitUntil(lambda: panel.tiles is not None and panel.tiles.span == span + 1.0, timeout=WAIT_MS)
    assert len(chunk_rows(res)) == 5
    assert gate.calls == calls_before + 2 + 5  # two of the old map's chunks, then the new map's
    assert sum(drawn) == res + res * res  # the old first chunk, then the whole new map
    grid = latent.plane_grid(panel.plane.center, panel.plane.u, panel.plane.v, span + 1.0, res)
    np.testing.assert_array_equal(panel.image_item.image, expected_picture(panel, grid))


def test_the_panel_measures_and_keeps_a_decoder(qtbot) -> None:
    panel = map_panel(qtbot)
    qtbot.waitUntil(lambda: panel.decoder is not None, timeout=WAIT_MS)
    decoder = panel.decoder
    expected = "bfloat16" if fast_decode.native_bfloat16() else "onnxruntime"
    assert decoder.name == expected, decoder.note
    assert set(decoder.seconds) == {"torch", expected} and decoder.psnr[expected] >= fast_decode.MIN_PSNR


def _bundled_view(name: str) -> torch.nn.Module:
    """The bundled model as the explorer drives it (a conditional one through a class view)."""
    from engines.models.conditional import ClassView, one_hot

    model = load_checkpoint(BUNDLED / f"{name}.safetensors").model.eval()
    return ClassView(model, one_hot(3, model.num_classes)) if model.num_classes else model


@pytest.mark.parametrize("name", EVERY_GENERATOR)
def test_the_bfloat16_decode_matches_float32_on_every_bundled_generator(name: str) -> None:
    model = _bundled_view(name)
    z = torch.randn(32, model.latent_dim, generator=torch.Generator().manual_seed(1)).numpy()
    eager = latent.decode_latents(model, z)
    fast = fast_decode.bfloat16_decoder(model)(z)
    assert fast.shape == eager.shape and fast.dtype == np.float32
    assert fast_decode.psnr(fast, eager) >= fast_decode.MIN_PSNR
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the shared model is left alone
    np.testing.assert_array_equal(latent.decode_latents(model, z), eager)


def test_a_conditional_model_is_decoded_in_bfloat16_with_its_own_class() -> None:
    from engines.models.conditional import ClassView, one_hot

    model = load_checkpoint(BUNDLED / "cdcgan-mnist.safetensors").model.eval()
    z = torch.randn(16, model.latent_dim, generator=torch.Generator().manual_seed(2)).numpy()
    for digit in (1, 7):
        view = ClassView(model, one_hot(digit, 10))
        eager = latent.decode_latents(view, z)
        assert fast_decode.psnr(fast_decode.bfloat16_decoder(view)(z), eager) >= fast_decode.MIN_PSNR
    picked = fast_decode.pick_decoder(ClassView(model, one_hot(4, 10)))
    assert picked.name == ("bfloat16" if fast_decode.native_bfloat16() else "torch"), picked.note


@pytest.mark.parametrize("name", LATENT_MODELS)
def test_the_onnxruntime_decode_matches_pytorch_on_every_bundled_model(name: str) -> None:
    model = load_checkpoint(BUNDLED / f"{name}.safetensors").model.eval()
    z = torch.randn(32, model.latent_dim, generator=torch.Generator().manual_seed(1)).numpy()
    fast = fast_decode.onnx_decoder(model)(z)
    eager = latent.decode_latents(model, z)
    assert fast.shape == eager.shape
    assert fast_decode.psnr(fast, eager) >= fast_decode.MIN_PSNR


def test_exporting_traces_a_copy_so_other_threads_keep_the_real_weights() -> None:
    # torch.export swaps a traced module's parameters for fake tensors; an encode job running beside a
    # map's export on the shared model then computed on fakes and failed. Look from inside the trace.
    model = load_checkpoint(BUNDLED / "vae-mnist-2d.safetensors").model.eval()
    seen: list[set[str]] = []
    hooks = [
        m.register_forward_pre_hook(lambda *_: seen.append({type(p).__name__ for p in model.parameters()}))
        for m in model.modules()
    ]
    fast_decode.onnx_decoder(model)
    for h in hooks:
        h.remove()
    assert seen and all(kinds == {"Parameter"} for kinds in seen), seen[:3]


def test_two_threads_exporting_at_once_both_succeed_and_leave_stdout_alone() -> None:
    # torch.export's tracing state is global: two exports at once (a map's decoder pick beside File >
    # Export) mixed one model's modules into the other's graph and both failed (8 of 8 here without the lock).
    import sys
    import threading

    from engines.foreign.export import decoder_graph

    models = [load_checkpoint(BUNDLED / f"{n}.safetensors").model.eval() for n in ("vae-mnist-32d", "dcgan-mnist")]
    errors: list[BaseException] = []

    def export_twice(model) -> None:
        for _ in range(2):
            try:
                decoder_graph(model)
            except Exception as error:  # noqa: BLE001 - collected for the assertion
                errors.append(error)

    stdout = sys.stdout
    threads = [threading.Thread(target=export_twice, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sys.stdout is stdout


def _off_by_a_bit(make):
    def made(m, *args):
        run = make(m, *args)
        return lambda z: np.clip(run(z) + 0.05, 0, 1)  # 26 dB: visibly brighter

    return made


def test_a_decoder_whose_images_differ_is_not_picked(monkeypatch) -> None:
    model = load_checkpoint(BUNDLED / "vae-mnist-2d.safetensors").model.eval()
    monkeypatch.setattr(fast_decode, "onnx_decoder", _off_by_a_bit(fast_decode.onnx_decoder))
    monkeypatch.setattr(fast_decode, "bfloat16_decoder", _off_by_a_bit(fast_decode.bfloat16_decoder))
    picked = fast_decode.pick_decoder(model)
    assert picked.name == "torch" and "differ" in picked.note and picked.psnr["onnxruntime"] < 40
    if fast_decode.native_bfloat16():
        assert picked.psnr["bfloat16"] < 40


@pytest.mark.skipif(not fast_decode.native_bfloat16(), reason="this CPU has no bfloat16 units")
def test_when_bfloat16_differs_onnxruntime_is_next(monkeypatch) -> None:
    model = load_checkpoint(BUNDLED / "vae-mnist-2d.safetensors").model.eval()
    monkeypatch.setattr(fast_decode, "bfloat16_decoder", _off_by_a_bit(fast_decode.bfloat16_decoder))
    picked = fast_decode.pick_decoder(model)
    assert picked.name == "onnxruntime" and picked.psnr["onnxruntime"] >= fast_decode.MIN_PSNR
    assert "bfloat16's images differ" not in picked.note  # the note says why this one was picked


# --- the thread policy ------------------------------------------------------------------------------
def _thread_settings(job) -> tuple[int, int]:
    return torch.get_num_threads(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread nice is a POSIX/Linux feature")
def test_background_jobs_run_at_a_lower_priority_and_interactive_ones_on_every_core(qtbot) -> None:
    from explorer.workers import BACKGROUND, INTERACTIVE, Latest, usable_cores

    gui_threads, base = torch.get_num_threads(), os.getpriority(os.PRIO_PROCESS, 0)
    torch.set_num_threads(usable_cores())  # the app's budget: every core (the suite runs with one)
    seen = {}
    for priority in (BACKGROUND, INTERACTIVE):
        slot = Latest(priority=priority)
        slot.start(_thread_settings, on_result=lambda value, p=priority: seen.__setitem__(p, value))
        qtbot.waitUntil(lambda p=priority: p in seen, timeout=WAIT_MS)
    cores = usable_cores()
    assert seen[INTERACTIVE] == (cores, base)
    assert seen[BACKGROUND] == (cores, min(base + 10, 19))  # alone: every core, 10 nice levels lower
    assert torch.get_num_threads() == cores  # the GUI thread's own settings are untouched
    torch.set_num_threads(gui_threads)


def test_the_slider_decodes_run_on_one_thread_at_interactive_priority(qtbot) -> None:
    from explorer.decoder import LatentDecoder
    from explorer.workers import INTERACTIVE, Latest, usable_cores

    gui_threads, base = torch.get_num_threads(), os.getpriority(os.PRIO_PROCESS, 0)
    torch.set_num_threads(usable_cores())  # the app's budget: every core (the suite runs with one)
    seen = []
    slot = Latest(priority=INTERACTIVE, threads=1)
    slot.start(_thread_settings, on_result=seen.append)
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT_MS)
    torch.set_num_threads(gui_threads)
    assert seen == [(1, base)]
    decoder = LatentDecoder()
    assert (decoder._slot.priority, decoder._slot.threads) == (INTERACTIVE, 1)


def test_background_jobs_running_together_share_the_cores(qtbot) -> None:
    from explorer.workers import Latest, usable_cores

    release = threading.Event()
    seen: dict[int, int] = {}

    def hold(job, i):
        while len(seen) < i:  # start one after another, so each sees those already running
            release.wait(0.01)
        seen[i] = torch.get_num_threads()
        release.wait(20)
        job.share_cores()
        return torch.get_num_threads()

    suite_threads = torch.get_num_threads()
    torch.set_num_threads(usable_cores())  # the app's budget: every core (the suite runs with one)
    first, second = Latest(), Latest()
    results = {}
    first.start(hold, 0, on_result=lambda n: results.__setitem__(0, n))
    qtbot.waitUntil(lambda: 0 in seen, timeout=WAIT_MS)
    second.start(hold, 1, on_result=lambda n: results.__setitem__(1, n))
    torch.set_num_threads(suite_threads)  # the jobs took their budget when they were made
    qtbot.waitUntil(lambda: 1 in seen, timeout=WAIT_MS)
    cores = usable_cores()
    assert seen == {0: cores, 1: max(1, cores // 2)}
    release.set()
    qtbot.waitUntil(lambda: len(results) == 2, timeout=WAIT_MS)
    assert max(1, cores // 2) <= results[0] <= cores  # re-took its share while the other may still run


def test_a_batch_split_across_threads_decodes_the_same_images_each_slice_on_one_thread() -> None:
    from explorer.workers import decode_on_threads

    model = load_checkpoint(BUNDLED / "dcgan-mnist.safetensors").model
    seen = []

    def decode(z):
        seen.append((threading.get_ident(), torch.get_num_threads(), len(z)))
        return latent.decode_latents(model, z)

    z = np.random.default_rng(0).standard_normal((240, model.latent_dim)).astype(np.float32)
    result: dict = {}

    def job() -> None:  # in a worker thread of its own, as a map job is (it keeps one torch thread after)
        torch.set_num_threads(2)
        result["two"] = decode_on_threads(decode, z, 2)
        result["small"] = decode_on_threads(decode, z[:40], 2)  # two slices would be under 32 latents
        try:
            decode_on_threads(lambda part: 1 / 0, z, 2)
        except ZeroDivisionError:
            result["raised"] = True

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    np.testing.assert_allclose(result["two"], latent.decode_latents(model, z), atol=1e-5)
    assert sorted(n for _, _, n in seen) == [40, 120, 120]
    assert {threads for _, threads, _ in seen} == {1}  # each slice on one torch thread
    assert len({ident for ident, _, n in seen if n == 120}) == 2  # ... on threads of their own
    assert result["small"].shape[0] == 40 and result["raised"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="a split needs two cores")
@pytest.mark.parametrize("split", [True, False])
def test_a_maps_first_row_runs_on_one_thread_and_the_rest_split_for_our_models_only(qtbot, split: bool) -> None:
    """Our torch models (`split`): the middle row on one torch thread, each later chunk in halves on two
    threads. Other decoders (onnxruntime, foreign or plugin models) get each chunk whole, on the job's
    own thread with the job's threads."""
    from explorer.workers import usable_cores

    panel = map_panel(qtbot)
    # the panel's own pick is in (else it would replace the decoder set below when it arrives)
    qtbot.waitUntil(
        lambda: panel.tiles is not None and panel.decoder is not None and not running_jobs(), timeout=WAIT_MS
    )
    calls = []

    def decode(z):
        calls.append((len(z), torch.get_num_threads(), threading.current_thread().name))
        return latent.decode_latents(panel.state.model, z)

    panel.decoder = fast_decode.Decoder("recorded", decode, split=split)
    suite_threads = torch.get_num_threads()
    torch.set_num_threads(min(2, usable_cores()))  # the app's budget on two cores (the suite runs with one)
    try:
        panel.span_spin.setValue(panel.span_spin.value() + 0.5)
        qtbot.waitUntil(
            lambda: panel.tiles is not None and panel.tiles.span == panel.span_spin.value(), timeout=WAIT_MS
        )
    finally:
        torch.set_num_threads(suite_threads)
    res = panel.res_spin.value()
    rest = res * res - res
    if split:
        assert calls[0][:2] == (res, 1)
        assert sorted(n for n, _, _ in calls[1:]) == sorted([rest // 2, rest - rest // 2])
        assert all(threads == 1 for _, threads, _ in calls[1:])
        assert len({name for _, _, name in calls[1:]}) == 2
    else:
        assert [(n, threads) for n, threads, _ in calls] == [(res, 2), (rest, 2)]
        assert len({name for _, _, name in calls}) == 1
    np.testing.assert_array_equal(panel.image_item.image, expected_picture(panel, panel.tiles.grid))


def test_only_our_own_torch_decodes_are_split(tmp_path: Path) -> None:
    from engines.cli import main as cli_main

    model = load_checkpoint(BUNDLED / "dcgan-mnist.safetensors").model
    assert fast_decode.torch_decoder(model).split
    picked = fast_decode.pick_decoder(model)
    assert picked.split == (picked.name != "onnxruntime")  # onnxruntime runs its own threads
    assert cli_main(["export", str(BUNDLED / "dcgan-mnist.safetensors"), "--onnx", str(tmp_path)]) == 0
    foreign = load_checkpoint(tmp_path / "dcgan-mnist.onnx").model  # an ONNX graph: its thread safety is not ours
    assert not fast_decode.torch_decoder(foreign).split and not fast_decode.pick_decoder(foreign).split
