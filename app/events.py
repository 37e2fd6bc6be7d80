"""The event model: frozen, slotted dataclasses that every part of voiceprobe consumes.

Providers turn wire messages into these events, the bridge adds its own (local VAD,
playout, barge-in, tools, turns), and the UI, CLI, store and reports all read the same
stream. Every event carries ``t_ns``, a stamp from the one monotonic clock
(:mod:`app.clock`), and optionally ``raw``: the provider message it came from, with audio
payloads replaced by their size so that logs stay small.

:data:`Event` is the closed union of the core's event classes (a new class is added to it,
or :func:`event_from_dict` cannot read it back); enum-like fields are ``Literal`` types.
:func:`event_to_dict` and :func:`event_from_dict` are the two directions of the stored
form (``events.jsonl``). :class:`EventBase` is the common base, which the SIP adapter's
events (``sip/events.py``) also extend.

One module on purpose (over 500 lines): the union, its classes and both directions of
the stored form must change together, and a reader finds every event in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, Union, cast, get_args

from app.metrics.records import TurnRecord

Direction = Literal["in", "out"]
#: :attr:`ConnectionState.state`.
ConnState = Literal["connecting", "connected", "reconnecting", "closed", "failed"]
#: :attr:`ResponseFinished.status` (OpenAI's ``response.done`` statuses; other providers
#: map onto them).
ResponseStatus = Literal["completed", "cancelled", "failed", "incomplete"]
#: :attr:`Notice.level`.
NoticeLevel = Literal["info", "warning", "error"]


def response_status(text: str) -> ResponseStatus:
    """A provider's response status as a :data:`ResponseStatus`: one of the four as it
    is, anything else (a status this version does not know) as ``incomplete``."""
    return cast(ResponseStatus, text) if text in get_args(ResponseStatus) else "incomplete"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventBase:
    """Base of every event class (the core's, listed in :data:`Event`, and the SIP
    adapter's). Annotate with :data:`Event`, the closed union, wherever only core events
    can arrive; ``EventBase`` is for sinks that also take the SIP adapter's events.

    Attributes:
        t_ns: monotonic stamp (ns). For audio-derived events, the clock time of the sample.
        raw: the provider wire message this event was made from (audio elided), if any.
    """

    t_ns: int
    raw: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        """The event's name as stored in ``events.jsonl`` (the class name)."""
        return type(self).__name__


# --- connection and session -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionState(EventBase):
    """The provider connection changed state.

    ``state`` is one of ``connecting``, ``connected``, ``reconnecting``, ``closed``,
    ``failed``. ``detail`` is a human-readable reason (never a secret). ``close_code``:
    on a final ``closed``/``failed`` state, the WebSocket close code that ended the
    connection (the server's, or the one the client failed it with: 1009 for a message
    over the size limit, 1011 for a missed pong); ``None`` when the client closed it,
    the socket dropped without a close frame, or the dial failed.
    """

    provider: str
    state: ConnState
    detail: str = ""
    close_code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSample(EventBase):
    """One measurement of the network path to the provider (``docs/timing.md``).

    ``source``: ``connect`` (TCP + TLS + WebSocket upgrade, the whole dial, once per
    connection), ``tcp`` (the kernel's smoothed round-trip time of the socket, sampled
    during the call where the platform reports it) or ``ping`` (a WebSocket ping → pong
    round trip, for providers that answer pings promptly). ``ms`` is the figure.
    """

    provider: str
    source: Literal["connect", "tcp", "ping"]
    ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfigured(EventBase):
    """The provider acknowledged the session configuration (``session.updated`` /
    ``setupComplete``).
    """

    provider: str
    session_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCreated(EventBase):
    """The provider opened a session but has not confirmed our configuration yet
    (``session.created``). Caller audio waits for :class:`SessionConfigured`.
    """

    provider: str
    session_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientMessageSent(EventBase):
    """A non-audio message was sent to the provider (audio appends are not logged one by one)."""

    type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage(EventBase):
    """A provider message of a type this version does not know; kept raw, never fatal."""

    type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderErrorEvent(EventBase):
    """The provider reported an error, or a message could not be parsed.

    ``fatal`` means the session cannot go on as it is (e.g. ``session_expired``).
    """

    code: str
    message: str
    fatal: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnected(EventBase):
    """The call goes on in a new provider session after a drop, an expiry or a rollover.

    Attributes:
        reason: why the old session ended (``connection lost``, ``session_expired``,
            ``rollover``, ``goAway``…).
        dropped_ns: when the old session was lost (the gap is ``dropped_ns`` → ``t_ns``).
        attempts: connection attempts it took.
        session_index: 1 for the first session of the call, 2 for the next…
        replayed_items: conversation items replayed into the new session.
        replayed_turn: the caller's unanswered utterance was sent again.
        resumed: the provider restored the session itself (Gemini resumption handle).
    """

    provider: str
    reason: str
    dropped_ns: int
    attempts: int
    session_index: int
    replayed_items: int = 0
    replayed_turn: bool = False
    resumed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAway(EventBase):
    """Gemini: the server will close this connection in ``time_left_ms``."""

    time_left_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumptionUpdate(EventBase):
    """Gemini: a new session resumption handle."""

    handle: str
    resumable: bool


# --- caller side (user) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalSpeechStarted(EventBase):
    """The local VAD found caller speech starting at ``sample`` (caller stream, 16 kHz)."""

    sample: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalSpeechStopped(EventBase):
    """The local VAD found caller speech ending at ``sample`` (caller stream, 16 kHz)."""

    sample: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSpeechStarted(EventBase):
    """The server's VAD found speech (OpenAI ``input_audio_buffer.speech_started``)."""

    item_id: str = ""
    audio_start_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSpeechStopped(EventBase):
    """The server's VAD found the end of speech (OpenAI ``speech_stopped``)."""

    item_id: str = ""
    audio_end_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InputCommitted(EventBase):
    """The server committed the input audio buffer as a user item."""

    item_id: str
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserTranscript(EventBase):
    """Caller transcript from the provider: a delta (``final=False``) or the final text."""

    item_id: str
    text: str
    final: bool


# --- agent side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseStarted(EventBase):
    """The provider started a response (OpenAI ``response.created``)."""

    response_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentAudio(EventBase):
    """A chunk of agent audio: PCM16 mono little-endian at ``sample_rate``."""

    response_id: str
    item_id: str
    pcm: bytes = field(repr=False)
    sample_rate: int

    @property
    def samples(self) -> int:
        """Number of samples in the chunk."""
        return len(self.pcm) // 2


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentTranscript(EventBase):
    """Agent transcript: a delta (``final=False``) or the final text of an item."""

    response_id: str
    item_id: str
    text: str
    final: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallRequested(EventBase):
    """The agent asked for a tool call; ``arguments`` is the JSON text the model produced."""

    call_id: str
    name: str
    arguments: str
    response_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallCancelled(EventBase):
    """Gemini: the server cancelled tool calls (``toolCallCancellation``)."""

    call_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseFinished(EventBase):
    """A response ended. ``status``: completed/cancelled/failed/incomplete."""

    response_id: str
    status: ResponseStatus = "completed"
    reason: str = ""
    usage: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage(EventBase):
    """Tokens the provider billed for one response, in vendor-neutral terms (``docs/cost.md``).

    Emitted just before the :class:`ResponseFinished` of its response (OpenAI
    ``response.done`` ``usage``; Gemini ``usageMetadata`` of the model turn). A later
    ``Usage`` with the same ``response_id`` is a newer snapshot of the same figures and
    replaces the earlier one; it is never added to it.

    ``*_input`` counts include the cached part (``cached_*`` is a subset of them, as both
    vendors report it); ``other`` is every modality that is neither text nor audio
    (image, video, document, or a count the provider did not break down).

    Attributes:
        provider: ``openai`` / ``gemini``.
        response_id: the response (Gemini: the made-up model-turn id) it belongs to.
        model: the model the session asked for (the price-table key).
    """

    provider: str
    response_id: str
    model: str
    text_input: int = 0
    audio_input: int = 0
    other_input: int = 0
    cached_text_input: int = 0
    cached_audio_input: int = 0
    cached_other_input: int = 0
    text_output: int = 0
    audio_output: int = 0
    other_output: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentInterrupted(EventBase):
    """The server says the agent's output was interrupted (Gemini ``interrupted``)."""

    response_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemTruncated(EventBase):
    """The server acknowledged a truncate (OpenAI ``conversation.item.truncated``)."""

    item_id: str
    audio_end_ms: int


# --- bridge -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(EventBase):
    """A call began; the session folder exists."""

    session_id: str
    provider: str
    model: str
    session_dir: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(EventBase):
    """A call ended. ``reason``: completed/hangup/failed/…"""

    session_id: str
    reason: str
    ok: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFailed(EventBase):
    """Why a call failed or could not start, and what the user can do about it.

    Emitted once per call, for the first failure (later errors are its consequences), by
    the bridge (``app/bridge/call.py``) or, when no session could be made (a missing key, a
    bad profile, no audio device), by the desktop controller. Stored in ``events.jsonl``.

    Attributes:
        code: the error code (``auth_failed``, ``connect_failed``, ``missing_key``,
            ``audio_device``…; see :data:`app.failures.FIXES`).
        message: the one-line reason (server text included, scrubbed of secrets).
        fix: the step a user can take (:func:`app.failures.fix_for`).
    """

    code: str
    message: str
    fix: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackStarted(EventBase):
    """The first sample of an agent item reached the sink (``t_ns`` = its play time)."""

    item_id: str
    response_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackStopped(EventBase):
    """Playout of an agent item ended (drained or cut). ``t_ns`` = last sample play time."""

    item_id: str
    played_samples: int
    sample_rate: int
    interrupted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BargeIn(EventBase):
    """The caller spoke over the agent: playout cut and (OpenAI) a truncate sent."""

    item_id: str
    played_ms: int
    received_ms: int
    truncate_ms: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallFinished(EventBase):
    """A tool call finished and its result was sent (``t_ns`` = result sent)."""

    call_id: str
    name: str
    arguments: str
    status: str
    output: str
    ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCompleted(EventBase):
    """A turn's timeline is final (or changed after it was: a late transcript or usage
    sends the turn again with the same ``index``). ``turn`` is the frozen record."""

    turn: TurnRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(EventBase):
    """A message for the tester (``level``: info/warning/error)."""

    level: NoticeLevel
    message: str


#: The closed union of the core's events: what the bridge emits and ``events.jsonl`` holds.
#: A new event class is added here too (and becomes readable by :func:`event_from_dict`).
Event: TypeAlias = Union[  # noqa: UP007 (a runtime alias: isinstance and get_args use it)
    ConnectionState,
    NetworkSample,
    SessionConfigured,
    SessionCreated,
    ClientMessageSent,
    UnknownMessage,
    ProviderErrorEvent,
    Reconnected,
    GoAway,
    ResumptionUpdate,
    LocalSpeechStarted,
    LocalSpeechStopped,
    ServerSpeechStarted,
    ServerSpeechStopped,
    InputCommitted,
    UserTranscript,
    ResponseStarted,
    AgentAudio,
    AgentTranscript,
    ToolCallRequested,
    ToolCallCancelled,
    ResponseFinished,
    Usage,
    AgentInterrupted,
    ItemTruncated,
    CallStarted,
    CallEnded,
    CallFailed,
    PlaybackStarted,
    PlaybackStopped,
    BargeIn,
    ToolCallFinished,
    TurnCompleted,
    Notice,
]

#: Event classes by their stored ``kind``.
KINDS: dict[str, type[EventBase]] = {cls.__name__: cls for cls in get_args(Event)}


def event_to_dict(ev: EventBase) -> dict[str, Any]:
    """Turn an event into JSON-ready fields: ``{"t_ns", "kind", ..., "raw"}``.

    Audio payloads are replaced by their byte count (``pcm_bytes``); the audio itself
    lives in the session's WAV. A turn record becomes its JSON form
    (:meth:`~app.metrics.records.TurnRecord.to_dict`).
    """
    out: dict[str, Any] = {"t_ns": ev.t_ns, "kind": ev.kind}
    for f in dataclasses.fields(ev):
        if f.name in ("t_ns", "raw"):
            continue
        value = getattr(ev, f.name)
        if isinstance(value, bytes):
            out[f"{f.name}_bytes"] = len(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif isinstance(value, TurnRecord):
            out[f.name] = value.to_dict()
        else:
            out[f.name] = value
    if ev.raw is not None:
        out["raw"] = ev.raw
    return out


def event_from_dict(
    d: dict[str, Any], kinds: dict[str, type[EventBase]] | None = None
) -> EventBase | None:
    """Rebuild an event from its stored dict (the inverse of :func:`event_to_dict`).

    Audio comes back as silence of the stored length; lists become tuples where the field
    is a tuple; a turn record is read with
    :meth:`~app.metrics.records.TurnRecord.from_dict`. Unknown fields are ignored (a newer
    writer must not break an older reader).

    Args:
        d: one ``events.jsonl`` line, parsed.
        kinds: the classes to accept by ``kind`` (default :data:`KINDS`, the core's; the
            SIP adapter adds its own).

    Returns:
        The event, or ``None`` when the kind is unknown, ``t_ns`` is not an integer or a
        required field is missing.
    """
    cls = (KINDS if kinds is None else kinds).get(str(d.get("kind", "")))
    if cls is None or not isinstance(d.get("t_ns"), int) or isinstance(d.get("t_ns"), bool):
        return None
    kwargs: dict[str, Any] = {"t_ns": d["t_ns"]}
    if isinstance(d.get("raw"), dict):
        kwargs["raw"] = d["raw"]
    for f in dataclasses.fields(cls):
        if f.name in ("t_ns", "raw"):
            continue
        if f.name in d:
            value = d[f.name]
            if isinstance(value, list) and f.name.endswith("ids"):
                value = tuple(value)
            elif cls is TurnCompleted and f.name == "turn":
                if not isinstance(value, dict):
                    return None
                value = TurnRecord.from_dict(value)
            kwargs[f.name] = value
        elif f"{f.name}_bytes" in d and isinstance(d[f"{f.name}_bytes"], int):
            kwargs[f.name] = bytes(max(0, d[f"{f.name}_bytes"]))
    try:
        return cls(**kwargs)
    except TypeError:
        return None
