"""Every event as a row: stamp, direction, kind, one-line summary; agent audio collapsed.

``AgentAudio`` chunks of one response share a single row (``audio ×N, X ms``) so that a
call's log stays readable. :class:`EventFilterProxy` filters by text and direction.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor

from app import events as E
from ui.models.common import USER_ROLE, one_line
from ui.models.table import RowsModel

EVENT_ROLE = USER_ROLE + 30
DIRECTION_ROLE = USER_ROLE + 31
COLUMNS = ("ms", "Dir", "Kind", "Summary")
MAX_ROWS = 50_000

#: Events that arrive from the provider.
_INBOUND = (
    E.SessionCreated,
    E.SessionConfigured,
    E.UnknownMessage,
    E.ProviderErrorEvent,
    E.GoAway,
    E.ResumptionUpdate,
    E.ServerSpeechStarted,
    E.ServerSpeechStopped,
    E.InputCommitted,
    E.UserTranscript,
    E.ResponseStarted,
    E.AgentAudio,
    E.AgentTranscript,
    E.ToolCallRequested,
    E.ToolCallCancelled,
    E.ResponseFinished,
    E.AgentInterrupted,
    E.ItemTruncated,
)
#: Events that are messages we sent to the provider.
_OUTBOUND = (E.ClientMessageSent, E.ToolCallFinished)
_DIR_COLOR = {"in": QColor("#1f4e79"), "out": QColor("#6a1b9a"), "local": QColor("#5f6368")}
_DIR_BRUSH = {k: QBrush(c) for k, c in _DIR_COLOR.items()}
_ERROR_BRUSH = QBrush(QColor("#b71c1c"))
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
#: The roles :meth:`EventLogModel.data` answers.
_ROLES = frozenset((_DISPLAY, _ALIGN, _FOREGROUND, EVENT_ROLE, DIRECTION_ROLE))


def direction(ev: E.EventBase) -> str:
    """``in`` (from the provider), ``out`` (sent to it) or ``local`` (bridge)."""
    if isinstance(ev, _OUTBOUND):
        return "out"
    if isinstance(ev, _INBOUND):
        return "in"
    return "local"


def summarize(ev: E.EventBase) -> str:
    """A one-line plain-text summary of ``ev`` (untrusted text is flattened and cut)."""
    if isinstance(ev, E.UserTranscript | E.AgentTranscript):
        tag = "final" if ev.final else "delta"
        return f"{tag} {ev.item_id}: {one_line(repr(ev.text), 140)}"
    if isinstance(ev, E.ToolCallRequested):
        return f"{ev.name}({one_line(ev.arguments, 120)}) call_id={ev.call_id}"
    if isinstance(ev, E.ToolCallFinished):
        return f"{ev.name} → {ev.status} in {ev.ms:.0f} ms: {one_line(ev.output, 100)}"
    if isinstance(ev, E.ProviderErrorEvent):
        return f"{'FATAL ' if ev.fatal else ''}{ev.code}: {one_line(ev.message, 140)}"
    if isinstance(ev, E.Notice):
        return f"{ev.level}: {one_line(ev.message, 160)}"
    if isinstance(ev, E.TurnCompleted):
        ms = ev.turn.voice_to_voice_ms
        return f"turn {ev.turn.index} voice_to_voice={ms if ms is not None else '—'} ms"
    if isinstance(ev, E.BargeIn):
        return (
            f"item {ev.item_id}: played {ev.played_ms} ms of {ev.received_ms} ms,"
            f" truncate={ev.truncate_ms}"
        )
    parts = []
    for f in dataclasses.fields(ev):
        if f.name in ("t_ns", "raw"):
            continue
        value = getattr(ev, f.name)
        if isinstance(value, bytes):
            parts.append(f"{f.name}={len(value)} B")
        elif value not in ("", None, (), {}):
            parts.append(f"{f.name}={one_line(str(value), 80)}")
    return one_line(" ".join(parts), 200)


@dataclass(slots=True)
class LogRow:
    """One row of the log (an audio row grows while chunks arrive)."""

    t_ns: int
    direction: str
    kind: str
    summary: str
    event: E.EventBase
    audio_chunks: int = 0
    audio_samples: int = 0
    audio_rate: int = 0


class EventLogModel(RowsModel[LogRow]):
    """The call's event log. Main thread only; keeps at most :data:`MAX_ROWS` rows."""

    countChanged = Signal(int)
    columns = COLUMNS
    roles = _ROLES

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._audio_row: dict[str, int] = {}
        self._count = 0
        self.origin_ns: int | None = None

    @property
    def event_count(self) -> int:
        """Events applied since the last :meth:`clear` (each audio chunk counts)."""
        return self._count

    def rows(self) -> list[LogRow]:
        return list(self._rows)

    def cell(self, r: LogRow, row: int, col: int, role: int) -> Any:
        # Called for every served role of every visible cell on each repaint: compare
        # plain ints, reuse brushes.
        if role == _DISPLAY:
            if col == 0:
                if self.origin_ns is None:
                    return ""
                return f"{(r.t_ns - self.origin_ns) / 1e6:,.1f}"
            return (r.direction, r.kind, r.summary)[col - 1]
        if role == _ALIGN:
            return _RIGHT if col == 0 else None
        if role == _FOREGROUND:
            if col == 1:
                return _DIR_BRUSH[r.direction]
            return _ERROR_BRUSH if r.kind == "ProviderErrorEvent" else None
        if role == EVENT_ROLE:
            return r.event
        return r.direction  # DIRECTION_ROLE

    def detail_text(self, row: int) -> str:
        """Plain-text detail of a row: every field and the raw provider message as JSON."""
        r = self._rows[row]
        fields = E.event_to_dict(r.event)
        if r.audio_chunks:
            fields = {
                "kind": "AgentAudio",
                "response_id": r.event.response_id,  # type: ignore[attr-defined]
                "chunks": r.audio_chunks,
                "samples": r.audio_samples,
                "sample_rate": r.audio_rate,
                "first_t_ns": r.t_ns,
            }
        return json.dumps(fields, indent=2, ensure_ascii=False, default=str)

    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self._audio_row.clear()
        self._count = 0
        self.endResetModel()
        self.countChanged.emit(0)

    def apply(self, ev: E.EventBase) -> None:
        """Log one event (any kind)."""
        self.apply_batch([ev])

    def apply_batch(self, events: list[E.EventBase]) -> None:
        """Log events in order with one insertion, one ``dataChanged`` for the audio rows
        that grew and one ``countChanged``: a batch costs the views one update.
        """
        if not events:
            return
        base = len(self._rows)
        new: list[LogRow] = []
        grown: set[int] = set()
        for ev in events:
            self._count += 1
            if isinstance(ev, E.AgentAudio):
                row = self._audio_row.get(ev.response_id)
                if row is not None and row < base + len(new):
                    r = self._rows[row] if row < base else new[row - base]
                    r.audio_chunks += 1
                    r.audio_samples += ev.samples
                    if row < base:
                        grown.add(row)
                    continue
                r = LogRow(ev.t_ns, "in", ev.kind, "", ev, 1, ev.samples, ev.sample_rate)
                self._audio_row[ev.response_id] = base + len(new)
                new.append(r)
            else:
                new.append(LogRow(ev.t_ns, direction(ev), ev.kind, summarize(ev), ev))
        for row in grown:
            r = self._rows[row]
            r.summary = self._audio_summary(r)
        for r in new:
            if r.audio_chunks:
                r.summary = self._audio_summary(r)
        if grown:
            self.dataChanged.emit(self.index(min(grown), 3), self.index(max(grown), 3))
        if new:
            self._append(new)
        self.countChanged.emit(self._count)

    @staticmethod
    def _audio_summary(r: LogRow) -> str:
        ms = 1000.0 * r.audio_samples / r.audio_rate if r.audio_rate else 0.0
        rid = getattr(r.event, "response_id", "")
        return f"audio ×{r.audio_chunks}, {ms:,.0f} ms (response {rid})"

    def _append(self, new: list[LogRow]) -> None:
        if len(self._rows) + len(new) > MAX_ROWS:
            # Drop the oldest rows (at least a tenth) at once: a reset is cheaper than many
            # removals.
            self.beginResetModel()
            self._rows.extend(new)
            drop = max(MAX_ROWS // 10, len(self._rows) - MAX_ROWS)
            del self._rows[:drop]
            self._audio_row = {k: v - drop for k, v in self._audio_row.items() if v >= drop}
            self.endResetModel()
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        self._rows.extend(new)
        self.endInsertRows()


class EventFilterProxy(QSortFilterProxyModel):
    """Filters the log by a case-insensitive substring (kind or summary) and direction."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._direction = ""

    def set_text(self, text: str) -> None:
        self._refilter("_text", text.strip().lower())

    def set_direction(self, direction: str) -> None:
        """``""`` for all, else ``in``/``out``/``local``."""
        self._refilter("_direction", direction)

    def _refilter(self, attr: str, value: str) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+: invalidateFilter is deprecated
            self.beginFilterChange()
            setattr(self, attr, value)
            self.endFilterChange()
        else:
            setattr(self, attr, value)
            self.invalidateFilter()

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        model = self.sourceModel()
        if self._direction:
            if model.index(source_row, 1, source_parent).data() != self._direction:
                return False
        if not self._text:
            return True
        kind = str(model.index(source_row, 2, source_parent).data()).lower()
        summary = str(model.index(source_row, 3, source_parent).data()).lower()
        return self._text in kind or self._text in summary
