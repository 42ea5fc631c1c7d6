"""The base of every tab: what each one needs of the model, when it redraws, and how its work stops.

A tab is a view of the ExplorerState. `Tab` does the lifecycle every tab needs, once:

- **Gate.** `model_problem()` says why the tab cannot work with the open model (default: it needs a
  latent space, `state.has_latent`; no model, or one without a latent such as a PixelCNN, gets a short
  message instead of the content).
- **Model change.** When another checkpoint opens (or the device changes) the tab's job slots are
  cancelled, the gate is updated and `reset_for_model()` runs, shown or not: forget what belonged to
  the old model and set the controls for the new one (`self.usable` says whether the gate let it in).
- **Class change.** A conditional model's class blend changed (`state.classChanged`; `state.model` is
  then a new view drawing that class): `class_changed()` runs, by default `refresh()`; a tab that keeps
  images or a decoder of the old view drops them there.
- **Refresh while hidden.** `refresh()` may be called any time (a signal, a control, a debounce timer):
  while the tab is shown and usable it runs `update_view()` at once; otherwise it only marks the tab
  dirty, and showing the tab runs `update_view()` then. A hidden tab decodes nothing.
- **Background work.** `job_slot()` makes a `workers.Latest` slot owned by the tab (the newest request
  wins); the base cancels every slot when the model changes and in `stop_work()`.
- **Opening a model.** `openRequested(path)` asks the main window to open a checkpoint and show the
  Explore tab (the Train tab's "Open in explorer").
- **Stopping.** `stop_work()` asks the tab's work to stop at its next safe point and returns at once.
  The main window calls it on every tab when it closes and when the application quits; a tab that
  holds more (a playback timer, a training run) extends it. Before that, `can_close()` may keep the
  window open (the Train tab asks about a run in progress), and while the window waits for the work,
  `stopping_message()` says what for.

A new tab is one view file: subclass Tab, build the widgets, call `set_content()` last in `__init__`,
fill in the hooks, and list it in `explorer.panels.EXTRA_PANELS`. For example::

    def _decode(job, model, z):
        return latent.decode_latents(model, z[None], should_stop=lambda: job.cancelled)[0]

    class PictureTab(Tab):
        '''decode(z), redrawn whenever z changes while the tab is shown.'''

        def __init__(self, state, parent=None):
            super().__init__(state, parent)
            self.view = ImageView()
            self.decodes = self.job_slot(interrupt=False)     # newest request wins (see workers.Latest)
            state.latentChanged.connect(self.refresh)        # now if shown, else when shown
            self.set_content(self.view)                      # last: applies the open model

        def reset_for_model(self):                           # a new model (maybe not usable)
            self.view.set_image(None)

        def update_view(self):                               # shown, and the model has a latent
            self.decodes.start(_decode, self.state.model, self.state.z.copy(),
                               on_result=self.view.set_image)

Subclasses keep to public names for what tests and other code read; anything that is not a hook or a
documented attribute is the tab's own business.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from explorer.state import ExplorerState
from explorer.workers import Latest

log = logging.getLogger(__name__)


def latent_model_problem(state: ExplorerState) -> str | None:
    """Why a latent tab cannot work with the state's model, or None when it can."""
    if state.model is None:
        return "Open a checkpoint or ONNX model to use this panel."
    if not state.has_latent:
        return (
            "This panel needs a model with a latent space, such as a VAE or GAN: this one has no latent to map, "
            "interpolate or do arithmetic in (a PixelCNN draws images pixel by pixel)."
        )
    return None


class ModelGate(QStackedWidget):
    """Page 0: a short message (why the tab cannot work with this model); page 1: the tab's content."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = QLabel()
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setObjectName("modelMessage")
        holder = QWidget()
        lay = QVBoxLayout(holder)
        lay.addWidget(self.message)
        self.addWidget(holder)
        self.addWidget(QWidget())  # replaced by set_content

    def set_content(self, content: QWidget) -> None:
        old = self.widget(1)
        self.removeWidget(old)
        old.deleteLater()
        self.addWidget(content)

    def show_problem(self, problem: str | None) -> None:
        """The message page with `problem`, or the content when it is None."""
        self.message.setText(problem or "")
        self.setCurrentIndex(0 if problem else 1)


class Tab(QWidget):
    """A tab of the main window over `state`; see the module docstring for the contract."""

    openRequested = Signal(str)  # a checkpoint the tab asks the main window to open and explore

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.gate = ModelGate()
        self._slots: list[Latest] = []
        self._dirty = True
        self._usable = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.gate)

    # --- for subclasses ---------------------------------------------------------------------------
    def set_content(self, content: QWidget) -> None:
        """Install the tab's widgets (call once, last in __init__): the open model is applied now, and
        again whenever it changes."""
        self.gate.set_content(content)
        self.state.modelChanged.connect(self._model_changed)
        self.state.classChanged.connect(self.class_changed)
        self._model_changed()

    def job_slot(self, interrupt: bool = True) -> Latest:
        """A job slot of this tab where the newest request wins (workers.Latest); cancelled on a model
        change and by stop_work()."""
        slot = Latest(self, interrupt=interrupt)
        self._slots.append(slot)
        return slot

    @property
    def usable(self) -> bool:
        """True when the open model passed the gate."""
        return self._usable

    # --- hooks ------------------------------------------------------------------------------------
    def model_problem(self) -> str | None:
        """Why this tab cannot work with the open model (shown instead of the content), or None."""
        return latent_model_problem(self.state)

    def reset_for_model(self) -> None:
        """The model changed (shown or not, usable or not): drop the old model's results, set controls."""

    def update_view(self) -> None:
        """Bring the view up to date with the state; runs only while shown and usable (see refresh)."""

    def class_changed(self) -> None:
        """The class blend changed (state.model draws the new one): redraw (now if shown, else when shown)."""
        self.refresh()

    def stop_work(self) -> None:
        """Ask the tab's background work to stop at its next safe point; returns at once. Called by the
        main window on close and quit; subclasses holding more work extend it."""
        for slot in self._slots:
            slot.cancel()

    def can_close(self) -> bool:
        """Asked before the window closes: False keeps it open (a tab with work in hand may ask the user,
        and stop that work when they agree)."""
        return True

    def stopping_message(self) -> str | None:
        """What the window says while it waits at close for this tab's work to stop, or None."""
        return None

    # --- the lifecycle ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Update the view now when the tab is shown and usable; otherwise when it is next shown."""
        if not (self._usable and self.isVisible()):
            self._dirty = True
            return
        self._dirty = False
        self.update_view()

    def is_dirty(self) -> bool:
        """True when the view waits for the tab to be shown to catch up."""
        return self._dirty

    def busy(self) -> bool:
        """True while any job of the tab's slots runs or waits."""
        return any(slot.busy() for slot in self._slots)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dirty:
            self.refresh()

    def _model_changed(self) -> None:
        for slot in self._slots:
            slot.cancel()
        problem = self.model_problem()
        self._usable = problem is None
        self.gate.show_problem(problem)
        self.reset_for_model()
        self.refresh()
