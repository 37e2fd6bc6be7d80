"""Sans-I/O Gemini Live (``BidiGenerateContent``) protocol: JSON in, typed events out.

Wire shapes are proto-JSON (camelCase) as documented at ai.google.dev/api/live and as
modelled by ``google.genai.types.LiveClientMessage`` / ``LiveServerMessage``
(docs/protocols.md#gemini-live). Input is read in camelCase or snake_case; only camelCase
is sent.

Gemini has no response or item ids, so this module makes them up:

* each model turn is ``gturn-N`` (used as both ``response_id`` and ``item_id``). A turn
  opens at the first sign of a response (model content, an output transcription with no
  earlier turn, or a tool call) with :class:`~app.events.ResponseStarted`, and closes at
  ``turnComplete`` with :class:`~app.events.ResponseFinished` (``cancelled`` if
  ``interrupted`` came first). Content after a tool result was sent opens a new turn, as
  OpenAI's follow-up response would, so each response has one stretch of audio;
* each user turn is ``guser-N``. Input transcription goes to the current user item until
  it is *answered* (a model turn opened while it was current) and then closed by
  ``turnComplete``, ``interrupted``, a server ``ACTIVITY_START`` or our own
  ``activity_start()``; a late transcription that arrives while its answer is already
  playing therefore keeps its own user item
  (docs/protocols.md#gemini-ordering-and-interruptions). A ``finished`` transcription
  closes the item at once.

Transcriptions are deltas (``final=False``); when a user item closes, or a model turn
finishes, one ``final=True`` event carries the whole text gathered so far.

Events the session bookkeeping makes outside :meth:`GeminiProtocol.receive` (the final
transcript of a user item that ``activity_start()`` closes) are available from
:meth:`GeminiProtocol.events_received` right after the call that made them; the shared
connection drains it on every send. :meth:`~GeminiProtocol.receive` returns whatever is
still undrained ahead of its own events, so none is lost or reordered.
The ``setup`` message is made in :mod:`~app.providers.gemini.session_setup`, server
messages are read into typed operations in :mod:`~app.providers.gemini.messages`.

Nothing here does I/O or raises on bad server input: a malformed message becomes a
:class:`~app.events.ProviderErrorEvent` with ``code="malformed_message"``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from app.clock import Clock
from app.events import (
    AgentAudio,
    AgentInterrupted,
    AgentTranscript,
    Event,
    GoAway,
    ProviderErrorEvent,
    ResponseFinished,
    ResponseStarted,
    ResumptionUpdate,
    ServerSpeechStarted,
    ServerSpeechStopped,
    SessionConfigured,
    ToolCallCancelled,
    ToolCallRequested,
    UnknownMessage,
    Usage,
    UserTranscript,
)
from app.profile import Profile
from app.providers.base import HistoryItem, Outgoing, ProviderProtocol
from app.providers.gemini import messages as wire
from app.providers.gemini.content import function_response, history_turns
from app.providers.gemini.messages import OUTPUT_RATE
from app.providers.gemini.session_setup import DEFAULT_MODEL as DEFAULT_MODEL  # re-exported
from app.providers.gemini.session_setup import gemini_model, setup_message

INPUT_RATE = 16000
INPUT_MIME = f"audio/pcm;rate={INPUT_RATE}"


class GeminiProtocol(ProviderProtocol):
    """The Gemini Live dialect. Synchronous; call from one thread (the bridge loop).

    Args:
        profile: the agent profile.
        clock: the one clock (kept for stamps of locally made events).
        resumption_handle: a handle from an earlier connection's
            ``sessionResumptionUpdate``, to resume that session.
        id_prefix: put into every made-up user and turn id (``guser-<prefix>N``), so that
            ids stay unique across the sessions of one call.

    Attributes:
        latest_handle: the newest resumable handle seen (or the one given), for the
            reconnect after a ``goAway``.
        session_id: from ``setupComplete`` (empty until then or if the server sends none).
    """

    name = "gemini"
    input_rate = INPUT_RATE
    output_rate = OUTPUT_RATE
    tool_result_waits = False

    def __init__(
        self,
        profile: Profile,
        clock: Clock,
        resumption_handle: str | None = None,
        id_prefix: str = "",
    ) -> None:
        self._id_prefix = id_prefix
        self.profile = profile
        self._clock = clock
        self.latest_handle: str | None = resumption_handle or None
        self._resume_from = resumption_handle or None
        self.session_id = ""
        # model turns
        self._turn_seq = 0
        self._turn: str | None = None
        self._last_turn: str | None = None
        self._turn_interrupted = False
        self._turn_text: list[str] = []
        self._tool_result_sent = False
        self._usage: dict[str, Any] | None = None
        self._usage_counts: dict[str, int] | None = None
        # The price-table key: the model's id without "models/" (or a Vertex path).
        self.model = gemini_model(profile.model).rsplit("/", 1)[-1]
        # user turns
        self._user_seq = 1
        self._user_text: list[str] = []
        self._user_final_sent = False
        self._user_answered = False
        self._user_new_next = False
        # audio accounting per item
        self._received_samples: dict[str, int] = {}
        self._received_rate: dict[str, int] = {}
        self._call_seq = 0
        self._made_up_call_ids: set[str] = set()
        self._events: list[Event] = []  # made, not yet drained

    # --- client messages ----------------------------------------------------------------

    @staticmethod
    def _out(msg: dict[str, Any], type_: str, log: bool = True) -> Outgoing:
        return Outgoing(
            text=json.dumps(msg, separators=(",", ":")), type=type_, log=msg if log else None
        )

    def setup_message(self) -> dict[str, Any]:
        """The ``{"setup": …}`` message (:func:`~app.providers.gemini.session_setup.
        setup_message`), resuming from the handle given at construction."""
        return setup_message(self.profile, self._resume_from)

    def open(self) -> list[Outgoing]:
        """The one ``setup`` message; wait for ``setupComplete`` before sending audio."""
        return [self._out(self.setup_message(), "setup")]

    def audio(self, pcm: bytes) -> list[Outgoing]:
        """``realtimeInput.audio`` with PCM16 mono at 16 kHz (not logged)."""
        data = base64.b64encode(pcm).decode("ascii")
        msg = {"realtimeInput": {"audio": {"data": data, "mimeType": INPUT_MIME}}}
        return [self._out(msg, "realtimeInput", log=False)]

    def manual_turn_start(self) -> list[Outgoing]:
        """Automatic activity detection is off: the local VAD starts the caller's turn."""
        return self.activity_start()

    def manual_turn_end(self) -> list[Outgoing]:
        """Automatic activity detection is off: the local VAD ends the caller's turn."""
        return self.activity_end()

    def activity_start(self) -> list[Outgoing]:
        """Manual VAD (``turn_detection.type: none``): the caller started speaking.

        Also closes the current user item if it was already answered, so that what
        follows is transcribed into a new one; that item's final transcript is then ready
        in :meth:`events_received`.
        """
        if self._user_answered:
            self._events += self._close_user(self._clock.now_ns(), None)
        return [self._out({"realtimeInput": {"activityStart": {}}}, "realtimeInput")]

    def activity_end(self) -> list[Outgoing]:
        """Manual VAD: the caller stopped speaking (the model answers)."""
        return [self._out({"realtimeInput": {"activityEnd": {}}}, "realtimeInput")]

    def audio_stream_end(self) -> list[Outgoing]:
        """The microphone stopped (automatic VAD only): flush what is buffered."""
        return [self._out({"realtimeInput": {"audioStreamEnd": True}}, "realtimeInput")]

    def tool_result(self, call_id: str, name: str, output: str) -> list[Outgoing]:
        """``toolResponse`` for one call (:func:`~app.providers.gemini.content.
        function_response`); an id we made up is not sent back."""
        known_id = call_id if call_id not in self._made_up_call_ids else None
        if self._turn is not None:
            self._tool_result_sent = True
        msg = {"toolResponse": {"functionResponses": [function_response(known_id, name, output)]}}
        return [self._out(msg, "toolResponse")]

    def replay(self, history: list[HistoryItem]) -> list[Outgoing]:
        """Nothing after a resumption (the server restores the session from its handle);
        otherwise the finished turns as one ``clientContent`` with ``turnComplete: false``
        so the model does not answer them.
        """
        turns = [] if self._resume_from else history_turns(history)
        if not turns:
            return []
        msg = {"clientContent": {"turns": turns, "turnComplete": False}}
        return [self._out(msg, "clientContent")]

    def truncate(self, item_id: str, audio_end_ms: int) -> list[Outgoing]:
        """Nothing: Gemini has no truncate; it honours its own ``interrupted``."""
        return []

    def received_audio_ms(self, item_id: str) -> int:
        """Milliseconds of agent audio received so far for ``item_id``."""
        rate = self._received_rate.get(item_id, OUTPUT_RATE)
        return self._received_samples.get(item_id, 0) * 1000 // rate

    # --- events ------------------------------------------------------------------------

    def events_received(self) -> list[Event]:
        """Events made since the last drain, oldest first; drains them.

        Only :meth:`activity_start` (and :meth:`manual_turn_start`) make events outside
        :meth:`receive`: call this right after them (the connection does, on every send).
        """
        out, self._events = self._events, []
        return out

    def receive(self, text: str | bytes, t_ns: int) -> list[Event]:
        """Parse one server message (text or a binary frame of UTF-8 JSON); never raises.

        Returns the undrained events of earlier calls (see :meth:`events_received`), then
        this message's.
        """
        self._events += self._read(text, t_ns)
        return self.events_received()

    def _read(self, text: str | bytes, t_ns: int) -> list[Event]:
        try:
            msg = wire.load_message(text)
        except wire.Malformed as exc:
            return [self._malformed(t_ns, str(exc), None)]
        try:
            raw = wire.elide_audio(msg)
        except RecursionError:  # pragma: no cover - elision only walks a fixed path
            raw = {}
        try:
            ops = wire.parse_message(msg)
        except wire.Malformed as exc:
            return [self._malformed(t_ns, str(exc), raw)]
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            return [self._malformed(t_ns, f"bad field ({type(exc).__name__})", raw)]
        out: list[Event] = []
        for op in ops:
            out += self._apply(op, t_ns, raw)
        return out

    @staticmethod
    def _malformed(t_ns: int, why: str, raw: dict[str, Any] | None) -> ProviderErrorEvent:
        return ProviderErrorEvent(
            t_ns=t_ns, raw=raw, code="malformed_message", message=f"malformed Gemini message: {why}"
        )

    def _apply(self, op: wire.Operation, t_ns: int, raw: dict[str, Any]) -> list[Event]:
        """The events of one operation, updating the session's bookkeeping."""
        match op:
            case wire.UnknownKey(key):
                return [UnknownMessage(t_ns=t_ns, raw=raw, type=key)]
            case wire.SetupDone(sid):
                self.session_id = sid
                return [SessionConfigured(t_ns=t_ns, raw=raw, provider=self.name, session_id=sid)]
            case wire.SpeechStarted(ms):
                out = self._close_user(t_ns, raw) if self._user_answered else []
                item = self._user_item()
                out.append(ServerSpeechStarted(t_ns=t_ns, raw=raw, item_id=item, audio_start_ms=ms))
                return out
            case wire.SpeechStopped(ms):
                item = self._user_item()
                return [ServerSpeechStopped(t_ns=t_ns, raw=raw, item_id=item, audio_end_ms=ms)]
            case wire.UsageReport(meta, counts):
                return self._on_usage(meta, counts, t_ns, raw)
            case wire.BadUsage(why):
                return [self._malformed(t_ns, why, raw)]
            case wire.Interrupted():
                return self._interrupted(t_ns, raw)
            case wire.InputTranscript(text, finished):
                return self._input_transcript(text, finished, t_ns, raw)
            case wire.ModelAudio(chunks):
                return self._model_content(chunks, t_ns, raw)
            case wire.OutputTranscript(text):
                return self._output_transcript(text, t_ns, raw)
            case wire.TurnComplete(reason):
                out = self._finish_turn(t_ns, raw, reason=reason)
                if self._user_answered:
                    out += self._close_user(t_ns, raw)
                return out
            case wire.ToolCalls(calls):
                return self._tool_calls(calls, t_ns, raw)
            case wire.ToolCancel(ids):
                return [ToolCallCancelled(t_ns=t_ns, raw=raw, call_ids=ids)]
            case wire.Resumption(handle, resumable):
                if resumable and handle:
                    self.latest_handle = handle
                return [ResumptionUpdate(t_ns=t_ns, raw=raw, handle=handle, resumable=resumable)]
            case wire.GoingAway(time_left_ms):
                return [GoAway(t_ns=t_ns, raw=raw, time_left_ms=time_left_ms)]

    # user turns

    def _user_item(self) -> str:
        """The user item new input belongs to (opening a new one if the last closed)."""
        if self._user_new_next:
            self._user_seq += 1
            self._user_text = []
            self._user_final_sent = False
            self._user_answered = False
            self._user_new_next = False
        return f"guser-{self._id_prefix}{self._user_seq}"

    def _close_user(self, t_ns: int, raw: dict[str, Any] | None) -> list[Event]:
        """Close the current user item: emit its final transcript once, if it has one."""
        out: list[Event] = []
        if self._user_new_next:
            return out
        if self._user_text and not self._user_final_sent:
            out.append(
                UserTranscript(
                    t_ns=t_ns,
                    raw=raw,
                    item_id=f"guser-{self._id_prefix}{self._user_seq}",
                    text="".join(self._user_text),
                    final=True,
                )
            )
            self._user_final_sent = True
        self._user_new_next = True
        return out

    def _input_transcript(
        self, text: str, finished: bool, t_ns: int, raw: dict[str, Any]
    ) -> list[Event]:
        out: list[Event] = []
        item = self._user_item()
        if text:
            self._user_text.append(text)
            out.append(UserTranscript(t_ns=t_ns, raw=raw, item_id=item, text=text, final=False))
        if finished:
            out += self._close_user(t_ns, raw)
        return out

    # model turns

    def _start_turn(self, t_ns: int, raw: dict[str, Any]) -> list[Event]:
        self._turn_seq += 1
        self._turn = self._last_turn = f"gturn-{self._id_prefix}{self._turn_seq}"
        self._turn_interrupted = False
        self._turn_text = []
        self._tool_result_sent = False
        self._user_item()  # a pending new user item opens before its answer
        self._user_answered = True
        return [ResponseStarted(t_ns=t_ns, raw=raw, response_id=self._turn)]

    def _ensure_turn(self, t_ns: int, raw: dict[str, Any]) -> list[Event]:
        """Open a turn for new model output (closing one that this output cannot belong
        to: one already interrupted, or one whose tool result has been sent).
        """
        out: list[Event] = []
        if self._turn is not None and (self._turn_interrupted or self._tool_result_sent):
            reason = "" if self._turn_interrupted else "tool_call"
            out += self._finish_turn(t_ns, raw, reason=reason)
        if self._turn is None:
            out += self._start_turn(t_ns, raw)
        return out

    def _finish_turn(self, t_ns: int, raw: dict[str, Any], reason: str = "") -> list[Event]:
        turn = self._turn
        if turn is None:
            return []
        out: list[Event] = []
        if self._turn_text:
            text = "".join(self._turn_text)
            out.append(
                AgentTranscript(
                    t_ns=t_ns, raw=raw, response_id=turn, item_id=turn, text=text, final=True
                )
            )
        usage, self._usage = self._usage, None
        counts, self._usage_counts = self._usage_counts, None
        if counts is not None:
            out.append(self._usage_event(turn, counts, t_ns, raw))
        out.append(
            ResponseFinished(
                t_ns=t_ns,
                raw=raw,
                response_id=turn,
                status="cancelled" if self._turn_interrupted else "completed",
                reason=reason,
                usage=usage,
            )
        )
        self._turn = None
        self._turn_interrupted = False
        self._turn_text = []
        self._tool_result_sent = False
        return out

    def _on_usage(
        self, meta: dict[str, Any], counts: dict[str, int], t_ns: int, raw: dict[str, Any]
    ) -> list[Event]:
        """A ``usageMetadata``: the usage of one model turn so far (``docs/cost.md``).

        Each model turn is billed on its own (its prompt is the whole context so far), so
        figures are never added across turns. Within a turn a later message is a newer
        snapshot: the last one is kept and emitted when the turn finishes. One that comes
        after the turn finished (with the ``sessionResumptionUpdate``, say) is a newer
        snapshot of that finished turn and is emitted at once under its id.
        """
        if self._turn is not None or self._last_turn is None:
            self._usage, self._usage_counts = meta, counts
            return []
        return [self._usage_event(self._last_turn, counts, t_ns, raw)]

    def _usage_event(
        self, turn: str, counts: dict[str, int], t_ns: int, raw: dict[str, Any] | None
    ) -> Usage:
        return Usage(
            t_ns=t_ns, raw=raw, provider=self.name, response_id=turn, model=self.model, **counts
        )

    def _model_content(
        self, chunks: tuple[tuple[bytes, int], ...], t_ns: int, raw: dict[str, Any]
    ) -> list[Event]:
        out = self._ensure_turn(t_ns, raw)
        turn = self._turn
        assert turn is not None
        for pcm, rate in chunks:
            self._received_samples[turn] = self._received_samples.get(turn, 0) + len(pcm) // 2
            self._received_rate[turn] = rate
            out.append(
                AgentAudio(
                    t_ns=t_ns, raw=raw, response_id=turn, item_id=turn, pcm=pcm, sample_rate=rate
                )
            )
        return out

    def _output_transcript(self, text: str, t_ns: int, raw: dict[str, Any]) -> list[Event]:
        out: list[Event] = []
        if self._turn is None and self._last_turn is None:
            out += self._start_turn(t_ns, raw)
        # With no open turn this is a late piece of the last turn (transcriptions are not
        # ordered with the model turn, docs/protocols.md#gemini-ordering-and-interruptions):
        # a delta of that turn.
        turn = self._turn or self._last_turn
        assert turn is not None
        if not text:
            return out
        if self._turn is not None:
            self._turn_text.append(text)
        out.append(
            AgentTranscript(
                t_ns=t_ns, raw=raw, response_id=turn, item_id=turn, text=text, final=False
            )
        )
        return out

    def _interrupted(self, t_ns: int, raw: dict[str, Any]) -> list[Event]:
        out: list[Event] = [
            AgentInterrupted(t_ns=t_ns, raw=raw, response_id=self._turn or self._last_turn or "")
        ]
        if self._turn is not None:
            self._turn_interrupted = True
        if self._user_answered:
            out += self._close_user(t_ns, raw)
        return out

    def _tool_calls(
        self, calls: tuple[wire.FunctionCall, ...], t_ns: int, raw: dict[str, Any]
    ) -> list[Event]:
        out = self._ensure_turn(t_ns, raw)
        turn = self._turn or ""
        for call in calls:
            call_id = call.call_id
            if not call_id:
                self._call_seq += 1
                call_id = f"gcall-{self._call_seq}"
                self._made_up_call_ids.add(call_id)
            out.append(
                ToolCallRequested(
                    t_ns=t_ns,
                    raw=raw,
                    call_id=call_id,
                    name=call.name,
                    arguments=call.arguments,
                    response_id=turn,
                )
            )
        return out
