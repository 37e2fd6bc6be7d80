"""Completed turns with their spans, session p50/p95 of voice-to-voice, slow turns flagged.

A turn is the :class:`~app.metrics.records.TurnRecord` carried by
:class:`app.events.TurnCompleted` (a stored session's ``turns.json`` is read back into the
same records by :func:`ui.models.replay.replay_into`).

The summary line is read on every refresh of a live call, so it is kept from running
aggregates, not from the turns: the voice-to-voice values and the network samples are kept
sorted as they arrive (``bisect.insort``), so a refresh costs O(log n) whatever the number
of turns (reading every turn cost ~2 ms at 1,000 turns), and a turn arriving or replaced
costs O(n) in memory moves at worst, not in Python steps.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, TypeGuard

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from app import events as E
from app.metrics.percentile import sorted_percentile
from app.metrics.presentation import HEADLINE, SCRIPTED_NOTE, caller_text, turn_number
from app.metrics.records import TurnRecord
from ui.models.common import USER_ROLE, ms_text, one_line
from ui.models.table import SlowRowsModel

TURN_ROLE = USER_ROLE + 20
SLOW_ROLE = USER_ROLE + 21
COLUMNS = ("Turn", "Caller", "Agent", "Voice→voice", "End of turn", "TTFB", "Tools", "Flags")
DEFAULT_SLOW_MS = 1200.0


def _measured(ms: float | None) -> TypeGuard[float]:
    """A figure that sorts: present and not NaN (a NaN can only come from a hand-edited
    ``turns.json``; it is shown as ``—`` and left out of the percentiles)."""
    return ms is not None and not math.isnan(ms)


class TurnsModel(SlowRowsModel[TurnRecord]):
    """One row per completed turn. Main thread only.

    A turn is *slow* when its voice-to-voice exceeds :attr:`slow_ms` (changeable live).
    :attr:`summaryChanged` fires whenever the p50/p95 or the threshold changes.
    """

    summaryChanged = Signal()
    slow_role = SLOW_ROLE

    def __init__(self, parent: Any = None, slow_ms: float = DEFAULT_SLOW_MS) -> None:
        super().__init__(parent, slow_ms)
        #: Network samples by source, sorted (only the percentiles are read).
        self._network: dict[str, list[float]] = {}
        #: Running aggregates of the rows: every voice-to-voice value, sorted, and the row
        #: of each turn ``index`` (a later turn with the same index replaces it).
        self._v2v_sorted: list[float] = []
        self._row_of: dict[int, int] = {}
        #: Caller transcripts are the simulator's script (marked ``[scripted]``).
        self.scripted = False

    def set_scripted(self, scripted: bool) -> None:
        """Mark (or stop marking) the caller transcripts as scripted."""
        self.scripted = scripted
        self.cells_changed(1, 1)

    # --- reading ------------------------------------------------------------------------

    def set_slow_ms(self, ms: float) -> None:
        """Change the slow threshold; every row is re-flagged at once."""
        super().set_slow_ms(ms)
        self.summaryChanged.emit()

    def turns(self) -> list[TurnRecord]:
        return list(self._rows)

    def turn(self, row: int) -> TurnRecord:
        return self._rows[row]

    def row_ms(self, record: TurnRecord) -> float | None:
        return record.span_ms(HEADLINE)

    def headline_values(self) -> list[float]:
        """Voice-to-voice of every turn that has one (ms), in row order (O(n))."""
        return [v for t in self._rows if (v := t.span_ms(HEADLINE)) is not None]

    def p50(self) -> float | None:
        """Median voice-to-voice (ms), ``None`` before any; O(1)."""
        return sorted_percentile(self._v2v_sorted, 50)

    def p95(self) -> float | None:
        """95th percentile of voice-to-voice (ms), ``None`` before any; O(1)."""
        return sorted_percentile(self._v2v_sorted, 95)

    def slow_count(self) -> int:
        """How many turns are slow (:meth:`is_slow`); O(log n)."""
        values = self._v2v_sorted
        return len(values) - bisect.bisect_right(values, self.slow_ms)

    def summary_text(self) -> str:
        """One plain line: ``4 turns · voice→voice p50 812 ms · p95 1,240 ms · 1 slow``,
        then the network round trip where measured (:meth:`network_text`)."""
        n = len(self._rows)
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

    def cell(self, t: TurnRecord, row: int, col: int, role: int) -> Any:
        slow = self.is_slow(row)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(turn_number(t, row))
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
        return None

    # --- feeding ------------------------------------------------------------------------

    def clear(self) -> None:
        super().clear()
        self.summaryChanged.emit()

    def _forget(self) -> None:
        self._network.clear()
        self._v2v_sorted.clear()
        self._row_of.clear()

    def add_turn(self, turn: TurnRecord) -> None:
        """Append one turn (a later turn with the same ``index`` replaces it)."""
        new = turn.span_ms(HEADLINE)
        row = self._row_of.get(turn.index)
        if row is not None:
            old = self._rows[row].span_ms(HEADLINE)
            if _measured(old):
                values = self._v2v_sorted
                del values[bisect.bisect_left(values, old)]
            self._rows[row] = turn
            if _measured(new):
                bisect.insort(self._v2v_sorted, new)
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
            self.summaryChanged.emit()
            return
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append(turn)
        self._row_of[turn.index] = row
        if _measured(new):
            bisect.insort(self._v2v_sorted, new)
        self.endInsertRows()
        self.summaryChanged.emit()

    def apply(self, ev: E.EventBase) -> None:
        """Take ``TurnCompleted`` and ``NetworkSample`` events; others are ignored."""
        if isinstance(ev, E.TurnCompleted):
            self.add_turn(ev.turn)
        elif isinstance(ev, E.NetworkSample) and ev.source != "connect":
            if _measured(ev.ms):
                bisect.insort(self._network.setdefault(ev.source, []), ev.ms)
            self.summaryChanged.emit()

    def network_text(self) -> str:
        """``network RTT p50 24 ms · p95 31 ms (ping)``: the round trip to the provider,
        by WebSocket ping where measured, else the TCP socket's RTT; ``""`` before any."""
        source = "ping" if self._network.get("ping") else "tcp" if self._network.get("tcp") else ""
        if not source:
            return ""
        values = self._network[source]
        return (
            f"network RTT p50 {ms_text(sorted_percentile(values, 50))}"
            f" · p95 {ms_text(sorted_percentile(values, 95))} ({source})"
        )
