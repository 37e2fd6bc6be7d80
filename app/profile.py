"""Agent profiles: what the agent is (provider, model, voice, instructions, VAD, tools).

A profile is a YAML or JSON file, or a built-in name (``resources/profiles/<name>.yaml``).
Loading validates every field and raises :class:`~app.errors.ConfigError` naming the file
and the field; no secret is ever stored in a profile (keys live in the keyring).

Sizes are bounded: the file is parsed within the budget of :mod:`app.bounded_yaml` (at
most 100,000 values and 2,000,000 characters with YAML aliases expanded), ``instructions``,
``transcription.prompt`` and tool descriptions hold at most :data:`MAX_LONG_TEXT_CHARS`
characters, and every other text field at most :data:`MAX_TEXT_CHARS`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.audio.aec import AudioProcessing
from app.bounded_yaml import load_yaml
from app.errors import ConfigError

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
PROVIDERS = ("openai", "gemini", "twilio-ws")
#: Providers reached without an API key: the agent's own server (its URL is required).
STREAM_PROVIDERS = ("twilio-ws",)
#: Most ``params`` entries a ``twilio-ws`` profile may carry.
MAX_PARAMS = 64
AUDIO_FORMATS = ("pcm16", "pcmu", "pcma")
VAD_TYPES = ("server_vad", "semantic_vad", "none")
EAGERNESS = ("low", "medium", "high", "auto")
TOOL_IMPLS = ("mock", "http")
#: Longest ``instructions``, ``transcription.prompt`` or tool ``description``.
MAX_LONG_TEXT_CHARS = 100_000
#: Longest value of every other text field (name, model, voice, url...).
MAX_TEXT_CHARS = 4_096
LONG_TEXT_FIELDS = frozenset({"instructions", "prompt", "description"})


@dataclass(frozen=True, slots=True)
class TurnDetection:
    """Server-side turn detection. ``type`` is ``server_vad``, ``semantic_vad`` or ``none``
    (manual: the bridge commits on local VAD end).
    """

    type: str = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    eagerness: str = "auto"
    create_response: bool = True
    interrupt_response: bool = True


@dataclass(frozen=True, slots=True)
class Transcription:
    """Input (caller) transcription settings."""

    model: str = "gpt-4o-mini-transcribe"
    language: str = ""
    prompt: str = ""


@dataclass(frozen=True, slots=True)
class ToolImpl:
    """How voiceprobe runs a tool: ``mock`` (canned result) or ``http`` (POST to ``url``)."""

    type: str = "mock"
    result: Any = None
    latency_ms: int = 0
    failure_rate: float = 0.0
    url: str = ""
    timeout_ms: int = 5000


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the agent may call: JSON-schema ``parameters`` plus its implementation."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    impl: ToolImpl = field(default_factory=ToolImpl)


@dataclass(frozen=True, slots=True)
class Profile:
    """An agent profile. ``provider`` is ``openai``, ``gemini`` or ``twilio-ws``; ``url``
    overrides the provider's default endpoint (``twilio-ws``: the agent's Media Streams
    URL, here or on the command line). ``params`` are a ``twilio-ws`` stream's
    ``start.customParameters`` (a secret-named one is redacted from everything written,
    see docs/twilio.md).
    """

    name: str = "default"
    provider: str = "openai"
    model: str = "gpt-realtime"
    voice: str = "marin"
    instructions: str = "You are a helpful voice assistant. Keep answers short."
    language: str = ""
    audio_format: str = "pcm16"
    turn_detection: TurnDetection = field(default_factory=TurnDetection)
    transcription: Transcription = field(default_factory=Transcription)
    tools: tuple[ToolSpec, ...] = ()
    tool_call_limit: int = 20
    url: str = ""
    params: dict[str, str] = field(default_factory=dict)
    #: Mic mode's mic-path processing (echo cancellation on by default; docs/audio.md).
    audio_processing: AudioProcessing = field(default_factory=AudioProcessing)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (a profile holds no secret)."""
        return asdict(self)


