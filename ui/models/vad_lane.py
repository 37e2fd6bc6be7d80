"""Speech activity: local VAD, server VAD, agent playout, mic level.

Intervals come from events; the level history is pushed by the view's 30 Hz timer
(:meth:`VadLaneModel.add_level`), never by the core. Times are clock nanoseconds. A live
view asks for the last ~30 s relative to "now" (:meth:`VadLaneModel.window`); a stored or
finished call is shown whole, in seconds into the call (:meth:`VadLaneModel.call_time`).
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
#: Intervals kept per lane (one per utterance: hours of call).
_INTERVALS_KEEP = 20_000
#: The events that open (True) or close (False) an interval of a lane.
_EDGES: dict[type[E.EventBase], tuple[str, bool]] = {
    E.LocalSpeechStarted: ("local", True),
    E.LocalSpeechStopped: ("local", False),
    E.ServerSpeechStarted: ("server", True),
    E.ServerSpeechStopped: ("server", False),
    E.PlaybackStarted: ("agent", True),
    E.PlaybackStopped: ("agent", False),
}


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
        #: The call's start (``CallStarted``), the zero of call time; set by the view-model.
        self.origin_ns: int | None = None

    def intervals(self, lane: str) -> list[tuple[int, int | None]]:
        """All kept intervals of ``lane`` as ``(start_ns, end_ns or None)``."""
        return [(int(s), e) for s, e in self._lanes[lane]]  # type: ignore[arg-type]

    def clear(self) -> None:
        for lane in self._lanes.values():
            lane.clear()
        self._levels.clear()
        self.last_t_ns = None
        self.changed.emit()

    def start_ns(self) -> int | None:
        """The zero of call time: :attr:`origin_ns`, else the first interval's start."""
        if self.origin_ns is not None:
            return self.origin_ns
        starts = [int(ivs[0][0]) for ivs in self._lanes.values() if ivs and ivs[0][0] is not None]
        return min(starts) if starts else None

    def call_time(self, lane: str) -> list[tuple[float, float]]:
        """Every interval of ``lane`` in seconds into the call (open ones end at the last
        event seen)."""
        zero = self.start_ns()
        if zero is None:
            return []
        last = self.last_t_ns if self.last_t_ns is not None else zero
        return [
            ((int(s) - zero) / 1e9, ((last if e is None else int(e)) - zero) / 1e9)
            for s, e in self._lanes[lane]
            if s is not None
        ]

    def duration_s(self) -> float:
        """The call's length so far (first stamp to last event), in seconds."""
        zero = self.start_ns()
        if zero is None or self.last_t_ns is None:
            return 0.0
        return max(0.0, (self.last_t_ns - zero) / 1e9)

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

    def apply(self, ev: E.EventBase) -> None:
        """Open/close intervals from VAD and playout events; other events only move time."""
        edge = _EDGES.get(type(ev))
        if edge is not None:
            lane, opens = edge
            (self._open if opens else self._close)(lane, ev.t_ns)
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
        ivs = self._lanes[lane]
        if len(ivs) > _INTERVALS_KEEP:
            del ivs[: len(ivs) - _INTERVALS_KEEP]

    def _touch(self, t_ns: int) -> None:
        if self.last_t_ns is None or t_ns > self.last_t_ns:
            self.last_t_ns = t_ns
