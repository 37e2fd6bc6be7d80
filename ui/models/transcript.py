"""The conversation as a list: caller and agent utterances, tool calls, errors, inline.

Partial transcripts (deltas) grow in place and are replaced by the final text; agent
replies cut by a barge-in are marked. Every row's ``DisplayRole`` is a plain ``str`` so
that list views render untrusted text literally (never as rich text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QColor

from app import events as E
from app.metrics.presentation import SCRIPTED_NOTE, caller_text
from ui.models.common import USER_ROLE, clock_text, ms_text, one_line, plain_tip
from ui.models.table import row_at

KIND_ROLE = USER_ROLE + 1
TEXT_ROLE = USER_ROLE + 2
TIME_MS_ROLE = USER_ROLE + 3
FINAL_ROLE = USER_ROLE + 4
INTERRUPTED_ROLE = USER_ROLE + 5

SPEAKERS = {"user": "Caller", "agent": "Agent", "tool": "Tool", "error": "Error", "notice": "Note"}
_FOREGROUND = {
    "user": QColor("#1f4e79"),
    "agent": QColor("#1b5e20"),
    "tool": QColor("#6a1b9a"),
    "error": QColor("#b71c1c"),
    "notice": QColor("#5f6368"),
}
_FOREGROUND_BRUSH = {k: QBrush(c) for k, c in _FOREGROUND.items()}
_DEFAULT_BRUSH = QBrush(QColor("#202124"))
_ERROR_BACKGROUND = QBrush(QColor("#fdecea"))
_INTERRUPTED_BACKGROUND = QBrush(QColor("#fff4e5"))
_ROOT = QModelIndex()
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_FOREGROUND_ROLE = int(Qt.ItemDataRole.ForegroundRole)
_BACKGROUND = int(Qt.ItemDataRole.BackgroundRole)
#: The roles :meth:`TranscriptModel.data` answers.
_ROLES = frozenset(
    (
        _DISPLAY,
        _TOOLTIP,
        _FOREGROUND_ROLE,
        _BACKGROUND,
        KIND_ROLE,
        TEXT_ROLE,
        TIME_MS_ROLE,
        FINAL_ROLE,
        INTERRUPTED_ROLE,
    )
)


@dataclass(slots=True)
class Utterance:
    """One row (mutable while the call runs; only the model changes it)."""

    kind: str  # user | agent | tool | error | notice
    key: str
    t_ns: int
    text: str = ""
    final: bool = False
    interrupted: bool = False
    heard_ms: int | None = None
    response_id: str = ""
    status: str = ""
    ms: float | None = None


class TranscriptModel(QAbstractListModel):
    """Both sides of the conversation in order of first appearance.

    Main thread only. Feed it with :meth:`apply`; times are shown relative to
    :attr:`origin_ns` (the call start, set by :class:`ui.models.CallViewModel`).
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Utterance] = []
        self._versions: list[int] = []
        self._index: dict[tuple[str, str], int] = {}
        self.origin_ns: int | None = None
        #: Caller rows are the simulator's script, not a transcription (marked).
        self.scripted = False

    # --- Qt model API -------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        # Called for every role of every row the list lays out: answer the roles this
        # model does not serve first, compare plain ints, reuse brushes.
        u = row_at(self._rows, index) if role in _ROLES else None
        if u is None:
            return None
        if role == _DISPLAY:
            return self.display_text(index.row())
        if role == _FOREGROUND_ROLE:
            return _FOREGROUND_BRUSH.get(u.kind, _DEFAULT_BRUSH)
        if role == _BACKGROUND:
            if u.kind == "error":
                return _ERROR_BACKGROUND
            return _INTERRUPTED_BACKGROUND if u.interrupted else None
        if role == _TOOLTIP:  # what was said, shown literally (never as markup)
            if u.kind == "user" and self.scripted:
                return plain_tip(f"{u.text}\n\n{SCRIPTED_NOTE}")
            return plain_tip(u.text)
        if role == TEXT_ROLE:
            return u.text
        if role == KIND_ROLE:
            return u.kind
        if role == TIME_MS_ROLE:
            return self._rel_ms(u.t_ns)
        if role == FINAL_ROLE:
            return u.final
        return u.interrupted  # INTERRUPTED_ROLE

    def roleNames(self) -> dict[int, QByteArray]:
        names = dict(super().roleNames())
        names.update(
            {
                KIND_ROLE: QByteArray(b"kind"),
                TEXT_ROLE: QByteArray(b"text"),
                TIME_MS_ROLE: QByteArray(b"timeMs"),
                FINAL_ROLE: QByteArray(b"final"),
                INTERRUPTED_ROLE: QByteArray(b"interrupted"),
            }
        )
        return names

    # --- reading ------------------------------------------------------------------------

    def rows(self) -> list[Utterance]:
        """A snapshot of the rows (copies of the records are not made: do not mutate)."""
        return list(self._rows)

    def row_version(self, row: int) -> int:
        """A number that changes whenever ``row``'s shown text may have changed (views
        cache row sizes by it; a change of :attr:`origin_ns` emits ``layoutChanged``).
        """
        return self._versions[row]

    def display_text(self, row: int) -> str:
        """The plain-text line shown for ``row``."""
        u = self._rows[row]
        when = clock_text(self._rel_ms(u.t_ns))
        who = SPEAKERS.get(u.kind, u.kind)
        if u.kind == "tool":
            status = u.status or "running…"
            text = f"{u.text}  →  {status}" + (f" ({ms_text(u.ms)})" if u.ms is not None else "")
        else:
            text = u.text if u.text else "…"
            if not u.final and u.kind in ("user", "agent") and u.text:
                text += " …"
            if u.kind == "user":
                text = caller_text(text, self.scripted)
        if u.interrupted:
            heard = f", heard {u.heard_ms / 1000:.1f} s" if u.heard_ms is not None else ""
            text += f"  [interrupted{heard}]"
        return f"{when}  {who}: {text}"

    def set_scripted(self, scripted: bool) -> None:
        """Mark (or stop marking) the caller's rows as scripted."""
        if scripted != self.scripted:
            self.scripted = scripted
            self._versions = [v + 1 for v in self._versions]
            if self._rows:
                self.layoutChanged.emit()

    def _rel_ms(self, t_ns: int) -> float | None:
        if self.origin_ns is None:
            return None
        return (t_ns - self.origin_ns) / 1e6

    # --- feeding ------------------------------------------------------------------------

    def clear(self) -> None:
        """Drop every row."""
        self.beginResetModel()
        self._rows.clear()
        self._versions.clear()
        self._index.clear()
        self.endResetModel()

    def apply(self, ev: E.EventBase) -> None:
        """Update rows from one event (events this model does not show are ignored)."""
        if isinstance(ev, E.UserTranscript):
            self._speech("user", ev.item_id, ev.t_ns, ev.text, ev.final)
        elif isinstance(ev, E.InputCommitted):
            self._row("user", ev.item_id, ev.t_ns)
        elif isinstance(ev, E.AgentTranscript):
            row = self._speech("agent", ev.item_id or ev.response_id, ev.t_ns, ev.text, ev.final)
            self._rows[row].response_id = ev.response_id
        elif isinstance(ev, E.ToolCallRequested):
            row = self._row("tool", ev.call_id, ev.t_ns)
            self._rows[row].text = f"{ev.name}({one_line(ev.arguments, 200)})"
            self._changed(row)
        elif isinstance(ev, E.ToolCallFinished):
            row = self._row("tool", ev.call_id, ev.t_ns)
            u = self._rows[row]
            if not u.text:
                u.text = f"{ev.name}({one_line(ev.arguments, 200)})"
            u.status = f"{ev.status}: {one_line(ev.output, 200)}" if ev.output else ev.status
            u.ms = ev.ms
            u.final = True
            self._changed(row)
        elif isinstance(ev, E.BargeIn):
            self._interrupt(("agent", ev.item_id), ev.played_ms)
        elif isinstance(ev, E.ItemTruncated):
            self._interrupt(("agent", ev.item_id), ev.audio_end_ms)
        elif isinstance(ev, E.AgentInterrupted):
            self._interrupt_response(ev.response_id)
        elif isinstance(ev, E.ProviderErrorEvent):
            self._append(
                Utterance(
                    "error", "", ev.t_ns, f"{ev.code}: {one_line(ev.message, 300)}", final=True
                )
            )
        elif isinstance(ev, E.Notice) and ev.level in ("warning", "error"):
            kind = "error" if ev.level == "error" else "notice"
            self._append(Utterance(kind, "", ev.t_ns, one_line(ev.message, 300), final=True))
        elif isinstance(ev, E.Reconnected):
            gap_ms = (ev.t_ns - ev.dropped_ns) / 1e6
            how = "resumed" if ev.resumed else f"{ev.replayed_items} items replayed"
            if ev.replayed_turn:
                how += ", the unanswered words sent again"
            text = (
                f"connection lost ({one_line(ev.reason, 120)}); session {ev.session_index} "
                f"after {gap_ms:.0f} ms, {how}"
            )
            self._append(Utterance("notice", "", ev.t_ns, text, final=True))
        elif isinstance(ev, E.CallFailed):
            text = f"call failed ({one_line(ev.code, 60)}): {one_line(ev.message, 300)}"
            if ev.fix:
                text += f" — fix: {one_line(ev.fix, 300)}"
            self._append(Utterance("error", "failure", ev.t_ns, text, final=True))
        elif isinstance(ev, E.CallEnded) and not ev.ok and ("error", "failure") not in self._index:
            self._append(
                Utterance("error", "", ev.t_ns, f"call ended: {one_line(ev.reason)}", final=True)
            )

    def _append(self, u: Utterance) -> int:
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append(u)
        self._versions.append(0)
        if u.key:
            self._index[(u.kind, u.key)] = row
        self.endInsertRows()
        return row

    def _row(self, kind: str, key: str, t_ns: int) -> int:
        row = self._index.get((kind, key)) if key else None
        if row is None:
            row = self._append(Utterance(kind, key, t_ns))
        return row

    def _speech(self, kind: str, key: str, t_ns: int, text: str, final: bool) -> int:
        row = self._row(kind, key, t_ns)
        u = self._rows[row]
        if final:
            u.text = text if text or not u.text else u.text
            u.final = True
        elif not u.final:
            u.text += text
        self._changed(row)
        return row

    def _interrupt(self, key: tuple[str, str], heard_ms: int | None) -> None:
        row = self._index.get(key)
        if row is None:
            return
        u = self._rows[row]
        u.interrupted = True
        if heard_ms is not None:
            u.heard_ms = heard_ms if u.heard_ms is None else min(u.heard_ms, heard_ms)
        self._changed(row)

    def _interrupt_response(self, response_id: str) -> None:
        hits = [
            i
            for i, u in enumerate(self._rows)
            if u.kind == "agent" and (not response_id or u.response_id == response_id)
        ]
        if not response_id:
            hits = hits[-1:]
        for row in hits:
            self._rows[row].interrupted = True
            self._changed(row)

    def _changed(self, row: int) -> None:
        self._versions[row] += 1
        idx = self.index(row, 0)
        self.dataChanged.emit(idx, idx)
