"""Suite runs on disk: ``<data dir>/suite-runs/<run id>.json``.

Each run is one JSON object (the ``--json`` object plus ``status``, ``started``,
``finished``, ``suite_path``, ``provider`` and ``tags``), rewritten atomically
(:func:`app.store.writer.atomic_write_text`, ``0600``) after every finished case, so an
interrupted or crashed run keeps every case that finished. The folder is ``0700``.

A run is written ``running`` at its start with ``process``, the identity of the process
running it (pid, its start stamp, boot id, host). A stored run still ``running`` whose
process is gone (``kill -9``, a power cut: :func:`app.store.reader.writer_alive`) is
closed out ``crashed`` the next time it is read (:func:`load_run`, :func:`list_runs`):
its summary is recomputed (``crashed: true``, how many of the ``planned`` cases ran),
``finished`` is when the file was last written, the sessions of the cases that were in
progress are listed under ``unfinished_sessions`` (from the session index; the sessions
themselves are closed out ``incomplete`` by :func:`app.store.reader.recover_unfinished`),
and the file is written back. Nothing in it is dropped. A run from another host, which
this one cannot check, is left as it is.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import ConfigError, StoreError
from app.private_files import private_dir
from app.store.paths import data_dir
from app.store.writer import INDEX_FILE, atomic_write_text, process_identity
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


def run_process() -> dict[str, Any]:
    """The identity of the running process for a run file's ``process``: ``pid``, ``proc_start``,
    ``boot_id`` (see :func:`app.store.writer.process_identity`) and ``host``."""
    return {**process_identity(), "host": socket.gethostname()}


def run_alive(run: dict[str, Any]) -> bool:
    """Whether the process of a ``running`` run may still be running it: True unless its
    recorded process is gone on this host. A run with no recorded process (written
    before voiceprobe recorded it) counts as gone; one from another host as alive (it
    cannot be checked from here)."""
    from app.store.reader import writer_alive

    proc = run.get("process")
    if not isinstance(proc, dict):
        return False
    host = proc.get("host")
    if isinstance(host, str) and host and host != socket.gethostname():
        return True
    return writer_alive(proc)


def _unfinished_sessions(run: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    """Sessions tagged with ``run``'s id that no case of it names: the calls in progress
    when its process died (from the session index; none if it cannot be read)."""
    from app.store.index import SessionIndex

    rid = str(run.get("run_id"))
    known = {c.get("session_id") for c in run["cases"] if isinstance(c, dict)}
    planned = (run.get("summary") or {}).get("planned")
    limit = int(planned) if isinstance(planned, int) and planned > 0 else 1000
    try:
        rows = SessionIndex(root / INDEX_FILE).list(limit=limit, query=f"run={rid}")
    except (StoreError, OSError):
        return []
    out = []
    for row in reversed(rows):  # oldest first
        tags = [str(t) for t in row.get("tags") or []]
        if f"run={rid}" not in tags or row.get("id") in known:
            continue
        case = next((t.partition("=")[2] for t in tags if t.startswith("case=")), None)
        out.append({"session_id": row.get("id"), "case": case})
    return out


def _close_out(run: dict[str, Any], path: Path, root: Path) -> dict[str, Any]:
    """Mark ``run`` (stored at ``path``) ``crashed`` and write it back (see the module
    docstring); a failed write leaves the file as it was and the run still shows
    ``crashed``."""
    from app.suite.summary import summarize_run

    try:
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        mtime = datetime.now(UTC)
    wall_s = 0.0
    try:
        wall_s = max(0.0, (mtime - datetime.fromisoformat(str(run.get("started")))).total_seconds())
    except (TypeError, ValueError):
        pass
    cases = [c for c in run["cases"] if isinstance(c, dict)]
    old: dict[str, Any] = run["summary"] if isinstance(run.get("summary"), dict) else {}
    planned = old["planned"] if isinstance(old.get("planned"), int) else len(cases)
    run["status"] = "crashed"
    run["finished"] = mtime.isoformat(timespec="seconds")
    run["recovered_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    run["summary"] = summarize_run(cases, planned, False, wall_s, crashed=True)
    run["unfinished_sessions"] = _unfinished_sessions(run, root)
    try:
        atomic_write_text(path, json_text(run, indent=1) + "\n")
    except (StoreError, OSError):
        pass  # read-only store: shown crashed all the same, written back next time
    return run


def _recovered(run: dict[str, Any], path: Path, root: Path) -> dict[str, Any]:
    if run.get("status") == "running" and not run_alive(run):
        return _close_out(run, path, root)
    return run


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
    """A run by id (from the store) or by path (a stored run or a ``--json`` file). A
    stored run whose process died is closed out ``crashed`` first (module docstring).

    Raises:
        ConfigError: no such run, or the file is not a suite run.
    """
    if _RUN_ID.fullmatch(ref):
        path = runs_dir(root) / f"{ref}.json"
        if path.is_file():
            return _recovered(_read(path, "suite run"), path, path.parent.parent)
    path = Path(ref).expanduser()
    if path.is_file():
        return _read(path, "suite run file")
    raise ConfigError(f"no suite run {ref!r} (not a stored run id nor a file)")


def list_runs(root: Path | None = None) -> list[dict[str, Any]]:
    """Every stored run, newest first (unreadable files are skipped); runs whose process
    died are closed out ``crashed`` first (module docstring)."""
    out: list[dict[str, Any]] = []
    folder = runs_dir(root)
    for path in sorted(folder.glob("*.json"), reverse=True):
        if not _RUN_ID.fullmatch(path.stem):
            continue
        try:
            out.append(_recovered(_read(path, "suite run"), path, folder.parent))
        except ConfigError:
            continue
    return out
