"""Widgets of the Train tab (the Replay tab borrows `Column`).

Live loss curves: points are buffered as they arrive and drawn on `refresh()` (the panel calls it
from a timer), so a flood of steps costs one `setData` per curve per redraw, not one per step."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget


class Column(QWidget):
    """A container that does not pass its word-wrapped labels' height-for-width up: a resizable
    QScrollArea would otherwise size the panel to its preferred height and scroll needlessly."""

    def hasHeightForWidth(self) -> bool:
        return False


COLOURS = ("#4e9af1", "#f1a24e", "#5fc46a", "#e0604f", "#b07ee8", "#d4c84a")


class LossCurves(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("#1e1f22")
        # No grid: it was two thirds of each repaint (12 of 18 ms), the longest GUI-thread stall while
        # training (benchmarks.training).
        self.setLabel("bottom", "step")
        self.setLabel("left", "loss")
        self.legend = self.addLegend(offset=(-10, 10))  # clicking an entry hides its curve
        self.curves: dict[str, pg.PlotDataItem] = {}
        self._points: dict[str, tuple[list[float], list[float]]] = {}
        self._dirty: set[str] = set()
        self._marked: set[str] = set()  # curves drawn with symbols throughout (held-out, per epoch)

    def add_point(self, name: str, step: float, value: float, marker: bool = False) -> None:
        if name not in self.curves:
            colour = COLOURS[len(self.curves) % len(COLOURS)]
            pen = pg.mkPen(
                colour, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine if marker else pg.QtCore.Qt.PenStyle.SolidLine
            )
            curve = self.plot(
                [], [], name=name, pen=pen, symbol="o" if marker else None, symbolSize=6, symbolBrush=colour
            )
            curve.setDownsampling(auto=True, method="peak")  # long runs: draw at most ~2 points per pixel
            curve.setClipToView(True)
            self.curves[name] = curve
            self._points[name] = ([], [])
            if marker:
                self._marked.add(name)
        xs, ys = self._points[name]
        xs.append(float(step))
        ys.append(float(value))
        self._dirty.add(name)

    def refresh(self) -> None:
        for name in self._dirty:
            xs, ys = self._points[name]
            curve = self.curves[name]
            curve.setData(np.asarray(xs), np.asarray(ys))
            if name not in self._marked:  # a lone point draws no line: show it as a dot
                curve.setSymbol("o" if len(xs) < 3 else None)
        self._dirty.clear()

    def clear_curves(self) -> None:
        for curve in self.curves.values():
            self.legend.removeItem(curve)
            self.removeItem(curve)
        self.curves.clear()
        self._points.clear()
        self._dirty.clear()
        self._marked.clear()

    def data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The points drawn for `name` (what the curve item holds, after the last refresh)."""
        x, y = self.curves[name].getOriginalDataset()
        return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))