def _check_type(value: Any, kind: type | tuple[type, ...], path: str, fld: str) -> Any:
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ConfigError(f"expected a number, got {value!r}", path, fld)
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"expected {names}, got {type(value).__name__}", path, fld)
    return value


def _choice(value: Any, choices: tuple[str, ...], path: str, fld: str) -> str:
    _check_type(value, str, path, fld)
    if value not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}, got {value!r}", path, fld)
    return str(value)


def _build(cls: type, data: Any, path: str, prefix: str, specs: dict[str, Any]) -> Any:
    """Build dataclass ``cls`` from mapping ``data`` checking each key against ``specs``
    (key → type, tuple of choices as ``("choice", (...))``, or a callable).
    """
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {type(data).__name__}", path, prefix or None)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        shown = key if isinstance(key, str) and key.isprintable() else repr(key)  # one line
        fld = f"{prefix}.{shown}" if prefix else shown
        if key not in specs:
            raise ConfigError(f"unknown field (known: {', '.join(sorted(specs))})", path, fld)
        spec = specs[key]
        if isinstance(spec, tuple) and spec and spec[0] == "choice":
            kwargs[key] = _choice(value, spec[1], path, fld)
        elif callable(spec) and not isinstance(spec, type):
            kwargs[key] = spec(value, path, fld)
        else:
            _check_type(value, spec, path, fld)
            if spec is str:
                _check_length(value, key, path, fld)
            kwargs[key] = float(value) if spec == (int, float) else value
    return cls(**kwargs)


def _check_length(value: str, key: str, path: str, fld: str) -> None:
    limit = MAX_LONG_TEXT_CHARS if key in LONG_TEXT_FIELDS else MAX_TEXT_CHARS
    if len(value) > limit:
        raise ConfigError(f"too long ({len(value)} characters; at most {limit})", path, fld)


def _non_negative(kind: type) -> Any:
    def check(value: Any, path: str, fld: str) -> Any:
        _check_type(value, (int, float) if kind is float else int, path, fld)
        if value < 0:
            raise ConfigError(f"must not be negative, got {value!r}", path, fld)
        return kind(value)

    return check


def _fraction(value: Any, path: str, fld: str) -> float:
    _check_type(value, (int, float), path, fld)
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"must be between 0 and 1, got {value!r}", path, fld)
    return float(value)


def _tool(data: Any, path: str, fld: str) -> ToolSpec:
    if not isinstance(data, dict):
        raise ConfigError("each tool must be a mapping", path, fld)
    if "name" not in data:
        raise ConfigError("a tool needs a name", path, fld)
    impl = _build(
        ToolImpl,
        data.get("impl"),
        path,
        f"{fld}.impl",
        {
            "type": ("choice", TOOL_IMPLS),
            "result": lambda v, p, f: v,
            "latency_ms": _non_negative(int),
            "failure_rate": _fraction,
            "url": str,
            "timeout_ms": _non_negative(int),
        },
    )
    if impl.type == "http" and not impl.url.startswith(("http://", "https://")):
        raise ConfigError("an http tool needs an http:// or https:// url", path, f"{fld}.impl.url")
    rest = {k: v for k, v in data.items() if k != "impl"}
    spec = _build(
        ToolSpec,
        rest,
        path,
        fld,
        {"name": str, "description": str, "parameters": dict},
    )
    if not spec.name.replace("_", "").replace("-", "").isalnum() or len(spec.name) > 64:
        raise ConfigError("a tool name is 1-64 letters, digits, '_' or '-'", path, f"{fld}.name")
    return ToolSpec(spec.name, spec.description, spec.parameters, impl)


def _tools(value: Any, path: str, fld: str) -> tuple[ToolSpec, ...]:
    _check_type(value, list, path, fld)
    tools = tuple(_tool(item, path, f"{fld}[{i}]") for i, item in enumerate(value))
    names = [t.name for t in tools]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"duplicate tool name {sorted(dup)[0]!r}", path, fld)
    return tools


