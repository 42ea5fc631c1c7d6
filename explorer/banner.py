"""The inline message line of the app: errors, warnings and notes shown above a view, dismissable,
never blocking (the main window shows one above its tabs, the Train tab one above its curves)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

COLOURS = {"error": "#5a1e1e", "warning": "#5a4a1e", "info": "#1e3a5a"}


class MessageBanner(QFrame):
    """A coloured line with a message and a close button; hidden until `show_message`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = ""  # "error", "warning" or "info": the last message's
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, kind: str, text: str) -> None:
        self.kind = kind
        self.setStyleSheet(
            f"MessageBanner {{ background: {COLOURS.get(kind, '#333')}; border-radius: 3px; }}"
            "QLabel { color: white; }"
        )
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        """The message shown ('' once dismissed)."""
        return "" if self.isHidden() else self.label.text()
