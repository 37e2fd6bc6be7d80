"""Work around a reference-count bug in PySide6 6.12.0's ``SignalInstance.emit``.

In PySide6 6.12.0, every ``signal.emit(...)`` made from Python returns ``True`` without
taking a reference, so each emit steals one reference to ``True``; after a few thousand
emits (one call's worth of events, or pyqtgraph redrawing at 30 Hz for a minute) the
interpreter aborts with "Fatal Python error: bool_dealloc". :func:`install` probes for
the bug and, only if present, wraps ``emit`` to give the reference back. On a fixed
PySide6 it does nothing. Pinning ``PySide6-Essentials!=6.12.0`` avoids the bug entirely.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

_installed = False
PROBE_EMITS = 16


class _Probe(QObject):
    ping = Signal()


def emit_leaks_true() -> bool:
    """Whether ``SignalInstance.emit`` steals a reference to ``True`` (measured)."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(PROBE_EMITS):
        probe.ping.emit()
    # A healthy emit leaves the count unchanged (give or take a temporary).
    return before - sys.getrefcount(True) >= PROBE_EMITS // 2


def install() -> bool:
    """Patch ``SignalInstance.emit`` if it leaks; returns whether a patch is active.

    Call once on the main thread before any signal is emitted (``ui`` does so on import).
    """
    global _installed
    if _installed:
        return True
    if not emit_leaks_true():
        return False
    incref = ctypes.pythonapi.Py_IncRef
    incref.argtypes = [ctypes.py_object]
    incref.restype = None
    original = SignalInstance.emit

    def emit(self: Any, *args: Any) -> Any:
        result = original(self, *args)
        if result is True or result is False:
            incref(result)  # the reference emit() returned without owning
        return result

    SignalInstance.emit = emit  # type: ignore[method-assign]
    _installed = True
    return True