def profile_from_dict(data: Any, path: str = "<profile>") -> Profile:
    """Validate ``data`` (parsed YAML/JSON) and build a :class:`Profile`.

    Raises:
        ConfigError: naming ``path`` and the bad field.
    """
    profile: Profile = _build(
        Profile,
        data,
        path,
        "",
        {
            "name": str,
            "provider": ("choice", PROVIDERS),
            "model": str,
            "voice": str,
            "instructions": str,
            "language": str,
            "audio_format": ("choice", AUDIO_FORMATS),
            "turn_detection": lambda v, p, f: _build(
                TurnDetection,
                v,
                p,
                f,
                {
                    "type": ("choice", VAD_TYPES),
                    "threshold": _fraction,
                    "prefix_padding_ms": _non_negative(int),
                    "silence_duration_ms": _non_negative(int),
                    "eagerness": ("choice", EAGERNESS),
                    "create_response": bool,
                    "interrupt_response": bool,
                },
            ),
            "transcription": lambda v, p, f: _build(
                Transcription, v, p, f, {"model": str, "language": str, "prompt": str}
            ),
            "tools": _tools,
            "tool_call_limit": _non_negative(int),
            "url": str,
            "params": _params,
            "audio_processing": lambda v, p, f: _build(
                AudioProcessing,
                v,
                p,
                f,
                {"aec": _on_off, "noise_suppression": bool, "auto_gain": bool},
            ),
        },
    )
    if profile.params and profile.provider not in STREAM_PROVIDERS:
        raise ConfigError(
            f"only applies to provider {' or '.join(STREAM_PROVIDERS)}", path, "params"
        )
    stream = profile.provider in STREAM_PROVIDERS
    if stream and profile.url and not profile.url.startswith(("ws://", "wss://")):
        raise ConfigError(
            f"provider {profile.provider} needs the agent's ws:// or wss:// URL", path, "url"
        )
    return profile


def _on_off(value: Any, path: str, fld: str) -> bool:
    """``on``/``off`` (YAML also reads a bare on/off as true/false)."""
    if isinstance(value, bool):
        return value
    if value in ("on", "off"):
        return bool(value == "on")
    raise ConfigError(f"must be on or off, got {value!r}", path, fld)


def _params(value: Any, path: str, fld: str) -> dict[str, str]:
    """A stream's custom parameters: a mapping of short text names to text values."""
    _check_type(value, dict, path, fld)
    if len(value) > MAX_PARAMS:
        raise ConfigError(f"at most {MAX_PARAMS} entries", path, fld)
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip() or not key.isprintable():
            raise ConfigError("names are non-empty printable text", path, fld)
        _check_type(item, str, path, f"{fld}.{key}")
        _check_length(item, key, path, f"{fld}.{key}")
        out[key] = item
    return out


def parse_structured(text: str, path: str) -> Any:
    """Parse YAML (a superset of JSON) text within the size budget of
    :mod:`app.bounded_yaml`, raising ConfigError with the location.
    """
    return load_yaml(text, path, "YAML/JSON")


def read_text_file(path: Path, what: str = "file") -> str:
    """Read a UTF-8 text file, raising ConfigError (never OSError/UnicodeError).

    Args:
        path: the file.
        what: what the file is, for the message (``suite file not found``).

    Raises:
        ConfigError: missing, a folder, unreadable or not UTF-8 (naming the first bad
            byte), one line that names ``path``.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", str(path)) from None
    except IsADirectoryError:
        raise ConfigError(f"is a folder, not a {what}", str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} ({exc.strerror or exc})", str(path)) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", str(path)) from None


def load_profile(name_or_path: str | None) -> Profile:
    """Load a profile by built-in name or file path; ``None`` gives the default profile.

    Raises:
        ConfigError: unknown name, unreadable file, or invalid field.
    """
    if not name_or_path:
        name_or_path = "default"
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = RESOURCES / "profiles" / f"{name_or_path}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in (RESOURCES / "profiles").glob("*.yaml"))
            raise ConfigError(f"no profile named {name_or_path!r} (built-in: {', '.join(known)})")
    text = read_text_file(path)
    return profile_from_dict(parse_structured(text, str(path)), str(path))


def profile_to_json(profile: Profile) -> str:
    """Serialize a profile as JSON text."""
    return json.dumps(profile.to_dict(), indent=2)
