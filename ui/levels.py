"""Pulls caller/agent levels at 30 Hz (high-rate data never travels as events)."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

LEVEL_HZ = 30
FLOOR_DBFS = -120.0


class LevelPump(QObject):
    """One display timer that samples ``levels()`` and broadcasts the values.

    ``levels`` is the controller's ``levels() -> (caller_dbfs, agent_dbfs)``; it must be
    cheap and thread-safe (it reads values the core updates). Runs on the main thread.
    """

    #: (t_ns on the monotonic clock, caller dBFS, agent dBFS)
    # A C++ type name keeps t_ns 64-bit; PySide6's stubs accept only Python types.
    sampled = Signal("qint64", float, float)  # type: ignore[arg-type]

    def __init__(
        self,
        levels: Callable[[], tuple[float, float]],
        parent: QObject | None = None,
        hz: int = LEVEL_HZ,
    ) -> None:
        super().__init__(parent)
        self._levels = levels
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, round(1000 / hz)))
        self._timer.timeout.connect(self.tick)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def tick(self) -> None:
        """Sample once (the timer calls this; tests may call it directly)."""
        caller, agent = self._levels()
        self.sampled.emit(time.monotonic_ns(), float(caller), float(agent))
