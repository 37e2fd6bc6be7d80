"""Suite runs on disk: ``<data dir>/suite-runs/<run id>.json``.

Each run is one JSON object (the ``--json`` object plus ``status``, ``started``,
``finished``, ``suite_path``, ``provider`` and ``tags``), rewritten atomically
(:func:`app.store.writer.atomic_write_text`, ``0600``) after every finished case, so an
interrupted or crashed run keeps every case that finished. The folder is ``0700``.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import ConfigError, StoreError
from app.private_files import private_dir
from app.store.paths import data_dir
from app.store.writer import atomic_write_text
from app.textsafe import json_text

_RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")
#: Largest run file read back (a --json file or a stored run).
MAX_RUN_BYTES = 64 * 2**20


def runs_dir(root: Path | None = None) -> Path:
    """``<data dir>/suite-runs`` (or under ``root``), created ``0700``.

    Raises:
        StoreError: it cannot be created.
    """
    folder = (root if root is not None else data_dir()) / "suite-runs"
    try:
        return private_dir(folder, tighten=True)
    except OSError as exc:
        raise StoreError(f"cannot create folder {folder} ({exc.strerror or exc})") from None


def new_run_id(root: Path | None = None) -> str:
    """A sortable, unique run id such as ``20261203-101500-3f9a`` (UTC time + 4 hex)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = runs_dir(root)
    for _ in range(64):
        rid = f"{stamp}-{secrets.token_hex(2)}"
        if not (folder / f"{rid}.json").exists():
            return rid
    raise StoreError(f"cannot find a free run id for {stamp}")


def save_run(run: dict[str, Any], root: Path | None = None) -> Path:
    """Write ``run`` (with its ``run_id``) atomically; return the file.

    Raises:
        StoreError: the file cannot be written.
    """
    path = runs_dir(root) / f"{run['run_id']}.json"
    atomic_write_text(path, json_text(run, indent=1) + "\n")
    return path


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_RUN_BYTES:
            raise ConfigError(f"{what} is too large", str(path))
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", str(path)) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{what} cannot be read ({type(exc).__name__})", str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ConfigError(f"{what} is not a suite run (no cases list)", str(path))
    return data


def load_run(ref: str, root: Path | None = None) -> dict[str, Any]:
    """A run by id (from the store) or by path (a stored run or a ``--json`` file).

    Raises:
        ConfigError: no such run, or the file is not a suite run.
    """
    if _RUN_ID.fullmatch(ref):
        path = runs_dir(root) / f"{ref}.json"
        if path.is_file():
            return _read(path, "suite run")
    path = Path(ref).expanduser()
    if path.is_file():
        return _read(path, "suite run file")
    raise ConfigError(f"no suite run {ref!r} (not a stored run id nor a file)")


def list_runs(root: Path | None = None) -> list[dict[str, Any]]:
    """Every stored run, newest first (unreadable files are skipped)."""
    out: list[dict[str, Any]] = []
    for path in sorted(runs_dir(root).glob("*.json"), reverse=True):
        if not _RUN_ID.fullmatch(path.stem):
            continue
        try:
            out.append(_read(path, "suite run"))
        except ConfigError:
            continue
    return out
