"""Suite runs on disk: ``<data dir>/suite-runs/<run id>.json``.

Each run is one JSON object (the ``--json`` object plus ``status``, ``started``,
``finished``, ``suite_path``, ``provider`` and ``tags``), ``0600`` in a ``0700`` folder,
laid out so that a finished case can be added without rewriting the cases before it
(:func:`run_text`): every field but ``cases`` on the first line, which ends ``"cases": [``,
then one case per line, then ``]}``. A run is written in full, atomically
(:func:`app.store.writer.atomic_write_text`), as it starts and as it ends; in between
:class:`RunFile` writes each finished case over the closing ``]}`` and puts it back after
the case, then syncs the file: a few kilobytes per case, however many came before (the
file was rewritten in full after every case until 2026-12: a 2,000-case run wrote 4.95 GB;
figures in ``docs/suites.md``). After every case the file is a complete JSON object that
lists every finished case, so a crash or Ctrl-C keeps them and every reader sees them as
before; that is why the cases are not kept in a journal beside the file, which each reader
(coverage's automatic verdicts read the file as it stands) would have to merge. While a
run is ``running`` its ``summary`` is the start's (:func:`load_run` and :func:`list_runs`
recompute it) and its cases are in the order they finished (sorted by index when read).

A run is written ``running`` at its start with ``process``, the identity of the process
running it (pid, its start stamp, boot id, host). A stored run still ``running`` whose
process is gone (``kill -9``, a power cut: :func:`app.store.reader.writer_alive`) is
closed out ``crashed`` the next time it is read (:func:`load_run`, :func:`list_runs`):
its summary is recomputed (``crashed: true``, how many of the ``planned`` cases ran),
``finished`` is when the file was last written, the sessions of the cases that were in
progress are listed under ``unfinished_sessions`` (from the session index; the sessions
themselves are closed out ``incomplete`` by :func:`app.store.reader.recover_unfinished`),
and the file is written back. Nothing in it is dropped; a case whose write the crash cut
(a power cut mid-write) leaves an unreadable last line, which is left out. A run from
another host, which this one cannot check, is left as it is.

Files written before this layout (one object, indented) read as they always did.
"""

from __future__ import annotations

import json
import os
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
#: A stored run's first line ends with this; its cases follow, one per line.
_CASES_OPEN = '"cases": ['
#: A stored run's last line: written again after each case added in place.
_TAIL = "\n]}\n"


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


def _by_index(cases: list[Any]) -> list[Any]:
    """``cases`` in case order (a running run's file has them in finish order); entries
    without an integer ``index`` keep their order, after the others."""

    def key(case: Any) -> int:
        index = case.get("index") if isinstance(case, dict) else None
        return index if isinstance(index, int) else 1 << 62

    return sorted(cases, key=key)


def _summarized(run: dict[str, Any], until: datetime, crashed: bool) -> None:
    """Recompute ``run``'s summary from its cases (sorted), as of ``until``."""
    from app.suite.summary import summarize_run

    wall_s = 0.0
    try:
        wall_s = max(0.0, (until - datetime.fromisoformat(str(run.get("started")))).total_seconds())
    except (TypeError, ValueError):
        pass
    run["cases"] = _by_index(run["cases"])
    cases = [c for c in run["cases"] if isinstance(c, dict)]
    old: dict[str, Any] = run["summary"] if isinstance(run.get("summary"), dict) else {}
    planned = old["planned"] if isinstance(old.get("planned"), int) else len(cases)
    run["summary"] = summarize_run(cases, planned, False, wall_s, crashed=crashed)


