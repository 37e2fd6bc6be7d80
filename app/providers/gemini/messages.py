"""Gemini Live server messages read into typed operations, without touching any state.

:func:`parse_message` validates one ``LiveServerMessage`` (proto-JSON, camelCase or
snake_case) into a list of small frozen operations, in the order the session
bookkeeping must apply them; a known field of the wrong shape raises
:class:`Malformed` and the message changes nothing. The operations are internal to this
package: :class:`~app.providers.gemini.protocol.GeminiProtocol` applies them with
``match`` and turns them into :mod:`app.events`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from app.providers.gemini.casing import get_field as _get
from app.providers.gemini.casing import snake as _snake
from app.providers.gemini.casing import typed_field
from app.providers.gemini.usage import usage_counts

#: Largest server message accepted (characters of text, or bytes), as the socket's max_size.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024

#: Rate of the agent audio when its ``mimeType`` names none.
OUTPUT_RATE = 24000

#: Top-level keys of ``LiveServerMessage`` (google-genai 3.6.1).
SERVER_KEYS = (
    "setupComplete",
    "serverContent",
    "toolCall",
    "toolCallCancellation",
    "usageMetadata",
    "goAway",
    "sessionResumptionUpdate",
    "voiceActivityDetectionSignal",
    "voiceActivity",
)

#: goAway.timeLeft is clamped to a day: the bridge schedules on it.
_MAX_GO_AWAY_MS = 86_400_000

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d{0,9})?)s\s*$")
_RATE = re.compile(r"rate=(\d+)")


class Malformed(Exception):
    """A known message with a field of the wrong shape (caught by the protocol's
    ``receive``)."""


def load_message(text: str | bytes) -> dict[str, Any]:
    """One server message (text, or a binary frame of UTF-8 JSON) as a JSON object.

    Raises:
        Malformed: larger than :data:`MAX_MESSAGE_SIZE`, not JSON, or not an object.
    """
    if len(text) > MAX_MESSAGE_SIZE:
        raise Malformed(f"message of {len(text)} bytes is too large")
    try:
        if isinstance(text, bytes | bytearray | memoryview):
            text = bytes(text).decode("utf-8")
        msg = json.loads(text)
    except (ValueError, RecursionError):
        raise Malformed("not JSON text") from None
    if not isinstance(msg, dict):
        raise Malformed("not a JSON object")
    return msg


def _obj(obj: dict[str, Any], name: str) -> dict[str, Any] | None:
    return typed_field(obj, name, dict, lambda n: Malformed(f"{n} is not an object"))


def _list(obj: dict[str, Any], name: str) -> list[Any]:
    return typed_field(obj, name, list, lambda n: Malformed(f"{n} is not a list")) or []


def _str(obj: dict[str, Any], name: str) -> str | None:
    return typed_field(obj, name, str, lambda n: Malformed(f"{n} is not a string"))


def _bool(obj: dict[str, Any], name: str) -> bool:
    return typed_field(obj, name, bool, lambda n: Malformed(f"{n} is not a boolean")) or False


def parse_duration_ms(value: Any) -> int:
    """Milliseconds of a proto-JSON ``Duration`` (``"50s"``, ``"1.5s"``), also accepting
    ``{"seconds", "nanos"}`` objects and plain numbers of seconds.

    Raises:
        ValueError: ``value`` is no duration.
    """
    try:
        return _duration_ms(value)
    except OverflowError:  # 1e308 s, or an integer too large for a float
        raise ValueError("duration out of range") from None


def _duration_ms(value: Any) -> int:
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m is None:
            raise ValueError(f"not a duration: {value[:40]!r}")
        return round(float(m.group(1)) * 1000)
    if isinstance(value, bool):
        raise ValueError("not a duration: a boolean")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite duration")
        return round(value * 1000)
    if isinstance(value, dict):
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        if isinstance(seconds, str) and seconds.lstrip("-").isdigit():
            seconds = int(seconds)
        if (
            isinstance(seconds, int)
            and isinstance(nanos, int)
            and not isinstance(seconds, bool)
            and not isinstance(nanos, bool)
        ):
            return seconds * 1000 + round(nanos / 1_000_000)
    raise ValueError("not a duration")


def decode_b64(data: str) -> bytes:
    """Proto-JSON ``bytes``: standard or URL-safe base64, padding optional."""
    text = data.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    return base64.b64decode(text, validate=True)


def _b64_size(data: str) -> int:
    text = data.strip().rstrip("=")
    return len(text) * 3 // 4


def elide_audio(msg: dict[str, Any]) -> dict[str, Any]:
    """``msg`` with every ``modelTurn.parts[].inlineData.data`` replaced by ``"<N bytes>"``.

    Copies only along that path; audio lives nowhere else in a server message.
    """
    content = _get(msg, "serverContent")
    turn = _get(content, "modelTurn") if isinstance(content, dict) else None
    parts = _get(turn, "parts") if isinstance(turn, dict) else None
    if not isinstance(parts, list):
        return msg
    new_parts: list[Any] = []
    changed = False
    for part in parts:
        for key in ("inlineData", "inline_data"):
            blob = part.get(key) if isinstance(part, dict) else None
            if isinstance(blob, dict) and isinstance(blob.get("data"), str):
                blob = {**blob, "data": f"<{_b64_size(blob['data'])} bytes>"}
                part = {**part, key: blob}
                changed = True
        new_parts.append(part)
    if not changed:
        return msg
    assert isinstance(content, dict) and isinstance(turn, dict)
    ck = "serverContent" if "serverContent" in msg else "server_content"
    tk = "modelTurn" if "modelTurn" in content else "model_turn"
    pk = "parts"
    return {**msg, ck: {**content, tk: {**turn, pk: new_parts}}}


# --- operations ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnknownKey:
    """A top-level key outside ``LiveServerMessage`` (``{}`` for an empty message)."""

    key: str


@dataclass(frozen=True, slots=True)
class SetupDone:
    """``setupComplete``: the session is configured."""

    session_id: str


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """``voiceActivity`` / ``voiceActivityDetectionSignal``: the caller started speaking,
    at ``offset_ms`` of input audio if given."""

    offset_ms: int | None


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """As :class:`SpeechStarted`, for the end of the caller's speech."""

    offset_ms: int | None


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A ``usageMetadata`` and its counts as :class:`~app.events.Usage` fields."""

    meta: dict[str, Any]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class BadUsage:
    """A ``usageMetadata`` whose counts have the wrong shape (the rest still counts)."""

    why: str


@dataclass(frozen=True, slots=True)
class Interrupted:
    """``serverContent.interrupted``: the caller cut the model turn off."""


@dataclass(frozen=True, slots=True)
class InputTranscript:
    """``serverContent.inputTranscription``: a piece of what the caller said."""

    text: str
    finished: bool


@dataclass(frozen=True, slots=True)
class ModelAudio:
    """``serverContent.modelTurn``: its PCM16 audio chunks as ``(pcm, rate)`` (parts that
    are not PCM audio are left out; a turn with none still opens the model turn)."""

    chunks: tuple[tuple[bytes, int], ...]


@dataclass(frozen=True, slots=True)
class OutputTranscript:
    """``serverContent.outputTranscription``: a piece of what the model said."""

    text: str


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """``serverContent.turnComplete`` with its ``turnCompleteReason`` (may be empty)."""

    reason: str


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One of ``toolCall.functionCalls`` (``call_id`` ``None`` when the server sent none);
    ``arguments`` is JSON text."""

    call_id: str | None
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """``toolCall``: the model asks for these calls."""

    calls: tuple[FunctionCall, ...]


