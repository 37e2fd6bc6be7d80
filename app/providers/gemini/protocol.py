"""Sans-I/O Gemini Live (``BidiGenerateContent``) protocol: JSON in, typed events out.

Wire shapes are proto-JSON (camelCase) as documented at ai.google.dev/api/live and as
modelled by ``google.genai.types.LiveClientMessage`` / ``LiveServerMessage`` (PROTOCOLS.md
§3). Input is read in camelCase or snake_case; only camelCase is sent.

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
  playing therefore keeps its own user item (PROTOCOLS.md §5.8). A ``finished``
  transcription closes the item at once.

Transcriptions are deltas (``final=False``); when a user item closes, or a model turn
finishes, one ``final=True`` event carries the whole text gathered so far.

Nothing here does I/O or raises on bad server input: a malformed message becomes a
:class:`~app.events.ProviderErrorEvent` with ``code="malformed_message"``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
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
from app.profile import Profile, ToolSpec, TurnDetection
from app.providers.base import HistoryItem, Outgoing, ProviderProtocol
from app.providers.gemini.casing import camel as _camel
from app.providers.gemini.casing import get_field as _get
from app.providers.gemini.casing import snake as _snake

#: Largest server message accepted (characters of text, or bytes), as the socket's max_size.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024

INPUT_RATE = 16000
OUTPUT_RATE = 24000
INPUT_MIME = f"audio/pcm;rate={INPUT_RATE}"

#: Gemini's own default voice; used when the profile names an OpenAI voice (the two
#: vendors' voice names do not overlap) or none.
DEFAULT_VOICE = "Puck"
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
)

#: Used when the profile still names an OpenAI model (``gpt-…``): a Gemini Developer API
#: native-audio Live model (firebase.google.com/docs/ai-logic/live-api, "Supported models").
DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"

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

# JSON-schema keys that Gemini's OpenAPI-subset ``Schema`` (v1beta) knows, camelCase.
# The Live API ignores ``parametersJsonSchema`` (python-genai #1147, livekit/agents
# #3135), so tool parameters are sent as ``parameters`` restricted to these keys.
_SCHEMA_KEYS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
        "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
        "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
        "maximum",
    }
)  # fmt: skip
_SCHEMA_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})

#: goAway.timeLeft is clamped to a day: the bridge schedules on it.
_MAX_GO_AWAY_MS = 86_400_000

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d{0,9})?)s\s*$")
_RATE = re.compile(r"rate=(\d+)")


class _Malformed(Exception):
    """A known message with a field of the wrong shape (caught inside :meth:`receive`)."""


def _obj(obj: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = _get(obj, name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Malformed(f"{name} is not an object")
    return value


def _list(obj: dict[str, Any], name: str) -> list[Any]:
    value = _get(obj, name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f"{name} is not a list")
    return value


def _str(obj: dict[str, Any], name: str) -> str | None:
    value = _get(obj, name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Malformed(f"{name} is not a string")
    return value


def _bool(obj: dict[str, Any], name: str) -> bool:
    value = _get(obj, name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Malformed(f"{name} is not a boolean")
    return value


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


def _token_count(obj: dict[str, Any], name: str, where: str) -> int:
    """A token count (proto-JSON int64 may come as a string): absent is 0.

    Raises:
        ValueError: not a whole number ≥ 0.
    """
    v = _get(obj, name)
    if v is None:
        return 0
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{where}.{name} is not a whole number of tokens")
    return v


def _by_modality(obj: dict[str, Any], name: str, where: str) -> dict[str, int]:
    """``[{modality, tokenCount}]`` summed per modality (``TEXT``, ``AUDIO``…).

    Raises:
        ValueError: not a list of such objects.
    """
    items = _get(obj, name)
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ValueError(f"{where}.{name} is not a list")
    out: dict[str, int] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"{where}.{name}[] is not an object")
        modality = _get(item, "modality")
        key = modality.upper() if isinstance(modality, str) else "MODALITY_UNSPECIFIED"
        out[key] = out.get(key, 0) + _token_count(item, "tokenCount", f"{where}.{name}[]")
    return out


def _split(total: int, parts: dict[str, int]) -> tuple[int, int, int]:
    """(text, audio, other) of a count and its per-modality breakdown; what the breakdown
    does not explain is ``other``."""
    text, audio = parts.get("TEXT", 0), parts.get("AUDIO", 0)
    listed = sum(parts.values())
    return text, audio, listed - text - audio + max(0, total - listed)


def usage_counts(meta: dict[str, Any]) -> dict[str, int]:
    """The token counts of a ``usageMetadata`` (``types.UsageMetadata``) as
    :class:`~app.events.Usage` fields.

    Input is ``promptTokenCount`` plus ``toolUsePromptTokenCount`` (tool results fed back
    to the model); output is ``responseTokenCount`` plus ``thoughtsTokenCount`` (thinking,
    counted as text). ``cachedContentTokenCount`` is a subset of the prompt. Counts the
    ``*TokensDetails`` lists do not break down by modality are ``other``; so is whatever
    of ``totalTokenCount`` the other counts do not explain.

    Raises:
        ValueError: a count or a details list has the wrong shape.
    """
    w = "usageMetadata"
    prompt = _token_count(meta, "promptTokenCount", w)
    tool = _token_count(meta, "toolUsePromptTokenCount", w)
    cached = _token_count(meta, "cachedContentTokenCount", w)
    response = _token_count(meta, "responseTokenCount", w)
    thoughts = _token_count(meta, "thoughtsTokenCount", w)
    total = _token_count(meta, "totalTokenCount", w)
    p_text, p_audio, p_other = _split(prompt, _by_modality(meta, "promptTokensDetails", w))
    t_text, t_audio, t_other = _split(tool, _by_modality(meta, "toolUsePromptTokensDetails", w))
    c_text, c_audio, c_other = _split(cached, _by_modality(meta, "cacheTokensDetails", w))
    r_text, r_audio, r_other = _split(response, _by_modality(meta, "responseTokensDetails", w))
    known = prompt + tool + response + thoughts
    return {
        "text_input": p_text + t_text,
        "audio_input": p_audio + t_audio,
        "other_input": p_other + t_other + max(0, total - known),
        "cached_text_input": c_text,
        "cached_audio_input": c_audio,
        "cached_other_input": c_other,
        "text_output": r_text + thoughts,
        "audio_output": r_audio,
        "other_output": r_other,
    }


def _decode_b64(data: str) -> bytes:
    """Proto-JSON ``bytes``: standard or URL-safe base64, padding optional."""
    text = data.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    return base64.b64decode(text, validate=True)


def _b64_size(data: str) -> int:
    text = data.strip().rstrip("=")
    return len(text) * 3 // 4


def _elide_audio(msg: dict[str, Any]) -> dict[str, Any]:
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


def to_gemini_schema(schema: Any) -> Any:
    """A JSON schema cut down to Gemini's OpenAPI-subset ``Schema`` (camelCase keys).

    Unknown keywords (``additionalProperties``, ``$ref``, ``oneOf``…) are dropped; a
    ``type`` list such as ``["string", "null"]`` becomes ``type`` + ``nullable``; type
    names are upper-cased as the proto enum spells them.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for raw_key, value in schema.items():
        key = raw_key if raw_key in _SCHEMA_KEYS else _camel(raw_key)
        if key not in _SCHEMA_KEYS:
            continue
        if key == "type":
            types = value if isinstance(value, list) else [value]
            names = [t for t in types if isinstance(t, str) and t.lower() in _SCHEMA_TYPES]
            if "null" in (n.lower() for n in names) and len(names) > 1:
                out["nullable"] = True
                names = [n for n in names if n.lower() != "null"]
            if names:
                out["type"] = names[0].upper()
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: to_gemini_schema(v) for k, v in value.items()}
        elif key == "items":
            out[key] = to_gemini_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [to_gemini_schema(v) for v in value]
        elif key == "enum" and isinstance(value, list):
            out[key] = [str(v) for v in value]  # Schema.enum is a list of strings
        else:
            out[key] = value
    return out


