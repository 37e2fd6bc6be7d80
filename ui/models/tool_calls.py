"""Tool calls as a table: name, arguments, result, status, duration; slow calls flagged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor

from app import events as E
from ui.models.common import USER_ROLE, clock_text, ms_text, one_line
from ui.models.table import FixedColumnsModel

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


class ToolCallsModel(FixedColumnsModel):
    """One row per tool call. Main thread only.

    A finished call whose duration exceeds :attr:`slow_ms` is *slow*: its Duration cell
    says so and :data:`SLOW_ROLE` is True. Every cell's ``DisplayRole`` is a plain ``str``.
    """

    slowThresholdChanged = Signal(float)

    def __init__(self, parent: Any = None, slow_ms: float = DEFAULT_SLOW_MS) -> None:
        super().__init__(parent)
        self._rows: list[ToolRow] = []
        self._by_id: dict[str, int] = {}
        self._slow_ms = float(slow_ms)
        self.origin_ns: int | None = None

    @property
    def slow_ms(self) -> float:
        """Threshold (ms) above which a call is flagged slow."""
        return self._slow_ms

    def set_slow_ms(self, ms: float) -> None:
        """Change the slow threshold and re-flag every row."""
        self._slow_ms = float(ms)
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(COLUMNS) - 1)
            )
        self.slowThresholdChanged.emit(self._slow_ms)

    def rows(self) -> list[ToolRow]:
        return list(self._rows)

    def is_slow(self, row: int) -> bool:
        ms = self._rows[row].ms
        return ms is not None and ms > self._slow_ms

    columns = COLUMNS

    def row_total(self) -> int:
        return len(self._rows)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        col = index.column()
        slow = self.is_slow(index.row())
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
            return r.arguments if col == 4 else r.output
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 2 and r.status not in ("ok", "completed", "running"):
                return QBrush(QColor("#b71c1c"))
            if col == 3 and slow:
                return QBrush(QColor("#b45309"))
        if role == Qt.ItemDataRole.BackgroundRole and slow:
            return QBrush(QColor("#fff4e5"))
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == SLOW_ROLE:
            return slow
        return None

    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self._by_id.clear()
        self.endResetModel()

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
