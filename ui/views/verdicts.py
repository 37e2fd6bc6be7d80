"""Tags and per-turn verdicts of a call: the one in the main window, or a past one.

The panel binds to the window's :class:`~ui.models.turns.TurnsModel` (one row per turn)
and to the call's session (``CallStarted``: id and folder; a past call's stored
session in History, :meth:`VerdictPanel.set_past_session`). Every rule lives in the store:
tags are checked by :func:`app.store.tags.check_tags` (what ``voiceprobe call --tag``
uses), verdicts by :func:`app.store.verdicts.check_verdict` and written by
:func:`app.store.verdicts.set_manual` (``verdicts.json`` + the index, as
``voiceprobe sessions verdict`` does). Automatic verdicts (a suite's checks) are read from
the index and shown beside the manual ones; the one that counts is
:func:`app.store.verdicts.effective` (manual wins, both are kept).

Tags go with the next call (``CallRequest.tags``); while a call runs
(:meth:`VerdictPanel.set_live`), an edit is also saved to that call's session, a moment
after the typing stops and at the latest when the call ends
(:func:`app.store.session_tags.set_session_tags`: ``session.json`` and the index, where the
tags set at the start are), and the message line says so. A past call's tags are its
session's: shown when it opens, and an edit is saved to it the same way (a moment after
the typing stops, at the latest when its window closes: :meth:`VerdictPanel.save_pending_tags`).

Bad input (a turn that does not exist, an unknown reason, an empty tag key) is one
plain-text line in the panel and nothing stored changes. Untrusted text (tags, notes,
transcripts) is shown as plain text.

Shortcuts (:data:`PASS_KEY`, :data:`FAIL_KEY`) mark the last turn (in a past call, the
selected one: its turns are reviewed in any order) while the focus stays where it is (the
window adds :attr:`VerdictPanel.actions_for_window` to itself). The
verdict is shown first (the table is repainted at once) and written right after, on the
same (main) thread; a write that fails takes the mark back and says why.

One module on purpose (over 500 lines): tags and verdicts are one panel with one session
binding (live or past) and one message line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import ConfigError, VoiceprobeError
from app.metrics.presentation import turn_number
from app.store.index import SessionIndex
from app.store.reader import SessionRecord
from app.store.tags import KNOWN_KEYS, check_tags, tag_values
from app.store.verdicts import (
    REASONS,
    check_verdict,
    default_who,
    effective,
    ingest_suite_runs,
    resolve_who,
    set_manual,
)
from app.store.writer import INDEX_FILE
from ui.models.common import one_line, plain_tip
from ui.models.table import FixedColumnsModel
from ui.models.turns import TurnsModel
from ui.views.tables import rows_table

#: Mark the last turn as passed / failed (no clash with the window's other shortcuts).
PASS_KEY = "Ctrl+Shift+P"
FAIL_KEY = "Ctrl+Shift+F"
#: The tags a tester sets by hand, in the order shown (a subset of ``KNOWN_KEYS``).
TAG_FIELDS = ("language", "accent", "scenario", "tester", "agent_version")
#: Most earlier values offered per tag.
MAX_COMPLETIONS = 200
#: A tag edited during a call is saved to its session this long after the typing stops.
TAG_SAVE_DELAY_MS = 600
#: The tag box's title outside and during a call.
TAGS_TITLE = "Tags (kept with the next call)"
LIVE_TAGS_TITLE = "Tags (saved to this call and kept for the next)"
#: The tag box's title for a past call (History).
PAST_TAGS_TITLE = "Tags (saved to this call)"
MARKS = {"pass": "✓ pass", "fail": "✗ fail"}
#: Row backgrounds of the verdict that counts (pale, like the report's cells).
VERDICT_COLOURS = {"pass": "#e6f4ea", "fail": "#fce8e6"}
COLUMNS = ("Turn", "Caller", "Manual", "Suite", "Reason", "Note")


def reason_label(reason: str) -> str:
    """``wrong_language`` → ``wrong language`` (the stored name stays the key)."""
    return reason.replace("_", " ")


def earlier_values(index: SessionIndex, key: str, limit: int = MAX_COMPLETIONS) -> list[str]:
    """The values tag ``key`` (one of ``KNOWN_KEYS``, an index column) has had in earlier
    sessions, most used first.

    Raises:
        ConfigError: ``key`` is not an indexed tag.
        StoreError: the index cannot be read.
    """
    if key not in KNOWN_KEYS:
        raise ConfigError(f"{key!r} is not an indexed tag")
    _, rows = index.query(
        f"SELECT {key}, COUNT(*) AS n FROM sessions WHERE COALESCE({key}, '') <> '' "
        f"GROUP BY {key} ORDER BY n DESC, {key} LIMIT ?",
        [max(0, int(limit))],
    )
    return [str(r[0]) for r in rows]


class TagsEditor(QWidget):
    """One line per tag of :data:`TAG_FIELDS` (autocompleted from earlier calls) and a line
    of other ``k=v`` tags. Main thread only."""

    #: The tags changed (a valid list, or an error message: see :meth:`tags`).
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.fields: dict[str, QLineEdit] = {}
        for key in TAG_FIELDS:
            edit = QLineEdit(self)
            edit.setClearButtonEnabled(True)
            edit.setToolTip(f"Tag {key}=… kept with the call (suggestions: earlier calls)")
            edit.textChanged.connect(lambda _t: self.changed.emit())
            self.fields[key] = edit
            form.addRow(key.replace("_", " ").capitalize(), edit)
        self.fields["language"].setPlaceholderText("BCP-47, e.g. hi-IN")
        self.fields["tester"].setPlaceholderText(default_who())
        self.other = QLineEdit(self)
        self.other.setPlaceholderText("k=v k=v (e.g. noise=cafe)")
        self.other.setToolTip("More tags, k=v, separated by spaces")
        self.other.textChanged.connect(lambda _t: self.changed.emit())
        form.addRow("Other", self.other)

    def set_completions(self, values: Mapping[str, list[str]]) -> None:
        """Offer ``values[key]`` (earlier values) while typing each tag."""
        for key, edit in self.fields.items():
            completer = QCompleter(list(values.get(key, [])), edit)
            completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
            completer.setFilterMode(Qt.MatchFlag.MatchContains)
            edit.setCompleter(completer)

    def set_tags(self, tags: list[str]) -> None:
        """Show ``tags`` (a session's stored list): known keys in their lines, the rest
        in "Other"."""
        values = tag_values(tags)
        for key, edit in self.fields.items():
            edit.setText(values.get(key, ""))
        rest = [t for t in tags if t.partition("=")[0] not in self.fields]
        self.other.setText(" ".join(rest))

    def tags(self) -> list[str]:
        """The tags as stored (``k=v``), checked like ``--tag``; empty lines are left out.

        Raises:
            ConfigError: one line naming the first bad tag (an empty key, a bad key, a
                value with control characters).
        """
        items = [f"{k}={e.text().strip()}" for k, e in self.fields.items() if e.text().strip()]
        items += self.other.text().split()
        return check_tags(items)


class VerdictsModel(FixedColumnsModel):
    """One row per turn of ``turns``, with its manual and automatic verdicts. Main thread
    only; every cell is a plain ``str``.

    Verdicts are the index's rows (:meth:`SessionIndex.verdicts`: ``turn``, ``source``,
    ``verdict``, ``reason``, ``note``, ``who``, ``at``).
    """

    columns = COLUMNS

    def __init__(self, turns: TurnsModel, parent: Any = None) -> None:
        super().__init__(parent)
        self.turns = turns
        self._manual: dict[int, dict[str, Any]] = {}
        self._auto: dict[int, dict[str, Any]] = {}
        turns.rowsInserted.connect(self._turns_inserted)
        turns.modelReset.connect(self._reset)
        turns.dataChanged.connect(lambda a, b, _r=None: self._rows_changed(a.row(), b.row()))

    def row_total(self) -> int:
        return self.turns.rowCount()

    def number(self, row: int) -> int:
        """The 1-based number of the turn in ``row``."""
        return turn_number(self.turns.turn(row), row)

    def row_of(self, number: int) -> int:
        """The row of turn ``number``, or -1."""
        for row in range(self.turns.rowCount()):
            if self.number(row) == number:
                return row
        return -1

    def set_verdicts(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Replace every verdict shown by ``rows`` (manual and automatic)."""
        self.beginResetModel()
        self._manual = {int(v["turn"]): dict(v) for v in rows if v.get("source") == "manual"}
        self._auto = {int(v["turn"]): dict(v) for v in rows if v.get("source") != "manual"}
        self.endResetModel()

    def manual(self, number: int) -> dict[str, Any] | None:
        return self._manual.get(number)

    def auto(self, number: int) -> dict[str, Any] | None:
        return self._auto.get(number)

    def put_manual(self, number: int, verdict: dict[str, Any] | None) -> None:
        """Show (``None``: take back) the manual verdict of turn ``number``."""
        if verdict is None:
            self._manual.pop(number, None)
        else:
            self._manual[number] = {**verdict, "source": "manual"}
        row = self.row_of(number)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def counting(self, number: int) -> Mapping[str, Any] | None:
        """The verdict that counts for turn ``number`` (manual over automatic)."""
        rows = [v for v in (self._auto.get(number), self._manual.get(number)) if v]
        return effective(rows).get(number)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or not 0 <= index.row() < self.turns.rowCount():
            return None
        number = self.number(index.row())
        manual, auto = self._manual.get(number), self._auto.get(number)
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(number)
            if col == 1:
                return one_line(self.turns.turn(index.row()).user_transcript, 60)
            if col == 2:
                return MARKS.get(str(manual["verdict"]), "") if manual else ""
            if col == 3:
                if not auto:
                    return ""
                mark = MARKS.get(str(auto["verdict"]), "")
                return f"({mark})" if manual else mark  # overridden, still shown
            if col == 4:
                reason = (manual or {}).get("reason") or (auto or {}).get("reason")
                return reason_label(str(reason)) if reason else ""
            if col == 5:
                note = (manual or {}).get("note") or (auto or {}).get("note") or ""
                return one_line(str(note), 80)
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            counting = self.counting(number)
            if counting is not None:
                return QBrush(QColor(VERDICT_COLOURS[str(counting["verdict"])]))
        if role == Qt.ItemDataRole.ToolTipRole and col in (2, 3, 5):
            parts = []
            for label, v in (("manual", manual), ("suite", auto)):
                if v:
                    who = f" by {v.get('who')}" if v.get("who") else ""
                    parts.append(f"{label}: {v['verdict']}{who} {v.get('note') or ''}".strip())
            if manual and auto:
                parts.append("the manual verdict counts")
            # Notes and names come from session files: shown literally, never as markup.
            return plain_tip("\n".join(parts)) if parts else None
        return None

    def _turns_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        self.beginInsertRows(QModelIndex(), first, last)
        self.endInsertRows()

    def _reset(self) -> None:
        self.beginResetModel()
        self.endResetModel()

    def _rows_changed(self, first: int, last: int) -> None:
        if first >= 0 and last >= first:
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))


