"""The per-turn latency timeline: a pure state machine fed with bridge events.

Each turn yields named spans (docs/architecture.md#clock-and-the-turn-timeline); every span names
the two events it runs between, so a figure is never ambiguous:

=====================  ==========================================  ===========================
span                   from                                        to
=====================  ==========================================  ===========================
user_speech            LocalSpeechStarted                          LocalSpeechStopped
end_of_turn_delay      LocalSpeechStopped                          ServerSpeechStopped, or the
                                                                   first sign of a response
                                                                   where the provider has no
                                                                   speech_stopped (Gemini)
response_start         ServerSpeechStopped                         ResponseStarted
ttfb                   ResponseStarted (of the response that       its first AgentAudio
                       brought the turn's first audio)
tool:<name>            ToolCallRequested                           ToolCallFinished (sent)
tool_followup          ToolCallFinished (last result sent)         first AgentAudio after it
playback_latency       first AgentAudio of the turn                PlaybackStarted
agent_speech           PlaybackStarted                             PlaybackStopped / BargeIn
voice_to_voice         LocalSpeechStopped                          PlaybackStarted
barge_in_reaction      LocalSpeechStarted (of the caller speaking  AgentInterrupted (Twilio
                       over the agent)                             clear, Gemini interrupted)
=====================  ==========================================  ===========================

Turns open when the caller starts speaking after the agent has begun answering (or when
the agent speaks first), so a barge-in closes the interrupted turn and opens the next.
Transcripts that arrive late are attached by item id / response id, not by arrival order.
Token usage (:class:`~app.events.Usage`) is attached by response id the same way; a turn's
``usage`` record is the sum over its responses (``docs/cost.md``).

One module on purpose (over 500 lines): one state machine, whose every event handler
reads and closes the same open turn.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.events import (
    AgentAudio,
    AgentInterrupted,
    AgentTranscript,
    BargeIn,
    EventBase,
    InputCommitted,
    LocalSpeechStarted,
    LocalSpeechStopped,
    PlaybackStarted,
    PlaybackStopped,
    Reconnected,
    ResponseFinished,
    ResponseStarted,
    ServerSpeechStarted,
    ServerSpeechStopped,
    ToolCallFinished,
    ToolCallRequested,
    TurnCompleted,
    Usage,
    UserTranscript,
)
from app.metrics.cost import usage_record
from app.metrics.percentile import percentile
from app.metrics.records import Span, ToolCallRecord, TurnRecord

SPAN_ORDER = (
    "user_speech",
    "end_of_turn_delay",
    "response_start",
    "ttfb",
    "tool_followup",
    "playback_latency",
    "agent_speech",
    "barge_in_reaction",
    "voice_to_voice",
)


@dataclass(slots=True)
class _Stamp:
    t_ns: int
    event: str


@dataclass(slots=True)
class _Response:
    response_id: str
    created: _Stamp
    first_audio: _Stamp | None = None
    finished: bool = False
    status: str = ""
    after_tool: bool = False


@dataclass(slots=True)
class _Tool:
    call_id: str
    name: str
    arguments: str
    requested: _Stamp
    sent: _Stamp | None = None
    status: str = "pending"
    ms: float | None = None
    output: str = ""


@dataclass(slots=True)
class Turn:
    """A turn under construction (mutable; read it through :meth:`record`)."""

    index: int
    local_start: _Stamp | None = None
    local_end: _Stamp | None = None
    server_start: _Stamp | None = None
    server_stop: _Stamp | None = None
    server_audio_start_ms: int | None = None
    server_audio_end_ms: int | None = None
    first_response_sign: _Stamp | None = None
    barge_in: tuple[_Stamp, _Stamp] | None = None
    responses: dict[str, _Response] = field(default_factory=dict)
    tools: dict[str, _Tool] = field(default_factory=dict)
    last_tool_sent: _Stamp | None = None
    first_played: _Stamp | None = None
    last_played: _Stamp | None = None
    cut: _Stamp | None = None
    interrupted: bool = False
    user_items: list[str] = field(default_factory=list)
    user_text: dict[str, str] = field(default_factory=dict)
    user_final: dict[str, bool] = field(default_factory=dict)
    agent_text: dict[str, str] = field(default_factory=dict)
    agent_final: dict[str, bool] = field(default_factory=dict)
    playing_items: set[str] = field(default_factory=set)
    gaps: list[tuple[_Stamp, _Stamp]] = field(default_factory=list)
    usage: dict[str, Usage] = field(default_factory=dict)
    completed: bool = False
    #: The record sent in this turn's TurnCompleted (to send a newer one at close).
    emitted: TurnRecord | None = None

    @property
    def agent_phase(self) -> bool:
        """True once the agent has started answering this turn."""
        return bool(self.responses) or self.first_response_sign is not None

    @property
    def settled(self) -> bool:
        """True when nothing more is expected for this turn's agent side."""
        return (
            all(r.finished for r in self.responses.values())
            and not self.playing_items
            and all(t.sent is not None for t in self.tools.values())
        )

    @property
    def played(self) -> bool:
        """True once the agent's answer has been heard to its end: settled, some agent
        audio played, and no tool result still waiting for its follow-up response."""
        if not self.settled or self.first_played is None:
            return False
        return self.last_tool_sent is None or any(r.after_tool for r in self.responses.values())

    def first_audio(self) -> tuple[_Response | None, _Stamp | None]:
        """The response that brought the turn's first audio, and that audio's stamp."""
        best: tuple[_Response | None, _Stamp | None] = (None, None)
        for resp in self.responses.values():
            if resp.first_audio and (best[1] is None or resp.first_audio.t_ns < best[1].t_ns):
                best = (resp, resp.first_audio)
        return best

    def spans(self) -> dict[str, Span]:
        """The turn's spans, by name, in :data:`SPAN_ORDER` (tools and gaps in between)."""
        out: dict[str, Span] = {}

        def put(name: str, a: _Stamp | None, b: _Stamp | None) -> None:
            if a is None or b is None:
                return
            out[name] = Span.between(a.t_ns, b.t_ns, a.event, b.event)

        put("user_speech", self.local_start, self.local_end)
        put("end_of_turn_delay", self.local_end, self.server_stop or self.first_response_sign)
        first = min(self.responses.values(), key=lambda r: r.created.t_ns, default=None)
        if self.server_stop is not None and first is not None:
            put("response_start", self.server_stop, first.created)
        # ttfb is measured on the response that brought the turn's first audio (after a
        # tool call with no spoken preamble, that is the follow-up response).
        resp, audio = self.first_audio()
        if resp is not None:
            if resp.created.event != "AgentAudio":  # no response event: nothing to time
                put("ttfb", resp.created, audio)
        for tool in self.tools.values():
            put(f"tool:{tool.name}", tool.requested, tool.sent)
        if self.last_tool_sent is not None:
            follow = [
                r.first_audio
                for r in self.responses.values()
                if r.after_tool and r.first_audio is not None
            ]
            if follow:
                put("tool_followup", self.last_tool_sent, min(follow, key=lambda s: s.t_ns))
        put("playback_latency", audio, self.first_played)
        put("agent_speech", self.first_played, self.cut or self.last_played)
        put("voice_to_voice", self.local_end, self.first_played)
        if self.barge_in is not None:
            put("barge_in_reaction", *self.barge_in)
        for i, (a, b) in enumerate(self.gaps):
            put("reconnect" if i == 0 else f"reconnect#{i + 1}", a, b)
        return out

    def record(self) -> TurnRecord:
        """The turn as it stands, as a frozen :class:`~app.metrics.records.TurnRecord`."""
        user = " ".join(self.user_text[i] for i in self.user_items if self.user_text.get(i))
        agent = " ".join(t for t in self.agent_text.values() if t)
        spans = self.spans()
        return TurnRecord(
            index=self.index,
            user_transcript=user.strip(),
            agent_transcript=agent.strip(),
            interrupted=self.interrupted,
            spans=spans,
            tool_calls=tuple(
                ToolCallRecord(
                    call_id=t.call_id, name=t.name, arguments=t.arguments, status=t.status,
                    ms=t.ms,
                )
                for t in self.tools.values()
            ),
            response_ids=tuple(self.responses),
            user_item_ids=tuple(self.user_items),
            server_audio_start_ms=self.server_audio_start_ms,
            server_audio_end_ms=self.server_audio_end_ms,
            usage=usage_record(self.usage.values()),
            events_used=tuple(
                sorted({e for s in spans.values() for e in (s.start_event, s.end_event)})
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready turn record (the ``turns`` entries of ``--json`` and ``turns.json``)."""
        return self.record().to_dict()


def _add_text(
    texts: dict[str, str], final: dict[str, bool], item_id: str, text: str, is_final: bool
) -> None:
    """Add a transcript piece of ``item_id``: deltas append until the final text, which
    replaces them; deltas arriving after the final one are dropped."""
    if is_final:
        texts[item_id] = text
        final[item_id] = True
    elif not final.get(item_id):
        texts[item_id] = texts.get(item_id, "") + text


class Timeline:
    """Builds turns from events. Synchronous and pure: feed events in arrival order.

    :meth:`feed` returns :class:`~app.events.TurnCompleted` events for turns that became
    final (the next turn began and the previous one settled), stamped with the stamp of the
    event that completed them.
    """

    def __init__(self) -> None:
        self.turns: list[Turn] = []
        self._by_user_item: dict[str, Turn] = {}
        self._by_response: dict[str, Turn] = {}
        self._by_call: dict[str, Turn] = {}
        self._by_play_item: dict[str, Turn] = {}

    @property
    def current(self) -> Turn | None:
        """The newest turn, if any."""
        return self.turns[-1] if self.turns else None

    def _open(self) -> Turn:
        turn = Turn(index=len(self.turns))
        self.turns.append(turn)
        return turn

    def _user_turn(self) -> Turn:
        """The turn a caller-speech event belongs to: the current one while it is still in
        its user phase, else a new one.
        """
        cur = self.current
        if cur is None or cur.agent_phase:
            return self._open()
        return cur

    def _turn_for_user_item(self, item_id: str) -> Turn:
        if item_id in self._by_user_item:
            return self._by_user_item[item_id]
        # An id not seen before (Gemini assigns its own): the oldest turn with caller
        # speech and no item yet, so a late transcript lands on the turn it belongs to.
        for turn in self.turns:
            if not turn.user_items and (turn.local_start or turn.server_start or turn.local_end):
                turn.user_items.append(item_id)
                self._by_user_item[item_id] = turn
                return turn
        turn = self.current or self._open()
        turn.user_items.append(item_id)
        self._by_user_item[item_id] = turn
        return turn

    def _agent_turn(self) -> Turn:
        cur = self.current
        return cur if cur is not None else self._open()

    def _response_turn(self, response_id: str) -> Turn:
        return self._by_response.get(response_id) or self._agent_turn()

    def feed(self, ev: EventBase) -> list[TurnCompleted]:
        """Apply one event (any kind; those the timeline does not use change nothing);
        return the turns it completed."""
        stamp = _Stamp(ev.t_ns, ev.kind)
        if isinstance(ev, LocalSpeechStarted):
            turn = self._user_turn()
            if turn.local_start is None:
                turn.local_start = stamp
            if turn.server_stop is None:
                turn.local_end = None  # speech resumed before the server ended the turn
        elif isinstance(ev, LocalSpeechStopped):
            spoke = self._latest_with_local_start()
            if spoke is not None and (spoke.local_end is None or not spoke.agent_phase):
                spoke.local_end = stamp
        elif isinstance(ev, ServerSpeechStarted):
            turn = self._user_turn()
            turn.server_start = turn.server_start or stamp
            turn.server_audio_start_ms = ev.audio_start_ms
            self._bind_user_item(turn, ev.item_id)
        elif isinstance(ev, ServerSpeechStopped):
            known = self._by_user_item.get(ev.item_id) if ev.item_id else None
            turn = known or self._latest_user_phase()
            if turn.server_stop is None:
                turn.server_stop = stamp
                turn.server_audio_end_ms = ev.audio_end_ms
            self._bind_user_item(turn, ev.item_id)
        elif isinstance(ev, InputCommitted):
            turn = self._by_user_item.get(ev.item_id) or self._latest_user_phase()
            self._bind_user_item(turn, ev.item_id)
        elif isinstance(ev, UserTranscript):
            turn = self._turn_for_user_item(ev.item_id)
            _add_text(turn.user_text, turn.user_final, ev.item_id, ev.text, ev.final)
        elif isinstance(ev, ResponseStarted):
            turn = self._agent_turn()
            if turn.first_response_sign is None:
                turn.first_response_sign = stamp
            after_tool = turn.last_tool_sent is not None and all(
                r.finished for r in turn.responses.values()
            )
            turn.responses.setdefault(
                ev.response_id, _Response(ev.response_id, stamp, after_tool=after_tool)
            )
            self._by_response[ev.response_id] = turn
        elif isinstance(ev, AgentAudio):
            turn = self._response_turn(ev.response_id)
            resp = turn.responses.get(ev.response_id)
            if resp is None:  # audio with no response.created seen: count it from here
                resp = _Response(ev.response_id, stamp)
                turn.responses[ev.response_id] = resp
                self._by_response[ev.response_id] = turn
                if turn.first_response_sign is None:  # a provider with no response events
                    turn.first_response_sign = stamp
            if resp.first_audio is None:
                resp.first_audio = stamp
            self._by_play_item.setdefault(ev.item_id, turn)
        elif isinstance(ev, AgentTranscript):
            turn = self._response_turn(ev.response_id)
            _add_text(turn.agent_text, turn.agent_final, ev.item_id, ev.text, ev.final)
        elif isinstance(ev, ToolCallRequested):
            turn = self._response_turn(ev.response_id) if ev.response_id else self._agent_turn()
            turn.tools.setdefault(ev.call_id, _Tool(ev.call_id, ev.name, ev.arguments, stamp))
            self._by_call[ev.call_id] = turn
        elif isinstance(ev, ToolCallFinished):
            turn = self._by_call.get(ev.call_id) or self._agent_turn()
            tool = turn.tools.setdefault(
                ev.call_id, _Tool(ev.call_id, ev.name, ev.arguments, stamp)
            )
            tool.sent = stamp
            tool.status = ev.status
            tool.ms = round((ev.t_ns - tool.requested.t_ns) / 1e6, 3)
            tool.output = ev.output
            turn.last_tool_sent = stamp
        elif isinstance(ev, ResponseFinished):
            turn = self._response_turn(ev.response_id)
            resp = turn.responses.get(ev.response_id)
            if resp is not None:
                resp.finished = True
                resp.status = ev.status
            if ev.status == "cancelled":
                turn.interrupted = True
        elif isinstance(ev, PlaybackStarted):
            turn = self._by_play_item.get(ev.item_id) or self._agent_turn()
            if turn.first_played is None:
                turn.first_played = stamp
            turn.playing_items.add(ev.item_id)
        elif isinstance(ev, PlaybackStopped):
            turn = self._by_play_item.get(ev.item_id) or self._agent_turn()
            turn.playing_items.discard(ev.item_id)
            if ev.interrupted:
                turn.interrupted = True
                turn.cut = turn.cut or stamp
            else:
                turn.last_played = stamp
        elif isinstance(ev, BargeIn):
            turn = self._by_play_item.get(ev.item_id) or self._agent_turn()
            turn.interrupted = True
            turn.cut = turn.cut or stamp
        elif isinstance(ev, Usage):
            # By response id, so late usage lands on its own turn; a newer snapshot of a
            # response replaces the older one. Kept across a replayed turn: what the old
            # session billed was billed.
            turn = self._response_turn(ev.response_id)
            turn.usage[ev.response_id] = ev
        elif isinstance(ev, AgentInterrupted):
            turn = self._response_turn(ev.response_id) if ev.response_id else self._agent_turn()
            turn.interrupted = True
            speaker = self._latest_with_local_start()
            if (
                turn.barge_in is None
                and speaker is not None
                and speaker.index > turn.index
                and speaker.local_start is not None
                and speaker.local_start.t_ns <= ev.t_ns
            ):
                # The agent stopped itself after the caller spoke over it (Twilio clear,
                # Gemini interrupted): its reaction time.
                turn.barge_in = (speaker.local_start, stamp)
        elif isinstance(ev, Reconnected):
            turn = self._agent_turn()
            turn.gaps.append((_Stamp(ev.dropped_ns, "ConnectionLost"), stamp))
            if ev.replayed_turn:
                self._restart(turn)
        return self._complete(ev.t_ns)

    def _restart(self, turn: Turn) -> None:
        """The caller's utterance was sent again to a new session: forget what the old
        session said about it, keep the caller's own speech stamps."""
        turn.server_start = turn.server_stop = turn.first_response_sign = None
        turn.server_audio_start_ms = turn.server_audio_end_ms = None
        for rid in turn.responses:
            self._by_response.pop(rid, None)
        turn.responses.clear()
        for item in turn.user_items:
            self._by_user_item.pop(item, None)
        turn.user_items.clear()

    def _bind_user_item(self, turn: Turn, item_id: str) -> None:
        if item_id and item_id not in self._by_user_item:
            self._by_user_item[item_id] = turn
            turn.user_items.append(item_id)

    def _latest_with_local_start(self) -> Turn | None:
        for turn in reversed(self.turns):
            if turn.local_start is not None:
                return turn
        return None

    def _latest_user_phase(self) -> Turn:
        cur = self.current
        if cur is None:
            return self._open()
        if cur.agent_phase and cur.server_stop is not None:
            return self._open()
        return cur

    def _complete(self, t_ns: int) -> list[TurnCompleted]:
        """Complete the turns that became final: an earlier turn once it settled, and the
        newest one as soon as its agent audio has played (:attr:`Turn.played`), so the
        last turn of a call shows before the hang-up."""
        done: list[TurnCompleted] = []
        last = len(self.turns) - 1
        for i, turn in enumerate(self.turns):
            if not turn.completed and (turn.played if i == last else turn.settled):
                done.append(self._completed(turn, t_ns))
        return done

    @staticmethod
    def _completed(turn: Turn, t_ns: int) -> TurnCompleted:
        turn.completed = True
        turn.emitted = turn.record()
        return TurnCompleted(t_ns=t_ns, turn=turn.emitted)

    def close(self, t_ns: int) -> list[TurnCompleted]:
        """End of call: complete every remaining turn, and send again a turn whose record
        changed after it completed (a late transcript or usage)."""
        done: list[TurnCompleted] = []
        for turn in self.turns:
            if not turn.completed or turn.record() != turn.emitted:
                done.append(self._completed(turn, t_ns))
        return done

    def records(self) -> list[TurnRecord]:
        """All turns as frozen records, in order."""
        return [t.record() for t in self.turns]

    def to_list(self) -> list[dict[str, Any]]:
        """All turns as JSON-ready records, in order (for the store and CLI edges)."""
        return [r.to_dict() for r in self.records()]


def summarize(
    turns: Sequence[TurnRecord | Mapping[str, Any]], span: str = "voice_to_voice"
) -> dict[str, Any]:
    """Aggregate one span over turns (records, or their JSON form as the store and
    ``--json`` hold them): count, p50, p95, mean (ms)."""
    recs = [t if isinstance(t, TurnRecord) else TurnRecord.from_dict(t) for t in turns]
    values = [ms for r in recs if (ms := r.span_ms(span)) is not None]
    return {
        "span": span,
        "count": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "mean_ms": statistics.fmean(values) if values else None,
    }
