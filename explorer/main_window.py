"""The main window: menus, the Explore tab and the extra panels, the Model and Bookmarks docks."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence, QScreen
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engines.checkpoint import SUFFIX, Checkpoint, CheckpointError
from engines.device import available_devices
from engines.foreign import ONNX_SUFFIX, onnx_for_sidecar
from engines.foreign.plugins import plugin_suffixes
from engines.images import save_png
from engines.styles import space_latent_dim

from . import settings, threads
from .banner import MessageBanner
from .bookmarks import BookmarkStrip
from .decoder import LatentDecoder
from .image_view import IMAGE_SUFFIXES, local_files
from .panels import EXTRA_PANELS, session_key
from .panels.explore import ExplorePanel
from .panels.info import InfoPanel, nonfinite_warning
from .panels.tab import Tab
from .pixels import image_array
from .present import PresentationWindow
from .session import Session, SessionError, load_session, save_session
from .state import ExplorerState
from .workers import cancel_all_jobs, running_jobs

log = logging.getLogger(__name__)
TITLE = "Latent Explorer"
STOPPING_WORK = "Stopping background work: waiting for it to finish…"
CLOSE_POLL_MS = 50


def open_filters() -> str:
    """The file dialog's filters: checkpoints, ONNX models, and the suffixes installed plugins open."""
    suffixes = [f"*{SUFFIX}", f"*{ONNX_SUFFIX}"]
    try:
        plugins = plugin_suffixes()
    except Exception:  # noqa: BLE001 - a broken plugin environment must not break File > Open
        log.exception("listing the plugins failed")
        plugins = {}
    extra = ";;".join(f"{plugin.title} (*{suffix})" for suffix, plugin in sorted(plugins.items()))
    models = " ".join(suffixes + [f"*{s}" for s in sorted(plugins)])
    return (
        f"Models ({models});;Checkpoints (*{SUFFIX});;ONNX models (*{ONNX_SUFFIX})"
        + (f";;{extra}" if extra else "")
        + ";;All files (*)"
    )


