"""Sans-I/O Twilio Media Streams dialect, used in both directions.

Wire shapes follow Twilio's published message reference ("Media Streams - WebSocket
Messages", twilio.com/docs/voice/media-streams/websocket-messages; docs/twilio.md):

* Twilio → server: ``connected {event, protocol: "Call", version: "1.0.0"}``; then, each
  with a string ``sequenceNumber`` counting from ``"1"`` and ``streamSid``: ``start
  {start: {streamSid, accountSid, callSid, tracks, customParameters, mediaFormat:
  {encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1}}}``, ``media {media: {track,
  chunk, timestamp, payload}}`` (chunk and timestamp are strings; timestamp is ms since the
  stream started; payload is base64 μ-law, 160 bytes per 20 ms), ``dtmf {dtmf: {track:
  "inbound_track", digit}}``, ``mark {mark: {name}}`` (the server's mark echoed once the
  audio queued before it has played, or when a ``clear`` dropped it), ``stop {stop:
  {accountSid, callSid}}``.
* server → Twilio: ``media {streamSid, media: {payload}}``, ``mark {streamSid, mark:
  {name}}``, ``clear {streamSid}``.

Two roles share the parsing and building here:

* :class:`TwilioCallerProtocol` — voiceprobe *plays Twilio* towards a team's agent (the
  ``twilio-ws`` provider kind): a :class:`~app.providers.base.ProviderProtocol` whose
  "provider" is the agent's Media Streams server.
* :class:`TwilioStreamProtocol` — voiceprobe *is the Media Streams server* (``serve
  twilio``): it reads what Twilio sends and builds what goes back.

Nothing here does I/O or raises on input: a malformed message becomes an error event or a
tolerated oddity, named in one line.

One module on purpose (over 500 lines): both roles share every parser and builder of the
dialect, so a field is spelled in exactly one place.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio import g711
from app.audio.pcm import bytes_to_int16, int16_to_bytes
from app.events import (
    AgentAudio,
    AgentInterrupted,
    Event,
    Notice,
    NoticeLevel,
    ProviderErrorEvent,
    ResponseFinished,
    UnknownMessage,
)
from app.providers.base import Outgoing, ProviderProtocol

#: Twilio's only media format: μ-law, 8 kHz, mono.
RATE = 8000
ENCODING = "audio/x-mulaw"
#: μ-law bytes (= samples) in one 20 ms media message.
FRAME_BYTES = 160
FRAME_MS = 20
#: Largest message accepted (characters or bytes); a media message is ~300 characters.
MAX_MESSAGE_SIZE = 1024 * 1024
#: A quiet spell of agent media this long ends the agent's response (Twilio has no
#: response boundaries; an agent streaming in real time pauses for less between words).
RESPONSE_GAP_MS = 500
#: Slack when comparing played audio with a mark's position (the port's resampler holds a
#: few ms back; 2.5 ms for 8 ↔ 16 kHz).
MARK_SLACK_MS = 10

SENT_TYPES = ("connected", "start", "media", "dtmf", "mark", "stop")
AGENT_TYPES = ("media", "mark", "clear")
DTMF_DIGITS = frozenset("0123456789*#ABCD")


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits (``MZ…``, ``CA…``, ``AC…``)."""
    return prefix + secrets.token_hex(16)


def _b64_size(text: str) -> int:
    n = len(text)
    return n * 3 // 4 - (2 if text.endswith("==") else 1 if text.endswith("=") else 0)


