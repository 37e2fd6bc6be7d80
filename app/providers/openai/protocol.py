"""Sans-I/O OpenAI Realtime **GA** protocol: JSON text in, typed events out.

Wire shapes follow the GA event unions of the official ``openai`` SDK
(``openai.types.realtime.RealtimeClientEvent`` / ``RealtimeServerEvent``; see
docs/protocols.md#openai-realtime-ga). Only GA names are ever sent; the beta names of
audio/text deltas are accepted on input so that old logs still replay.

Nothing here does I/O or raises on bad server input: a malformed message becomes a
:class:`~app.events.ProviderErrorEvent` with ``code="malformed_message"``.

One module on purpose (over 500 lines): one small parser per GA server event, and the
client events built from the same session state; the table of handlers is the protocol.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio import g711
from app.audio.pcm import bytes_to_int16, int16_to_bytes
from app.clock import Clock
from app.errors import ConfigError
from app.events import (
    AgentAudio,
    AgentTranscript,
    Event,
    InputCommitted,
    ItemTruncated,
    ProviderErrorEvent,
    ResponseFinished,
    ResponseStarted,
    ServerSpeechStarted,
    ServerSpeechStopped,
    SessionConfigured,
    SessionCreated,
    ToolCallRequested,
    UnknownMessage,
    Usage,
    UserTranscript,
    response_status,
)
from app.profile import Profile
from app.providers.base import HistoryItem, Outgoing, ProviderProtocol

#: Largest server message accepted (characters of text, or bytes), as the socket's max_size.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024

#: Error codes after which the session cannot go on
#: (docs/protocols.md#openai-limits-and-fatal-errors).
FATAL_ERROR_CODES = frozenset(
    {"session_expired", "beta_api_shape_disabled", "invalid_api_key", "insufficient_quota"}
)

#: Every type of the GA server union (``RealtimeServerEvent``, openai 3.57: 46 types).
GA_SERVER_TYPES = frozenset(
    {
        "conversation.created",
        "conversation.item.created",
        "conversation.item.deleted",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.failed",
        "conversation.item.input_audio_transcription.segment",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "conversation.item.added",
        "conversation.item.done",
        "error",
        "input_audio_buffer.cleared",
        "input_audio_buffer.committed",
        "input_audio_buffer.dtmf_event_received",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.timeout_triggered",
        "rate_limits.updated",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.created",
        "response.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.output_text.done",
        "session.created",
        "session.updated",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
    }
)

#: Beta server names read as their GA synonyms (docs/protocols.md#beta-names-read-as-ga).
BETA_SYNONYMS = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}

_AUDIO_DELTA = "response.output_audio.delta"
#: ``input_audio_buffer.append`` as ``OpenAIProtocol._msg`` serialises it (tag, id, audio).
_APPEND_TEMPLATE = '{"type":"input_audio_buffer.append","event_id":"vp_%s_%d","audio":"%s"}'
_PCM_RATE = 24000
_G711_RATE = 8000
_WIRE_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": _PCM_RATE},
    "pcmu": {"type": "audio/pcmu"},
    "pcma": {"type": "audio/pcma"},
}


class _Malformed(Exception):
    """Internal: the message cannot be mapped (turned into a ProviderErrorEvent)."""


def _b64_size(text: str) -> int:
    """Decoded size of base64 ``text`` without decoding it."""
    n = len(text)
    return n * 3 // 4 - (2 if text.endswith("==") else 1 if text.endswith("=") else 0)


def _elide(value: Any, audio_delta: bool = False) -> Any:
    """Copy a parsed message with base64 audio replaced by ``"<N bytes>"``.

    Replaces the top-level ``delta`` of audio deltas and every string-valued ``audio``
    key (item content parts) at any depth.
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(v, str) and (k == "audio" or (audio_delta and k == "delta")):
                out[k] = f"<{_b64_size(v)} bytes>"
            else:
                out[k] = _elide(v)
        return out
    if isinstance(value, list):
        return [_elide(v) for v in value]
    return value


def _str(msg: dict[str, Any], key: str) -> str:
    v = msg.get(key)
    return v if isinstance(v, str) else ""


def _int(msg: dict[str, Any], key: str) -> int | None:
    v = msg.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _obj(msg: dict[str, Any], key: str) -> dict[str, Any]:
    v = msg.get(key)
    return v if isinstance(v, dict) else {}


def _count(obj: dict[str, Any], key: str, where: str) -> int:
    """A token count: absent is 0; anything but a whole number ≥ 0 raises ValueError."""
    v = obj.get(key)
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{where}.{key} is not a whole number of tokens")
    return v


