"""The UI's seams for the composition root (``python -m ui`` / ``voiceprobe``).

The real controller (``app/bridge``) is built by the caller of :func:`run_app`; this module
wires the Qt side only: it builds the main window, applies the desktop settings to it
(:class:`SettingsBinding`) and saves them when the window closes.

Startup hook: with ``VOICEPROBE_EXIT_AFTER_SHOWN=1`` in the environment, :func:`run_app`
prints ``shown_ms=<ms>`` on stdout once the main window has been painted for the first
time and quits (``python -m ui.bench startup`` uses it). The time counts from
``VOICEPROBE_T0_NS`` (a ``time.monotonic_ns()`` stamp taken by the parent just before it
spawned the process) or, without it, from the process's start.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from app.errors import VoiceprobeError
from ui.bench import EXIT_AFTER_SHOWN_ENV, T0_ENV  # the startup hook's names (stdlib-only import)
from ui.main_window import MainWindow
from ui.protocols import CallControllerLike
from ui.settings_store import (
    DISCLOSURE_LINE,
    Settings,
    data_root,
    endpoint_url,
    load_settings,
    save_settings,
)
from ui.theme import apply_theme

#: Live events are applied to the window's models in batches at most this far apart (ms):
#: one repaint per batch, not one per event (``python -m ui.bench events`` measures it).
LIVE_COALESCE_MS = 16
#: Banner colours of the recording notice (the banner's own style is for errors).
_NOTICE_STYLE = "background: #e8f0fe; color: #174ea6; border: 1px solid #aecbfa;"


def ensure_app(argv: list[str] | None = None) -> QApplication:
    """The process's QApplication (created, themed, on first call)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
        app.setApplicationName("voiceprobe")
    if isinstance(app, QApplication) and not app.styleSheet():
        apply_theme(app)
    return app  # type: ignore[return-value]


def settings_data_root() -> Path | None:
    """The data folder chosen in the saved settings (``None``: ``$VOICEPROBE_HOME`` or the
    platform folder). For the composition root: ``CallController(data_root=...)``.

    A settings file that cannot be read counts as no choice (the window reports it).
    """
    try:
        return data_root(load_settings())
    except VoiceprobeError:
        return None


