"""Where voiceprobe keeps its data and settings, and how session ids are made.

The data folder is the platform's user data folder (platformdirs) unless the environment
variable ``VOICEPROBE_HOME`` is set; then data lives directly under it and settings under
``$VOICEPROBE_HOME/config``. Tests and CI always set it to a temporary folder. Folders
created here are ``0700`` (see :mod:`app.private_files`).
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

from app.errors import StoreError
from app.private_files import private_dir

ENV_HOME = "VOICEPROBE_HOME"
APP_NAME = "voiceprobe"


def _ensure(path: Path, *, tighten: bool = False) -> Path:
    """Create ``path`` (and parents) ``0700``; ``tighten``: an existing one too."""
    try:
        return private_dir(path, tighten=tighten)
    except OSError as exc:
        raise StoreError(f"cannot create folder {path} ({exc.strerror or exc})") from None


def _home() -> Path | None:
    value = os.environ.get(ENV_HOME, "").strip()
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """The data folder (``$VOICEPROBE_HOME`` or the platform user data folder), created on
    demand.

    Raises:
        StoreError: the folder cannot be created.
    """
    home = _home()
    return _ensure(home if home is not None else Path(platformdirs.user_data_dir(APP_NAME)))


def config_dir() -> Path:
    """The settings folder (``$VOICEPROBE_HOME/config`` or the platform user config folder),
    created on demand.

    Raises:
        StoreError: the folder cannot be created.
    """
    home = _home()
    if home is not None:
        return _ensure(home / "config")
    return _ensure(Path(platformdirs.user_config_dir(APP_NAME)))


def sessions_dir(root: Path | None = None) -> Path:
    """``<data dir>/sessions`` (or ``root/sessions``), created on demand, ``0700``."""
    return _ensure((root if root is not None else data_dir()) / "sessions", tighten=True)


def samples_dir(root: Path | None = None) -> Path:
    """``<data dir>/samples`` (or ``root/samples``), created on demand, ``0700``."""
    return _ensure((root if root is not None else data_dir()) / "samples", tighten=True)


def new_session_id(now: datetime | None = None, root: Path | None = None) -> str:
    """Make a sortable, unique session id such as ``20261127-134501-3f9a``.

    The id is the time of ``now`` to the second (as given; default: the current UTC time)
    followed by 4 random hex digits. When ``root`` (a data folder) is given, ids whose
    folder already exists under ``root/sessions`` are skipped.
    """
    when = now if now is not None else datetime.now(UTC)
    stamp = when.strftime("%Y%m%d-%H%M%S")
    for _ in range(64):
        sid = f"{stamp}-{secrets.token_hex(2)}"
        if root is None or not (root / "sessions" / sid).exists():
            return sid
    raise StoreError(f"cannot find a free session id for {stamp}")
