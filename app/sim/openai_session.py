"""The OpenAI Realtime GA session as the simulator keeps it: its defaults and its updates.

Pure: :func:`merged_session` applies a client's ``session.update`` to the session, checking
it as the GA service does (``session.type`` required and ``realtime``; unknown keys, audio
formats other than ``audio/pcm`` at 24 kHz, ``audio/pcmu`` and ``audio/pcma``, and turn
detection other than ``server_vad``/``semantic_vad`` are refused with
:class:`BadRequest`, which the dialect answers with an ``invalid_request_error``). Field
names follow ``openai.types.realtime`` (SDK 3.57).
"""

from __future__ import annotations

import copy
from typing import Any

_FORMATS = ("audio/pcm", "audio/pcmu", "audio/pcma")
_SESSION_KEYS = frozenset({
    "type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice",
    "max_output_tokens", "tracing", "truncation", "prompt", "include", "reasoning",
    "parallel_tool_calls",
})
_INPUT_KEYS = frozenset({"format", "transcription", "noise_reduction", "turn_detection"})
_OUTPUT_KEYS = frozenset({"format", "voice", "speed"})


class BadRequest(Exception):
    """A client message the GA service would refuse (answered with an ``error`` event).

    Attributes:
        code: the error code (``invalid_value``, ``unknown_parameter`` ...).
        param: the offending parameter's path, if any.
    """

    def __init__(self, message: str, code: str = "invalid_value", param: str | None = None):
        super().__init__(message)
        self.code = code
        self.param = param


def default_session(model: str) -> dict[str, Any]:
    """The GA session the simulator reports in ``session.created``."""
    return {
        "type": "realtime",
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "You are a simulated voice agent (voiceprobe simulator).",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "include": None,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": _full_turn_detection({"type": "server_vad"}),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "marin",
                "speed": 1.0,
            },
        },
    }


def _full_turn_detection(td: dict[str, Any]) -> dict[str, Any]:
    if td.get("type") == "semantic_vad":
        base: dict[str, Any] = {"type": "semantic_vad", "eagerness": "auto",
                                "create_response": True, "interrupt_response": True}
    else:
        base = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                "silence_duration_ms": 500, "create_response": True,
                "interrupt_response": True, "idle_timeout_ms": None}
    base.update(td)
    return base


def codec_of(fmt: dict[str, Any] | None) -> str:
    """The simulator's codec name (see :class:`app.sim.audio_input.InputConfig`) of a format."""
    t = (fmt or {}).get("type", "audio/pcm")
    return {"audio/pcmu": "pcmu", "audio/pcma": "pcma"}.get(t, "pcm")


def merged_session(current: dict[str, Any], sess: Any) -> dict[str, Any]:
    """``current`` with the client's ``session`` update applied (a new dict).

    Raises:
        BadRequest: the update is refused (``current`` is unchanged).
    """
    if not isinstance(sess, dict):
        raise BadRequest("Missing required parameter: 'session'.",
                         "missing_required_parameter", "session")
    if "type" not in sess:
        raise BadRequest("Missing required parameter: 'session.type'.",
                         "missing_required_parameter", "session.type")
    if sess["type"] != "realtime":
        raise BadRequest("The simulator only supports session.type 'realtime'.",
                         "invalid_value", "session.type")
    for k in sess:
        if k not in _SESSION_KEYS:
            raise BadRequest(f"Unknown parameter: 'session.{k}'.", "unknown_parameter",
                             f"session.{k}")
    new = copy.deepcopy(current)
    for k, v in sess.items():
        if k != "audio":
            new[k] = copy.deepcopy(v)
    audio = sess.get("audio")
    if audio is not None:
        _merge_audio(new, audio)
    return new


def _merge_audio(new: dict[str, Any], audio: Any) -> None:
    if not isinstance(audio, dict):
        raise BadRequest("Invalid type for 'session.audio': expected an object.",
                         "invalid_type", "session.audio")
    for side, keys in (("input", _INPUT_KEYS), ("output", _OUTPUT_KEYS)):
        part = audio.get(side)
        if part is None:
            continue
        if not isinstance(part, dict):
            raise BadRequest(f"Invalid type for 'session.audio.{side}'.", "invalid_type",
                             f"session.audio.{side}")
        for k, v in part.items():
            where = f"session.audio.{side}.{k}"
            if k not in keys:
                raise BadRequest(f"Unknown parameter: '{where}'.", "unknown_parameter",
                                 where)
            if k == "format":
                v = _check_format(v, where)
            if k == "turn_detection" and v is not None:
                if not isinstance(v, dict) or v.get("type") not in ("server_vad",
                                                                    "semantic_vad"):
                    raise BadRequest(f"Invalid value for '{where}'.", "invalid_value",
                                     f"{where}.type")
                v = _full_turn_detection(v)
            new["audio"][side][k] = copy.deepcopy(v)
    for k in audio:
        if k not in ("input", "output"):
            raise BadRequest(f"Unknown parameter: 'session.audio.{k}'.",
                             "unknown_parameter", f"session.audio.{k}")


def _check_format(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict) or v.get("type") not in _FORMATS:
        raise BadRequest(f"Invalid value for '{where}.type'. Supported values are: "
                         + ", ".join(f"'{f}'" for f in _FORMATS) + ".", "invalid_value",
                         f"{where}.type")
    if v["type"] == "audio/pcm":
        rate = v.get("rate", 24000)
        if rate != 24000:
            raise BadRequest(f"Invalid value for '{where}.rate'. Only 24000 is supported.",
                             "invalid_value", f"{where}.rate")
        return {"type": "audio/pcm", "rate": 24000}
    return {"type": v["type"]}


