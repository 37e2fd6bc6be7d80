"""Session history: a searchable list of past calls, reopened read-only.

Reopening feeds the stored events through :func:`ui.models.replay.replay_into` into the
same models and views as a live call, and plays the stereo ``audio.wav`` (left caller,
right agent) through :class:`ui.views.playback.WavPlayer`, with a playhead on the speech
lanes taken from the output stream's clock; clicking a turn in the waterfall plays from
that turn's first sample.

A reopened call is judged and tagged there too, with the main window's
:class:`ui.views.verdicts.VerdictPanel` bound to the stored session: per-turn verdicts
and tags are stored where ``voiceprobe sessions verdict`` and
:func:`app.store.session_tags.set_session_tags` store them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.errors import AudioDeviceError, VoiceprobeError
from app.metrics.presentation import SCRIPTED_NOTE, transcripts_scripted
from app.report.export import export_session_report
from app.store.index import LIST_KEYS
from app.store.reader import session_events, session_turns
from ui.models.call_view import CallViewModel
from ui.models.common import ms_text
from ui.models.replay import replay_into
from ui.models.table import RowsModel
from ui.report_export import export_report
from ui.views.event_inspector import EventInspector
from ui.views.labels import banner_label
from ui.views.playback import (
    WavPlayer,
    compare_figures,
    current_row,
    figure_text,
    turn_start_s,
)
from ui.views.plot_helpers import place_line
from ui.views.tables import rows_table
from ui.views.tool_calls_view import ToolCallsView
from ui.views.transcript_view import TranscriptView
from ui.views.vad_lane_view import VadLaneView
from ui.views.verdicts import VerdictPanel
from ui.views.waterfall import WaterfallView
from ui.windows import close_windows, keep_window

COLUMNS = (
    "Started",
    "Session",
    "Provider",
    "Model",
    "Profile",
    "Turns",
    "p50 v2v",
    "p95 v2v",
    "Errors",
    "Status",
)


class SessionsModel(RowsModel[dict[str, Any]]):
    """Rows from ``SessionIndex.list``: dicts with the fields
    :data:`app.store.index.LIST_KEYS` names, one column each in that order. Main thread
    only; every cell is a plain ``str``.
    """

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row(self, i: int) -> dict[str, Any]:
        return self._rows[i]

    columns = COLUMNS

    def cell(self, r: dict[str, Any], row: int, col: int, role: int) -> Any:
        key = LIST_KEYS[col]
        if role == Qt.ItemDataRole.ToolTipRole and key == "provider":
            if transcripts_scripted(r.get("provider")):
                return SCRIPTED_NOTE
            return None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        value = r.get(key)
        if key.endswith("_ms"):
            return ms_text(value) if isinstance(value, int | float) else "—"
        if key == "started_at" and isinstance(value, str):
            return value.replace("T", " ")[:19]
        if key == "provider" and transcripts_scripted(value):
            return "Simulator (scripted)"
        return "" if value is None else str(value)


class SessionViewer(QWidget):
    """One stored session: the live-call views fed from ``events.jsonl`` (read-only), and
    its verdicts and tags, which the reviewer may change (:attr:`verdicts`).

    Args:
        record: the session (``app.store.reader.SessionRecord``) in its data folder's
            ``sessions/`` (the index beside that folder gets the verdicts and tags).
    """

    def __init__(self, record: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.record = record
        self.setWindowTitle(f"voiceprobe — session {record.session_id}")
        self.resize(1360, 780)
        self.vm = CallViewModel(self)
        self.applied = replay_into(self.vm, session_events(record), session_turns(record))
        self.player = WavPlayer()

        meta = record.meta
        header = QLabel(self)
        header.setTextFormat(Qt.TextFormat.PlainText)
        header.setObjectName("summaryLabel")
        header.setText(
            f"{record.session_id} · {meta.get('provider', '')} · {meta.get('model', '')} · "
            f"{meta.get('started_at', '')} · {self.applied} events · {record.status or 'unknown'}"
        )
        self.play_button = QPushButton("Play recording", self)
        self.stop_button = QPushButton("Stop", self)
        self.report_button = QPushButton("Export report…", self)
        self.report_button.setToolTip("This call as one HTML file (voiceprobe report session)")
        self.report_button.clicked.connect(lambda: self.export_report())
        self.report_note = QLabel(self)
        self.report_note.setTextFormat(Qt.TextFormat.PlainText)
        self.report_note.setObjectName("hint")
        self.audio_note = QLabel(self)
        self.audio_note.setTextFormat(Qt.TextFormat.PlainText)
        self.audio_note.setObjectName("hint")
        audio = record.audio_path
        self.play_button.setEnabled(audio is not None)
        self.stop_button.setEnabled(False)
        self.audio_note.setText(
            "left: caller · right: agent" if audio else "no recording in this session"
        )
        self.play_button.setToolTip(
            "Play audio.wav (left: caller, right: agent); a playhead follows it on the speech lanes"
        )
        self.stop_button.setToolTip("Stop playing")
        self.play_button.clicked.connect(lambda: self._play())
        self.stop_button.clicked.connect(self._stop)
        # Where audio.wav starts on the call's clock (normally the call start itself).
        t0 = meta.get("audio_t0_ns")
        origin = self.vm.vad.start_ns()
        self._audio_offset_s = (
            (t0 - origin) / 1e9 if isinstance(t0, int) and origin is not None else 0.0
        )
        self._tick = QTimer(self)
        self._tick.setInterval(33)
        self._tick.timeout.connect(self._follow_player)

        self.transcript_view = TranscriptView(self.vm.transcript, self)
        self.waterfall = WaterfallView(self.vm.turns, self)
        self.waterfall.turnSelected.connect(self.play_from_turn)
        # The playhead on the waterfall: a line through the turn being heard.
        self.turn_head = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("#f5c542", width=2))
        self.turn_head.hide()
        self.waterfall.plot.addItem(self.turn_head)
        #: Model rows (waterfall, transcript) under the playhead, ``None`` when not playing.
        self.heard_turn: int | None = None
        self.heard_line: int | None = None
        self._turn_starts: list[int | None] | None = None
        self.tools_view = ToolCallsView(self.vm.tools, self)
        self.inspector = EventInspector(self.vm.events, self)
        self.vad_view = VadLaneView(self.vm.vad, self)
        tabs = QTabWidget(self)
        tabs.addTab(self.waterfall, "Latency")
        tabs.addTab(self.tools_view, "Tool calls")
        tabs.addTab(self.inspector, "Events")
        upper = QSplitter(Qt.Orientation.Horizontal, self)
        upper.addWidget(self.transcript_view)
        upper.addWidget(tabs)
        upper.setSizes([400, 700])
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(upper)
        split.addWidget(self.vad_view)
        split.setSizes([600, 150])
        self.vad_view.set_live(False)  # the whole stored call, in call time

        # Verdicts and tags: the store's layout puts the index two folders up.
        data_root = Path(record.path).parent.parent
        self.verdicts = VerdictPanel(self.vm.turns, lambda: data_root, self)
        tags = record.meta.get("tags")
        stored = [str(t) for t in tags] if isinstance(tags, list) else []
        self.verdicts.set_past_session(record.session_id, record.path, stored)
        self.verdicts.refresh_completions()
        self.addActions(list(self.verdicts.actions_for_window))
        self.waterfall.turnSelected.connect(self.verdicts.table.selectRow)  # heard, then judged
        sides = QSplitter(Qt.Orientation.Horizontal, self)
        sides.addWidget(split)
        sides.addWidget(self.verdicts)
        sides.setSizes([960, 400])

        bar = QHBoxLayout()
        bar.addWidget(header, 1)
        bar.addWidget(self.audio_note)
        bar.addWidget(self.play_button)
        bar.addWidget(self.stop_button)
        bar.addWidget(self.report_note)
        bar.addWidget(self.report_button)
        box = QVBoxLayout(self)
        box.addLayout(bar)
        box.addWidget(sides, 1)

    def export_report(self, path: Path | None = None) -> tuple[bool, str]:
        """Export the call's HTML report (``path``: no dialog); the outcome is one plain-text
        line beside the button. Returns ``(written, message)``."""
        folder = Path(self.record.path)
        ok, message = export_report(
            self, "Export call report", f"{folder.name}.html",
            lambda out: export_session_report(folder, out), path,
        )  # fmt: skip
        self.report_note.setText(message)
        return ok, message

    def play_from_turn(self, row: int) -> bool:
        """Play the recording from the first sample of the turn in model row ``row`` (its
        stamps relative to the recording's ``audio_t0_ns``); False when it cannot."""
        t0 = self.record.meta.get("audio_t0_ns")
        if self.record.audio_path is None or not isinstance(t0, int):
            return False
        if not 0 <= row < self.vm.turns.rowCount():
            return False
        start = turn_start_s(self.vm.turns.turn(row), t0)
        return start is not None and self._play(start)

    def _play(self, start_s: float = 0.0) -> bool:
        audio = self.record.audio_path
        if audio is None:
            return False
        try:
            seconds = self.player.play(audio, start_s)
        except AudioDeviceError as exc:
            self.audio_note.setText(str(exc))
            return False
        self._seconds = seconds
        self.audio_note.setText(f"playing {seconds:.1f} s (left: caller · right: agent)")
        self.stop_button.setEnabled(True)
        self.play_button.setEnabled(False)
        self._tick.start()
        return True

    def _stop(self) -> None:
        at = self.player.position_s
        self.player.stop()
        self._tick.stop()
        self.audio_note.setText(f"stopped at {at:.1f} s")
        self._reset_controls()

    def _follow_player(self) -> None:
        """The display tick while playing: move the playhead; when the recording has
        played to its end, say so and give the buttons back."""
        if self.player.playing:
            self.vad_view.set_playhead(self._audio_offset_s + self.player.position_s)
            self._follow_turns()
            return
        self._tick.stop()
        if self.player.finished:
            self.player.stop()
            self.audio_note.setText(f"played to the end ({self._seconds:.1f} s)")
        self._reset_controls()

    def _follow_turns(self) -> None:
        """Move the playhead through the waterfall (the turn being heard) and the
        transcript (the line being heard)."""
        t0 = self.record.meta.get("audio_t0_ns")
        if not isinstance(t0, int):
            return
        now = t0 + int(self.player.position_s * 1e9)
        if self._turn_starts is None:  # a stored call: its turns do not change
            turns = self.vm.turns
            at = [turn_start_s(turns.turn(i), t0) for i in range(turns.rowCount())]
            self._turn_starts = [None if x is None else t0 + int(x * 1e9) for x in at]
        row = current_row(self._turn_starts, now)
        if row != self.heard_turn:
            self.heard_turn = row
            place_line(self.turn_head, row)
        line = current_row([u.t_ns for u in self.vm.transcript.rows()], now)
        if line != self.heard_line:
            self.heard_line = line
            if line is not None:
                self.transcript_view.setCurrentIndex(self.vm.transcript.index(line))

    def _reset_controls(self) -> None:
        self.vad_view.set_playhead(None)
        self.turn_head.hide()
        self.heard_turn = self.heard_line = None
        self.stop_button.setEnabled(False)
        self.play_button.setEnabled(self.record.audio_path is not None)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Stop playing, and save a tag edit still waiting."""
        self._tick.stop()
        self.player.stop()
        self.verdicts.save_pending_tags()
        super().closeEvent(event)


class CompareModel(RowsModel[dict[str, Any]]):
    """Rows of :func:`ui.views.playback.compare_figures`: figure, A, B, delta B - A.
    Main thread only; every cell is a plain ``str``."""

    columns = ("Figure", "A", "B", "Δ B - A")
    roles = frozenset((int(Qt.ItemDataRole.DisplayRole),))

    def __init__(self, rows: list[dict[str, Any]], parent: Any = None) -> None:
        super().__init__(parent)
        self._rows = list(rows)

    def cell(self, r: dict[str, Any], row: int, col: int, role: int) -> Any:
        if col == 0:
            return str(r["figure"])
        key = ("a", "b", "delta")[col - 1]
        return figure_text(r[key], signed=key == "delta")


class CompareWindow(QWidget):
    """Two stored calls side by side: each one's waterfall, and their figures with the
    deltas B - A. Read-only; built from the two sessions' stored events and turns."""

    def __init__(self, record_a: Any, record_b: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"voiceprobe — {record_a.session_id} vs {record_b.session_id}")
        self.resize(1300, 760)
        self.vms: list[CallViewModel] = []
        sides = QSplitter(Qt.Orientation.Horizontal, self)
        for label, record in (("A", record_a), ("B", record_b)):
            vm = CallViewModel(self)
            replay_into(vm, session_events(record), session_turns(record))
            self.vms.append(vm)
            side = QWidget(sides)
            title = QLabel(f"{label}: {record.session_id}", side)
            title.setTextFormat(Qt.TextFormat.PlainText)
            col = QVBoxLayout(side)
            col.addWidget(title)
            col.addWidget(WaterfallView(vm.turns, side), 1)
            sides.addWidget(side)
        turns = [[vm.turns.turn(i) for i in range(vm.turns.rowCount())] for vm in self.vms]
        self.model = CompareModel(compare_figures(turns[0], turns[1]), self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(sides)
        split.addWidget(self.table)
        split.setSizes([520, 240])
        QVBoxLayout(self).addWidget(split)


class HistoryWindow(QWidget):
    """Searchable list of stored sessions; double-click (or Open) reopens one read-only.

    Args:
        index: an ``app.store.index.SessionIndex`` (``list(limit, query)``).
        sessions_root: the folder holding ``<session id>/`` folders.
        loader: ``app.store.reader.load_session`` (injectable for tests).
    """

    def __init__(
        self, index: Any, sessions_root: Path, loader: Any = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("voiceprobe — session history")
        self.resize(1000, 520)
        self.index = index
        self.root = Path(sessions_root)
        if loader is None:
            from app.store.reader import load_session

            loader = load_session
        self.loader = loader
        self.viewers: list[QWidget] = []
        self.model = SessionsModel(self)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search by id, provider, model, profile or tag")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _t: self.refresh())
        self.table = rows_table(self.model, self, QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.doubleClicked.connect(lambda idx: self.open_row(idx.row()))
        self.open_button = QPushButton("Open", self)
        self.open_button.clicked.connect(self._open_selected)
        self.compare_button = QPushButton("Compare", self)
        self.compare_button.setToolTip("Select two calls, then compare them side by side")
        self.compare_button.clicked.connect(self._compare_selected)
        self.error = banner_label(self)
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.open_button)
        top.addWidget(self.compare_button)
        box = QVBoxLayout(self)
        box.addLayout(top)
        box.addWidget(self.error)
        box.addWidget(self.table, 1)
        self.refresh()

    def refresh(self) -> None:
        """Re-query the index with the search text."""
        try:
            rows = self.index.list(200, self.search.text().strip() or None)
        except VoiceprobeError as exc:
            self._show_error(str(exc))
            return
        self.error.hide()
        self.model.set_rows(rows)

    def open_row(self, row: int) -> SessionViewer | None:
        """Open session ``row`` in a read-only viewer (also returned)."""
        if not 0 <= row < self.model.rowCount():
            return None
        sid = str(self.model.row(row).get("id", ""))
        try:
            record = self.loader(self.root / sid)
        except VoiceprobeError as exc:
            self._show_error(str(exc))
            return None
        viewer = SessionViewer(record)
        keep_window(self.viewers, viewer)
        viewer.show()
        return viewer

    def compare_rows(self, row_a: int, row_b: int) -> CompareWindow | None:
        """Open sessions ``row_a`` and ``row_b`` side by side (also returned)."""
        n = self.model.rowCount()
        if not (0 <= row_a < n and 0 <= row_b < n) or row_a == row_b:
            self._show_error("select two different calls to compare")
            return None
        try:
            a, b = (self.loader(self.root / str(self.model.row(r).get("id", "")))
                    for r in (row_a, row_b))  # fmt: skip
        except VoiceprobeError as exc:
            self._show_error(str(exc))
            return None
        window = CompareWindow(a, b)
        keep_window(self.viewers, window)
        window.show()
        return window

    def _compare_selected(self) -> None:
        rows = sorted(i.row() for i in self.table.selectionModel().selectedRows())
        if len(rows) != 2:
            self._show_error("select two calls to compare")
            return
        self.compare_rows(rows[0], rows[1])

    def _open_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.open_row(rows[0].row())

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Close the session viewers opened from here (their players stop) too."""
        close_windows(self.viewers)
        super().closeEvent(event)