@dataclass(frozen=True, slots=True)
class ToolCancel:
    """``toolCallCancellation``: calls the model no longer wants."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Resumption:
    """``sessionResumptionUpdate``."""

    handle: str
    resumable: bool


@dataclass(frozen=True, slots=True)
class GoingAway:
    """``goAway`` with its ``timeLeft`` clamped to [0 ms, one day]."""

    time_left_ms: int


#: Everything one server message can ask of the session bookkeeping. ``generationComplete``
#: has none: audio may still be playing, and the turn ends at ``turnComplete``.
Operation = (
    UnknownKey
    | SetupDone
    | SpeechStarted
    | SpeechStopped
    | UsageReport
    | BadUsage
    | Interrupted
    | InputTranscript
    | ModelAudio
    | OutputTranscript
    | TurnComplete
    | ToolCalls
    | ToolCancel
    | Resumption
    | GoingAway
)

_KNOWN_KEYS = frozenset(SERVER_KEYS) | {_snake(k) for k in SERVER_KEYS}


def parse_message(msg: dict[str, Any]) -> list[Operation]:
    """Validate one server message into the operations it carries, in the order they
    apply.

    Usage on a frame belongs to the model turn that frame is part of, so it comes after
    the frame's content (which may open that turn) and before its ``turnComplete``.

    Raises:
        Malformed: a known field has the wrong shape.
        ValueError, TypeError, OverflowError, RecursionError: a value cannot be read.
    """
    ops: list[Operation] = [UnknownKey(str(key)) for key in msg if key not in _KNOWN_KEYS]
    if not msg:
        ops.append(UnknownKey("{}"))

    setup = _get(msg, "setupComplete")
    if setup is not None:
        if not isinstance(setup, dict):
            raise Malformed("setupComplete is not an object")
        ops.append(SetupDone(_str(setup, "sessionId") or ""))

    for key, type_name in (
        ("voiceActivity", "voiceActivityType"),
        ("voiceActivityDetectionSignal", "vadSignalType"),
    ):
        va = _obj(msg, key)
        if va is None:
            continue
        kind = (_str(va, type_name) or "").upper()
        offset = _get(va, "audioOffset")
        offset_ms = parse_duration_ms(offset) if offset is not None else None
        if kind in ("ACTIVITY_START", "VAD_SIGNAL_TYPE_SOS"):
            ops.append(SpeechStarted(offset_ms))
        elif kind in ("ACTIVITY_END", "VAD_SIGNAL_TYPE_EOS"):
            ops.append(SpeechStopped(offset_ms))

    usage = _obj(msg, "usageMetadata")
    usage_op: Operation | None = None
    if usage is not None:
        try:
            usage_op = UsageReport(usage, usage_counts(usage))
        except ValueError as exc:  # the rest of the message still counts
            usage_op = BadUsage(str(exc))

    content = _obj(msg, "serverContent")
    if content is not None:
        ops.extend(_parse_content(content))

    tool_call = _obj(msg, "toolCall")
    if tool_call is not None:
        ops.append(ToolCalls(tuple(_function_call(fc) for fc in _list(tool_call, "functionCalls"))))

    cancel = _obj(msg, "toolCallCancellation")
    if cancel is not None:
        ids = _list(cancel, "ids")
        if not all(isinstance(i, str) for i in ids):
            raise Malformed("toolCallCancellation.ids is not a list of strings")
        ops.append(ToolCancel(tuple(ids)))

    resumption = _obj(msg, "sessionResumptionUpdate")
    if resumption is not None:
        ops.append(
            Resumption(_str(resumption, "newHandle") or "", _bool(resumption, "resumable"))
        )

    go_away = _obj(msg, "goAway")
    if go_away is not None:
        left = _get(go_away, "timeLeft")
        try:
            ms = parse_duration_ms(left) if left is not None else 0
        except ValueError:
            raise Malformed("goAway.timeLeft is not a duration") from None
        ops.append(GoingAway(min(max(0, ms), _MAX_GO_AWAY_MS)))
    if usage_op is not None:
        ends = [i for i, op in enumerate(ops) if isinstance(op, TurnComplete)]
        ops.insert(ends[0] if ends else len(ops), usage_op)
    return ops


def _function_call(fc: Any) -> FunctionCall:
    if not isinstance(fc, dict):
        raise Malformed("functionCalls[] is not an object")
    args = _get(fc, "args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise Malformed("functionCalls[].args is not an object")
    return FunctionCall(_str(fc, "id"), _str(fc, "name") or "", json.dumps(args))


def _parse_content(content: dict[str, Any]) -> list[Operation]:
    ops: list[Operation] = []
    if _bool(content, "interrupted"):
        ops.append(Interrupted())
    tx = _obj(content, "inputTranscription")
    if tx is not None:
        ops.append(InputTranscript(_str(tx, "text") or "", _bool(tx, "finished")))
    turn = _obj(content, "modelTurn")
    if turn is not None:
        ops.append(ModelAudio(tuple(_audio_chunks(turn))))
    tx = _obj(content, "outputTranscription")
    if tx is not None:
        # ``finished`` is validated but changes nothing: the turn ends at turnComplete.
        _bool(tx, "finished")
        ops.append(OutputTranscript(_str(tx, "text") or ""))
    _bool(content, "generationComplete")  # validated; nothing to do (see Operation)
    if _bool(content, "turnComplete"):
        ops.append(TurnComplete(_str(content, "turnCompleteReason") or ""))
    return ops


def _audio_chunks(turn: dict[str, Any]) -> list[tuple[bytes, int]]:
    chunks: list[tuple[bytes, int]] = []
    for part in _list(turn, "parts"):
        if not isinstance(part, dict):
            raise Malformed("modelTurn.parts[] is not an object")
        blob = _obj(part, "inlineData")
        if blob is None:
            continue
        mime = (_str(blob, "mimeType") or "").lower()
        data = _str(blob, "data") or ""
        if not mime.startswith("audio/pcm"):
            continue  # not audio we can play (image, other codec): ignored
        try:
            pcm = decode_b64(data)
        except (binascii.Error, ValueError):
            raise Malformed("inlineData.data is not base64") from None
        if len(pcm) % 2:
            raise Malformed("inlineData.data is not whole PCM16 samples")
        m = _RATE.search(mime)
        rate = int(m.group(1)) if m else OUTPUT_RATE
        if not 1000 <= rate <= 192000:
            raise Malformed(f"unusable audio rate {rate}")
        chunks.append((pcm, rate))
    return chunks
