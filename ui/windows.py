"""Top-level windows opened from another window (session viewers, comparisons): kept in
the opener's list while they exist, and closed with it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget


def keep_window(windows: list[QWidget], window: QWidget) -> None:
    """Add ``window`` to ``windows`` until it is destroyed; it is deleted when closed.

    Main thread only. The caller shows the window.
    """
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    windows.append(window)
    window.destroyed.connect(lambda _o=None, w=window: windows.remove(w) if w in windows else None)


def close_windows(windows: list[QWidget]) -> None:
    """Close every window in ``windows`` (each leaves the list once it is destroyed)."""
    for window in list(windows):
        window.close()
