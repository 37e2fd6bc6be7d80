"""The Gemini Live ``setup`` message as the simulator reads it (pure).

:func:`read_setup` checks a client's ``setup`` as the service does (unknown fields, a
missing ``model``, response modalities other than ``AUDIO``, non-object sub-messages are
refused with :class:`Invalid`, which the dialect answers by closing the socket with 1007)
and returns what the simulator uses of it. Fields are read in camelCase or snake_case (the
SDK sends snake_case), docs/protocols.md#gemini-live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.providers.gemini.casing import camel as _camel
from app.providers.gemini.casing import get_field as _get
from app.providers.gemini.casing import typed_field
from app.sim.audio_input import InputConfig

_SETUP_KEYS = frozenset({
    "model", "generationConfig", "systemInstruction", "tools", "realtimeInputConfig",
    "sessionResumption", "contextWindowCompression", "inputAudioTranscription",
    "outputAudioTranscription", "proactivity", "explicitVadSignal", "historyConfig",
    "avatarConfig", "safetySettings", "labels",
})


class Invalid(Exception):
    """A client message the service would refuse (the socket is closed with 1007)."""


@dataclass(frozen=True, slots=True)
class GeminiSetup:
    """What the simulator uses of a ``setup`` message.

    Attributes:
        model: the model asked for.
        input_config: the listening side's settings (``realtimeInputConfig``).
        input_transcription: send ``inputTranscription`` (it was asked for).
        output_transcription: send ``outputTranscription``.
        resumption: ``sessionResumption`` was present (send resumption updates).
        handle: the resumption handle to resume from, if any (not yet checked).
        tools: names of the declared functions.
        system_texts: the texts of ``systemInstruction``.
    """

    model: str
    input_config: InputConfig
    input_transcription: bool
    output_transcription: bool
    resumption: bool
    handle: object
    tools: tuple[str, ...]
    system_texts: tuple[str, ...]


def obj_field(obj: dict[str, Any], name: str, where: str) -> dict[str, Any] | None:
    """Field ``name`` of ``obj`` (either casing), None if absent.

    Raises:
        Invalid: the field is present and not an object.
    """
    return typed_field(
        obj, name, dict, lambda n: Invalid(f"Invalid value at '{where}.{n}': expected an object.")
    )


def content_texts(content: Any) -> list[str]:
    """The texts of a ``Content`` (``{parts: [{text}]}``), or of a plain string."""
    if isinstance(content, str):
        return [content]
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p["text"] for p in parts or []
            if isinstance(p, dict) and isinstance(p.get("text"), str)]


def read_setup(setup: dict[str, Any]) -> GeminiSetup:
    """Check a client's ``setup`` and return what the simulator uses of it.

    Raises:
        Invalid: the service would refuse it.
    """
    for key in setup:
        if _camel(key) not in _SETUP_KEYS:
            raise Invalid(f'Invalid JSON payload received. Unknown name "{key[:60]}" at '
                          "'setup': Cannot find field.")
    model = _get(setup, "model")
    if not isinstance(model, str) or not model.strip():
        raise Invalid("setup.model is required.")
    gen = obj_field(setup, "generationConfig", "setup") or {}
    modalities = _get(gen, "responseModalities") or ["AUDIO"]
    if not isinstance(modalities, list) or [str(m).upper() for m in modalities] != ["AUDIO"]:
        raise Invalid("The simulator only supports responseModalities [AUDIO].")
    ric = obj_field(setup, "realtimeInputConfig", "setup") or {}
    aad = obj_field(ric, "automaticActivityDetection", "setup.realtimeInputConfig") or {}
    silence = _get(aad, "silenceDurationMs")
    prefix = _get(aad, "prefixPaddingMs")
    handling = _get(ric, "activityHandling") or "START_OF_ACTIVITY_INTERRUPTS"
    sr = obj_field(setup, "sessionResumption", "setup")
    names: list[str] = []
    tools = _get(setup, "tools") or []
    for tool in tools if isinstance(tools, list) else []:
        decls = _get(tool, "functionDeclarations") if isinstance(tool, dict) else None
        for d in decls if isinstance(decls, list) else []:
            if isinstance(d, dict) and isinstance(d.get("name"), str):
                names.append(d["name"])
    return GeminiSetup(
        model=model,
        input_config=InputConfig(
            codec="pcm16",
            vad=not bool(_get(aad, "disabled")),
            silence_ms=int(silence) if isinstance(silence, int | float) else 500,
            prefix_ms=int(prefix) if isinstance(prefix, int | float) else 300,
            create_response=True,
            interrupt_response=handling != "NO_INTERRUPTION",
        ),
        input_transcription=_get(setup, "inputAudioTranscription") is not None,
        output_transcription=_get(setup, "outputAudioTranscription") is not None,
        resumption=sr is not None,
        handle=_get(sr, "handle") if sr is not None else None,
        tools=tuple(names),
        system_texts=tuple(content_texts(_get(setup, "systemInstruction"))),
    )