def _close_out(run: dict[str, Any], path: Path, root: Path) -> dict[str, Any]:
    """Mark ``run`` (stored at ``path``) ``crashed`` and write it back (see the module
    docstring); a failed write leaves the file as it was and the run still shows
    ``crashed``."""
    try:
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        mtime = datetime.now(UTC)
    _summarized(run, mtime, crashed=True)
    run["status"] = "crashed"
    run["finished"] = mtime.isoformat(timespec="seconds")
    run["recovered_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    run["unfinished_sessions"] = _unfinished_sessions(run, root)
    try:
        atomic_write_text(path, run_text(run))
    except (StoreError, OSError):
        pass  # read-only store: shown crashed all the same, written back next time
    return run


def _recovered(run: dict[str, Any], path: Path, root: Path) -> dict[str, Any]:
    """``run`` as read from ``path``: closed out if its process died; a live one with its
    summary brought up to date (the stored one is the start's)."""
    if run.get("status") != "running":
        return run
    if not run_alive(run):
        return _close_out(run, path, root)
    _summarized(run, datetime.now(UTC), crashed=False)
    return run


def run_text(run: dict[str, Any]) -> str:
    """``run`` as stored (module docstring): every field but ``cases`` on the first line,
    ending ``"cases": [``; one case per line; ``]}``. It is one JSON object, the same
    value as ``run`` but for the key order (``cases`` last)."""
    head = json_text({k: v for k, v in run.items() if k != "cases"})
    lines = [json_text(c) for c in run.get("cases") or []]
    first = head[:-1] + (", " if len(head) > 2 else "") + _CASES_OPEN
    return first + ("\n" + ",\n".join(lines) if lines else "") + _TAIL


class RunFile:
    """The stored file of one run while it runs: written in full (:meth:`write`) as the
    run starts and ends, and each finished case added in place in between (:meth:`add`):
    the case is written over the file's closing ``]}``, which follows it again, then the
    file is synced. The cost of a case does not grow with the cases before it, and after
    each the file is a complete run object (module docstring).

    One writer per run, one call at a time (the runner holds a lock); blocking I/O, so
    the runner calls it off its loop.

    Args:
        root: the data folder (default: :func:`app.store.paths.data_dir`).
        run_id: the run's id.
    """

    def __init__(self, root: Path | None, run_id: str) -> None:
        self.root = root
        self.run_id = run_id
        self.path: Path | None = None
        self._end = 0  # where the closing "\n]}\n" starts
        self._count = 0  # cases in the file
        self._pending: list[str] = []  # cases whose write failed, tried again with the next

    def write(self, run: dict[str, Any]) -> Path:
        """Write ``run`` (with its cases so far) in full, atomically; return the file.

        Raises:
            StoreError: the file cannot be written.
        """
        text = run_text(run)
        self.path = save_text(text, self.run_id, self.root)
        self._end = len(text.encode("utf-8", "backslashreplace")) - len(_TAIL)
        self._count = len(run.get("cases") or [])
        self._pending.clear()
        return self.path

    def add(self, case: dict[str, Any]) -> None:
        """Add one finished case to the file written by :meth:`write` and sync it.

        Raises:
            StoreError: it cannot be written (the case is written with the next one, or
                by the next :meth:`write`).
        """
        if self.path is None:
            raise StoreError(f"suite run {self.run_id} was not written yet")
        self._pending.append(json_text(case))
        seps = ["\n" if self._count + i == 0 else ",\n" for i in range(len(self._pending))]
        body = "".join(sep + line for sep, line in zip(seps, self._pending, strict=True))
        data = (body + _TAIL).encode("utf-8", "backslashreplace")
        flags = os.O_WRONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags)
            try:
                os.lseek(fd, self._end, os.SEEK_SET)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                # A longer write that failed part-way may have left bytes past the tail.
                os.ftruncate(fd, self._end + len(data))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path} ({exc.strerror or exc})") from None
        self._end += len(data) - len(_TAIL)
        self._count += len(self._pending)
        self._pending.clear()


def save_text(text: str, run_id: str, root: Path | None = None) -> Path:
    """Write a run's stored text (:func:`run_text`) atomically as run ``run_id``; return
    the file.

    Raises:
        StoreError: the file cannot be written.
    """
    path = runs_dir(root) / f"{run_id}.json"
    atomic_write_text(path, text)
    return path


def save_run(run: dict[str, Any], root: Path | None = None) -> Path:
    """Write ``run`` (with its ``run_id``) in full, atomically; return the file.

    Raises:
        StoreError: the file cannot be written.
    """
    return save_text(run_text(run), str(run["run_id"]), root)


def _salvage(text: str) -> dict[str, Any] | None:
    """A ``running`` run whose last case was cut mid-write (a power cut, or read while
    being written): its first line and every whole case line after it; None if ``text``
    is not such a run."""
    first, _, rest = text.partition("\n")
    if not first.endswith(_CASES_OPEN):
        return None
    try:
        run = json.loads(first + "]}")
    except (ValueError, RecursionError):
        return None
    if not isinstance(run, dict) or run.get("status") != "running":
        return None
    for line in rest.split("\n"):
        try:
            case = json.loads(line.removesuffix(","))
        except (ValueError, RecursionError):
            break
        if not isinstance(case, dict):
            break
        run["cases"].append(case)
    return run


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_RUN_BYTES:
            raise ConfigError(f"{what} is too large", str(path))
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except ValueError:
            data = _salvage(text)
            if data is None:
                raise
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
