"""The view-model of one call: owns every model and routes each event to them."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app import events as E
from app.metrics.presentation import transcripts_scripted
from ui.models.event_log import EventLogModel
from ui.models.tool_calls import ToolCallsModel
from ui.models.transcript import TranscriptModel
from ui.models.turns import TurnsModel
from ui.models.vad_lane import VadLaneModel


class CallViewModel(QObject):
    """Routes events to the transcript, tool, turn, event-log and VAD models.

    Main thread only: feed it from :class:`ui.bus.EventBus` (live) or
    :func:`ui.models.replay.replay_into` (a stored session). Times shown by the models are
    relative to the call start (``CallStarted``, else the first event seen).

    By default :meth:`apply` updates the models at once. A live window turns on
    *coalescing* (:meth:`set_coalescing`): events are then buffered and applied in one
    batch at most ``ms`` after the first of them arrived, so that a burst of events (agent
    audio chunks come 25–50 a second) costs one model update and one repaint rather than
    one per event.
    """

    #: Connection state text (``connecting``/``connected``/…), with its detail.
    connectionChanged = Signal(str, str)
    #: A call began (session id, provider, model).
    callStarted = Signal(str, str, str)
    #: A call ended (reason, ok).
    callEnded = Signal(str, bool)
    #: A message for the status line (level, plain text).
    notice = Signal(str, str)
    #: The call failed or could not start (code, message, fix), from ``CallFailed``.
    failed = Signal(str, str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.transcript = TranscriptModel(self)
        self.tools = ToolCallsModel(self)
        self.turns = TurnsModel(self)
        self.events = EventLogModel(self)
        self.vad = VadLaneModel(self)
        self.origin_ns: int | None = None
        self.session_id = ""
        self.session_dir = ""
        self.provider = ""
        self.model = ""
        self.connection = "idle"
        self.active = False
        #: The call's ``CallFailed`` (code, message, fix), if it failed.
        self.failure: tuple[str, str, str] | None = None
        self._pending: list[E.EventBase] = []
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(0)
        self._flush_timer.timeout.connect(self.flush)
        self._coalesce_ms = 0

    def set_coalescing(self, ms: int) -> None:
        """Batch live events for up to ``ms`` milliseconds (0: apply each at once)."""
        self.flush()
        self._coalesce_ms = max(0, int(ms))
        self._flush_timer.setInterval(self._coalesce_ms)

    @property
    def pending(self) -> int:
        """Events buffered by coalescing and not yet applied to the models."""
        return len(self._pending)

    def reset(self) -> None:
        """Forget the previous call (before a new one starts); buffered events too."""
        self._pending.clear()
        self._flush_timer.stop()
        for m in (self.transcript, self.tools, self.turns, self.events, self.vad):
            m.clear()
        self._set_origin(None)
        self.session_id = self.session_dir = self.provider = self.model = ""
        self.active = False
        self.failure = None
        self._set_scripted(False)

    def _set_scripted(self, scripted: bool) -> None:
        """The simulator's caller transcripts are its script: the models mark them."""
        self.transcript.set_scripted(scripted)
        self.turns.set_scripted(scripted)

    def apply(self, ev: E.EventBase) -> None:
        """The single entry point: update every model from one event (or, when coalescing,
        buffer it; :meth:`flush` applies the buffer).
        """
        if self._coalesce_ms <= 0:
            self._apply_batch([ev])
            return
        self._pending.append(ev)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def flush(self) -> None:
        """Apply every buffered event now (in arrival order)."""
        self._flush_timer.stop()
        if self._pending:
            batch, self._pending = self._pending, []
            self._apply_batch(batch)

    def _apply_batch(self, batch: list[E.EventBase]) -> None:
        for ev in batch:
            if isinstance(ev, E.CallStarted):
                self._set_origin(ev.t_ns)
                self.session_id, self.session_dir = ev.session_id, ev.session_dir
                self.provider, self.model = ev.provider, ev.model
                self.active = True
                self._set_scripted(transcripts_scripted(ev.provider))
            elif self.origin_ns is None:
                self._set_origin(ev.t_ns)
        self.events.apply_batch(batch)
        for ev in batch:
            self._route(ev)

    def _route(self, ev: E.EventBase) -> None:
        self.transcript.apply(ev)
        self.tools.apply(ev)
        self.turns.apply(ev)
        self.vad.apply(ev)
        if isinstance(ev, E.CallStarted):
            self.callStarted.emit(ev.session_id, ev.provider, ev.model)
        elif isinstance(ev, E.ConnectionState):
            self.connection = ev.state
            self.connectionChanged.emit(ev.state, ev.detail)
        elif isinstance(ev, E.CallEnded):
            self.active = False
            self.callEnded.emit(ev.reason, ev.ok)
        elif isinstance(ev, E.CallFailed):
            if self.failure is None:
                self.failure = (ev.code, ev.message, ev.fix)
                self.failed.emit(ev.code, ev.message, ev.fix)
        elif isinstance(ev, E.Notice):
            self.notice.emit(ev.level, ev.message)
        elif isinstance(ev, E.ProviderErrorEvent):
            self.notice.emit("error", f"{ev.code}: {ev.message}")

    def _set_origin(self, t_ns: int | None) -> None:
        self.origin_ns = t_ns
        self.vad.origin_ns = t_ns
        for m in (self.transcript, self.tools, self.events):
            m.origin_ns = t_ns
            if m.rowCount():
                m.layoutChanged.emit()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"CallViewModel(session={self.session_id!r}, events={self.events.event_count})"


def apply_all(vm: CallViewModel, events: list[Any]) -> None:
    """Apply a list of events in order (tests, replay)."""
    for ev in events:
        vm.apply(ev)