def elide(msg: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``msg`` for the log: a media payload replaced by ``"<N bytes>"``."""
    out = dict(msg)
    media = out.get("media")
    if isinstance(media, dict) and isinstance(media.get("payload"), str):
        out["media"] = {**media, "payload": f"<{_b64_size(media['payload'])} bytes>"}
    return out


@dataclass(frozen=True, slots=True)
class Parsed:
    """One message read off the wire: its ``event`` and body, or why it is unusable."""

    event: str = ""
    msg: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def parse(text: str | bytes) -> Parsed:
    """Read one WebSocket message; never raises. Twilio sends text frames of JSON objects
    with an ``event`` string; anything else gives :attr:`Parsed.error`."""
    if isinstance(text, bytes | bytearray | memoryview):
        return Parsed(error=f"binary frame of {len(text)} bytes (Media Streams sends text)")
    if len(text) > MAX_MESSAGE_SIZE:
        return Parsed(error=f"message of {len(text)} characters is too large")
    try:
        msg = json.loads(text)
    except ValueError as exc:
        return Parsed(error=f"not JSON ({type(exc).__name__})")
    except RecursionError:
        return Parsed(error="JSON nested too deeply")
    if not isinstance(msg, dict):
        return Parsed(error=f"not a JSON object ({type(msg).__name__})")
    event = msg.get("event")
    if not isinstance(event, str) or not event:
        return Parsed(msg=msg, error="missing or invalid 'event'")
    return Parsed(event=event, msg=msg)


def decode_payload(media: Any) -> tuple[bytes | None, str]:
    """The μ-law bytes of a ``media`` object, or ``(None, reason)``."""
    if not isinstance(media, dict):
        return None, "'media' is not an object"
    payload = media.get("payload")
    if not isinstance(payload, str):
        return None, "'media.payload' is not a string"
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None, "'media.payload' is not valid base64"
    if not data:
        return None, "'media.payload' is empty"
    return data, ""


def encode_payload(pcm: NDArray[np.int16]) -> str:
    """Base64 μ-law of PCM16 samples at 8 kHz."""
    return base64.b64encode(g711.ulaw_encode(pcm)).decode("ascii")


def check_media_format(start: dict[str, Any]) -> str:
    """Why a ``start.mediaFormat`` is not μ-law 8 kHz mono (``""`` when it is)."""
    fmt = start.get("mediaFormat")
    if not isinstance(fmt, dict):
        return "start.mediaFormat is missing"
    got = (fmt.get("encoding"), fmt.get("sampleRate"), fmt.get("channels"))
    if got != (ENCODING, RATE, 1):
        enc, rate, ch = (json.dumps(v)[:40] for v in got)
        return (
            f"unsupported mediaFormat (encoding {enc}, sampleRate {rate}, channels {ch}); "
            f"Media Streams sends {ENCODING} at {RATE} Hz, mono"
        )
    return ""


def _text(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _str(obj: Any, key: str) -> str:
    v = obj.get(key) if isinstance(obj, dict) else None
    return v if isinstance(v, str) else ""


# --- voiceprobe plays Twilio ------------------------------------------------------------


@dataclass(slots=True)
class _Mark:
    name: str
    item_id: str
    position: int  # agent samples (8 kHz) of item_id received before the mark
    t_ns: int


class TwilioCallerProtocol(ProviderProtocol):
    """voiceprobe as Twilio: the caller's stream towards an agent's Media Streams server.

    Synchronous and pure; one thread. Caller audio (PCM16 at 8 kHz) goes out as ``media``
    messages of exactly 160 μ-law bytes (a remainder waits for the next call). Agent
    ``media`` becomes :class:`~app.events.AgentAudio`; a burst of it is one response (its
    id doubles as the playout item id), which :meth:`tick` closes after
    :data:`RESPONSE_GAP_MS` of quiet. A ``mark`` is answered once the audio received
    before it has played (:meth:`played`), or at once when a ``clear`` drops it. A
    ``clear`` while agent audio is queued or playing is the agent's barge-in
    (:class:`~app.events.AgentInterrupted`).

    Args:
        custom_parameters: ``start.customParameters`` (``--param k=v``).
        stream_sid, call_sid, account_sid: the SIDs (generated when omitted).
    """

    name = "twilio-ws"
    input_rate = RATE
    output_rate = RATE
    has_server_vad = False
    caller_cuts_playout = False
    reports_playout = True
    resumable = False

    def __init__(
        self,
        custom_parameters: dict[str, str] | None = None,
        stream_sid: str | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
    ) -> None:
        self.custom_parameters = dict(custom_parameters or {})
        self.stream_sid = stream_sid or new_sid("MZ")
        self.call_sid = call_sid or new_sid("CA")
        self.account_sid = account_sid or new_sid("AC")
        self._seq = itertools.count(1)
        self._chunk = 0
        self._pending = bytearray()  # μ-law bytes short of a whole media message
        self._stopped = False
        # Agent side.
        self._items = itertools.count(1)
        self._item: str | None = None  # the response being received
        self._last_media_ns = 0
        self._received: dict[str, int] = {}
        self._played: dict[str, int] = {}
        self._marks: list[_Mark] = []
        self._outbox: list[Outgoing] = []
        self._odd: set[str] = set()

    # --- outgoing ----------------------------------------------------------------------

    def _out(self, body: dict[str, Any], log: bool = True) -> Outgoing:
        return Outgoing(text=_text(body), type=str(body["event"]), log=elide(body) if log else None)

    def _numbered(self, event: str, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"event": event, "sequenceNumber": str(next(self._seq))}
        body.update(fields)
        body["streamSid"] = self.stream_sid
        return body

    def open(self) -> list[Outgoing]:
        """``connected``, then ``start`` with the stream's metadata and media format."""
        start = {
            "streamSid": self.stream_sid,
            "accountSid": self.account_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "customParameters": dict(self.custom_parameters),
            "mediaFormat": {"encoding": ENCODING, "sampleRate": RATE, "channels": 1},
        }
        connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
        return [self._out(connected), self._out(self._numbered("start", start=start))]

    def audio(self, pcm: bytes) -> list[Outgoing]:
        """``media`` messages (160 μ-law bytes each) for PCM16 at 8 kHz; not logged."""
        if self._stopped or not pcm:
            return []
        self._pending += g711.ulaw_encode(bytes_to_int16(pcm[: len(pcm) - len(pcm) % 2]))
        out: list[Outgoing] = []
        while len(self._pending) >= FRAME_BYTES:
            chunk = bytes(self._pending[:FRAME_BYTES])
            del self._pending[:FRAME_BYTES]
            media = {
                "track": "inbound",
                "chunk": str(self._chunk + 1),
                "timestamp": str(self._chunk * FRAME_MS),
                "payload": base64.b64encode(chunk).decode("ascii"),
            }
            self._chunk += 1
            out.append(self._out(self._numbered("media", media=media), log=False))
        return out

    def dtmf(self, digit: str) -> list[Outgoing]:
        """A ``dtmf`` message for one key (``0-9 * # A-D``); nothing for anything else."""
        if self._stopped or digit not in DTMF_DIGITS:
            return []
        return [self._out(self._numbered("dtmf", dtmf={"track": "inbound_track", "digit": digit}))]

    def stop(self) -> list[Outgoing]:
        """The ``stop`` message (once); no ``media`` is sent after it."""
        if self._stopped:
            return []
        self._stopped = True
        body = self._numbered(
            "stop", stop={"accountSid": self.account_sid, "callSid": self.call_sid}
        )
        return [self._out(body)]

    def tool_result(self, call_id: str, name: str, output: str) -> list[Outgoing]:
        """Media Streams carries no tool calls: nothing to send."""
        return []

    def truncate(self, item_id: str, audio_end_ms: int) -> list[Outgoing]:
        """Twilio plays what it is sent until the agent says ``clear``: nothing to send."""
        return []

    def received_audio_ms(self, item_id: str) -> int:
        """Milliseconds of agent audio received for ``item_id``."""
        return self._received.get(item_id, 0) * 1000 // RATE

    def played(self, item_id: str, played_ms: int) -> list[Outgoing]:
        """The caller's sink has played ``played_ms`` of ``item_id``: the ``mark`` echoes
        now due (every mark whose audio has played), plus anything queued by
        :meth:`receive`."""
        self._played[item_id] = max(self._played.get(item_id, 0), played_ms * RATE // 1000)
        return self._due_marks() + self.data_to_send()

    def data_to_send(self) -> list[Outgoing]:
        """Messages :meth:`receive` or :meth:`tick` made due (mark echoes); drains them."""
        out, self._outbox = self._outbox, []
        return out

    def _pending_samples(self, item_id: str) -> int:
        return self._received.get(item_id, 0) - self._played.get(item_id, 0)

    def _due_marks(self) -> list[Outgoing]:
        slack = MARK_SLACK_MS * RATE // 1000
        due = [m for m in self._marks if self._played.get(m.item_id, 0) + slack >= m.position]
        if not due:
            return []
        self._marks = [m for m in self._marks if m not in due]
        return [self._echo(m.name) for m in due]

    def _echo(self, name: str) -> Outgoing:
        return self._out(self._numbered("mark", mark={"name": name}))

    # --- incoming ----------------------------------------------------------------------

    def tick(self, now_ns: int) -> list[Event]:
        """Time passes: a response whose media stopped :data:`RESPONSE_GAP_MS` ago is over."""
        item = self._item
        if item is None or now_ns - self._last_media_ns < RESPONSE_GAP_MS * 1_000_000:
            return []
        self._item = None
        return [ResponseFinished(t_ns=now_ns, response_id=item, status="completed")]

    def receive(self, text: str | bytes, t_ns: int) -> list[Event]:
        """Map one message from the agent to events; never raises."""
        p = parse(text)
        if p.error:
            return [ProviderErrorEvent(t_ns=t_ns, code="malformed_message", message=p.error)]
        raw = elide(p.msg)
        handler = _CALLER_HANDLERS.get(p.event)
        if handler is None:
            return [UnknownMessage(t_ns=t_ns, raw=raw, type=p.event[:80])]
        return handler(self, p.msg, raw, t_ns)

    def _oddity(self, t_ns: int, key: str, message: str) -> list[Event]:
        """A tolerated oddity: one warning per kind per call (the raw messages are logged)."""
        if key in self._odd:
            return []
        self._odd.add(key)
        return [Notice(t_ns=t_ns, level="warning", message=f"agent stream: {message}")]

    def _media(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        data, why = decode_payload(msg.get("media"))
        if data is None:
            return [ProviderErrorEvent(t_ns=t, raw=raw, code="malformed_message", message=why)]
        events: list[Event] = []
        if _str(msg, "streamSid") not in ("", self.stream_sid):
            events += self._oddity(t, "sid", "media for another streamSid (played anyway)")
        item = self._item
        if item is None:  # a new burst; Twilio has no response events to time it from
            item = self._item = f"tw{next(self._items)}"
        self._last_media_ns = t
        self._received[item] = self._received.get(item, 0) + len(data)
        pcm = int16_to_bytes(g711.ulaw_decode(data))
        events.append(
            AgentAudio(t_ns=t, raw=raw, response_id=item, item_id=item, pcm=pcm, sample_rate=RATE)
        )
        return events

    def _mark(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        name = _str(msg.get("mark"), "name")
        if not isinstance(msg.get("mark"), dict) or not isinstance(msg["mark"].get("name"), str):
            return [
                ProviderErrorEvent(
                    t_ns=t, raw=raw, code="malformed_message", message="mark without a name"
                )
            ]
        item = self._item or self._last_item()
        position = self._received.get(item, 0) if item else 0
        mark = _Mark(name, item or "", position, t)
        self._marks.append(mark)
        if not item or self._pending_samples(item) <= MARK_SLACK_MS * RATE // 1000:
            self._outbox += self._due_marks()
        queued_ms = max(0, self._pending_samples(item)) * 1000 // RATE if item else 0
        return [
            Notice(
                t_ns=t,
                raw=raw,
                level="info",
                message=f"agent mark {name[:60]!r} behind {queued_ms} ms of queued audio",
            )
        ]

    def _last_item(self) -> str | None:
        return next(reversed(self._received), None) if self._received else None

    def _clear(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        # Twilio empties its buffer and answers every pending mark (message reference,
        # "Send a Clear message").
        self._outbox += [self._echo(m.name) for m in self._marks]
        self._marks.clear()
        item = self._item or self._last_item()
        queued = item is not None and (
            self._item is not None or self._pending_samples(item) > MARK_SLACK_MS * RATE // 1000
        )
        if not queued or item is None:
            return [Notice(t_ns=t, raw=raw, level="info", message="agent clear: nothing queued")]
        self._played[item] = self._received.get(item, 0)
        events: list[Event] = [AgentInterrupted(t_ns=t, raw=raw, response_id=item)]
        if self._item is not None:
            self._item = None
            events.append(
                ResponseFinished(t_ns=t, response_id=item, status="cancelled", reason="clear")
            )
        return events


_CallerHandler = Callable[[TwilioCallerProtocol, dict[str, Any], dict[str, Any], int], list[Event]]
_CALLER_HANDLERS: dict[str, _CallerHandler] = {
    "media": TwilioCallerProtocol._media,
    "mark": TwilioCallerProtocol._mark,
    "clear": TwilioCallerProtocol._clear,
}


# --- voiceprobe is the Media Streams server ---------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """Twilio's ``start``: the stream's identity and custom parameters."""

    t_ns: int
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str]


@dataclass(frozen=True, slots=True)
class CallerMedia:
    """Caller audio from one ``media`` message: PCM16 at 8 kHz, received at ``t_ns``."""

    t_ns: int
    pcm: NDArray[np.int16]
    chunk: int | None
    timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class StreamNote:
    """Something to log about the stream: a ``dtmf`` key, a ``mark`` echo, a tolerated
    oddity (``level="warning"``) or a refusal (``fatal=True``: close the stream)."""

    t_ns: int
    level: NoticeLevel
    message: str
    raw: dict[str, Any] | None = None
    fatal: bool = False
    mark: str | None = None
    digit: str | None = None


@dataclass(frozen=True, slots=True)
class StreamStopped:
    """Twilio's ``stop``: the call ended."""

    t_ns: int


StreamEvent = StreamStarted | CallerMedia | StreamNote | StreamStopped


def _int_str(value: Any) -> int | None:
    """A Twilio string-typed number (``"12"``) as an int, or ``None``."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


class TwilioStreamProtocol:
    """voiceprobe as the Media Streams server: one stream's messages in, replies out.

    Synchronous and pure; one thread. :meth:`receive` turns Twilio's messages into
    :data:`StreamEvent` values; :meth:`media`, :meth:`mark` and :meth:`clear` build the
    replies. Media before ``start`` is dropped (logged once); a ``start`` with another
    media format is fatal; a payload that is not 160 bytes is played anyway (logged once).
    """

    def __init__(self) -> None:
        self.started: StreamStarted | None = None
        self.stopped = False
        self._odd: set[str] = set()
        self._marks = itertools.count(1)

    @property
    def stream_sid(self) -> str:
        """The stream's SID (empty before ``start``)."""
        return self.started.stream_sid if self.started else ""

    # --- outgoing ----------------------------------------------------------------------

    def media(self, pcm: NDArray[np.int16]) -> str:
        """A ``media`` message with PCM16 8 kHz ``pcm`` as μ-law."""
        return _text(
            {
                "event": "media",
                "streamSid": self.stream_sid,
                "media": {"payload": encode_payload(pcm)},
            }
        )

    def mark(self, name: str | None = None) -> tuple[str, str]:
        """A ``mark`` message and its name (``vp-N`` unless given)."""
        name = name or f"vp-{next(self._marks)}"
        return _text({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}), name

    def clear(self) -> str:
        """A ``clear`` message."""
        return _text({"event": "clear", "streamSid": self.stream_sid})

    # --- incoming ----------------------------------------------------------------------

    def _once(
        self, t_ns: int, key: str, message: str, raw: dict[str, Any] | None
    ) -> list[StreamEvent]:
        if key in self._odd:
            return []
        self._odd.add(key)
        return [
            StreamNote(t_ns=t_ns, level="warning", message=f"twilio stream: {message}", raw=raw)
        ]

    def receive(self, text: str | bytes, t_ns: int) -> list[StreamEvent]:
        """Map one message from Twilio; never raises."""
        p = parse(text)
        if p.error:
            return self._once(t_ns, "parse:" + p.error.split(" ")[0], p.error + " (ignored)", None)
        msg, raw = p.msg, elide(p.msg)
        if p.event == "connected":
            return []
        if p.event == "start":
            return self._start(msg, raw, t_ns)
        if self.started is None:
            return self._once(t_ns, "early", f"{p.event[:40]} before start (ignored)", raw)
        if p.event == "media":
            return self._media(msg, raw, t_ns)
        if p.event == "mark":
            name = _str(msg.get("mark"), "name")
            return [
                StreamNote(
                    t_ns=t_ns,
                    level="info",
                    message=f"mark {name[:60]!r} played",
                    raw=raw,
                    mark=name,
                )
            ]
        if p.event == "dtmf":
            digit = _str(msg.get("dtmf"), "digit")
            return [
                StreamNote(
                    t_ns=t_ns, level="info", message=f"dtmf {digit[:4]!r}", raw=raw, digit=digit
                )
            ]
        if p.event == "stop":
            self.stopped = True
            return [StreamStopped(t_ns=t_ns)]
        return self._once(
            t_ns, "unknown:" + p.event[:40], f"unknown event {p.event[:40]!r} (ignored)", raw
        )

    def _start(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[StreamEvent]:
        if self.started is not None:
            return self._once(t, "start2", "a second start (ignored)", raw)
        start = msg.get("start")
        if not isinstance(start, dict):
            return [
                StreamNote(
                    t_ns=t,
                    level="error",
                    message="start without a 'start' object",
                    raw=raw,
                    fatal=True,
                )
            ]
        why = check_media_format(start)
        if why:
            return [StreamNote(t_ns=t, level="error", message=why, raw=raw, fatal=True)]
        params = start.get("customParameters")
        custom = (
            {str(k)[:100]: v for k, v in (params or {}).items() if isinstance(v, str)}
            if isinstance(params, dict)
            else {}
        )
        tracks = start.get("tracks")
        self.started = StreamStarted(
            t_ns=t,
            stream_sid=_str(start, "streamSid") or _str(msg, "streamSid"),
            call_sid=_str(start, "callSid"),
            account_sid=_str(start, "accountSid"),
            tracks=tuple(x for x in tracks if isinstance(x, str))
            if isinstance(tracks, list)
            else (),
            custom_parameters=custom,
        )
        return [self.started]

    def _media(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[StreamEvent]:
        media = msg.get("media")
        if isinstance(media, dict) and media.get("track") not in (None, "inbound"):
            return self._once(
                t, "track", f"media on track {str(media.get('track'))[:20]!r} (ignored)", raw
            )
        data, why = decode_payload(media)
        if data is None:
            return self._once(t, "payload:" + why, why + " (frame dropped)", raw)
        out: list[StreamEvent] = []
        if len(data) != FRAME_BYTES:
            out += self._once(
                t,
                "size",
                f"payload of {len(data)} bytes, not {FRAME_BYTES} per 20 ms (kept to real time)",
                raw,
            )
        assert isinstance(media, dict)
        out.append(
            CallerMedia(
                t_ns=t,
                pcm=g711.ulaw_decode(data),
                chunk=_int_str(media.get("chunk")),
                timestamp_ms=_int_str(media.get("timestamp")),
            )
        )
        return out
