"""The ``setup`` message: a profile translated into Gemini Live's session configuration.

The client half of the dialect that does not depend on the session's progress: the model
and voice names, the system instruction, tools as ``functionDeclarations`` (JSON schema cut
down to Gemini's OpenAPI subset), turn detection as ``realtimeInputConfig``, transcription,
resumption and context compression. Only camelCase is sent. Pure functions of the
profile; :class:`~app.providers.gemini.protocol.GeminiProtocol` sends their result.
"""

from __future__ import annotations

from typing import Any

from app.profile import Profile, ToolSpec, TurnDetection
from app.providers.gemini.casing import camel as _camel

#: Gemini's own default voice; used when the profile names an OpenAI voice (the two
#: vendors' voice names do not overlap) or none.
DEFAULT_VOICE = "Puck"
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
)

#: Used when the profile still names an OpenAI model (``gpt-…``): a Gemini Developer API
#: native-audio Live model (firebase.google.com/docs/ai-logic/live-api, "Supported models").
DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"

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


def realtime_input_config(td: TurnDetection) -> dict[str, Any]:
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


def function_declaration(tool: ToolSpec) -> dict[str, Any]:
    """One ``FunctionDeclaration``: name, description and the parameters' schema (left
    out when it declares no properties)."""
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


def setup_message(profile: Profile, resume_from: str | None = None) -> dict[str, Any]:
    """The ``{"setup": …}`` message for ``profile`` (docs/protocols.md#gemini-client-messages).

    Args:
        profile: the agent profile.
        resume_from: a resumption handle from an earlier session (``None``: a new one).
    """
    p = profile
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
        setup["tools"] = [{"functionDeclarations": [function_declaration(t) for t in p.tools]}]
    setup["realtimeInputConfig"] = realtime_input_config(p.turn_detection)
    setup["inputAudioTranscription"] = {}
    setup["outputAudioTranscription"] = {}
    setup["sessionResumption"] = {"handle": resume_from} if resume_from else {}
    setup["contextWindowCompression"] = {"slidingWindow": {}}
    return {"setup": setup}
