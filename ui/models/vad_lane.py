"""Speech activity over the last ~30 s: local VAD, server VAD, agent playout, mic level.

Intervals come from events; the level history is pushed by the view's 30 Hz timer
(:meth:`VadLaneModel.add_level`), never by the core. Times are clock nanoseconds; the view
asks for a window relative to "now".
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QObject, Signal

from app import events as E

WINDOW_S = 30.0
LANES = ("local", "server", "agent")
_LEVEL_KEEP = 4096


class VadLaneModel(QObject):
    """Activity intervals per lane and a level history. Main thread only.

    Lanes: ``local`` (our VAD on caller audio), ``server`` (the provider's VAD),
    ``agent`` (agent audio playing at the sink). An open interval has ``end_ns = None``.
    """

    changed = Signal()
    #: A level sample was recorded (the display tick while a call is live).
    levelAdded = Signal()  # noqa: N815

    def __init__(self, parent: QObject | None = None, window_s: float = WINDOW_S) -> None:
        super().__init__(parent)
        self.window_s = window_s
        self._lanes: dict[str, list[list[int | None]]] = {k: [] for k in LANES}
        self._levels: deque[tuple[int, float, float]] = deque(maxlen=_LEVEL_KEEP)
        self.last_t_ns: int | None = None

    def intervals(self, lane: str) -> list[tuple[int, int | None]]:
        """All kept intervals of ``lane`` as ``(start_ns, end_ns or None)``."""
        return [(int(s), e) for s, e in self._lanes[lane]]  # type: ignore[arg-type]

    def clear(self) -> None:
        for lane in self._lanes.values():
            lane.clear()
        self._levels.clear()
        self.last_t_ns = None
        self.changed.emit()

    def add_level(self, t_ns: int, caller_dbfs: float, agent_dbfs: float) -> None:
        """Record one level sample (called by the view's timer, main thread)."""
        self._levels.append((t_ns, float(caller_dbfs), float(agent_dbfs)))
        self._touch(t_ns)
        self.levelAdded.emit()

    def levels(
        self, now_ns: int
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``(t_s, caller_db, agent_db)`` for the window ending at ``now_ns`` (t_s ≤ 0)."""
        lo = now_ns - int(self.window_s * 1e9)
        rows = [r for r in self._levels if r[0] >= lo]
        if not rows:
            z = np.zeros(0)
            return z, z, z
        a = np.asarray(rows, dtype=np.float64)
        return (a[:, 0] - now_ns) / 1e9, a[:, 1], a[:, 2]

    def window(self, lane: str, now_ns: int) -> list[tuple[float, float]]:
        """Intervals of ``lane`` overlapping the window, as seconds relative to ``now_ns``
        (open intervals end at 0).
        """
        lo = now_ns - int(self.window_s * 1e9)
        out = []
        for s, e in self._lanes[lane]:
            end = now_ns if e is None else e
            if end >= lo and s is not None:
                out.append(((max(s, lo) - now_ns) / 1e9, (end - now_ns) / 1e9))
        return out

    def apply(self, ev: E.Event) -> None:
        """Open/close intervals from VAD and playout events; other events only move time."""
        if isinstance(ev, E.LocalSpeechStarted):
            self._open("local", ev.t_ns)
        elif isinstance(ev, E.LocalSpeechStopped):
            self._close("local", ev.t_ns)
        elif isinstance(ev, E.ServerSpeechStarted):
            self._open("server", ev.t_ns)
        elif isinstance(ev, E.ServerSpeechStopped):
            self._close("server", ev.t_ns)
        elif isinstance(ev, E.PlaybackStarted):
            self._open("agent", ev.t_ns)
        elif isinstance(ev, E.PlaybackStopped):
            self._close("agent", ev.t_ns)
        elif isinstance(ev, E.CallEnded):
            for lane in LANES:
                self._close(lane, ev.t_ns)
        else:
            self._touch(ev.t_ns)
            return
        self._touch(ev.t_ns)
        self.changed.emit()

    def _open(self, lane: str, t_ns: int) -> None:
        ivs = self._lanes[lane]
        if ivs and ivs[-1][1] is None:
            return
        ivs.append([t_ns, None])
        self._prune(lane, t_ns)

    def _close(self, lane: str, t_ns: int) -> None:
        ivs = self._lanes[lane]
        if ivs and ivs[-1][1] is None:
            ivs[-1][1] = max(t_ns, int(ivs[-1][0] or 0))

    def _prune(self, lane: str, now_ns: int) -> None:
        keep_from = now_ns - int(2 * self.window_s * 1e9)
        ivs = self._lanes[lane]
        while ivs and ivs[0][1] is not None and int(ivs[0][1]) < keep_from:
            ivs.pop(0)

    def _touch(self, t_ns: int) -> None:
        if self.last_t_ns is None or t_ns > self.last_t_ns:
            self.last_t_ns = t_ns