class SettingsBinding(QObject):
    """Applies :class:`~ui.settings_store.Settings` to a :class:`MainWindow` and saves
    them when it closes. Main thread only; a child of the window.

    Applied: the last microphone/speaker (when still present), the slow-turn threshold,
    the last profile, the endpoint URL of the profile's provider (``extra_options["url"]``,
    following the provider picker), the recording flag (``extra_options["record"]``), the
    data folder (the controller's ``data_root`` attribute, when it has one), and the
    recording notice shown in the banner when a call starts. Saved on close: devices,
    threshold and profile (the rest is edited in the settings dialog).
    """

    def __init__(self, window: MainWindow, settings: Settings, path: Path | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.path = path
        self.settings = settings
        self._notice_shown = False
        window.profile_editor.provider.currentTextChanged.connect(self._provider_changed)
        window.vm.callStarted.connect(self._call_started)
        window.vm.callEnded.connect(self._clear_notice)
        window.vm.notice.connect(self._clear_notice)
        window.vm.failed.connect(self._clear_notice)
        window.installEventFilter(self)
        self.apply(settings, restore=True)

    def apply(self, settings: Settings, restore: bool = False) -> None:
        """Apply ``settings``; with ``restore`` also the remembered devices, threshold and
        profile (done once, when the window is built).
        """
        self.settings = settings
        w = self.window
        if restore:
            if settings.profile and settings.profile != w.profile_editor.picker.currentData():
                w.profile_editor.load(settings.profile)
            for combo, name in (
                (w.input_device, settings.input_device),
                (w.output_device, settings.output_device),
            ):
                index = combo.findData(name) if name else -1
                if index >= 0:
                    combo.setCurrentIndex(index)
            w.vm.turns.set_slow_ms(float(settings.slow_turn_ms))
        w.extra_options["record"] = settings.recording
        self._provider_changed(w.profile_editor.provider.currentText())
        if restore:
            w.choose_default_provider()  # a URL set in Settings picks the real provider
        root = data_root(settings)
        if root is not None and hasattr(w.controller, "data_root"):
            setattr(w.controller, "data_root", root)  # noqa: B010 - not in the protocol

    def current(self) -> Settings:
        """The settings with the window's devices, threshold and profile."""
        w = self.window
        profile = w.profile_editor.picker.currentData()
        return replace(
            self.settings,
            input_device=w.input_device.currentData() or "",
            output_device=w.output_device.currentData() or "",
            slow_turn_ms=int(round(w.vm.turns.slow_ms)),
            profile=str(profile) if profile else self.settings.profile,
        )

    def save(self) -> None:
        """Save :meth:`current`, on top of what the settings dialog may have saved since.

        A failure is reported on stderr (the window is closing; nothing else can show it).
        """
        try:
            on_disk = load_settings(self.path)
        except VoiceprobeError:
            on_disk = self.settings
        w = self.current()
        merged = replace(
            on_disk,
            input_device=w.input_device,
            output_device=w.output_device,
            slow_turn_ms=w.slow_turn_ms,
            profile=w.profile,
        )
        try:
            save_settings(merged, self.path)
        except VoiceprobeError as exc:
            print(f"voiceprobe: error: {exc}", file=sys.stderr)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if obj is self.window and event.type() == QEvent.Type.Close:
            self.save()
        return False

    def _provider_changed(self, provider: str) -> None:
        url = endpoint_url(self.settings, provider)
        if url:
            self.window.extra_options["url"] = url
        else:
            self.window.extra_options.pop("url", None)
        self.window.refresh_provider_hint()

    def _call_started(self, *_args: object) -> None:
        s = self.settings
        record = self.window.extra_options.get("record", s.recording)
        if record and s.recording_disclosure:
            banner = self.window.banner
            banner.setStyleSheet(_NOTICE_STYLE)
            banner.setText(DISCLOSURE_LINE)
            banner.show()
            self._notice_shown = True

    def _clear_notice(self, *_args: object) -> None:
        """Give the banner back to errors (their style) once the call ends or one comes."""
        if self._notice_shown:
            self.window.banner.setStyleSheet("")
            if self.window.banner.text() == DISCLOSURE_LINE:
                self.window.banner.hide()
            self._notice_shown = False


def open_settings(parent: QWidget) -> None:
    """Show the settings dialog (modal); on save, apply the new settings to the window."""
    from ui.settings_dialog import SettingsDialog

    try:
        settings = load_settings()
    except VoiceprobeError as exc:
        if isinstance(parent, MainWindow):
            parent.show_error(str(exc))
        settings = Settings()
    dialog = SettingsDialog(settings, parent)
    if dialog.exec() and parent is not None:
        binding = parent.findChild(SettingsBinding)
        if binding is not None:
            binding.apply(dialog.settings)


def open_history(parent: QWidget) -> None:
    """Show the session history window for the data folder (the settings' choice)."""
    from app.store.index import SessionIndex
    from app.store.paths import data_dir, sessions_dir
    from ui.history import HistoryWindow

    root = settings_data_root() or data_dir()
    window = HistoryWindow(SessionIndex(root / "sessions.db"), sessions_dir(root), parent=None)
    if isinstance(parent, MainWindow):
        parent.adopt_window(window)  # kept while open, deleted once closed; closed with the app
    window.show()


def build_main_window(
    controller: CallControllerLike,
    devices: Callable[[], list[Any]] | None = None,
    settings: Settings | bool = True,
    settings_path: Path | None = None,
) -> MainWindow:
    """Build (not show) the main window bound to ``controller``; creates the QApplication
    if needed.

    Args:
        controller: the core's facade (see :class:`ui.protocols.CallControllerLike`).
        devices: the audio device lister (default: the sound devices).
        settings: ``True`` loads the settings file (``settings_path`` or the default) and
            applies it, saving on close; a :class:`Settings` applies those (saved to
            ``settings_path`` on close); ``False`` leaves the window unbound (benchmarks).
        settings_path: the settings file (default: ``settings.json`` in the config folder).
    """
    ensure_app()
    window = MainWindow(
        controller, devices=devices, open_settings=open_settings, open_history=open_history
    )
    window.vm.set_coalescing(LIVE_COALESCE_MS)
    if devices is None:  # the real sound devices: follow them as they come and go
        window.watch_devices()
    if settings is False:
        return window
    if settings is True:
        try:
            settings = load_settings(settings_path)
        except VoiceprobeError as exc:
            window.show_error(f"Settings not loaded: {exc}")
            settings = Settings()
    SettingsBinding(window, settings, settings_path)
    return window


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


def run_app(
    controller_factory: Callable[[], CallControllerLike],
    argv: list[str] | None = None,
    on_window: Callable[[MainWindow], None] | None = None,
) -> int:
    """Create the app, build the controller and window, run the event loop; returns the
    exit code. ``controller_factory`` runs after the QApplication exists; ``on_window``
    (the composition root's last wiring) gets the window before it is shown.
    """
    app = ensure_app(argv)
    controller = controller_factory()
    window = build_main_window(controller)
    if on_window is not None:
        on_window(window)
    if os.environ.get(EXIT_AFTER_SHOWN_ENV, "") not in ("", "0"):
        _exit_after_first_paint(app, window)
    window.show()
    return int(app.exec())


def _process_start_ns() -> int:
    """The start of this process on the monotonic clock (from ``/proc``; 10 ms resolution)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime, in clock ticks since boot
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
        age_s = uptime_s - ticks / os.sysconf("SC_CLK_TCK")
        return time.monotonic_ns() - int(age_s * 1e9)
    except (OSError, ValueError, IndexError):
        return time.monotonic_ns()


class _FirstPaint(QObject):
    """Prints ``shown_ms=`` once the window's first paint has completed, then quits."""

    def __init__(self, app: QApplication, window: QWidget, t0_ns: int) -> None:
        super().__init__(window)
        self._app = app
        self._window = window
        self._t0 = t0_ns
        self._seen = False
        app.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if (
            not self._seen
            and event.type() == QEvent.Type.Paint
            and isinstance(obj, QWidget)
            and obj.window() is self._window
        ):
            self._seen = True
            self._app.removeEventFilter(self)
            # The repaint that delivers this paint also flushes the window; a 0 ms timer
            # runs right after it.
            QTimer.singleShot(0, self._done)
        return False

    def _done(self) -> None:
        print(f"shown_ms={(time.monotonic_ns() - self._t0) / 1e6:.1f}", flush=True)
        self._window.close()
        self._app.quit()


def _exit_after_first_paint(app: QApplication, window: QWidget) -> None:
    raw = os.environ.get(T0_ENV, "")
    t0 = int(raw) if raw.isdigit() else _process_start_ns()
    _FirstPaint(app, window, t0)  # owned by the window