def _realtime_input_config(td: TurnDetection) -> dict[str, Any]:
    """``realtimeInputConfig`` from the profile's (OpenAI-shaped) turn detection.

    Mapping (documented enum meanings, google-genai ``StartSensitivity`` /
    ``EndSensitivity``): ``type: none`` disables automatic activity detection (the bridge
    then sends ``activityStart``/``activityEnd``). ``threshold`` above 0.5 (harder to
    trigger) → ``START_SENSITIVITY_LOW``, below 0.5 → ``START_SENSITIVITY_HIGH``, 0.5 →
    server default. ``semantic_vad`` eagerness ``high`` → ``END_SENSITIVITY_HIGH`` (ends
    speech more often), ``low`` → ``END_SENSITIVITY_LOW``, else server default.
    ``interrupt_response: false`` → ``NO_INTERRUPTION``.
    """
    handling = "START_OF_ACTIVITY_INTERRUPTS" if td.interrupt_response else "NO_INTERRUPTION"
    if td.type == "none":
        return {"automaticActivityDetection": {"disabled": True}, "activityHandling": handling}
    aad: dict[str, Any] = {"disabled": False}
    if td.threshold > 0.5:
        aad["startOfSpeechSensitivity"] = "START_SENSITIVITY_LOW"
    elif td.threshold < 0.5:
        aad["startOfSpeechSensitivity"] = "START_SENSITIVITY_HIGH"
    if td.type == "semantic_vad" and td.eagerness in ("high", "low"):
        aad["endOfSpeechSensitivity"] = f"END_SENSITIVITY_{td.eagerness.upper()}"
    aad["prefixPaddingMs"] = td.prefix_padding_ms
    aad["silenceDurationMs"] = td.silence_duration_ms
    return {"automaticActivityDetection": aad, "activityHandling": handling}