class MainWindow(QMainWindow):
    def __init__(self, state: ExplorerState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.state = state if state is not None else ExplorerState(self)
        self.decoder = LatentDecoder(self)
        self.message_box: QMessageBox | None = None  # the last message dialog (non-modal)
        self.presentation: PresentationWindow | None = None  # View > Present, while it is open
        self._shut_down = False
        self._closing = False  # the window was asked to close and waits for background threads
        self._close_timer = QTimer(self)
        self._close_timer.setInterval(CLOSE_POLL_MS)
        self._close_timer.timeout.connect(self._close_when_idle)
        self.setWindowTitle(TITLE)
        self.setAcceptDrops(True)

        self.explore = ExplorePanel(self.state, self.decoder)
        self.explore.statusMessage.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.explore.errorOccurred.connect(self.show_error)
        self.explore.openRequested.connect(self.open_and_explore)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.explore, "Explore")
        self.extra_panels: dict[str, QWidget] = {}  # session key -> panel
        self._add_extra_panels()
        self.banner = MessageBanner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(4, 4, 4, 0)
        column.addWidget(self.banner)
        column.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.info = InfoPanel(self.state)
        self.info_dock = self._dock("Model", "modelDock", self.info, Qt.DockWidgetArea.RightDockWidgetArea)
        self.bookmarks = BookmarkStrip(self.state)
        self.bookmarks_dock = self._dock(
            "Bookmarks", "bookmarksDock", self.bookmarks, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.resizeDocks([self.info_dock], [260], Qt.Orientation.Horizontal)
        self.resizeDocks([self.bookmarks_dock], [118], Qt.Orientation.Vertical)

        self._build_actions()
        self._build_menus_and_toolbar()
        self.state.modelChanged.connect(self._on_model_changed)
        self.state.historyChanged.connect(self._update_actions)
        self._on_model_changed()
        self.statusBar().showMessage("File > Open a checkpoint or ONNX model (Ctrl+O) to start")
        self.resize(1200, 800)
        self.restore_layout()

    # --- construction ------------------------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)  # saveState/restoreState find docks by object name
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _add_extra_panels(self) -> None:
        for title, module_name, class_name in EXTRA_PANELS:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as error:
                log.warning("panel %r skipped: %s", title, error)
                continue
            except Exception:  # noqa: BLE001 - a broken panel must not keep the app from starting
                log.exception("panel %r failed to import; skipped", title)
                continue
            try:
                panel = getattr(module, class_name)(self.state, None)
            except Exception:  # noqa: BLE001
                log.exception("panel %r failed to build; skipped", title)
                continue
            # In a scroll area, so a panel's minimum size cannot force the whole window to grow.
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(panel)
            self.tabs.addTab(scroll, title)
            self.extra_panels[session_key(module_name)] = panel
            if isinstance(panel, Tab):
                panel.openRequested.connect(self.open_and_explore)

    def show_tab(self, title: str) -> None:
        """Bring the tab with this title ("Maps", "Train", ...) to the front; StopIteration if there is none."""
        self.tabs.setCurrentIndex(next(i for i in range(self.tabs.count()) if self.tabs.tabText(i) == title))

    def tab_views(self) -> list[Tab]:
        """Every tab built on explorer.panels.tab.Tab (Explore first), in tab order."""
        return [self.explore, *(p for p in self.extra_panels.values() if isinstance(p, Tab))]

    def _action(self, text: str, slot, shortcut: QKeySequence | str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda checked=False: slot())
        self.addAction(action)  # shortcuts work whatever has focus in the window
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.open_action = a(
            "&Open Model…",
            self.open_dialog,
            QKeySequence.StandardKey.Open,
            "Open a .safetensors checkpoint, an ONNX decoder, or a file an installed plugin opens",
        )
        self.encode_action = a(
            "&Encode Image…", self.explore.encode_file_dialog, "Ctrl+I", "Make an image file's latent current"
        )
        self.save_session_action = a(
            "&Save Session…",
            self.save_session_dialog,
            QKeySequence.StandardKey.Save,
            "Save z, seed, bookmarks and vectors",
        )
        self.load_session_action = a("&Load Session…", self.load_session_dialog, "Ctrl+L", "Load a saved session")
        self.export_image_action = a(
            "Export &Image…", self.export_image_dialog, "Ctrl+E", "Save the current image as PNG"
        )
        self.export_latent_action = a(
            "Export &Latent…", self.export_latent_dialog, "Ctrl+Shift+E", "Save z as .npy or .json"
        )
        self.quit_action = a("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.undo_action = a("&Undo", self.state.undo, "Ctrl+Z", "Undo the last change of z")
        self.redo_action = a("&Redo", self.state.redo, "Ctrl+Shift+Z", "Redo")
        self.randomize_action = a("&Randomize", self.explore.randomize, "R", "Draw a random z with the next seed")
        self.reset_action = a("Re&set", self.state.reset, "0", "z = 0")
        self.bookmark_action = a("&Bookmark", self.bookmarks.add, "B", "Bookmark the current z")
        self.present_action = a(
            "&Present",
            self.present,
            "F5",
            "Show the live image full screen on another screen if there is one (Esc leaves)",
        )
        self.smooth_present_action = a(
            "Smooth Scaling in Presentation", self._smooth_presentation, tip="Off: crisp model pixels (nearest)"
        )
        self.smooth_present_action.setCheckable(True)

    def _build_menus_and_toolbar(self) -> None:
        menu = self.menuBar().addMenu("&File")
        menu.addAction(self.open_action)
        self.recent_menu = menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        menu.addAction(self.encode_action)
        menu.addSeparator()
        menu.addActions([self.save_session_action, self.load_session_action])
        menu.addSeparator()
        menu.addActions([self.export_image_action, self.export_latent_action])
        menu.addSeparator()
        menu.addAction(self.quit_action)
        edit = self.menuBar().addMenu("&Edit")
        edit.addActions([self.undo_action, self.redo_action])
        edit.addSeparator()
        edit.addActions([self.randomize_action, self.reset_action, self.bookmark_action])
        view = self.menuBar().addMenu("&View")
        view.addActions([self.info_dock.toggleViewAction(), self.bookmarks_dock.toggleViewAction()])
        view.addSeparator()
        view.addAction(self.present_action)
        self.present_on_menu = view.addMenu("Present &On")
        self.present_on_menu.aboutToShow.connect(self._fill_present_on_menu)
        view.addAction(self.smooth_present_action)

        self.toolbar = toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        toolbar.addActions([self.open_action, self.undo_action, self.redo_action])
        toolbar.addSeparator()
        toolbar.addActions([self.randomize_action, self.reset_action, self.bookmark_action])
        toolbar.addSeparator()
        toolbar.addWidget(QLabel(" Device "))
        self.device_combo = QComboBox()
        self.device_combo.addItems(available_devices())
        self.device_combo.setToolTip("Where the model runs")
        self.device_combo.setCurrentText(self.state.device.type)
        self.device_combo.textActivated.connect(self.set_device)
        toolbar.addWidget(self.device_combo)

    # --- model --------------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        start = str(Path(settings.recent_files()[0]).parent) if settings.recent_files() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", start, open_filters())
        if path:
            self.open_checkpoint(path)

    def open_checkpoint(self, path: str | Path) -> bool:
        """Open a checkpoint; on failure show why and keep the model that was open."""
        path = Path(path)
        try:
            self.state.open_checkpoint(path)
        except CheckpointError as error:
            self.show_error(f"Cannot open {path.name}: {error}")
            return False
        except Exception as error:  # noqa: BLE001 - e.g. out of memory on the device; the app goes on
            log.exception("opening %s failed", path)
            self.show_error(f"Cannot open {path.name}: {type(error).__name__}: {error}")
            return False
        self._opened(path)
        return True

    def open_and_explore(self, path: str | Path) -> bool:
        """Open a checkpoint a tab asked for (Tab.openRequested) and show it in the Explore tab."""
        opened = self.open_checkpoint(path)
        if opened:
            self.tabs.setCurrentWidget(self.explore)
        return opened

    def _opened(self, path: Path) -> None:
        settings.add_recent_file(path)
        self._fill_recent_menu()
        self.banner.hide()
        self.statusBar().showMessage(f"Opened {path.name}", 8000)
        warning = nonfinite_warning(self.state.checkpoint)
        if warning:
            self.show_warning(f"{path.name}: {warning} (see the Model panel)")

    def set_device(self, device: str) -> None:
        try:
            self.state.set_device(device)
        except (ValueError, RuntimeError) as error:
            self.show_error(f"Cannot use {device}: {error}")
            self.device_combo.setCurrentText(self.state.device.type)
            return
        self.decoder.set_model(self.state.model if self.state.latent_dim else None)
        self.statusBar().showMessage(f"Running on {self.state.device}", 5000)

    def _on_model_changed(self) -> None:
        ckpt = self.state.checkpoint
        self.setWindowTitle(f"{ckpt.path.name} — {TITLE}" if ckpt is not None and ckpt.path else TITLE)
        self.device_combo.setCurrentText(self.state.device.type)
        self._update_actions()

    def _update_actions(self) -> None:
        latent = self.state.latent_dim > 0
        has_model = self.state.checkpoint is not None
        self.undo_action.setEnabled(self.state.can_undo())
        self.redo_action.setEnabled(self.state.can_redo())
        for action in (
            self.reset_action,
            self.bookmark_action,
            self.encode_action,
            self.export_latent_action,
            self.save_session_action,
            self.present_action,
        ):
            action.setEnabled(latent)
        self.randomize_action.setEnabled(has_model)
        self.export_image_action.setEnabled(has_model)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = settings.recent_files()
        for index, path in enumerate(files):
            action = self.recent_menu.addAction(f"&{index + 1} {Path(path).name}")
            action.setToolTip(path)
            action.triggered.connect(lambda checked=False, p=path: self._open_recent(p))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List", lambda: (settings.clear_recent_files(), self._fill_recent_menu()))
        else:
            self.recent_menu.addAction("No recent files").setEnabled(False)

    def _open_recent(self, path: str) -> None:
        if not Path(path).is_file():
            settings.remove_recent_file(path)
            self._fill_recent_menu()
            self.show_error(f"{path} no longer exists; removed from the recent files")
            return
        self.open_checkpoint(path)

    # --- presentation ---------------------------------------------------------------------------------
    def present(self, screen: QScreen | None = None) -> PresentationWindow:
        """Open (or raise) the presentation window full screen on `screen`; by default on a screen other
        than this window's when there are several (a projector), else on this one."""
        if screen is None:
            screens = QGuiApplication.screens()
            here = self.screen()
            screen = next((s for s in screens if s is not here), here) if len(screens) > 1 else here
        if self.presentation is None:
            self.presentation = PresentationWindow(self.state, smooth=self.smooth_present_action.isChecked())
            self.presentation.closed.connect(self._presentation_closed)
        self.presentation.present(screen)
        self.presentation.raise_()
        self.presentation.activateWindow()
        return self.presentation

    def _fill_present_on_menu(self) -> None:
        self.present_on_menu.clear()
        for index, screen in enumerate(QGuiApplication.screens()):
            size = screen.geometry()
            action = self.present_on_menu.addAction(f"&{index + 1} {screen.name()} ({size.width()}x{size.height()})")
            action.triggered.connect(lambda checked=False, s=screen: self.present(s))

    def _smooth_presentation(self) -> None:
        if self.presentation is not None:
            self.presentation.set_smooth(self.smooth_present_action.isChecked())

    def _presentation_closed(self) -> None:
        window, self.presentation = self.presentation, None
        if window is not None:
            window.deleteLater()

    # --- messages -------------------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self._show_message("error", text)

    def show_warning(self, text: str) -> None:
        self._show_message("warning", text)

    def _show_message(self, kind: str, text: str) -> None:
        """Status bar, inline banner and a non-modal dialog: seen, never blocking (nor blocking tests)."""
        (log.warning if kind != "info" else log.info)("%s", text)
        self.statusBar().showMessage(text, 15000)
        self.banner.show_message(kind, text)
        self._present_dialog(kind, text)

    def _present_dialog(self, kind: str, text: str) -> None:
        if self.message_box is not None:
            self.message_box.close()
        icon = QMessageBox.Icon.Critical if kind == "error" else QMessageBox.Icon.Warning
        box = QMessageBox(icon, TITLE, text, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _=0, b=box: self._forget_box(b))
        self.message_box = box
        box.show()

    def _forget_box(self, box: QMessageBox) -> None:
        if self.message_box is box:
            self.message_box = None

    # --- sessions --------------------------------------------------------------------------------------
    def _ask_save_path(self, caption: str, filters: str, suffix: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, caption, "", filters)
        if not path:
            return None
        path = Path(path)
        return path if path.suffix else path.with_suffix(suffix)

    def save_session_dialog(self) -> None:
        path = self._ask_save_path("Save session", "Sessions (*.json)", ".json")
        if path:
            self.save_session(path)

    def load_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load session", "", "Sessions (*.json);;All files (*)")
        if path:
            self.load_session(path)

    def current_session(self) -> Session:
        state = self.state
        panels = {}
        for key, panel in self.extra_panels.items():
            if hasattr(panel, "session_data"):
                try:
                    panels[key] = panel.session_data()
                except Exception:  # noqa: BLE001 - one panel's bug must not lose the whole session
                    log.exception("panel %r: session_data failed", key)
        return Session(
            checkpoint=str(state.checkpoint_path.resolve()) if state.checkpoint_path else None,
            sha256=state.checkpoint_sha256(),
            z=state.z.copy(),
            seed=state.seed,
            temperature=self.explore.temperature(),
            bookmarks=list(state.bookmarks),
            vectors=dict(state.vectors),
            panels=panels,
            space=state.space,
            psi=state.psi,
            class_mix=state.class_mix.copy() if state.num_classes else None,
        )

    def save_session(self, path: str | Path) -> bool:
        if self.state.checkpoint is None:
            self.show_error("Open a checkpoint before saving a session")
            return False
        try:
            save_session(path, self.current_session())
        except (OSError, ValueError) as error:
            self.show_error(f"Cannot save the session: {error}")
            return False
        self.statusBar().showMessage(f"Saved session {Path(path).name}", 8000)
        return True

    def load_session(self, path: str | Path) -> bool:
        """Restore a saved session all or nothing: the file, its checkpoint (opened if another is open) and
        the size of every latent in it are checked first, and only then are the model, z, seed, bookmarks
        and vectors replaced; on any failure a one-line message says why and nothing changes. A checkpoint
        whose hash differs from the one saved is used, with a warning. Panel parts (interpolation path,
        map settings) are restored last, best effort: one that does not fit gives a warning."""
        name = Path(path).name
        try:
            session = load_session(path)
            checkpoint, warnings = self._session_checkpoint(session)
            model = checkpoint.model if checkpoint is not None else self.state.base_model
            try:
                latent_dim = space_latent_dim(model, session.space)
            except ValueError as error:
                raise SessionError(str(error)) from error
            session.check_fits(latent_dim, model.num_classes if model is not None else 0)
        except (SessionError, CheckpointError) as error:
            self.show_error(f"Cannot load {name}: {error}")
            return False
        except Exception as error:  # noqa: BLE001 - e.g. out of memory loading its checkpoint; nothing changed
            log.exception("loading the session %s failed", path)
            self.show_error(f"Cannot load {name}: {type(error).__name__}: {error}")
            return False
        # Everything fits: from here on nothing can fail halfway.
        if checkpoint is not None:
            self.state.set_checkpoint(checkpoint)
            self._opened(checkpoint.path)
        if session.sha256 and self.state.checkpoint_sha256() != session.sha256:
            warnings.append(
                "it was saved with a different checkpoint file (sha256 differs): latents may not mean the same"
            )
        if session.class_mix is not None:  # before the space: W maps z with the class
            self.state.set_class_mix(session.class_mix)
        self.state.set_space(session.space, session.psi)
        self.state.restore(session.z, session.seed, session.bookmarks, session.vectors)
        self.explore.set_temperature(session.temperature)
        for key, panel in self.extra_panels.items():
            if key in session.panels and hasattr(panel, "load_session_data"):
                try:
                    panel.load_session_data(session.panels[key])
                except Exception as error:  # noqa: BLE001
                    log.exception("panel %r: load_session_data failed", key)
                    warnings.append(f"the {key} panel could not restore its part ({error})")
        if warnings:
            self.show_warning(f"Loaded {name}, but " + "; ".join(warnings))
        else:
            self.statusBar().showMessage(f"Loaded session {name}", 8000)
        return True

    def _session_checkpoint(self, session: Session) -> tuple[Checkpoint | None, list[str]]:
        """The checkpoint a session needs, loaded but not yet current (None: the open one will do), and
        warnings; raises SessionError or CheckpointError when there is no fitting model."""
        current = self.state.checkpoint_path
        if session.checkpoint is None:
            if current is None:
                raise SessionError("it names no checkpoint; open one first")
            return None, []
        target = Path(session.checkpoint)
        if current is not None and current.resolve() == target.resolve():
            return None, []
        if target.is_file():
            try:
                return self.state.load_checkpoint(target), []
            except CheckpointError as error:
                raise CheckpointError(f"its checkpoint {target.name} cannot be opened: {error}") from error
        if current is not None and session.sha256 and self.state.checkpoint_sha256() == session.sha256:
            return None, []  # the same file, moved: the open one is it
        raise SessionError(f"its checkpoint {target} is missing; open that model, then load the session again")

    # --- export ----------------------------------------------------------------------------------------
    def export_image_dialog(self) -> None:
        scale, ok = QInputDialog.getInt(self, "Export image", "Scale (nearest neighbour):", 4, 1, 16)
        if not ok:
            return
        path = self._ask_save_path("Export image", "PNG images (*.png)", ".png")
        if path:
            self.export_image(path, scale)

    def export_image(self, path: str | Path, scale: int = 1) -> bool:
        """Save the current image as PNG, enlarged `scale` times (1-16) with crisp pixels."""
        if not 1 <= int(scale) <= 16:
            raise ValueError("scale must be between 1 and 16")
        image = self.explore.current_image()
        if image is None:
            self.show_error("There is no image to export")
            return False
        try:
            save_png(image_array(image), path, scale=int(scale))
        except (OSError, ValueError) as error:
            self.show_error(f"Cannot save {Path(path).name}: {error}")
            return False
        self.statusBar().showMessage(f"Saved {Path(path).name} at {scale}x", 8000)
        return True

    def export_latent_dialog(self) -> None:
        path = self._ask_save_path("Export latent", "NumPy (*.npy);;JSON (*.json)", ".npy")
        if path:
            self.export_latent(path)

    def export_latent(self, path: str | Path) -> bool:
        """Save z as .npy (float32) or .json (a list, with the checkpoint's name)."""
        path = Path(path)
        if not self.state.latent_dim:
            self.show_error("This model has no latent to export")
            return False
        try:
            if path.suffix.lower() == ".json":
                name = self.state.checkpoint_path.name if self.state.checkpoint_path else None
                path.write_text(json.dumps({"checkpoint": name, "z": [float(x) for x in self.state.z]}, indent=1))
            else:
                np.save(path, self.state.z.astype(np.float32))
        except OSError as error:
            self.show_error(f"Cannot save {path.name}: {error}")
            return False
        self.statusBar().showMessage(f"Saved z to {path.name}", 8000)
        return True

    # --- drag and drop ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event)
        if not files:
            event.ignore()
            return
        event.acceptProposedAction()
        # After the drop returns: the drag source should not wait for a model to load.
        QTimer.singleShot(0, lambda path=files[0]: self.open_path(path))

    def open_path(self, path: str | Path) -> None:
        """Open whatever a file is: an image (encode it), a session (.json) or a checkpoint."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            self.explore.encode_file(str(path))
        elif suffix == ".json" and onnx_for_sidecar(path) is not None:  # an ONNX model's sidecar: open the model
            self.open_checkpoint(onnx_for_sidecar(path))
        elif suffix == ".json":
            self.load_session(path)
        else:
            self.open_checkpoint(path)

    # --- layout memory and shutdown ----------------------------------------------------------------------
    def restore_layout(self) -> None:
        store = settings.app_settings()
        for key, restore in (
            ("window/geometry", self.restoreGeometry),
            ("window/state", self.restoreState),
            ("explore/splitter", self.explore.splitter.restoreState),
        ):
            value = store.value(key)
            if isinstance(value, (QByteArray, bytes)):
                restore(value)

    def save_layout(self) -> None:
        store = settings.app_settings()
        store.setValue("window/geometry", self.saveGeometry())
        store.setValue("window/state", self.saveState())
        store.setValue("explore/splitter", self.explore.splitter.saveState())
        store.sync()

    def request_stop(self) -> None:
        """Ask every tab's work (Tab.stop_work: e.g. wake and stop a paused training run, so its thread can
        end), every job and the decoder to stop at their next safe point; returns at once."""
        for tab in self.tab_views():
            tab.stop_work()
        cancel_all_jobs()
        self.decoder.request_stop()

    def background_work(self) -> str | None:
        """What the window is still waiting for, in words, or None when no background thread runs."""
        if not running_jobs():  # the decoder's jobs too
            return None
        return next((text for tab in self.tab_views() if (text := tab.stopping_message())), STOPPING_WORK)

    def shutdown(self) -> None:
        """Stop every worker and wait for its thread (at quit, or when the window closes), however long a
        step in progress takes: the window keeps painting meanwhile and the process never aborts."""
        if self._shut_down:
            return
        self._shut_down = True
        if self.presentation is not None:
            self.presentation.close()
        self._close_timer.stop()  # a close waiting for the work: nothing is left to wait for after this
        self.request_stop()
        if self.background_work() is not None:
            self.statusBar().showMessage(self.background_work() or "")
        threads.wait_for_all()
        self.decoder.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Close at once when no background thread runs; otherwise ask the work to stop, say so, and close
        when the last thread has ended (a timer checks; the GUI thread never blocks on a worker)."""
        if not self._closing:
            # A panel with work in hand (a training run) may ask first; it stops that work if the user agrees.
            if not all(tab.can_close() for tab in self.tab_views()):
                event.ignore()
                return
            self._closing = True
            self.save_layout()
            self.request_stop()
            for widget in (self.tabs, self.info_dock, self.bookmarks_dock, self.menuBar(), self.toolbar):
                widget.setEnabled(False)  # nothing new starts while the work winds down
            for action in self.actions():
                action.setEnabled(False)
        waiting_for = self.background_work()
        if waiting_for is not None:
            event.ignore()  # closing again while waiting changes nothing: a step is never cut short
            self.banner.show_message("info", waiting_for)
            self.statusBar().showMessage(waiting_for)
            if not self._close_timer.isActive():
                self._close_timer.start()
            return
        self._close_timer.stop()
        if self.message_box is not None:
            self.message_box.close()
        self.shutdown()  # nothing runs any more: returns at once
        super().closeEvent(event)

    def _close_when_idle(self) -> None:
        cancel_all_jobs()  # a job started since (by a queued event) is asked to stop too
        if self.background_work() is None:
            self._close_timer.stop()
            self.close()
