"""Maps: a grid of decoded tiles over a plane through the current z, with the encoded dataset on top.

One plot: the tile mosaic underneath (in latent units), the encoded-dataset scatter over it, and a
draggable marker at the current z. Clicking a tile or a point jumps z there; dragging the marker
moves z along the plane (one undo step per drag) while the main view follows.

Planes: two raw dimensions (coordinates are the raw values of those two dimensions), two principal
directions (of the encoded dataset for a VAE, measured from its mean; of the N(0, I) prior, i.e. the
identity axes, for a GAN), or the plane through three latents (current z and bookmarks, captured
when chosen). Raw and PCA planes pass through the current z, so they move when another panel
changes z off the plane; the tiles are then decoded again in a worker, newest request first.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from engines import fast_decode, latent
from engines.data.sample import describe
from engines.encoded import EncodedData
from explorer.pixels import mosaic, to_pixmap, to_uint8
from explorer.state import ExplorerState
from explorer.workers import decode_on_threads, torch_threads

from .encoded import DEFAULT_COUNT, encoded_set
from .panel_tools import debounce, fit_stack, laid_out, spin_box
from .tab import Tab

log = logging.getLogger(__name__)

if pg.getConfigOption("imageAxisOrder") != "row-major":
    pg.setConfigOptions(imageAxisOrder="row-major")

MODES = ("raw", "pca", "three")
MODE_TITLES = ("Two raw dimensions", "Two principal directions", "Plane through three latents")
PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]  # matplotlib's tab10
CLICK_RADIUS_PX = 6.0
CHUNK_LATENTS = 256  # tiles per decode batch after a map's first row (chunk_rows)
FIRST_PAINT_WAIT_S = 0.1  # the longest a map's decode waits for its first row to be painted
PREVIEW_PX = 112


@dataclass(frozen=True)
class Plane:
    """center + a u + b v; `anchor` is where (a, b) = (0, 0) projects for planes through z."""

    center: np.ndarray
    u: np.ndarray
    v: np.ndarray
    x_label: str
    y_label: str
    anchor: np.ndarray | None = None  # None: a fixed plane (through three latents)
    points: np.ndarray | None = None  # (3, 2) coordinates of the three latents
    point_names: tuple[str, ...] = ()


def chunk_rows(resolution: int) -> list[list[int]]:
    """The order a map's tile rows are decoded in: the middle row (where z is) alone, so the first tiles
    appear after a small decode, then the others from the middle outwards in chunks of up to
    CHUNK_LATENTS tiles (16 rows of a 16x16 map, 8 of a 32x32): batches large enough to be efficient, and
    few chunks, because every chunk drawn is a paint that competes with the decode for the 2 cores."""
    middle = resolution // 2
    order = [middle]
    for k in range(1, resolution):
        order += [r for r in (middle - k, middle + k) if 0 <= r < resolution]
    size = max(1, CHUNK_LATENTS // resolution)
    return [order[:1]] + [order[start : start + size] for start in range(1, resolution, size)]


def _map_job(job, decode, grid: np.ndarray, resolution: int, first_shown: threading.Event) -> int:
    """Work function: decode the map chunk by chunk (chunk_rows), reporting (rows, strips) after each
    (the chunk's tile rows as one uint8 picture, made here so the GUI thread only pastes it), and stop
    between chunks when cancelled (the plane moved). After the first chunk it waits (up to
    FIRST_PAINT_WAIT_S) until the GUI has painted it: decoding the rest meanwhile made that paint, and
    so the first tiles, slower (both want the cores). Returns the number of chunks decoded."""
    done, threads = 0, torch_threads()  # the job's share of the cores, before decode_on_threads drops to one
    split = getattr(decode, "split", False)
    for rows in chunk_rows(resolution):
        if job.cancelled:
            break
        latents = grid[np.concatenate([np.arange(r * resolution, (r + 1) * resolution) for r in rows])]
        # Our torch models: the first row on one thread (a small batch of small ops is faster so), the rest
        # split across the job's threads (workers.decode_on_threads); other decoders thread themselves.
        images = decode_on_threads(decode, latents, 1 if done == 0 else threads) if split else decode(latents)
        job.report((rows, to_uint8(mosaic(images, len(rows), resolution))))
        if done == 0:
            deadline = time.monotonic() + FIRST_PAINT_WAIT_S
            while not (first_shown.wait(0.002) or job.cancelled or time.monotonic() > deadline):
                pass
        done += 1
    return done


def _pick_decoder_job(job, model) -> fast_decode.Decoder:
    return fast_decode.pick_decoder(model)


@dataclass(frozen=True)
class Tiles:
    """What the tile image shows: the grid latents, in the same order as plane_grid."""

    grid: np.ndarray  # (res*res, D)
    span: float
    resolution: int

    def index_at(self, a: float, b: float) -> int | None:
        step = 2 * self.span / (self.resolution - 1)
        col = int(np.floor((a + self.span) / step + 0.5))
        row = int(np.floor((self.span - b) / step + 0.5))
        if 0 <= row < self.resolution and 0 <= col < self.resolution:
            return row * self.resolution + col
        return None


class LatentMarker(pg.TargetItem):
    """The current z: a TargetItem that also says when a drag starts (TargetItem does not)."""

    sigDragStarted = Signal()

    def mouseDragEvent(self, ev) -> None:
        if self.movable and ev.button() == Qt.MouseButton.LeftButton and ev.isStart():
            self.sigDragStarted.emit()
        super().mouseDragEvent(ev)


class MapPanel(Tab):
    """The Maps tab. Public state: `plane`, `tiles` (what the tile image shows), `scatter_rows` (the
    plane coordinates (N, 2) of the encoded points shown), `pca` ((mean, components, variance) of the
    encoded latents, once encoded), `encoded` (the shared EncodedSet), `mode`, `decoder` (the batched
    decode the maps use, fast_decode.pick_decoder's choice once measured).

    A map is decoded in chunks of tile rows, middle first (chunk_rows); `tilesDrawn(n)` follows each
    chunk put on screen (n tiles), `tilesShown` the last (then `tiles` says what the image shows). A new
    plane cancels the chunks still to come."""

    tilesDrawn = Signal(int)
    tilesShown = Signal()

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.encoded = encoded_set(state)
        self.plane: Plane | None = None
        self.tiles: Tiles | None = None
        self.pca: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.scatter_rows: np.ndarray = np.zeros((0, 2), np.float32)
        self._requested: tuple | None = None  # the tile request shown or being decoded
        self._three: Plane | None = None  # the captured plane through three latents
        self._drag: tuple[np.ndarray, np.ndarray] | None = None  # (z, coords) at drag start
        self._colourings: list = []
        self._wanted_colour: str | None = None  # from a loaded session, applied once the data is there
        self._job = self.job_slot()
        self._picking = self.job_slot()
        self.decoder: fast_decode.Decoder | None = None  # the measured-fastest batched decode, once picked
        self._picture: np.ndarray | None = None  # the mosaic being filled in, row 0 at the top
        self._picture_rect = QRectF()  # where it lies in latent coordinates
        self._picture_shown = True  # the image item shows the mosaic as it is
        self._drawing: Tiles | None = None  # what the chunks arriving now belong to
        self._refresh_timer = debounce(self, self.refresh, 30)

        content = self._build_ui()
        state.latentChanged.connect(self._on_latent)
        state.bookmarksChanged.connect(self._fill_point_choices)
        self.encoded.ready.connect(self._on_encoded)
        self.encoded.report_to(self.scatter_status, "Dataset scatter unavailable")
        self.set_content(content)

    # --- layout ---------------------------------------------------------------------------------
    def _build_ui(self) -> QWidget:
        content, row = laid_out(QHBoxLayout)

        self.plot = pg.PlotWidget()
        self.plot.setBackground("#202124")
        self.plot_item = self.plot.getPlotItem()
        self.vb = self.plot_item.getViewBox()
        self.vb.setAspectLocked(True)
        self.plot_item.showGrid(x=False, y=False)
        for side in ("bottom", "left"):  # major and minor ticks only: the third level doubled each axis redraw
            self.plot_item.getAxis(side).setStyle(maxTickLevel=1)
        self.image_item = pg.ImageItem()
        self.image_item.setZValue(-10)
        self.scatter = pg.ScatterPlotItem(
            size=6,
            pen=pg.mkPen(0, 0, 0, 160),
            hoverable=True,
            tip=None,
            hoverSize=10,
            hoverPen=pg.mkPen("w", width=1.5),
        )
        self.scatter.setZValue(5)
        self.points_item = pg.ScatterPlotItem(size=20, symbol="star", pen=pg.mkPen("k"), brush=pg.mkBrush("#ffd60a"))
        self.points_item.setZValue(8)
        self.point_labels: list[pg.TextItem] = []
        self.marker = LatentMarker(
            pos=(0, 0),
            size=18,
            symbol="crosshair",
            pen=pg.mkPen("#ff3b30", width=3),
            brush=pg.mkBrush(255, 59, 48, 60),
            hoverPen=pg.mkPen("#ffd60a", width=3),
        )
        self.marker.setZValue(10)
        for item in (self.image_item, self.scatter, self.points_item, self.marker):
            self.plot_item.addItem(item)
        self.legend = pg.LegendItem(offset=(-10, 10), labelTextColor="w", brush=pg.mkBrush(32, 33, 36, 200))
        self.legend.setParentItem(self.vb)
        row.addWidget(self.plot, 1)

        side, col = laid_out(QVBoxLayout, width=270, margins=(4, 0, 0, 0))

        plane_box, form = laid_out(QFormLayout, QGroupBox("Plane"), margins=None)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(MODE_TITLES)
        form.addRow(self.mode_combo)
        self.axes_stack = QStackedWidget()
        dims, dims_form = laid_out(QFormLayout)
        self.x_spin, self.y_spin = QSpinBox(), QSpinBox()
        self.x_label, self.y_label = QLabel("x: dim"), QLabel("y: dim")
        dims_form.addRow(self.x_label, self.x_spin)
        dims_form.addRow(self.y_label, self.y_spin)
        three, three_form = laid_out(QFormLayout)
        self.point_combos = [QComboBox() for _ in range(3)]
        for name, combo in zip(("z0", "z1", "z2"), self.point_combos, strict=True):
            three_form.addRow(name, combo)
        self.capture_button = QPushButton("Use these three")
        self.capture_button.setToolTip("Builds the plane; 'current z' is taken as it is now.")
        three_form.addRow(self.capture_button)
        self.axes_stack.addWidget(dims)
        self.axes_stack.addWidget(three)
        fit_stack(self.axes_stack)
        form.addRow(self.axes_stack)
        self.span_spin = spin_box(
            0.1, 50.0, 3.0, step=0.5, tip="The grid covers -span..+span along both plane axes (latent units)."
        )
        form.addRow("Span ±", self.span_spin)
        self.res_spin = spin_box(2, 32, 12)
        form.addRow("Tiles per side", self.res_spin)
        col.addWidget(plane_box)

        show_box, show_form = laid_out(QFormLayout, QGroupBox("Show"), margins=None)
        self.tiles_check = QCheckBox("Decoded tiles")
        self.tiles_check.setChecked(True)
        self.scatter_check = QCheckBox("Encoded dataset")
        self.scatter_check.setChecked(True)
        show_form.addRow(self.tiles_check)
        show_form.addRow(self.scatter_check)
        self.colour_combo = QComboBox()
        show_form.addRow("Colour by", self.colour_combo)
        self.count_spin = spin_box(
            50, 20000, DEFAULT_COUNT, step=500, tip="How many held-out images to encode (encoder means)."
        )
        show_form.addRow("Images", self.count_spin)
        self.scatter_status = QLabel()
        self.scatter_status.setWordWrap(True)
        show_form.addRow(self.scatter_status)
        col.addWidget(show_box)

        self.preview = QLabel()
        self.preview.setFixedSize(PREVIEW_PX, PREVIEW_PX)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #202124; border: 1px solid #555;")
        self.preview_caption = QLabel("Hover a dataset point to see its image.")
        self.preview_caption.setWordWrap(True)
        col.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignHCenter)
        col.addWidget(self.preview_caption)
        self.status = QLabel()
        self.status.setWordWrap(True)
        col.addWidget(self.status)
        col.addStretch(1)
        row.addWidget(side)

        self.mode_combo.currentIndexChanged.connect(self._on_mode)
        for spin in (self.x_spin, self.y_spin):
            spin.valueChanged.connect(self._on_axes)
        self.span_spin.valueChanged.connect(self._refresh_timer.start)
        self.res_spin.valueChanged.connect(self._refresh_timer.start)
        self.capture_button.clicked.connect(self._capture_three)
        self.tiles_check.toggled.connect(self._on_toggles)
        self.scatter_check.toggled.connect(self._on_toggles)
        self.colour_combo.currentIndexChanged.connect(self._colour_scatter)
        self.count_spin.editingFinished.connect(lambda: self._request_encoding(retry=True))
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self.scatter.sigHovered.connect(self._on_hover)
        self.marker.sigDragStarted.connect(self._drag_started)
        self.marker.sigPositionChanged.connect(self._marker_moved)
        self.marker.sigPositionChangeFinished.connect(self._drag_finished)
        return content

    # --- state -> view --------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return MODES[self.mode_combo.currentIndex()]

    def reset_for_model(self) -> None:
        self.plane, self.tiles, self._requested, self._three, self.pca = None, None, None, None, None
        self.decoder, self._picture, self._drawing = None, None, None
        self.image_item.clear()
        self.scatter.clear()
        self.scatter_rows = np.zeros((0, 2), np.float32)
        self.points_item.clear()
        self._clear_point_labels()
        self.legend.clear()
        with signals_blocked(self.colour_combo):
            self.colour_combo.clear()
        self._colourings = []
        self.preview.clear()
        self.status.clear()
        self.scatter_status.clear()
        if not self.usable:
            return
        encodes = self.state.has_encoder
        self._reset_axes()
        self.scatter_check.setEnabled(encodes)
        self.colour_combo.setEnabled(encodes and self.state.has_labels)
        self.count_spin.setEnabled(encodes)
        self.scatter_check.setToolTip(
            "" if encodes else "This model has no encoder (a GAN): dataset images have no latents to plot."
        )
        self._fill_point_choices()

    def _reset_axes(self) -> None:
        """Axis ranges for the mode, and the first two axes (dims 0, 1 or PC1, PC2)."""
        with signals_blocked(self.x_spin), signals_blocked(self.y_spin):
            self._set_axis_ranges(self.state.latent_dim)
            self.x_spin.setValue(self.x_spin.minimum())
            self.y_spin.setValue(self.x_spin.minimum() + 1)

    def _set_axis_ranges(self, dim: int) -> None:
        pca = self.mode == "pca"
        for spin, label, name in ((self.x_spin, self.x_label, "x"), (self.y_spin, self.y_label, "y")):
            spin.setRange(1 if pca else 0, dim if pca else dim - 1)
            spin.setPrefix("PC " if pca else "")
            label.setText(f"{name}: {'principal direction' if pca else 'dimension'}")

    def _on_latent(self) -> None:
        if self.plane is None:
            return
        self._place_marker()
        if self.plane.anchor is not None:
            self.refresh()  # the plane follows z when z left it (a hidden tab catches up when shown)

    def class_changed(self) -> None:
        """Another class: the same plane, every tile decoded again by the new view (the picked decoder
        belongs to the old one)."""
        self._picking.cancel()
        self.decoder, self._requested = None, None
        self.refresh()

    def update_view(self) -> None:
        """Bring the plane, tiles, scatter and marker up to date with the state and the controls."""
        if self.scatter_check.isChecked() or self.mode == "pca":
            self._request_encoding()
        plane = self._make_plane()
        if plane is None:
            self._clear_plane()
            return
        basis_changed = self.plane is None or not (
            np.array_equal(plane.u, self.plane.u)
            and np.array_equal(plane.v, self.plane.v)
            and (plane.anchor is not None or np.array_equal(plane.center, self.plane.center))
        )
        self.plane = plane
        for side, text in (("bottom", plane.x_label), ("left", plane.y_label)):
            if self.plot_item.getAxis(side).labelText != text:  # setting a label, even the same, redraws its axis
                self.plot_item.setLabel(side, text)
        self._show_plane_points()
        if basis_changed:
            self._position_scatter()
        self._place_marker()
        self._request_tiles()

    def _clear_plane(self) -> None:
        """No plane to show (three latents on a line, PCA not ready): show nothing stale."""
        self._job.cancel()
        self.plane, self.tiles, self._requested = None, None, None
        self.image_item.clear()
        self.scatter.clear()
        self.scatter_rows = np.zeros((0, 2), np.float32)
        self.points_item.clear()
        self._clear_point_labels()

    def _make_plane(self) -> Plane | None:
        z = self.state.z
        dim = len(z)
        i, j = self.x_spin.value(), self.y_spin.value()
        if self.mode == "three":
            if self._three is None:
                self._capture_three()
            return self._three
        if i == j:
            self.status.setText("Pick two different axes.")
            return None
        if self.mode == "raw" or not self.state.has_encoder:
            if self.mode == "pca":  # PCA of the N(0, I) prior: every direction has variance 1; use the axes
                i, j = i - 1, j - 1
            eye = np.eye(dim, dtype=np.float32)
            anchor, u, v = np.zeros(dim, np.float32), eye[i], eye[j]
            xl, yl = (
                (f"PC{i + 1} = z[{i}] (prior)", f"PC{j + 1} = z[{j}] (prior)")
                if self.mode == "pca"
                else (f"z[{i}]", f"z[{j}]")
            )
        else:
            if self.pca is None:
                self.status.setText(
                    f"No principal directions: {self.encoded.error}"
                    if self.encoded.error
                    else "Encoding the dataset for its principal directions…"
                )
                return None
            mean, comps, var = self.pca
            share = var / max(float(var.sum()), 1e-12)
            anchor, u, v = mean, comps[i - 1], comps[j - 1]
            xl, yl = f"PC{i} ({share[i - 1]:.0%} of variance)", f"PC{j} ({share[j - 1]:.0%} of variance)"
        center = latent.plane_origin(z, anchor, u, v)
        if (
            self.plane is not None
            and self.plane.anchor is not None
            and np.array_equal(self.plane.u, u)
            and np.array_equal(self.plane.v, v)
            and np.allclose(self.plane.center, center, atol=1e-5)
        ):
            center = self.plane.center  # z moved within the plane: keep the tiles
        return Plane(center, u, v, xl, yl, anchor=anchor)

    def _request_tiles(self) -> None:
        plane = self.plane
        if plane is None or not self.tiles_check.isChecked():
            return
        span, res = float(self.span_spin.value()), int(self.res_spin.value())
        key = (plane.center.tobytes(), plane.u.tobytes(), plane.v.tobytes(), span, res, id(self.state.model))
        if key == self._requested:
            return
        self._requested = key
        if self.decoder is None and not self._picking.busy():
            # measured once per model, in the background; maps until then decode with PyTorch
            model = self.state.model
            self._picking.start(_pick_decoder_job, model, on_result=lambda d: self._decoder_picked(d, model))
        decode = self.decoder or fast_decode.torch_decoder(self.state.model)
        tiles = Tiles(latent.plane_grid(plane.center, plane.u, plane.v, span, res), span, res)
        self.status.setText(f"Decoding {res}×{res} tiles…")
        first_shown = threading.Event()
        self._job.start(
            _map_job,
            decode,
            tiles.grid,
            res,
            first_shown,
            on_progress=lambda chunk: self._draw_chunk(tiles, *chunk, first_shown),
            on_result=lambda _chunks: self._tiles_done(tiles),
            on_failed=self._job_failed,
        )

    def _decoder_picked(self, decoder: fast_decode.Decoder, model) -> None:
        if model is not self.state.model:  # picked for a model (or class view) no longer shown
            return
        self.decoder = decoder
        log.info("maps decode with %s (%s; %s)", decoder.name, decoder.note, decoder.seconds)

    def _job_failed(self, message: str) -> None:
        self._requested = None
        self.status.setText(f"Decoding failed: {message}")

    def _draw_chunk(self, tiles: Tiles, rows: list[int], strips: np.ndarray, first_shown: threading.Event) -> None:
        """Paste the tile rows just decoded (`strips`, uint8, one row of tiles after another) into the
        mosaic and show it: the map fills in chunk by chunk. The previous map stays under the new tiles
        until they replace it (same grid size), else black. A map's first chunk is painted at once, and
        then `first_shown` lets its decode go on. A hidden tab only pastes: the picture is shown when
        the tab is (the GUI thread's time then goes to the tab in view)."""
        res = tiles.resolution
        h, w, c = strips.shape[0] // len(rows), strips.shape[1] // res, strips.shape[2]
        first = self._drawing is not tiles
        if first:
            self._drawing = tiles
            if self._picture is None or self._picture.shape != (res * h, res * w, c):
                self._picture = np.zeros((res * h, res * w, c), np.uint8)
            step = 2 * tiles.span / (res - 1)
            half = tiles.span + step / 2
            self._picture_rect = QRectF(-half, -half, 2 * half, 2 * half)  # the picture in latent coordinates
            if self.tiles is None or (self.tiles.span, self.tiles.resolution) != (tiles.span, res):
                self.vb.setRange(xRange=(-half, half), yRange=(-half, half), padding=0.02)  # else keep the user's zoom
        for k, r in enumerate(rows):
            self._picture[r * h : (r + 1) * h] = strips[k * h : (k + 1) * h]
        self._picture_shown = False
        if self.isVisible():
            self._show_picture()
        self.tilesDrawn.emit(len(rows) * res)
        if first:
            if self.isVisible():
                self.plot.viewport().repaint()
            first_shown.set()

    def _show_picture(self) -> None:
        """Put the mosaic on screen (once per change)."""
        if self._picture is None or self._picture_shown:
            return
        self._picture_shown = True
        # Row 0 of the mosaic is the top (+v); the view's y axis points up and an ImageItem puts
        # array row 0 at the bottom, so show the picture flipped (tile order and pixels alike).
        picture = np.ascontiguousarray(self._picture[::-1])
        picture = picture[:, :, 0] if picture.shape[2] == 1 else picture
        # The rect goes in with the image: ImageItem.setRect scales by the image it holds at the time,
        # so set before a new-sized picture it stretched each old pixel over the whole map (a black map).
        # levels=None: uint8 pixels go to the screen as they are (levels (0, 255) rescaled them, ~1 ms a paint)
        self.image_item.setImage(picture, levels=None, autoLevels=False, rect=self._picture_rect)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._show_picture()  # what was decoded while the tab was hidden

    def _tiles_done(self, tiles: Tiles) -> None:
        self.tiles = tiles
        self.tilesShown.emit()
        if self.status.text().startswith("Decoding"):
            self.status.clear()

    def _place_marker(self) -> None:
        if self.plane is None:
            return
        a, b = latent.plane_coordinates(self.state.z, self.plane.center, self.plane.u, self.plane.v)[0]
        with signals_blocked(self.marker):
            self.marker.setPos(float(a), float(b))

    # --- the encoded dataset --------------------------------------------------------------------
    def _request_encoding(self, retry: bool = False) -> None:
        if not self.state.has_encoder:
            return
        data = self.encoded.ensure(self.count_spin.value(), retry=retry)
        if data is not None and (self.pca is None or self.colour_combo.count() == 0):
            self._on_encoded(data)

    def _on_encoded(self, data: EncodedData) -> None:
        if not self.state.has_encoder or data.latents.shape[1] != self.state.latent_dim:
            return
        self.scatter_status.setText(f"{describe(data.dataset, len(data.latents))} (encoder means).")
        self.pca = latent.principal_directions(data.latents)
        with signals_blocked(self.colour_combo):
            current = self._wanted_colour or self.colour_combo.currentText()
            self._wanted_colour = None
            self.colour_combo.clear()
            self._colourings = data.colourings()
            self.colour_combo.addItems([c.name for c in self._colourings])
            if current in [c.name for c in self._colourings]:
                self.colour_combo.setCurrentText(current)
        self._position_scatter()
        if self.mode == "pca":
            self.refresh()

    def _position_scatter(self) -> None:
        data = self.encoded.data
        if (
            self.plane is None
            or data is None
            or not self.scatter_check.isChecked()
            or not self.state.has_encoder
            or data.latents.shape[1] != self.state.latent_dim
        ):
            self.scatter.clear()
            self.scatter_rows = np.zeros((0, 2), np.float32)
            self.legend.clear()
            return
        self.scatter_rows = latent.plane_coordinates(data.latents, self.plane.center, self.plane.u, self.plane.v)
        self._colour_scatter()

    def _colour_scatter(self) -> None:
        data = self.encoded.data
        if data is None or len(self.scatter_rows) == 0:
            return
        if not self._colourings:  # an unlabelled dataset: one colour
            self.legend.clear()
            self.scatter.setData(
                pos=self.scatter_rows, brush=pg.mkBrush(*PALETTE[0], 210), data=np.arange(len(self.scatter_rows))
            )
            return
        colouring = self._colourings[self.colour_combo.currentIndex()]
        values = colouring.values(data.labels)
        self.legend.clear()
        if colouring.kind == "continuous":
            cmap = pg.colormap.get("viridis")
            lo, hi = float(values.min()), float(values.max())
            rgba = cmap.map((values - lo) / max(hi - lo, 1e-12), mode="byte")
            brushes = [pg.mkBrush(int(r), int(g), int(b), 210) for r, g, b, _ in rgba]
            for frac, text in ((0.0, f"{colouring.name} {lo:.2g}"), (0.5, "…"), (1.0, f"{hi:.2g}")):
                r, g, b, _ = cmap.map(frac, mode="byte")
                self.legend.addItem(pg.ScatterPlotItem(brush=pg.mkBrush(int(r), int(g), int(b)), size=8), text)
        else:
            brushes = [pg.mkBrush(*PALETTE[int(k) % len(PALETTE)], 210) for k in values]
            for k, name in enumerate(colouring.class_names):
                self.legend.addItem(pg.ScatterPlotItem(brush=pg.mkBrush(*PALETTE[k % len(PALETTE)]), size=8), name)
        self.scatter.setData(pos=self.scatter_rows, brush=brushes, data=np.arange(len(values)))

    def _on_hover(self, _item, points, _ev) -> None:
        data = self.encoded.data
        if data is None or len(points) == 0:
            return
        row = int(points[0].data())
        self.show_preview(row)

    def show_preview(self, row: int) -> None:
        """Show the real image behind encoded row `row` in the side inset."""
        data = self.encoded.data
        self.preview.setPixmap(to_pixmap(data.image(row), PREVIEW_PX - 4))
        colouring = self._colourings[self.colour_combo.currentIndex()] if self.colour_combo.count() else None
        label = ""
        if colouring is not None:
            value = colouring.values(data.labels[row : row + 1])[0]
            label = colouring.class_names[int(value)] if colouring.class_names else f"{colouring.name} {value:.2f}"
        self.preview_caption.setText(f"Dataset image #{int(data.indices[row])}  {label}\nClick the point to go there.")

    # --- view -> state --------------------------------------------------------------------------
    def _on_click(self, ev) -> None:
        # Not ev.isAccepted(): the scatter accepts clicks on its points, and those are ours to handle.
        if ev.button() != Qt.MouseButton.LeftButton or self.plane is None:
            return
        if not self.vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        pos = self.vb.mapSceneToView(ev.scenePos())
        a, b = pos.x(), pos.y()
        row = self.scatter_row_at(a, b)
        if row is not None:
            self.state.set_z(self.encoded.data.latents[row])
            return
        if self.tiles is not None and self.tiles_check.isChecked():
            index = self.tiles.index_at(a, b)
            if index is not None:
                self.state.set_z(self.tiles.grid[index])

    def scatter_row_at(self, a: float, b: float) -> int | None:
        """The encoded row whose point is nearest to (a, b), within a few screen pixels."""
        if not self.scatter_check.isChecked() or len(self.scatter_rows) == 0:
            return None
        px, py = self.vb.viewPixelSize()
        d2 = ((self.scatter_rows[:, 0] - a) / px) ** 2 + ((self.scatter_rows[:, 1] - b) / py) ** 2
        row = int(np.argmin(d2))
        return row if d2[row] <= CLICK_RADIUS_PX**2 else None

    def _drag_started(self) -> None:
        if self.plane is None:
            return
        z = self.state.z.copy()
        self._drag = (z, latent.plane_coordinates(z, self.plane.center, self.plane.u, self.plane.v)[0])
        self.state.begin_edit()

    def _marker_moved(self, marker) -> None:
        if self._drag is None or self.plane is None:
            return
        z0, (a0, b0) = self._drag
        a, b = marker.pos().x(), marker.pos().y()
        # Move parallel to the plane from where the drag began, so an off-plane z keeps its offset.
        z = z0.astype(np.float64) + (a - a0) * self.plane.u + (b - b0) * self.plane.v
        self.state.set_z(z.astype(np.float32), record=False)

    def _drag_finished(self, _marker) -> None:
        if self._drag is not None:
            self._drag = None
            self.state.end_edit()

    # --- controls -------------------------------------------------------------------------------
    def _on_mode(self) -> None:
        self.axes_stack.setCurrentIndex(1 if self.mode == "three" else 0)
        fit_stack(self.axes_stack)
        if self.state.latent_dim:
            self._reset_axes()
        if self.mode == "three":
            self._three = None  # captured afresh: "current z" means z as it is when the mode is picked
        self.refresh()

    def _on_axes(self) -> None:
        self._refresh_timer.start()

    def _on_toggles(self) -> None:
        self.image_item.setVisible(self.tiles_check.isChecked())
        self.scatter.setVisible(self.scatter_check.isChecked())
        self.legend.setVisible(self.scatter_check.isChecked())
        self.refresh()

    def _fill_point_choices(self) -> None:
        names = ["current z"] + [f"bookmark {m.name}" for m in self.state.bookmarks]
        for k, combo in enumerate(self.point_combos):
            with signals_blocked(combo):
                previous = combo.currentText()
                combo.clear()
                combo.addItems(names)
                combo.setCurrentText(previous if previous in names else names[min(k, len(names) - 1)])

    def _point_latent(self, choice: int) -> np.ndarray:
        return self.state.z.copy() if choice == 0 else self.state.bookmarks[choice - 1].z.copy()

    def _capture_three(self) -> None:
        """Build the plane through the three chosen latents, taking the current z as it is now."""
        choices = [combo.currentIndex() for combo in self.point_combos]
        if any(c < 0 for c in choices) or len(self.state.z) == 0:
            return
        try:
            center, u, v, coords = latent.plane_through(*(self._point_latent(c) for c in choices))
        except ValueError as error:
            self._three = None
            self.status.setText(
                f"No plane: {error}. Add bookmarks (in the Explore tab) and pick three different latents."
            )
            return
        names = tuple(self.point_combos[k].currentText().removeprefix("bookmark ") for k in range(3))
        self._three = Plane(center, u, v, "u (from z0 towards z1)", "v (towards z2)", points=coords, point_names=names)
        extent = float(np.abs(coords).max()) * 1.3
        if extent > self.span_spin.value():
            with signals_blocked(self.span_spin):
                self.span_spin.setValue(extent)
        self.status.clear()
        if self.mode == "three" and self.sender() is self.capture_button:
            self.refresh()

    def _clear_point_labels(self) -> None:
        for item in self.point_labels:
            self.plot_item.removeItem(item)
        self.point_labels = []

    def _show_plane_points(self) -> None:
        self._clear_point_labels()
        plane = self.plane
        if plane is None or plane.points is None:
            if len(self.points_item.data):  # clearing, even an empty item, repaints the plot
                self.points_item.clear()
            return
        self.points_item.setData(pos=plane.points)
        for (a, b), name in zip(plane.points, plane.point_names, strict=True):
            text = pg.TextItem(name, color="w", anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 140))
            text.setPos(float(a), float(b))
            text.setZValue(9)
            self.plot_item.addItem(text)
            self.point_labels.append(text)

    # --- sessions -------------------------------------------------------------------------------
    def session_data(self) -> dict:
        return {
            "mode": self.mode,
            "x": self.x_spin.value(),
            "y": self.y_spin.value(),
            "span": self.span_spin.value(),
            "resolution": self.res_spin.value(),
            "tiles": self.tiles_check.isChecked(),
            "scatter": self.scatter_check.isChecked(),
            "colour_by": self.colour_combo.currentText(),
            "images": self.count_spin.value(),
        }

    def load_session_data(self, d: dict) -> None:
        widgets = (
            self.mode_combo,
            self.x_spin,
            self.y_spin,
            self.span_spin,
            self.res_spin,
            self.tiles_check,
            self.scatter_check,
            self.count_spin,
        )
        for w in widgets:
            w.blockSignals(True)
        try:
            if d.get("mode") in MODES:
                self.mode_combo.setCurrentIndex(MODES.index(d["mode"]))
                self.axes_stack.setCurrentIndex(1 if self.mode == "three" else 0)
                fit_stack(self.axes_stack)
                if self.state.latent_dim:
                    self._set_axis_ranges(self.state.latent_dim)
            for key, spin in (
                ("x", self.x_spin),
                ("y", self.y_spin),
                ("span", self.span_spin),
                ("resolution", self.res_spin),
                ("images", self.count_spin),
            ):
                if key in d:
                    spin.setValue(d[key])
            self.tiles_check.setChecked(bool(d.get("tiles", True)))
            self.scatter_check.setChecked(bool(d.get("scatter", True)))
        finally:
            for w in widgets:
                w.blockSignals(False)
        if d.get("colour_by"):
            self._wanted_colour = str(d["colour_by"])
            self.colour_combo.setCurrentText(self._wanted_colour)
        self.image_item.setVisible(self.tiles_check.isChecked())
        self.scatter.setVisible(self.scatter_check.isChecked())
        self._three, self._requested = None, None
        self.refresh()


__all__ = ["MapPanel", "Plane", "Tiles", "LatentMarker"]
