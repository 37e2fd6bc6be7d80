"""Non-secret desktop settings as JSON in ``<config dir>/settings.json``.

API keys never go here (they live in the OS keyring, :mod:`app.secrets`). Unknown keys in
the file are kept on save, so a newer version's settings survive an older one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from app.errors import ConfigError

FILE_NAME = "settings.json"
#: The line shown at call start while recording (when the disclosure option is on).
DISCLOSURE_LINE = "This call is recorded for quality testing."


@dataclass(frozen=True, slots=True)
class Settings:
    """Desktop settings.

    Attributes:
        openai_url: OpenAI Realtime endpoint override ("" = the provider default).
        gemini_url: Gemini Live endpoint override ("" = the provider default).
        data_dir: data folder override ("" = ``$VOICEPROBE_HOME`` or the platform folder).
        recording: record each call (events, turns and stereo audio) to the data folder.
        recording_disclosure: while recording, show :data:`DISCLOSURE_LINE` in the main
            window's banner when a call starts.
        slow_turn_ms: voice-to-voice above which a turn is flagged slow.
        input_device: last input device name ("" = system default).
        output_device: last output device name ("" = system default).
        profile: last profile name or path.
    """

    openai_url: str = ""
    gemini_url: str = ""
    data_dir: str = ""
    recording: bool = True
    recording_disclosure: bool = True
    slow_turn_ms: int = 1200
    input_device: str = ""
    output_device: str = ""
    profile: str = "default"


def default_path() -> Path:
    """``app.store.paths.config_dir() / settings.json`` (honours ``$VOICEPROBE_HOME``)."""
    from app.store.paths import config_dir

    return config_dir() / FILE_NAME


def data_root(settings: Settings) -> Path | None:
    """The data folder the settings choose, or ``None`` for the default
    (``$VOICEPROBE_HOME`` or the platform folder). ``~`` is expanded.
    """
    value = settings.data_dir.strip()
    return Path(value).expanduser() if value else None


def endpoint_url(settings: Settings, provider: str) -> str:
    """The endpoint override for ``provider`` (``openai``/``gemini``; ``""`` = default)."""
    return str(getattr(settings, f"{provider}_url", "") or "")


def load_settings(path: Path | None = None) -> Settings:
    """Read settings; a missing file gives the defaults.

    Raises:
        ConfigError: the file is unreadable or not a JSON object (names the file).
    """
    p = path or default_path()
    if not p.exists():
        return Settings()
    data = _read(p)
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}
    defaults = Settings()
    for key, value in data.items():
        if key not in known:
            continue
        expected = type(getattr(defaults, key))
        if expected is int and isinstance(value, int | float) and not isinstance(value, bool):
            value = int(value)
        if not isinstance(value, expected):
            raise ConfigError(f"expected {expected.__name__}", str(p), key)
        values[key] = value
    return replace(defaults, **values)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write settings atomically (keeping unknown keys already in the file); returns the
    path.

    Raises:
        ConfigError: the file cannot be written.
    """
    p = path or default_path()
    merged: dict[str, Any] = {}
    if p.exists():
        try:
            merged = _read(p)
        except ConfigError:
            merged = {}
    merged.update(asdict(settings))
    tmp = p.with_suffix(".json.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(merged, indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(p)
    except OSError as exc:
        raise ConfigError(f"cannot write settings ({exc.strerror})", str(p)) from None
    return p


def _read(p: Path) -> dict[str, Any]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read settings ({exc.strerror})", str(p)) from None
    except ValueError:
        raise ConfigError("not valid JSON", str(p)) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object", str(p))
    return data
