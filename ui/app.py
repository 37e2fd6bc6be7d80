"""The UI's seams for the composition root (``python -m ui`` / ``voiceprobe``).

The real controller (``app/bridge``) is built by the caller of :func:`run_app`; this module
wires the Qt side only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication, QWidget

from ui.main_window import MainWindow
from ui.theme import apply_theme


def ensure_app(argv: list[str] | None = None) -> QApplication:
    """The process's QApplication (created, themed, on first call)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
        app.setApplicationName("voiceprobe")
    if isinstance(app, QApplication) and not app.styleSheet():
        apply_theme(app)
    return app  # type: ignore[return-value]


def open_settings(parent: QWidget) -> None:
    """Show the settings dialog (modal) for the settings file under the config folder."""
    from ui.settings_dialog import SettingsDialog
    from ui.settings_store import load_settings

    SettingsDialog(load_settings(), parent).exec()


def open_history(parent: QWidget) -> None:
    """Show the session history window for the data folder."""
    from app.store.index import SessionIndex
    from app.store.paths import data_dir, sessions_dir
    from ui.history import HistoryWindow

    window = HistoryWindow(SessionIndex(data_dir() / "sessions.db"), sessions_dir(), parent=None)
    parent.setProperty("_history", window)  # keep a reference while it is open
    window.show()


def build_main_window(
    controller: Any, devices: Callable[[], list[Any]] | None = None
) -> MainWindow:
    """Build (not show) the main window bound to ``controller``; creates the QApplication
    if needed.
    """
    ensure_app()
    return MainWindow(
        controller, devices=devices, open_settings=open_settings, open_history=open_history
    )


def save_screenshot(window: QWidget, path: str | Path) -> Path:
    """Render ``window`` (shown offscreen if needed) to a PNG at ``path``."""
    app = ensure_app()
    if not window.isVisible():
        window.show()
    app.processEvents()
    out = Path(path)
    if not window.grab().save(str(out)):
        raise OSError(f"cannot write {out}")
    return out


def run_app(controller_factory: Callable[[], Any], argv: list[str] | None = None) -> int:
    """Create the app, build the controller and window, run the event loop; returns the
    exit code. ``controller_factory`` runs after the QApplication exists.
    """
    app = ensure_app(argv)
    controller = controller_factory()
    window = build_main_window(controller)
    window.show()
    return int(app.exec())


def run_demo(screenshot: str | None = None) -> int:
    """Show the UI fed by the scripted demo call (no core); with ``screenshot``, render
    it offscreen to that PNG and exit.
    """
    if screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ui.demo_controller import DemoController

    app = ensure_app()
    window = build_main_window(DemoController(), devices=lambda: [])
    window.show()
    window.toggle_call()
    if screenshot:
        controller: DemoController = window.controller
        controller.wait_replayed(10.0)
        for _ in range(20):
            app.processEvents()
        window.waterfall.select_turn(1)
        save_screenshot(window, screenshot)
        window.close()
        return 0
    return int(app.exec())