def _function_declaration(tool: ToolSpec) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": tool.name}
    if tool.description:
        decl["description"] = tool.description
    params = to_gemini_schema(tool.parameters)
    # An object with no properties is not allowed by Gemini; omit it (no arguments).
    if isinstance(params, dict) and params.get("properties"):
        decl["parameters"] = params
    return decl


def gemini_voice(voice: str) -> str:
    """The Gemini prebuilt voice for a profile voice (OpenAI names map to ``Puck``)."""
    v = voice.strip()
    if not v or v.lower() in OPENAI_VOICES:
        return DEFAULT_VOICE
    return v


def gemini_model(model: str) -> str:
    """``models/<id>`` for ``setup.model``; names that already hold a ``/`` (``models/…``,
    Vertex ``projects/…/publishers/google/models/…``) are kept; ``gpt-…`` means
    :data:`DEFAULT_MODEL`.
    """
    m = model.strip()
    if not m or m.lower().startswith("gpt-"):
        m = DEFAULT_MODEL
    return m if "/" in m else f"models/{m}"


class GeminiProtocol(ProviderProtocol):
    """The Gemini Live dialect. Synchronous; call from one thread (the bridge loop).

    Args:
        profile: the agent profile.
        clock: the one clock (kept for stamps of locally made events).
        resumption_handle: a handle from an earlier connection's
            ``sessionResumptionUpdate``, to resume that session.

    Attributes:
        latest_handle: the newest resumable handle seen (or the one given), for the
            reconnect after a ``goAway``.
        session_id: from ``setupComplete`` (empty until then or if the server sends none).
    """

    name = "gemini"
    input_rate = INPUT_RATE
    output_rate = OUTPUT_RATE

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
        self._pending: list[Event] = []

    # --- client messages ----------------------------------------------------------------

    @staticmethod
    def _out(msg: dict[str, Any], type_: str, log: bool = True) -> Outgoing:
        return Outgoing(
            text=json.dumps(msg, separators=(",", ":")), type=type_, log=msg if log else None
        )

    def setup_message(self) -> dict[str, Any]:
        """The ``{"setup": …}`` message (PROTOCOLS.md §3 "Client messages")."""
        p = self.profile
        speech: dict[str, Any] = {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": gemini_voice(p.voice)}}
        }
        language = p.language or p.transcription.language
        if language:
            speech["languageCode"] = language
        setup: dict[str, Any] = {
            "model": gemini_model(p.model),
            "generationConfig": {"responseModalities": ["AUDIO"], "speechConfig": speech},
        }
        if p.instructions:
            setup["systemInstruction"] = {"parts": [{"text": p.instructions}]}
        if p.tools:
            setup["tools"] = [{"functionDeclarations": [_function_declaration(t) for t in p.tools]}]
        setup["realtimeInputConfig"] = _realtime_input_config(p.turn_detection)
        setup["inputAudioTranscription"] = {}
        setup["outputAudioTranscription"] = {}
        setup["sessionResumption"] = {"handle": self._resume_from} if self._resume_from else {}
        setup["contextWindowCompression"] = {"slidingWindow": {}}
        return {"setup": setup}

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
        follows is transcribed into a new one.
        """
        if self._user_answered:
            # The closed item's final transcript goes out with the next receive().
            self._pending += self._close_user(self._clock.now_ns(), None)
        return [self._out({"realtimeInput": {"activityStart": {}}}, "realtimeInput")]

    def activity_end(self) -> list[Outgoing]:
        """Manual VAD: the caller stopped speaking (the model answers)."""
        return [self._out({"realtimeInput": {"activityEnd": {}}}, "realtimeInput")]

    def audio_stream_end(self) -> list[Outgoing]:
        """The microphone stopped (automatic VAD only): flush what is buffered."""
        return [self._out({"realtimeInput": {"audioStreamEnd": True}}, "realtimeInput")]

    def tool_result(self, call_id: str, name: str, output: str) -> list[Outgoing]:
        """``toolResponse`` for one call. ``output`` JSON of the form ``{"error": …}`` is
        sent as ``response.error``; any other JSON (or text) as ``response.output``.
        """
        try:
            value: Any = json.loads(output)
        except (ValueError, RecursionError):
            value = output
        if isinstance(value, dict) and set(value) == {"error"}:
            response = {"error": value["error"]}
        else:
            response = {"output": value}
        fr: dict[str, Any] = {"name": name, "response": response}
        if call_id and call_id not in self._made_up_call_ids:
            fr = {"id": call_id, **fr}
        if self._turn is not None:
            self._tool_result_sent = True
        msg = {"toolResponse": {"functionResponses": [fr]}}
        return [self._out(msg, "toolResponse")]

    def replay(self, history: list[HistoryItem]) -> list[Outgoing]:
        """Nothing after a resumption (the server restores the session from its handle);
        otherwise the finished turns as one ``clientContent`` with ``turnComplete: false``
        so the model does not answer them.
        """
        if self._resume_from:
            return []
        turns: list[dict[str, Any]] = []
        for h in history:
            if h.role == "user" and h.text:
                turns.append({"role": "user", "parts": [{"text": h.text}]})
            elif h.role == "assistant" and h.text:
                turns.append({"role": "model", "parts": [{"text": h.text}]})
            elif h.role == "tool_call":
                try:
                    args = json.loads(h.arguments or "{}")
                except ValueError:
                    args = {}
                call = {"id": h.call_id, "name": h.name, "args": args}
                turns.append({"role": "model", "parts": [{"functionCall": call}]})
            elif h.role == "tool_result":
                try:
                    value: Any = json.loads(h.text)
                except ValueError:
                    value = h.text
                resp = {"id": h.call_id, "name": h.name, "response": {"output": value}}
                turns.append({"role": "user", "parts": [{"functionResponse": resp}]})
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

    # --- server messages ----------------------------------------------------------------

    def receive(self, text: str | bytes, t_ns: int) -> list[Event]:
        """Parse one server message (text or a binary frame of UTF-8 JSON); never raises."""
        pending, self._pending = self._pending, []
        return pending + self._receive(text, t_ns)

    def _receive(self, text: str | bytes, t_ns: int) -> list[Event]:
        if len(text) > MAX_MESSAGE_SIZE:
            return [self._malformed(t_ns, f"message of {len(text)} bytes is too large", None)]
        try:
            if isinstance(text, bytes | bytearray | memoryview):
                text = bytes(text).decode("utf-8")
            msg = json.loads(text)
        except (ValueError, RecursionError):
            return [self._malformed(t_ns, "not JSON text", None)]
        if not isinstance(msg, dict):
            return [self._malformed(t_ns, "not a JSON object", None)]
        try:
            raw = _elide_audio(msg)
        except RecursionError:  # pragma: no cover - elision only walks a fixed path
            raw = {}
        try:
            parsed = self._parse(msg)
        except _Malformed as exc:
            return [self._malformed(t_ns, str(exc), raw)]
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            return [self._malformed(t_ns, f"bad field ({type(exc).__name__})", raw)]
        return self._apply(parsed, t_ns, raw)

    @staticmethod
    def _malformed(t_ns: int, why: str, raw: dict[str, Any] | None) -> ProviderErrorEvent:
        return ProviderErrorEvent(
            t_ns=t_ns, raw=raw, code="malformed_message", message=f"malformed Gemini message: {why}"
        )

    def _parse(self, msg: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Validate ``msg`` into a list of operations, without touching any state.

        Raises:
            _Malformed: a known field has the wrong shape.
        """
        ops: list[tuple[Any, ...]] = []
        known = set(SERVER_KEYS) | {_snake(k) for k in SERVER_KEYS}
        for key in msg:
            if key not in known:
                ops.append(("unknown", str(key)))
        if not msg:
            ops.append(("unknown", "{}"))

        setup = _get(msg, "setupComplete")
        if setup is not None:
            if not isinstance(setup, dict):
                raise _Malformed("setupComplete is not an object")
            ops.append(("setup", _str(setup, "sessionId") or ""))

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
                ops.append(("speech_started", offset_ms))
            elif kind in ("ACTIVITY_END", "VAD_SIGNAL_TYPE_EOS"):
                ops.append(("speech_stopped", offset_ms))

        usage = _obj(msg, "usageMetadata")
        usage_op: tuple[Any, ...] | None = None
        if usage is not None:
            try:
                usage_op = ("usage", usage, usage_counts(usage))
            except ValueError as exc:  # the rest of the message still counts
                usage_op = ("bad_usage", str(exc))

        content = _obj(msg, "serverContent")
        if content is not None:
            ops.extend(self._parse_content(content))

        tool_call = _obj(msg, "toolCall")
        if tool_call is not None:
            calls: list[tuple[str | None, str, str]] = []
            for fc in _list(tool_call, "functionCalls"):
                if not isinstance(fc, dict):
                    raise _Malformed("functionCalls[] is not an object")
                args = _get(fc, "args")
                if args is None:
                    args = {}
                if not isinstance(args, dict):
                    raise _Malformed("functionCalls[].args is not an object")
                calls.append((_str(fc, "id"), _str(fc, "name") or "", json.dumps(args)))
            ops.append(("tool_calls", calls))

        cancel = _obj(msg, "toolCallCancellation")
        if cancel is not None:
            ids = _list(cancel, "ids")
            if not all(isinstance(i, str) for i in ids):
                raise _Malformed("toolCallCancellation.ids is not a list of strings")
            ops.append(("tool_cancel", tuple(ids)))

        resumption = _obj(msg, "sessionResumptionUpdate")
        if resumption is not None:
            ops.append(
                ("resumption", _str(resumption, "newHandle") or "", _bool(resumption, "resumable"))
            )

        go_away = _obj(msg, "goAway")
        if go_away is not None:
            left = _get(go_away, "timeLeft")
            try:
                ms = parse_duration_ms(left) if left is not None else 0
            except ValueError:
                raise _Malformed("goAway.timeLeft is not a duration") from None
            ops.append(("go_away", min(max(0, ms), _MAX_GO_AWAY_MS)))
        if usage_op is not None:
            # Usage on a frame belongs to the model turn that frame is part of: apply it
            # after the frame's content opened that turn and before turnComplete ends it.
            ends = [i for i, op in enumerate(ops) if op[0] == "turn_complete"]
            ops.insert(ends[0] if ends else len(ops), usage_op)
        return ops

    @staticmethod
    def _parse_content(content: dict[str, Any]) -> list[tuple[Any, ...]]:
        ops: list[tuple[Any, ...]] = []
        if _bool(content, "interrupted"):
            ops.append(("interrupted",))
        tx = _obj(content, "inputTranscription")
        if tx is not None:
            ops.append(("input_tx", _str(tx, "text") or "", _bool(tx, "finished")))
        turn = _obj(content, "modelTurn")
        if turn is not None:
            chunks: list[tuple[bytes, int]] = []
            for part in _list(turn, "parts"):
                if not isinstance(part, dict):
                    raise _Malformed("modelTurn.parts[] is not an object")
                blob = _obj(part, "inlineData")
                if blob is None:
                    continue
                mime = (_str(blob, "mimeType") or "").lower()
                data = _str(blob, "data") or ""
                if not mime.startswith("audio/pcm"):
                    continue  # not audio we can play (image, other codec): ignored
                try:
                    pcm = _decode_b64(data)
                except (binascii.Error, ValueError):
                    raise _Malformed("inlineData.data is not base64") from None
                if len(pcm) % 2:
                    raise _Malformed("inlineData.data is not whole PCM16 samples")
                m = _RATE.search(mime)
                rate = int(m.group(1)) if m else OUTPUT_RATE
                if not 1000 <= rate <= 192000:
                    raise _Malformed(f"unusable audio rate {rate}")
                chunks.append((pcm, rate))
            ops.append(("model_turn", chunks))
        tx = _obj(content, "outputTranscription")
        if tx is not None:
            ops.append(("output_tx", _str(tx, "text") or "", _bool(tx, "finished")))
        if _bool(content, "generationComplete"):
            ops.append(("generation_complete",))
        if _bool(content, "turnComplete"):
            ops.append(("turn_complete", _str(content, "turnCompleteReason") or ""))
        return ops

    # --- applying operations ------------------------------------------------------------

    def _apply(self, ops: list[tuple[Any, ...]], t_ns: int, raw: dict[str, Any]) -> list[Event]:
        out: list[Event] = []
        for op in ops:
            kind = op[0]
            if kind == "unknown":
                out.append(UnknownMessage(t_ns=t_ns, raw=raw, type=op[1]))
            elif kind == "setup":
                self.session_id = op[1]
                out.append(
                    SessionConfigured(t_ns=t_ns, raw=raw, provider=self.name, session_id=op[1])
                )
            elif kind == "speech_started":
                if self._user_answered:
                    out += self._close_user(t_ns, raw)
                item = self._user_item()
                out.append(
                    ServerSpeechStarted(t_ns=t_ns, raw=raw, item_id=item, audio_start_ms=op[1])
                )
            elif kind == "speech_stopped":
                item = self._user_item()
                out.append(
                    ServerSpeechStopped(t_ns=t_ns, raw=raw, item_id=item, audio_end_ms=op[1])
                )
            elif kind == "usage":
                out += self._on_usage(op[1], op[2], t_ns, raw)
            elif kind == "bad_usage":
                out.append(self._malformed(t_ns, op[1], raw))
            elif kind == "interrupted":
                out += self._interrupted(t_ns, raw)
            elif kind == "input_tx":
                out += self._input_transcript(op[1], op[2], t_ns, raw)
            elif kind == "model_turn":
                out += self._model_content(op[1], t_ns, raw)
            elif kind == "output_tx":
                out += self._output_transcript(op[1], t_ns, raw)
            elif kind == "generation_complete":
                pass  # audio may still be playing; the turn ends at turnComplete
            elif kind == "turn_complete":
                out += self._finish_turn(t_ns, raw, reason=op[1])
                if self._user_answered:
                    out += self._close_user(t_ns, raw)
            elif kind == "tool_calls":
                out += self._tool_calls(op[1], t_ns, raw)
            elif kind == "tool_cancel":
                out.append(ToolCallCancelled(t_ns=t_ns, raw=raw, call_ids=op[1]))
            elif kind == "resumption":
                handle, resumable = op[1], op[2]
                if resumable and handle:
                    self.latest_handle = handle
                out.append(ResumptionUpdate(t_ns=t_ns, raw=raw, handle=handle, resumable=resumable))
            elif kind == "go_away":
                out.append(GoAway(t_ns=t_ns, raw=raw, time_left_ms=op[1]))
        return out

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
        status = "cancelled" if self._turn_interrupted else "completed"
        usage, self._usage = self._usage, None
        counts, self._usage_counts = self._usage_counts, None
        if counts is not None:
            out.append(self._usage_event(turn, counts, t_ns, raw))
        out.append(
            ResponseFinished(
                t_ns=t_ns, raw=raw, response_id=turn, status=status, reason=reason, usage=usage
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
        self, chunks: list[tuple[bytes, int]], t_ns: int, raw: dict[str, Any]
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
        # ordered with the model turn, PROTOCOLS.md §3): a delta of that turn.
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
        self, calls: list[tuple[str | None, str, str]], t_ns: int, raw: dict[str, Any]
    ) -> list[Event]:
        out = self._ensure_turn(t_ns, raw)
        turn = self._turn or ""
        for call_id, name, arguments in calls:
            if not call_id:
                self._call_seq += 1
                call_id = f"gcall-{self._call_seq}"
                self._made_up_call_ids.add(call_id)
            out.append(
                ToolCallRequested(
                    t_ns=t_ns,
                    raw=raw,
                    call_id=call_id,
                    name=name,
                    arguments=arguments,
                    response_id=turn,
                )
            )
        return out
