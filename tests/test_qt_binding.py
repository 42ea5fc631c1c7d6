"""Guards against a Qt binding that corrupts Python's reference counts (PySide6 6.12.0 did)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


class _Emitter(QObject):
    fired = Signal(bool)


def test_void_qt_calls_and_emits_keep_reference_counts(qtbot) -> None:
    label = QLabel()
    qtbot.addWidget(label)
    emitter = _Emitter()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(500):
        label.setText("x")
        emitter.fired.emit(True)
    # A leaking binding loses ~500 references to each; allow for unrelated noise.
    assert sys.getrefcount(None) > none_before - 50, "the Qt binding leaks references to None: use PySide6<6.12"
    assert sys.getrefcount(True) > true_before - 50, "the Qt binding leaks references to True: use PySide6<6.12"
