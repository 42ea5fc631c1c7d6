"""One slider per direction of a basis of the latent space, with an optional indicator bar per row.

The basis is z = mean + sum_k c_k * scale_k * u_k (raw axes: mean 0, u_k = e_k, scale 1), with
slider k showing c_k in [-3, 3]. Moving slider k changes z only along u_k, by the difference
between the new and the true current coordinate, so a coordinate outside the slider range (where
the slider is pinned at its end) never leaks into an edit of another slider.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QScrollArea, QSizePolicy, QSlider, QVBoxLayout, QWidget
from superqt.utils import signals_blocked

RANGE = 3.0  # slider range, in units of the direction's scale (standard deviations of the prior)
STEPS = 100  # slider ticks per unit


class IndicatorBar(QWidget):
    """A small horizontal bar: a fraction in [0, 1], blue when active, grey when not."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fraction = 0.0
        self.active = True
        self.setFixedSize(44, 10)

    def set_value(self, fraction: float, active: bool) -> None:
        """NaN shows as an empty bar, infinities as a full or empty one (paintEvent must never raise)."""
        fraction = float(np.nan_to_num(fraction, nan=0.0, posinf=1.0, neginf=0.0))
        self.fraction, self.active = float(np.clip(fraction, 0.0, 1.0)), bool(active)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        # The painter is ended whatever happens: an exception with a painter still active crashes Qt.
        fraction = self.fraction if 0.0 <= self.fraction <= 1.0 else 0.0  # False for NaN too
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), QColor(70, 70, 76))
            width = int(round(fraction * self.width()))
            painter.fillRect(
                0,
                0,
                max(width, 1 if fraction > 0 else 0),
                self.height(),
                QColor(80, 150, 230) if self.active else QColor(130, 130, 130),
            )
        finally:
            painter.end()