class VerdictPanel(QWidget):
    """Tags for the next call and verdicts for the turns of this one (or, after
    :meth:`set_past_session`, the tags and verdicts of a past call). Main thread only.

    Args:
        turns: the window's turns model (live or replayed).
        data_root: returns the data folder (where ``sessions.db`` is); read when the
            panel needs the index.
    """

    #: A verdict was stored (turn number, ``pass``/``fail``).
    verdictStored = Signal(int, str)
    #: Tags edited during a call (or for a past one) were saved to its session (session
    #: id, the tags).
    tagsStored = Signal(str, list)

    def __init__(
        self,
        turns: TurnsModel,
        data_root: Callable[[], Path],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.data_root = data_root
        self.session_id = ""
        self.session_dir: Path | None = None
        self._live = False
        self._past = False  # judging a stored call (History), not the main window's
        self._sent_tags: list[str] = []  # what the running call started with
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(TAG_SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.store_tags)

        self.tags = TagsEditor(self)
        self.tags.changed.connect(self._check_tags)
        self.tag_box = tag_box = QGroupBox(TAGS_TITLE, self)
        tl = QVBoxLayout(tag_box)
        tl.addWidget(self.tags)

        self.model = VerdictsModel(turns, self)
        self.table = rows_table(self.model, self)
        self.table.setToolTip("Each turn: your verdict, the suite's (in brackets when yours "
                              "overrides it), the reason and the note")  # fmt: skip
        self.reason = QComboBox(self)
        self.reason.addItem("no reason", None)
        for r in REASONS:
            self.reason.addItem(reason_label(r), r)
        self.reason.setToolTip("Why the turn failed (optional)")
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("Note (optional)")
        self.note.setClearButtonEnabled(True)
        self.pass_button = QPushButton("✓ Pass", self)
        self.fail_button = QPushButton("✗ Fail", self)
        self.pass_button.setToolTip(f"The selected turn (else the last) passed ({PASS_KEY})")
        self.fail_button.setToolTip(f"The selected turn (else the last) failed ({FAIL_KEY})")
        self.pass_button.clicked.connect(lambda: self.mark_selected("pass"))
        self.fail_button.clicked.connect(lambda: self.mark_selected("fail"))
        self.message = QLabel(self)
        self.message.setObjectName("hint")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setWordWrap(True)

        verdict_box = QGroupBox("Verdicts", self)
        vl = QVBoxLayout(verdict_box)
        vl.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(self.reason)
        row.addWidget(self.note, 1)
        vl.addLayout(row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pass_button)
        buttons.addWidget(self.fail_button)
        vl.addLayout(buttons)
        vl.addWidget(self.message)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(tag_box)
        box.addWidget(verdict_box, 1)

        self.pass_action = QAction("Mark last turn &passed", self)
        self.pass_action.setShortcut(QKeySequence(PASS_KEY))
        self.pass_action.triggered.connect(lambda: self._shortcut("pass"))
        self.fail_action = QAction("Mark last turn &failed", self)
        self.fail_action.setShortcut(QKeySequence(FAIL_KEY))
        self.fail_action.triggered.connect(lambda: self._shortcut("fail"))
        #: For the window's menu and ``addAction`` (shortcuts work from any focus).
        self.actions_for_window = (self.pass_action, self.fail_action)
        self._set_enabled()

    # --- index and session ----------------------------------------------------------------

    def index(self) -> SessionIndex:
        """The data folder's index (raises ``StoreError`` when it cannot be opened)."""
        return SessionIndex(self.data_root() / INDEX_FILE)

    def refresh_completions(self) -> None:
        """Offer earlier calls' tag values; an unreadable index offers none (said once in
        the message line)."""
        try:
            index = self.index()
            values = {k: earlier_values(index, k) for k in TAG_FIELDS}
        except VoiceprobeError as exc:
            self.say(f"Earlier tags not offered: {exc}")
            return
        self.tags.set_completions(values)

    def set_session(self, session_id: str, session_dir: str | Path) -> None:
        """Judge the turns of session ``session_id`` (in ``session_dir``): its stored
        verdicts, manual and automatic, are shown."""
        self.session_id = session_id
        self.session_dir = Path(session_dir) if session_dir else None
        rows: list[dict[str, Any]] = []
        if session_id:
            try:
                rows = self.index().verdicts(session_id)
            except VoiceprobeError as exc:
                self.say(f"Verdicts not read: {exc}")
        self.model.set_verdicts(rows)
        self._set_enabled()
        self._schedule_tags()  # tags edited before the call's session existed

    def clear_session(self) -> None:
        """A new call is starting: no session yet, no verdicts."""
        self.set_session("", "")

    def set_past_session(self, session_id: str, session_dir: str | Path, tags: list[str]) -> None:
        """Judge and tag a call that has ended (History): session ``session_id`` in
        ``session_dir``, whose stored tags are ``tags``.

        Suite runs not read into the index yet are read first (as ``voiceprobe coverage``
        does), so the suite's verdicts show beside the manual ones. The buttons and the
        shortcuts mark the selected turn; a tag edit is saved to this session (see
        :meth:`store_tags`). Opening writes nothing but those suite runs' verdicts.
        """
        self._past = True
        self._live = False
        self._save_timer.stop()
        self.session_id = ""  # no save while the stored tags are put in the lines
        self.tag_box.setTitle(PAST_TAGS_TITLE)
        for verb, button, action in (
            ("passed", self.pass_button, self.pass_action),
            ("failed", self.fail_button, self.fail_action),
        ):
            button.setToolTip(f"The selected turn {verb} ({action.shortcut().toString()})")
            action.setText(f"Mark selected turn &{verb}")
        try:
            ingest_suite_runs(self.data_root(), self.index())
        except VoiceprobeError as exc:
            self.say(f"Suite verdicts not read: {exc}")
        self.tags.set_tags(tags)
        try:
            # As the lines give them back (known keys first): the same tags in another
            # order are no edit, so opening the call rewrites nothing.
            self._sent_tags = self.tags.tags()
        except ConfigError:
            self._sent_tags = list(tags)
        self.set_session(session_id, session_dir)

    # --- marking --------------------------------------------------------------------------

    def mark_selected(self, verdict: str) -> bool:
        """Mark the selected turn with the reason and note entered: else the last turn of
        a running call, or nothing in a past one (said in the message line)."""
        rows = self.table.selectionModel().selectedRows()
        if not rows and self._past and self.session_id:
            self.say("Select the turn to judge first (click its row)")
            return False
        row = rows[0].row() if rows else self.model.rowCount() - 1
        number = self.model.number(row) if row >= 0 else 0
        return self.mark(number, verdict, self.reason.currentData(), self.note.text() or None)

    def mark_last(self, verdict: str) -> bool:
        """The shortcuts: mark the last turn with the reason and note entered."""
        rows = self.model.rowCount()
        number = self.model.number(rows - 1) if rows else 0
        return self.mark(number, verdict, self.reason.currentData(), self.note.text() or None)

    def _shortcut(self, verdict: str) -> bool:
        return self.mark_selected(verdict) if self._past else self.mark_last(verdict)

    def mark(self, turn: int, verdict: str, reason: str | None, note: str | None) -> bool:
        """Give turn ``turn`` (1-based) a manual verdict: checked, shown at once, then
        stored. Returns whether it was accepted.

        Bad input (no session, no such turn, an unknown verdict or reason, a note too
        long, a ``$VOICEPROBE_TESTER`` that is no name) is said in the message line;
        nothing stored changes.
        """
        if not self.session_id or self.session_dir is None:
            self.say("No call to judge yet: verdicts are for the turns of a call")
            return False
        record = self._record()
        try:
            check_verdict(record, turn, verdict, reason, note)
            who = resolve_who()
        except ConfigError as exc:
            self.say(str(exc))
            return False
        before = self.model.manual(turn)
        shown = {"turn": turn, "verdict": verdict, "reason": reason, "note": note or "",
                 "who": who, "at": None}  # fmt: skip
        self.model.put_manual(turn, shown)
        why = f" ({reason_label(reason)})" if reason else ""
        self.say(f"Turn {turn}: {verdict}{why}")
        # Shown first: the write (a file and the index, each synced: tens of ms on a busy
        # disk) waits until the row is painted, so the mark never waits for the disk.
        if self.table.isVisible():
            self.table.viewport().repaint()
        QTimer.singleShot(0, lambda: self._store(record, turn, verdict, reason, note, before))
        return True

    def _store(
        self,
        record: SessionRecord,
        turn: int,
        verdict: str,
        reason: str | None,
        note: str | None,
        before: dict[str, Any] | None,
    ) -> None:
        try:
            entry = set_manual(record, self.index(), turn, verdict, reason=reason, note=note)
        except VoiceprobeError as exc:
            self.model.put_manual(turn, before)
            self.say(f"Turn {turn}: verdict not stored: {exc}")
            return
        self.model.put_manual(turn, entry)
        self.verdictStored.emit(turn, verdict)

    def _record(self) -> SessionRecord:
        """The session as the verdict functions need it: its id, folder and the turns the
        window shows (a live call's ``turns.json`` may lag a turn behind)."""
        turns = [{"index": self.model.number(r) - 1} for r in range(self.model.rowCount())]
        assert self.session_dir is not None
        return SessionRecord(self.session_id, self.session_dir, {}, [], turns)

    # --- tags -----------------------------------------------------------------------------

    def call_tags(self) -> list[str]:
        """The tags for the next call, checked (see :meth:`TagsEditor.tags`); they are
        what that call starts with.

        Raises:
            ConfigError: a bad tag, named in one line.
        """
        self._sent_tags = self.tags.tags()
        return list(self._sent_tags)

    def set_live(self, on: bool) -> None:
        """The window says whether the call of :attr:`session_id` runs. While it does,
        edited tags are saved to its session too; when it stops, an edit still waiting
        is saved at once (the session is closed after the call's last event)."""
        if not on:
            self.save_pending_tags()  # while still live: the edit is the stopping call's
        self._live = on
        self.tag_box.setTitle(LIVE_TAGS_TITLE if on else TAGS_TITLE)
        if on:
            self._schedule_tags()

    def save_pending_tags(self) -> None:
        """Save a tag edit still waiting for its moment now (the call stopped, or a past
        call's window closes); nothing when none waits."""
        if self._save_timer.isActive():
            self._save_timer.stop()
            self.store_tags()

    def store_tags(self) -> bool:
        """Save the tags to the running (or past) call's session (``session.json`` and
        the index) and say where they went; returns whether they were saved.

        A bad tag, no running or past call, or a write that fails: one plain-text line,
        and nothing stored changes.
        """
        self._save_timer.stop()
        if not self._saves_tags() or self.session_dir is None:
            self.say("No call running: the tags go with the next call")
            return False
        try:
            tags = self.tags.tags()
        except ConfigError as exc:
            self.say(f"Tags not saved: {exc}")
            return False
        from app.store.session_tags import set_session_tags

        try:
            stored = set_session_tags(self.session_dir, tags)
        except VoiceprobeError as exc:
            self.say(f"Tags not saved to session {self.session_id}: {exc}")
            return False
        self._sent_tags = stored
        shown = one_line(", ".join(stored) if stored else "no tags", 120)
        if self._past:
            self.say(f"Tags saved to session {self.session_id}: {shown}")
        else:
            self.say(f"Tags saved to session {self.session_id} (this call) and kept for the "
                     f"next call: {shown}")  # fmt: skip
        self.tagsStored.emit(self.session_id, stored)
        return True

    def _saves_tags(self) -> bool:
        """Whether a tag edit goes to :attr:`session_id`: a running call's, or a past one."""
        return (self._live or self._past) and bool(self.session_id) and bool(self.session_dir)

    def _schedule_tags(self) -> None:
        """While a call runs (or for a past call), save valid tags that differ from the
        session's a moment after the last edit."""
        if not self._saves_tags():
            return
        try:
            tags = self.tags.tags()
        except ConfigError:
            self._save_timer.stop()  # a bad tag is never saved; the line says why
            return
        if tags != self._sent_tags:
            self._save_timer.start()

    def _check_tags(self) -> None:
        try:
            self.tags.tags()
        except ConfigError as exc:
            self._save_timer.stop()
            self.say(str(exc))
            return
        if self.message.text().startswith("tag "):
            self.say("")
        self._schedule_tags()

    def say(self, text: str) -> None:
        """One plain-text line under the verdicts."""
        self.message.setText(text)

    def _set_enabled(self) -> None:
        on = bool(self.session_id)
        for w in (self.pass_button, self.fail_button):
            w.setEnabled(on)