def _details(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    v = obj.get(key)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError(f"{where}.{key} is not an object")
    return v


def usage_counts(usage: dict[str, Any]) -> dict[str, int]:
    """The token counts of a ``response.done`` ``usage`` (``RealtimeResponseUsage``) as
    :class:`~app.events.Usage` fields.

    ``cached_tokens`` is a subset of ``input_tokens`` (SDK docstring). Tokens the details
    do not break down (a total with no details, image tokens) are counted as ``other``,
    never guessed into text or audio.

    Raises:
        ValueError: a count is not a whole number ≥ 0, or a details field not an object.
    """
    w = "usage"
    ind = _details(usage, "input_token_details", w)
    outd = _details(usage, "output_token_details", w)
    cd = _details(ind, "cached_tokens_details", f"{w}.input_token_details")
    wi, wc = f"{w}.input_token_details", f"{w}.input_token_details.cached_tokens_details"
    text_in, audio_in = _count(ind, "text_tokens", wi), _count(ind, "audio_tokens", wi)
    image_in = _count(ind, "image_tokens", wi)
    c_text, c_audio = _count(cd, "text_tokens", wc), _count(cd, "audio_tokens", wc)
    c_image = _count(cd, "image_tokens", wc)
    wo = f"{w}.output_token_details"
    text_out, audio_out = _count(outd, "text_tokens", wo), _count(outd, "audio_tokens", wo)
    total_in, total_out = _count(usage, "input_tokens", w), _count(usage, "output_tokens", w)
    cached = _count(ind, "cached_tokens", wi)
    return {
        "text_input": text_in,
        "audio_input": audio_in,
        "other_input": image_in + max(0, total_in - text_in - audio_in - image_in),
        "cached_text_input": c_text,
        "cached_audio_input": c_audio,
        "cached_other_input": c_image + max(0, cached - c_text - c_audio - c_image),
        "text_output": text_out,
        "audio_output": audio_out,
        "other_output": max(0, total_out - text_out - audio_out),
    }


class OpenAIProtocol(ProviderProtocol):
    """The OpenAI Realtime GA dialect for one session.

    Synchronous and pure: call every method from one thread (the bridge's loop thread).
    Keeps only the state a session needs: the event-id counter and the number of agent
    audio samples received per item (for clamping truncates).

    Args:
        profile: the agent profile (model, voice, instructions, audio format, VAD, tools).
            An audio format other than pcm16/pcmu/pcma raises ConfigError.
        clock: stamps nothing itself (``receive`` is given its stamp) but is kept for
            symmetry with other protocols and future use.
    """

    name = "openai"
    #: OpenAI ends a session at 60 minutes with no warning; roll over at a turn boundary
    #: first.
    rollover_s = 55 * 60.0

    def __init__(self, profile: Profile, clock: Clock) -> None:
        if profile.audio_format not in _WIRE_FORMATS:
            raise ConfigError(
                f"unsupported audio format {profile.audio_format!r}", field="audio_format"
            )
        self.profile = profile
        self.clock = clock
        self.audio_format = profile.audio_format
        rate = _PCM_RATE if profile.audio_format == "pcm16" else _G711_RATE
        self.input_rate = rate
        self.output_rate = rate
        self._tag = uuid.uuid4().hex[:8]
        self._ids = itertools.count(1)
        self._received: dict[str, int] = {}

    # --- outgoing ------------------------------------------------------------------------

    def _msg(self, body: dict[str, Any], log: bool = True) -> Outgoing:
        msg = {"type": body["type"], "event_id": f"vp_{self._tag}_{next(self._ids)}"}
        msg.update((k, v) for k, v in body.items() if k != "type")
        return Outgoing(
            text=json.dumps(msg, separators=(",", ":")),
            type=msg["type"],
            log=msg if log else None,
        )

    def session_config(self) -> dict[str, Any]:
        """The GA ``session`` object for :meth:`open`
        (docs/protocols.md#openai-session-configuration)."""
        p = self.profile
        fmt = _WIRE_FORMATS[p.audio_format]
        audio_in: dict[str, Any] = {"format": dict(fmt)}
        tr = p.transcription
        if tr.model:
            # Transcription wants ISO-639-1 ("en"); a profile language may be "en-US".
            lang = tr.language or p.language.split("-")[0]
            transcription: dict[str, Any] = {"model": tr.model}
            if lang:
                transcription["language"] = lang
            if tr.prompt:
                transcription["prompt"] = tr.prompt
            audio_in["transcription"] = transcription
        audio_in["turn_detection"] = self._turn_detection()
        return {
            "type": "realtime",
            "model": p.model,
            "instructions": p.instructions,
            "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": {"format": dict(fmt), "voice": p.voice}},
            "tools": [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                }
                for t in p.tools
            ],
            "tool_choice": "auto",
        }

    def _turn_detection(self) -> dict[str, Any] | None:
        td = self.profile.turn_detection
        if td.type == "server_vad":
            return {
                "type": "server_vad",
                "threshold": td.threshold,
                "prefix_padding_ms": td.prefix_padding_ms,
                "silence_duration_ms": td.silence_duration_ms,
                "create_response": td.create_response,
                "interrupt_response": td.interrupt_response,
            }
        if td.type == "semantic_vad":
            return {
                "type": "semantic_vad",
                "eagerness": td.eagerness,
                "create_response": td.create_response,
                "interrupt_response": td.interrupt_response,
            }
        return None

    def open(self) -> list[Outgoing]:
        """One GA ``session.update`` with the whole profile."""
        return [self._msg({"type": "session.update", "session": self.session_config()})]

    def audio(self, pcm: bytes) -> list[Outgoing]:
        """``input_audio_buffer.append`` of ``pcm`` (PCM16 at :attr:`input_rate`), G.711
        encoded first when the profile asks for it. Not logged (``log=None``).
        """
        if not pcm:
            return []
        b64 = base64.b64encode(self._encode(pcm)).decode("ascii")
        # The hot path (50 messages a second): the exact text ``_msg`` would make, built
        # from a template (base64 and our event ids need no JSON escaping), ~6x cheaper.
        text = _APPEND_TEMPLATE % (self._tag, next(self._ids), b64)
        return [Outgoing(text=text, type="input_audio_buffer.append", log=None)]

    def tool_result(self, call_id: str, name: str, output: str) -> list[Outgoing]:
        """A ``function_call_output`` item, then ``response.create`` so the agent goes on."""
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        return [
            self._msg({"type": "conversation.item.create", "item": item}),
            self._msg({"type": "response.create"}),
        ]

    def truncate(self, item_id: str, audio_end_ms: int) -> list[Outgoing]:
        """``conversation.item.truncate`` with ``audio_end_ms`` clamped to [0, received].

        Sends nothing when no audio of ``item_id`` was received: the server rejects that
        ("Only model output audio messages can be truncated", livekit/agents #6157), and
        truncating past the received audio breaks the session (pipecat #1963).
        """
        if self._received.get(item_id, 0) <= 0:
            return []
        end = max(0, min(int(audio_end_ms), self.received_audio_ms(item_id)))
        body = {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": end,
        }
        return [self._msg(body)]

    def replay(self, history: list[HistoryItem]) -> list[Outgoing]:
        """One ``conversation.item.create`` per finished item, oldest first: user text as
        ``input_text``, agent text as ``output_text``, tool calls as ``function_call`` +
        ``function_call_output``. OpenAI has no resume handle, so this is how a new
        session learns what was said (docs/protocols.md#openai-limits-and-fatal-errors).
        """
        out: list[Outgoing] = []
        for h in history:
            item: dict[str, Any]
            if h.role == "user":
                item = {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": h.text}],
                }
            elif h.role == "assistant":
                item = {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": h.text}],
                }
            elif h.role == "tool_call":
                item = {
                    "type": "function_call",
                    "call_id": h.call_id,
                    "name": h.name,
                    "arguments": h.arguments or "{}",
                }
            elif h.role == "tool_result":
                item = {"type": "function_call_output", "call_id": h.call_id, "output": h.text}
            else:
                continue
            out.append(self._msg({"type": "conversation.item.create", "item": item}))
        return out

    def respond(self) -> list[Outgoing]:
        """``response.create``."""
        return [self._msg({"type": "response.create"})]

    def manual_turn_end(self) -> list[Outgoing]:
        """Turn detection is off: the local VAD ended the caller's turn (commit + respond)."""
        return self.commit()

    def commit(self) -> list[Outgoing]:
        """Manual turn end: ``input_audio_buffer.commit`` then ``response.create``."""
        return [
            self._msg({"type": "input_audio_buffer.commit"}),
            self._msg({"type": "response.create"}),
        ]

    def cancel(self) -> list[Outgoing]:
        """``response.cancel`` of the response in progress."""
        return [self._msg({"type": "response.cancel"})]

    def received_audio_ms(self, item_id: str) -> int:
        """Whole milliseconds of agent audio received for ``item_id`` (rounded down)."""
        return self._received.get(item_id, 0) * 1000 // self.output_rate

    # --- codec ---------------------------------------------------------------------------

    def _encode(self, pcm: bytes) -> bytes:
        if self.audio_format == "pcm16":
            return pcm[:-1] if len(pcm) % 2 else pcm
        encode: Callable[[NDArray[np.int16]], bytes] = (
            g711.ulaw_encode if self.audio_format == "pcmu" else g711.alaw_encode
        )
        return bytes(encode(bytes_to_int16(pcm)))

    def _decode(self, wire: bytes) -> tuple[bytes, int]:
        """Wire audio → (PCM16 bytes, samples)."""
        if self.audio_format == "pcm16":
            n = len(wire) // 2
            return wire[: 2 * n], n
        decode = g711.ulaw_decode if self.audio_format == "pcmu" else g711.alaw_decode
        return int16_to_bytes(decode(wire)), len(wire)

    # --- incoming ------------------------------------------------------------------------

    def receive(self, text: str | bytes, t_ns: int) -> list[Event]:
        """Map one server message (received at ``t_ns``) to events; never raises.

        Beta delta names are read as their GA synonyms. Known GA types with nothing to
        normalize give ``[]``; types outside the GA union give
        :class:`~app.events.UnknownMessage`.
        """
        if len(text) > MAX_MESSAGE_SIZE:
            return [self._malformed(t_ns, f"message of {len(text)} bytes is too large")]
        try:
            msg = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            return [self._malformed(t_ns, f"not JSON ({type(exc).__name__})")]
        except RecursionError:
            return [self._malformed(t_ns, "JSON nested too deeply")]
        if not isinstance(msg, dict):
            return [self._malformed(t_ns, f"not a JSON object ({type(msg).__name__})")]
        mtype = msg.get("type")
        if not isinstance(mtype, str) or not mtype:
            return [self._malformed(t_ns, "missing or invalid 'type'")]
        mtype = BETA_SYNONYMS.get(mtype, mtype)
        try:
            raw = _elide(msg, audio_delta=mtype == _AUDIO_DELTA)
            return self._map(mtype, msg, raw, t_ns)
        except _Malformed as exc:
            return [self._malformed(t_ns, f"{mtype}: {exc}")]
        except RecursionError:
            return [self._malformed(t_ns, "JSON nested too deeply")]

    def _malformed(self, t_ns: int, message: str) -> ProviderErrorEvent:
        return ProviderErrorEvent(t_ns=t_ns, code="malformed_message", message=message)

    def _map(self, mtype: str, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        handler = _HANDLERS.get(mtype)
        if handler is not None:
            return handler(self, msg, raw, t)
        if mtype in GA_SERVER_TYPES:
            return []
        return [UnknownMessage(t_ns=t, raw=raw, type=mtype)]

    def _session_created(
        self, msg: dict[str, Any], raw: dict[str, Any], t: int
    ) -> list[Event]:
        sid = _str(_obj(msg, "session"), "id")
        return [SessionCreated(t_ns=t, raw=raw, provider=self.name, session_id=sid)]

    def _session(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        sid = _str(_obj(msg, "session"), "id")
        return [SessionConfigured(t_ns=t, raw=raw, provider=self.name, session_id=sid)]

    def _speech_started(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        return [
            ServerSpeechStarted(
                t_ns=t,
                raw=raw,
                item_id=_str(msg, "item_id"),
                audio_start_ms=_int(msg, "audio_start_ms"),
            )
        ]

    def _speech_stopped(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        return [
            ServerSpeechStopped(
                t_ns=t,
                raw=raw,
                item_id=_str(msg, "item_id"),
                audio_end_ms=_int(msg, "audio_end_ms"),
            )
        ]

    def _committed(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        prev = msg.get("previous_item_id")
        return [
            InputCommitted(
                t_ns=t,
                raw=raw,
                item_id=_str(msg, "item_id"),
                previous_item_id=prev if isinstance(prev, str) else None,
            )
        ]

    def _user_delta(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        return [
            UserTranscript(
                t_ns=t, raw=raw, item_id=_str(msg, "item_id"), text=_str(msg, "delta"), final=False
            )
        ]

    def _user_done(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        return [
            UserTranscript(
                t_ns=t,
                raw=raw,
                item_id=_str(msg, "item_id"),
                text=_str(msg, "transcript"),
                final=True,
            )
        ]

    def _user_failed(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        err = _obj(msg, "error")
        text = _str(err, "message") or "input transcription failed"
        return [ProviderErrorEvent(t_ns=t, raw=raw, code="transcription_failed", message=text)]

    def _response_created(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        rid = _str(_obj(msg, "response"), "id")
        return [ResponseStarted(t_ns=t, raw=raw, response_id=rid)]

    def _audio_delta(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        b64 = msg.get("delta")
        if not isinstance(b64, str):
            raise _Malformed("'delta' is not a base64 string")
        try:
            wire = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise _Malformed("'delta' is not valid base64") from None
        pcm, samples = self._decode(wire)
        item_id = _str(msg, "item_id")
        self._received[item_id] = self._received.get(item_id, 0) + samples
        return [
            AgentAudio(
                t_ns=t,
                raw=raw,
                response_id=_str(msg, "response_id"),
                item_id=item_id,
                pcm=pcm,
                sample_rate=self.output_rate,
            )
        ]

    def _tool_call(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        return [
            ToolCallRequested(
                t_ns=t,
                raw=raw,
                call_id=_str(msg, "call_id"),
                name=_str(msg, "name"),
                arguments=_str(msg, "arguments"),
                response_id=_str(msg, "response_id"),
            )
        ]

    def _response_done(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        resp = _obj(msg, "response")
        usage = resp.get("usage")
        out: list[Event] = []
        if isinstance(usage, dict):
            try:
                counts = usage_counts(usage)
            except ValueError as exc:
                out.append(self._malformed(t, f"response.done: {exc}"))
            else:
                out.append(
                    Usage(
                        t_ns=t,
                        raw=raw,
                        provider=self.name,
                        response_id=_str(resp, "id"),
                        model=self.profile.model,
                        **counts,
                    )
                )
        return out + [
            ResponseFinished(
                t_ns=t,
                raw=raw,
                response_id=_str(resp, "id"),
                status=response_status(_str(resp, "status") or "completed"),
                reason=_str(_obj(resp, "status_details"), "reason"),
                usage=usage if isinstance(usage, dict) else None,
            )
        ]

    def _truncated(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        end = _int(msg, "audio_end_ms")
        if end is None:
            raise _Malformed("'audio_end_ms' is not an integer")
        return [ItemTruncated(t_ns=t, raw=raw, item_id=_str(msg, "item_id"), audio_end_ms=end)]

    def _error(self, msg: dict[str, Any], raw: dict[str, Any], t: int) -> list[Event]:
        err = _obj(msg, "error")
        code = _str(err, "code") or _str(err, "type") or "error"
        text = _str(err, "message") or "(no message)"
        return [
            ProviderErrorEvent(
                t_ns=t, raw=raw, code=code, message=text, fatal=code in FATAL_ERROR_CODES
            )
        ]


_Handler = Callable[[OpenAIProtocol, dict[str, Any], dict[str, Any], int], list[Event]]


def _agent_text(key: str, final: bool) -> _Handler:
    """Handler for agent transcript/text deltas (``key="delta"``) and their final text."""

    def handle(
        proto: OpenAIProtocol, msg: dict[str, Any], raw: dict[str, Any], t: int
    ) -> list[Event]:
        return [
            AgentTranscript(
                t_ns=t,
                raw=raw,
                response_id=_str(msg, "response_id"),
                item_id=_str(msg, "item_id"),
                text=_str(msg, key),
                final=final,
            )
        ]

    return handle


_HANDLERS: dict[str, _Handler] = {
    "session.created": OpenAIProtocol._session_created,
    "session.updated": OpenAIProtocol._session,
    "input_audio_buffer.speech_started": OpenAIProtocol._speech_started,
    "input_audio_buffer.speech_stopped": OpenAIProtocol._speech_stopped,
    "input_audio_buffer.committed": OpenAIProtocol._committed,
    "conversation.item.input_audio_transcription.delta": OpenAIProtocol._user_delta,
    "conversation.item.input_audio_transcription.completed": OpenAIProtocol._user_done,
    "conversation.item.input_audio_transcription.failed": OpenAIProtocol._user_failed,
    "response.created": OpenAIProtocol._response_created,
    "response.output_audio.delta": OpenAIProtocol._audio_delta,
    "response.output_audio_transcript.delta": _agent_text("delta", False),
    "response.output_audio_transcript.done": _agent_text("transcript", True),
    "response.output_text.delta": _agent_text("delta", False),
    "response.output_text.done": _agent_text("text", True),
    "response.function_call_arguments.done": OpenAIProtocol._tool_call,
    "response.done": OpenAIProtocol._response_done,
    "conversation.item.truncated": OpenAIProtocol._truncated,
    "error": OpenAIProtocol._error,
}