class LatentSliders(QScrollArea):
    """Sliders over a latent basis. Emits `zEdited(z)` on every slider move (also while dragging),
    `editStarted`/`editFinished` around a mouse drag (one undo step)."""

    zEdited = Signal(object)
    editStarted = Signal()
    editFinished = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._body = QWidget()
        self._grid = QGridLayout(self._body)
        self._grid.setContentsMargins(4, 4, 4, 4)
        self._grid.setHorizontalSpacing(6)
        self._grid.setVerticalSpacing(2)
        self._grid.setColumnStretch(1, 1)
        outer = QWidget()
        column = QVBoxLayout(outer)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._body)
        column.addStretch(1)
        self.setWidget(outer)
        self._names: list[QLabel] = []
        self._sliders: list[QSlider] = []
        self._values: list[QLabel] = []
        self._bars: list[IndicatorBar] = []
        self._active = np.ones(0, dtype=bool)
        self._mean = np.zeros(0, dtype=np.float32)
        self._directions = np.zeros((0, 0), dtype=np.float32)
        self._scale = np.ones(0, dtype=np.float32)
        self._z = np.zeros(0, dtype=np.float32)

    def sizeHint(self) -> QSize:
        return QSize(340, 400)

    # --- the basis ---------------------------------------------------------------------------------
    def set_raw_axes(self, dim: int) -> None:
        self.set_basis(np.zeros(dim), np.eye(dim), np.ones(dim), [f"z{i}" for i in range(dim)])

    def set_basis(
        self,
        mean: np.ndarray,
        directions: np.ndarray,
        scale: np.ndarray,
        names: list[str],
        tooltips: list[str] | None = None,
    ) -> None:
        """Directions are the columns of `directions` (D, K); `scale` (K,) is one slider unit along each."""
        self._mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self._directions = np.asarray(directions, dtype=np.float32)
        self._scale = np.maximum(np.asarray(scale, dtype=np.float32).reshape(-1), 1e-3)  # no division blow-up
        count = self._directions.shape[1]
        self._rebuild(count)
        for k in range(count):
            self._names[k].setText(names[k])
            self._names[k].setToolTip(tooltips[k] if tooltips else "")
        self._active = np.ones(count, dtype=bool)
        for bar in self._bars:
            bar.hide()
        if self._z.shape != self._mean.shape:
            self._z = self._mean.copy()
        self.set_z(self._z)

    def _rebuild(self, count: int) -> None:
        while len(self._sliders) > count:  # drop surplus rows
            for widget in (self._names.pop(), self._sliders.pop(), self._values.pop(), self._bars.pop()):
                self._grid.removeWidget(widget)
                widget.deleteLater()
        while len(self._sliders) < count:
            k = len(self._sliders)
            name, value, bar = QLabel(), QLabel("0.00"), IndicatorBar()
            name.setMinimumWidth(34)
            value.setMinimumWidth(value.fontMetrics().horizontalAdvance("-0.00 "))
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(int(-RANGE * STEPS), int(RANGE * STEPS))
            slider.setSingleStep(5)
            slider.setPageStep(50)
            slider.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            slider.setMinimumWidth(120)
            # valueChanged, not sliderReleased: the image follows the slider while it is dragged.
            slider.valueChanged.connect(lambda v, k=k: self._on_slider(k, v))
            slider.sliderPressed.connect(self.editStarted)
            slider.sliderReleased.connect(self.editFinished)
            for column, widget in enumerate((name, slider, value, bar)):
                self._grid.addWidget(widget, k, column)
            self._names.append(name)
            self._sliders.append(slider)
            self._values.append(value)
            self._bars.append(bar)

    # --- z <-> coordinates ---------------------------------------------------------------------------
    def coordinates(self, z: np.ndarray) -> np.ndarray:
        """The coordinates c of z along the basis directions (in slider units)."""
        with np.errstate(invalid="ignore", over="ignore"):  # a NaN/inf z gives NaN coordinates, shown centred
            return (self._directions.T @ (np.asarray(z, dtype=np.float32) - self._mean)) / self._scale

    def set_z(self, z: np.ndarray) -> None:
        """Show z; the sliders do not echo it back."""
        z = np.asarray(z, dtype=np.float32).reshape(-1)
        if z.shape != self._mean.shape:
            return
        self._z = z.copy()
        coords = self.coordinates(z)
        shown = np.nan_to_num(np.clip(coords, -RANGE, RANGE), nan=0.0)  # a NaN coordinate centres its slider
        for k, slider in enumerate(self._sliders):
            with signals_blocked(slider):
                slider.setValue(int(round(float(shown[k]) * STEPS)))
            self._values[k].setText(f"{coords[k]:.2f}")

    def _on_slider(self, k: int, value: int) -> None:
        target = value / STEPS
        current = float(self.coordinates(self._z)[k])
        z = self._z + (target - current) * self._scale[k] * self._directions[:, k]
        self._z = z.astype(np.float32)
        self._values[k].setText(f"{target:.2f}")
        self.zEdited.emit(self._z.copy())

    # --- indicators ----------------------------------------------------------------------------------
    def set_indicators(
        self, fractions: np.ndarray | None, active: np.ndarray | None = None, tooltips: list[str] | None = None
    ) -> None:
        """A bar per row (None hides them); inactive rows are greyed out (still movable)."""
        count = len(self._sliders)
        self._active = np.ones(count, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        for k in range(count):
            bar = self._bars[k]
            if fractions is None:
                bar.hide()
            else:
                bar.set_value(float(fractions[k]), bool(self._active[k]))
                bar.show()
            bar.setToolTip(tooltips[k] if tooltips else "")
            for label in (self._names[k], self._values[k]):
                label.setEnabled(bool(self._active[k]))  # greyed text
            if tooltips:
                self._sliders[k].setToolTip(tooltips[k])

    # --- for tests and other widgets ----------------------------------------------------------------------
    def count(self) -> int:
        return len(self._sliders)

    def slider(self, k: int) -> QSlider:
        return self._sliders[k]

    def value_label(self, k: int) -> QLabel:
        return self._values[k]

    def name(self, k: int) -> str:
        return self._names[k].text()

    def is_active(self, k: int) -> bool:
        return bool(self._active[k])

    def indicator(self, k: int) -> IndicatorBar:
        return self._bars[k]
