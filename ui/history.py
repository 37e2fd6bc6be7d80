"""Session history: a searchable list of past calls, reopened read-only.

Reopening feeds the stored events through :func:`ui.models.replay.replay_into` into the
same models and views as a live call, and plays the stereo ``audio.wav`` (left caller,
right agent) through sounddevice (PySide6-Essentials has no QtMultimedia).
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
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
from app.store.reader import session_events, session_turns
from ui.models.call_view import CallViewModel
from ui.models.common import ms_text
from ui.models.replay import replay_into
from ui.models.table import FixedColumnsModel
from ui.views.event_inspector import EventInspector
from ui.views.tool_calls_view import ToolCallsView
from ui.views.transcript_view import TranscriptView
from ui.views.vad_lane_view import VadLaneView
from ui.views.waterfall import WaterfallView

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


class SessionsModel(FixedColumnsModel):
    """Rows from ``SessionIndex.list`` (dicts with ``id``, ``started_at``, ``provider``,
    ``model``, ``profile``, ``turns``, ``p50_v2v_ms``, ``p95_v2v_ms``, ``errors``,
    ``status``). Main thread only; every cell is a plain ``str``.
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[dict[str, Any]] = []

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row(self, i: int) -> dict[str, Any]:
        return self._rows[i]

    columns = COLUMNS

    def row_total(self) -> int:
        return len(self._rows)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        r = self._rows[index.row()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 2:
            if transcripts_scripted(r.get("provider")):
                return SCRIPTED_NOTE
            return None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        key = (
            "started_at",
            "id",
            "provider",
            "model",
            "profile",
            "turns",
            "p50_v2v_ms",
            "p95_v2v_ms",
            "errors",
            "status",
        )[index.column()]
        value = r.get(key)
        if key.endswith("_ms"):
            return ms_text(value) if isinstance(value, int | float) else "—"
        if key == "started_at" and isinstance(value, str):
            return value.replace("T", " ")[:19]
        if key == "provider" and transcripts_scripted(value):
            return "Simulator (scripted)"
        return "" if value is None else str(value)


class WavPlayer:
    """Plays a WAV file through the default output device (sounddevice) and knows where it
    is.

    Main thread, except :meth:`_fill`, which runs on PortAudio's callback thread and only
    copies samples and advances one counter (no allocation, no lock, no Qt).
    """

    def __init__(self) -> None:
        self._data: np.ndarray | None = None
        self._rate = 0
        self._pos = 0  # frames handed to the device (written by the callback only)
        self._stream: Any = None

    @staticmethod
    def load(path: Path) -> tuple[np.ndarray, int]:
        """Read a PCM16 WAV as ``(frames × channels int16, rate)``.

        Raises:
            AudioDeviceError: unreadable or not 16-bit PCM.
        """
        try:
            with wave.open(str(path), "rb") as w:
                if w.getsampwidth() != 2:
                    raise AudioDeviceError(f"{path.name} is not 16-bit PCM")
                data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
                return data.reshape(-1, w.getnchannels()), w.getframerate()
        except (OSError, EOFError, wave.Error) as exc:
            raise AudioDeviceError(f"cannot read {path.name} ({exc})") from None

    def play(self, path: Path) -> float:
        """Start playing ``path`` from its start; returns its duration in seconds.

        Raises:
            AudioDeviceError: unreadable file, or no usable output device.
        """
        self.stop()
        data, rate = self.load(path)
        self._data, self._rate, self._pos = data, rate, 0
        try:
            import sounddevice as sd

            self._stream = sd.OutputStream(
                samplerate=rate, channels=data.shape[1], dtype="int16", callback=self._fill
            )
            self._stream.start()
        except Exception as exc:  # PortAudioError, or OSError without PortAudio
            self._stream = None
            raise AudioDeviceError(f"cannot play audio ({exc})") from None
        return len(data) / rate

    def _fill(self, outdata: Any, frames: int, _time: Any, _status: Any) -> None:
        """PortAudio callback: copy the next frames, silence after the end."""
        data = self._data
        pos = self._pos
        n = 0 if data is None else max(0, min(frames, len(data) - pos))
        if n:
            outdata[:n] = data[pos : pos + n]  # type: ignore[index]
        outdata[n:] = 0
        self._pos = pos + n

    @property
    def playing(self) -> bool:
        """True while the recording is playing (not stopped, not played to its end)."""
        return self._stream is not None and self._data is not None and not self.finished

    @property
    def finished(self) -> bool:
        """True once every frame has been handed to the device."""
        return self._data is not None and self._pos >= len(self._data)

    @property
    def position_s(self) -> float:
        """Where playback is, in seconds from the recording's start."""
        return self._pos / self._rate if self._rate else 0.0

    def stop(self) -> None:
        """Stop and close the stream (idempotent); the position is kept."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # the device vanished while playing: nothing to recover
                pass


class SessionViewer(QWidget):
    """One stored session, read-only: the live-call views fed from ``events.jsonl``."""

    def __init__(self, record: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.record = record
        self.setWindowTitle(f"voiceprobe — session {record.session_id}")
        self.resize(1200, 780)
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
        self.play_button.clicked.connect(self._play)
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

        bar = QHBoxLayout()
        bar.addWidget(header, 1)
        bar.addWidget(self.audio_note)
        bar.addWidget(self.play_button)
        bar.addWidget(self.stop_button)
        box = QVBoxLayout(self)
        box.addLayout(bar)
        box.addWidget(split, 1)

    def _play(self) -> None:
        audio = self.record.audio_path
        if audio is None:
            return
        try:
            seconds = self.player.play(audio)
        except AudioDeviceError as exc:
            self.audio_note.setText(str(exc))
            return
        self._seconds = seconds
        self.audio_note.setText(f"playing {seconds:.1f} s (left: caller · right: agent)")
        self.stop_button.setEnabled(True)
        self.play_button.setEnabled(False)
        self._tick.start()

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
            return
        self._tick.stop()
        if self.player.finished:
            self.player.stop()
            self.audio_note.setText(f"played to the end ({self._seconds:.1f} s)")
        self._reset_controls()

    def _reset_controls(self) -> None:
        self.vad_view.set_playhead(None)
        self.stop_button.setEnabled(False)
        self.play_button.setEnabled(self.record.audio_path is not None)

    def closeEvent(self, event: Any) -> None:
        self._tick.stop()
        self.player.stop()
        super().closeEvent(event)


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
        self.viewers: list[SessionViewer] = []
        self.model = SessionsModel(self)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search by id, provider, model, profile or tag")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _t: self.refresh())
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda idx: self.open_row(idx.row()))
        self.open_button = QPushButton("Open", self)
        self.open_button.clicked.connect(self._open_selected)
        self.error = QLabel(self)
        self.error.setObjectName("banner")
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.hide()
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.open_button)
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
        viewer.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        viewer.destroyed.connect(
            lambda _o=None, v=viewer: self.viewers.remove(v) if v in self.viewers else None
        )
        self.viewers.append(viewer)
        viewer.show()
        return viewer

    def _open_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.open_row(rows[0].row())

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Close the session viewers opened from here (their players stop) too."""
        for viewer in list(self.viewers):
            viewer.close()
        super().closeEvent(event)
