"""Completed turns with their spans, session p50/p95 of voice-to-voice, slow turns flagged.

A turn is the :class:`~app.metrics.records.TurnRecord` carried by
:class:`app.events.TurnCompleted` (a stored session's ``turns.json`` is read back into the
same records by :func:`ui.models.replay.replay_into`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from app import events as E
from app.metrics.percentile import percentile
from app.metrics.presentation import HEADLINE, SCRIPTED_NOTE, caller_text, turn_number
from app.metrics.records import TurnRecord
from ui.models.common import USER_ROLE, ms_text, one_line
from ui.models.table import FixedColumnsModel

TURN_ROLE = USER_ROLE + 20
SLOW_ROLE = USER_ROLE + 21
COLUMNS = ("Turn", "Caller", "Agent", "Voice→voice", "End of turn", "TTFB", "Tools", "Flags")
DEFAULT_SLOW_MS = 1200.0


class TurnsModel(FixedColumnsModel):
    """One row per completed turn. Main thread only.

    A turn is *slow* when its voice-to-voice exceeds :attr:`slow_ms` (changeable live).
    :attr:`summaryChanged` fires whenever the p50/p95 or the threshold changes.
    """

    summaryChanged = Signal()

    def __init__(self, parent: Any = None, slow_ms: float = DEFAULT_SLOW_MS) -> None:
        super().__init__(parent)
        self._turns: list[TurnRecord] = []
        self._network: dict[str, list[float]] = {}
        self._slow_ms = float(slow_ms)
        #: Caller transcripts are the simulator's script (marked ``[scripted]``).
        self.scripted = False

    def set_scripted(self, scripted: bool) -> None:
        """Mark (or stop marking) the caller transcripts as scripted."""
        self.scripted = scripted
        if self._turns:
            self.dataChanged.emit(self.index(0, 1), self.index(len(self._turns) - 1, 1))

    # --- reading ------------------------------------------------------------------------

    @property
    def slow_ms(self) -> float:
        return self._slow_ms

    def set_slow_ms(self, ms: float) -> None:
        """Change the slow threshold; every row is re-flagged at once."""
        self._slow_ms = float(ms)
        if self._turns:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._turns) - 1, len(COLUMNS) - 1)
            )
        self.summaryChanged.emit()

    def turns(self) -> list[TurnRecord]:
        return list(self._turns)

    def turn(self, row: int) -> TurnRecord:
        return self._turns[row]

    def is_slow(self, row: int) -> bool:
        v = self._turns[row].span_ms(HEADLINE)
        return v is not None and v > self._slow_ms

    def headline_values(self) -> list[float]:
        """Voice-to-voice of every turn that has one (ms)."""
        return [v for t in self._turns if (v := t.span_ms(HEADLINE)) is not None]

    def p50(self) -> float | None:
        return percentile(self.headline_values(), 50)

    def p95(self) -> float | None:
        return percentile(self.headline_values(), 95)

    def slow_count(self) -> int:
        return sum(1 for i in range(len(self._turns)) if self.is_slow(i))

    def summary_text(self) -> str:
        """One plain line: ``4 turns · voice→voice p50 812 ms · p95 1,240 ms · 1 slow``,
        then the network round trip where measured (:meth:`network_text`)."""
        n = len(self._turns)
        net = self.network_text()
        if not n:
            return "No turns yet" + (f" · {net}" if net else "")
        return (
            f"{n} turn{'s' if n != 1 else ''} · voice→voice p50 {ms_text(self.p50())}"
            f" · p95 {ms_text(self.p95())} · {self.slow_count()} slow"
            + (f" · {net}" if net else "")
        )

    # --- Qt model API -------------------------------------------------------------------

    columns = COLUMNS

    def row_total(self) -> int:
        return len(self._turns)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._turns):
            return None
        t = self._turns[index.row()]
        col = index.column()
        slow = self.is_slow(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(turn_number(t, index.row()))
            if col == 1:
                return caller_text(one_line(t.user_transcript, 120), self.scripted)
            if col == 2:
                return one_line(t.agent_transcript, 120)
            if col == 3:
                return ms_text(t.span_ms(HEADLINE))
            if col == 4:
                return ms_text(t.span_ms("end_of_turn_delay"))
            if col == 5:
                return ms_text(t.span_ms("ttfb"))
            if col == 6:
                return ", ".join(c.name or "?" for c in t.tool_calls)
            flags = []
            if slow:
                flags.append("slow")
            if t.interrupted:
                flags.append("barge-in")
            return ", ".join(flags)
        if role == Qt.ItemDataRole.BackgroundRole and slow:
            return QBrush(QColor("#fff4e5"))
        if role == Qt.ItemDataRole.ForegroundRole and col == 3 and slow:
            return QBrush(QColor("#b45309"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (3, 4, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and col == 1 and self.scripted:
            return SCRIPTED_NOTE
        if role == TURN_ROLE:
            return t
        if role == SLOW_ROLE:
            return slow
        return None

    # --- feeding ------------------------------------------------------------------------

    def clear(self) -> None:
        self.beginResetModel()
        self._turns.clear()
        self._network.clear()
        self.endResetModel()
        self.summaryChanged.emit()

    def add_turn(self, turn: TurnRecord) -> None:
        """Append one turn (a later turn with the same ``index`` replaces it)."""
        for row, old in enumerate(self._turns):
            if old.index == turn.index:
                self._turns[row] = turn
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                self.summaryChanged.emit()
                return
        row = len(self._turns)
        self.beginInsertRows(QModelIndex(), row, row)
        self._turns.append(turn)
        self.endInsertRows()
        self.summaryChanged.emit()

    def apply(self, ev: E.EventBase) -> None:
        """Take ``TurnCompleted`` and ``NetworkSample`` events; others are ignored."""
        if isinstance(ev, E.TurnCompleted):
            self.add_turn(ev.turn)
        elif isinstance(ev, E.NetworkSample) and ev.source != "connect":
            self._network.setdefault(ev.source, []).append(ev.ms)
            self.summaryChanged.emit()

    def network_text(self) -> str:
        """``network RTT p50 24 ms · p95 31 ms (ping)``: the round trip to the provider,
        by WebSocket ping where measured, else the TCP socket's RTT; ``""`` before any."""
        source = "ping" if self._network.get("ping") else "tcp" if self._network.get("tcp") else ""
        if not source:
            return ""
        values = self._network[source]
        return (
            f"network RTT p50 {ms_text(percentile(values, 50))}"
            f" · p95 {ms_text(percentile(values, 95))} ({source})"
        )
