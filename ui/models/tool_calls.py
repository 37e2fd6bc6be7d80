"""Tool calls as a table: name, arguments, result, status, duration; slow calls flagged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from app import events as E
from ui.models.common import USER_ROLE, clock_text, ms_text, one_line, plain_tip
from ui.models.table import SlowRowsModel

SLOW_ROLE = USER_ROLE + 10
COLUMNS = ("Time", "Tool", "Status", "Duration", "Arguments", "Result")
DEFAULT_SLOW_MS = 1000.0


@dataclass(slots=True)
class ToolRow:
    """One tool call (mutable until finished; only the model changes it)."""

    call_id: str
    t_ns: int
    name: str
    arguments: str
    output: str = ""
    status: str = "running"
    ms: float | None = None


class ToolCallsModel(SlowRowsModel[ToolRow]):
    """One row per tool call. Main thread only.

    A finished call whose duration exceeds :attr:`slow_ms` is *slow*: its Duration cell
    says so and :data:`SLOW_ROLE` is True. Every cell's ``DisplayRole`` is a plain ``str``.
    """

    slow_role = SLOW_ROLE

    def __init__(self, parent: Any = None, slow_ms: float = DEFAULT_SLOW_MS) -> None:
        super().__init__(parent, slow_ms)
        self._by_id: dict[str, int] = {}
        self.origin_ns: int | None = None

    def rows(self) -> list[ToolRow]:
        return list(self._rows)

    def row_ms(self, record: ToolRow) -> float | None:
        return record.ms

    columns = COLUMNS

    def cell(self, r: ToolRow, row: int, col: int, role: int) -> Any:
        slow = self.is_slow(row)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return clock_text(
                    None if self.origin_ns is None else (r.t_ns - self.origin_ns) / 1e6
                )
            if col == 1:
                return r.name
            if col == 2:
                return r.status
            if col == 3:
                return ms_text(r.ms) + ("  ⚠ slow" if slow else "")
            if col == 4:
                return one_line(r.arguments, 300)
            return one_line(r.output, 300)
        if role == Qt.ItemDataRole.ToolTipRole and col in (4, 5):
            return plain_tip(r.arguments if col == 4 else r.output)  # the model's text
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 2 and r.status not in ("ok", "completed", "running"):
                return QBrush(QColor("#b71c1c"))
            if col == 3 and slow:
                return QBrush(QColor("#b45309"))
        if role == Qt.ItemDataRole.BackgroundRole and slow:
            return QBrush(QColor("#fff4e5"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _forget(self) -> None:
        self._by_id.clear()

    def apply(self, ev: E.EventBase) -> None:
        """Add or update a row from ``ToolCallRequested`` / ``ToolCallFinished`` /
        ``ToolCallCancelled``; other events are ignored.
        """
        if isinstance(ev, E.ToolCallRequested):
            self._row(ev.call_id, ev.t_ns, ev.name, ev.arguments)
        elif isinstance(ev, E.ToolCallFinished):
            row = self._row(ev.call_id, ev.t_ns, ev.name, ev.arguments)
            r = self._rows[row]
            r.output, r.status, r.ms = ev.output, ev.status, ev.ms
            self._changed(row)
        elif isinstance(ev, E.ToolCallCancelled):
            for call_id in ev.call_ids:
                cancelled = self._by_id.get(call_id)
                if cancelled is not None and self._rows[cancelled].status == "running":
                    self._rows[cancelled].status = "cancelled"
                    self._changed(cancelled)

    def _row(self, call_id: str, t_ns: int, name: str, arguments: str) -> int:
        row = self._by_id.get(call_id)
        if row is None:
            row = len(self._rows)
            self.beginInsertRows(QModelIndex(), row, row)
            self._rows.append(ToolRow(call_id, t_ns, name, arguments))
            self._by_id[call_id] = row
            self.endInsertRows()
        return row

    def _changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
