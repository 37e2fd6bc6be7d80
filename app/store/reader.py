"""Read session folders back, and repair the ones a crash left behind.

:func:`load_session` reads a folder even while its writer is still appending, and even
after a crash (a truncated last line of ``events.jsonl`` is skipped and counted).
:func:`recover_unfinished` runs at start-up: it closes out sessions whose writing process
is gone (status ``incomplete``, WAV header repaired) and re-indexes folders the SQLite
index does not know.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.audio.recorder import MIC_RAW_WAV
from app.errors import StoreError
from app.events import EventBase, event_from_dict
from app.metrics.records import TurnRecord
from app.private_files import private_dir
from app.store.index import SessionIndex
from app.store.writer import (
    AUDIO_FILE,
    EVENTS_FILE,
    SESSION_FILE,
    TURNS_FILE,
    atomic_write_text,
    boot_id,
    dumps,
    process_start_stamp,
)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session as read from disk.

    Attributes:
        session_id: the folder name.
        path: the session folder.
        meta: ``session.json``.
        events: ``events.jsonl``, one dict per readable line, in order.
        turns: ``turns.json`` (empty if not written yet).
        skipped_lines: lines of ``events.jsonl`` that were not valid JSON (normally 0, or 1
            after a crash mid-write).
    """

    session_id: str
    path: Path
    meta: dict[str, Any]
    events: list[dict[str, Any]]
    turns: list[dict[str, Any]]
    skipped_lines: int = 0

    @property
    def audio_path(self) -> Path | None:
        """``audio.wav`` if it exists."""
        p = self.path / AUDIO_FILE
        return p if p.exists() else None

    @property
    def status(self) -> str:
        return str(self.meta.get("status", ""))


def session_failures(record: SessionRecord) -> list[dict[str, str]]:
    """Why the session's call failed: ``[{"code", "message", "fix"}]`` from its
    ``CallFailed`` events (normally one), else from the ``errors`` list of
    ``session.json``'s summary (sessions written before ``CallFailed`` existed have only a
    count there, and then nothing can be said). Values are text from outside: print them
    through :func:`app.textsafe.printable`.
    """
    found = [
        {k: str(e.get(k) or "") for k in ("code", "message", "fix")}
        for e in record.events
        if e.get("kind") == "CallFailed"
    ]
    if found or record.meta.get("status") == "complete":
        return found
    summary = record.meta.get("summary")
    errors = summary.get("errors") if isinstance(summary, dict) else None
    if not isinstance(errors, list):
        return []
    return [
        {k: str(e.get(k) or "") for k in ("code", "message", "fix")}
        for e in errors[:1]
        if isinstance(e, dict) and e.get("message")
    ]


def session_events(
    record: SessionRecord, kinds: dict[str, type[EventBase]] | None = None
) -> list[EventBase]:
    """The session's stored events, rebuilt as events (:func:`app.events.event_from_dict`).

    Lines of an unknown kind or missing a required field are skipped (a newer writer must
    not break an older reader); audio payloads come back as silence of their stored length.

    Args:
        record: a session read by :func:`load_session`.
        kinds: event classes by kind (default: the core's, :data:`app.events.KINDS`).
    """
    out: list[EventBase] = []
    for d in record.events:
        ev = event_from_dict(d, kinds) if isinstance(d, dict) else None
        if ev is not None:
            out.append(ev)
    return out


def session_turns(record: SessionRecord) -> list[TurnRecord]:
    """The session's ``turns.json`` as turn records (:meth:`TurnRecord.from_dict`)."""
    return [TurnRecord.from_dict(t) for t in record.turns]


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoreError(f"{path} is missing") from None
    except UnicodeDecodeError:
        raise StoreError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path} ({exc.strerror or exc})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StoreError(f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
    except RecursionError:
        raise StoreError(f"{path} is not valid JSON (nested too deeply)") from None


def read_events(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Read an ``events.jsonl`` file: ``(events, skipped_lines)``.

    A missing file gives no events. Lines that are not a JSON object (a line cut by a
    crash, or a partial line the writer is still writing) are skipped and counted.
    """
    events: list[dict[str, Any]] = []
    skipped = 0
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return events, 0
    except OSError as exc:
        raise StoreError(f"cannot read {path} ({exc.strerror or exc})") from None
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            skipped += 1
            continue
        if isinstance(obj, dict):
            events.append(obj)
        else:
            skipped += 1
    return events, skipped


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_turn(turn: Any, where: str, path: Path) -> dict[str, Any]:
    def bad(fld: str, what: str) -> StoreError:
        return StoreError(f"{path}: {where}{fld}: {what}")

    if not isinstance(turn, dict):
        raise bad("", "expected an object")
    if not isinstance(turn.get("index"), int) or isinstance(turn.get("index"), bool):
        raise bad(".index", "expected an integer")
    for key in ("user_transcript", "agent_transcript"):
        if not isinstance(turn.get(key, ""), str):
            raise bad(f".{key}", "expected text")
    if not isinstance(turn.get("interrupted", False), bool):
        raise bad(".interrupted", "expected true or false")
    spans = turn.get("spans", {})
    if not isinstance(spans, dict):
        raise bad(".spans", "expected an object")
    for name, span in spans.items():
        if not isinstance(span, dict):
            raise bad(f".spans.{name}", "expected an object")
        for key in ("start_ns", "end_ns"):
            value = span.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise bad(f".spans.{name}.{key}", "expected an integer")
        if not _is_number(span.get("ms")):
            raise bad(f".spans.{name}.ms", "expected a number")
    calls = turn.get("tool_calls", [])
    if not isinstance(calls, list):
        raise bad(".tool_calls", "expected a list")
    for i, call in enumerate(calls):
        if not isinstance(call, dict):
            raise bad(f".tool_calls[{i}]", "expected an object")
        for key in ("name", "arguments", "status"):
            if call.get(key) is not None and not isinstance(call[key], str):
                raise bad(f".tool_calls[{i}].{key}", "expected text")
        if call.get("ms") is not None and not _is_number(call["ms"]):
            raise bad(f".tool_calls[{i}].ms", "expected a number")
    return turn


def check_turns(raw: Any, path: Path) -> list[dict[str, Any]]:
    """Validate the turn records of a ``turns.json`` (which may have been hand-edited).

    Each turn needs an integer ``index``; ``user_transcript``/``agent_transcript`` (text),
    ``interrupted`` (bool), ``spans`` (name → object with a numeric ``ms`` and integer
    ``start_ns``/``end_ns`` if present) and ``tool_calls`` (objects with text ``name``,
    ``arguments``, ``status`` and a numeric or null ``ms``) are optional: readers use
    ``turn.get(key, <empty>)`` for them.

    Returns:
        ``raw``, checked.

    Raises:
        StoreError: one line naming ``path`` and the first bad field.
    """
    if not isinstance(raw, list):
        raise StoreError(f"{path} is not a JSON list")
    return [_check_turn(t, f"turns[{i}]", path) for i, t in enumerate(raw)]


def load_session(session_dir: Path) -> SessionRecord:
    """Read a session folder.

    Raises:
        StoreError: the folder or its ``session.json`` is missing or unreadable, or
            ``turns.json`` is corrupt.
    """
    session_dir = Path(session_dir)
    if not session_dir.is_dir():
        raise StoreError(f"no session folder at {session_dir}")
    meta = _read_json(session_dir / SESSION_FILE)
    if not isinstance(meta, dict):
        raise StoreError(f"{session_dir / SESSION_FILE} is not a JSON object")
    events, skipped = read_events(session_dir / EVENTS_FILE)
    turns: list[dict[str, Any]] = []
    if (session_dir / TURNS_FILE).exists():
        turns = check_turns(_read_json(session_dir / TURNS_FILE), session_dir / TURNS_FILE)
    return SessionRecord(session_dir.name, session_dir, meta, events, turns, skipped)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def writer_alive(meta: dict[str, Any]) -> bool:
    """Whether the process that wrote ``meta`` (``pid``, ``proc_start``, ``boot_id``) still
    runs. A reboot, a dead pid, or a pid reused by another process all mean "gone".
    """
    pid = meta.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return False
    recorded_boot = meta.get("boot_id") or ""
    if recorded_boot and boot_id() and recorded_boot != boot_id():
        return False
    if not _pid_alive(pid):
        return False
    recorded_start = meta.get("proc_start")
    if isinstance(recorded_start, int):
        current = process_start_stamp(pid)
        if current is not None and current != recorded_start:
            return False  # the pid now belongs to another process
        if current is None and sys.platform.startswith("linux"):
            return False  # vanished between the two checks
    return True


def _iso_mtime(path: Path) -> str | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()
    except OSError:
        return None


def _repair_audio(path: Path) -> str | None:
    """Repair the WAV header; returns an error text, or ``None`` when fine/absent."""
    if not path.exists():
        return None
    try:
        from app.audio.wavio import repair_wav_header
    except ImportError:
        return "app.audio.wavio.repair_wav_header is not available"
    try:
        repair_wav_header(path)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, recovery goes on
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def _close_out(record: SessionRecord) -> dict[str, Any]:
    meta = dict(record.meta)
    events_path = record.path / EVENTS_FILE
    ended_at = _iso_mtime(events_path) or _iso_mtime(record.path / SESSION_FILE)
    meta["status"] = "incomplete"
    meta["ended_at"] = ended_at
    last_t = record.events[-1].get("t_ns") if record.events else None
    meta["ended_ns"] = last_t if isinstance(last_t, int) else None
    meta["events"] = len(record.events)
    meta["skipped_lines"] = record.skipped_lines
    meta["recovered_at"] = datetime.now(UTC).isoformat()
    audio_error = _repair_audio(record.path / AUDIO_FILE)
    if audio_error:
        meta["audio_repair_error"] = audio_error
    raw_error = _repair_audio(record.path / MIC_RAW_WAV)  # mic mode's raw capture
    if raw_error:
        meta["mic_raw_repair_error"] = raw_error
    atomic_write_text(record.path / SESSION_FILE, dumps(meta, indent=2) + "\n")
    return meta


def unreadable_reason(folder: Path, error: StoreError) -> str:
    """Why ``folder`` cannot be read, short: ``error``'s message with the folder's own
    path left out (``session.json is not valid JSON (line 3)``). The reader's messages
    name the file, the bad field and the fault, never a value the file holds."""
    return str(error).replace(f"{folder}{os.sep}", "")


def recover_unfinished(
    root: Path,
    index: SessionIndex | None = None,
    on_unreadable: Callable[[Path, str], None] | None = None,
) -> list[str]:
    """Close out crashed sessions and re-index unknown folders under ``root/sessions``.

    ``root`` is the data folder; ``index`` its session index (default: the one in
    ``root/sessions.db``). Every command that starts or lists sessions runs this first.
    A session whose ``session.json`` says ``running`` but whose writer process is gone
    (see :func:`writer_alive`) is marked ``incomplete`` (``ended_at`` = mtime of
    ``events.jsonl``, ``ended_ns`` = stamp of its last event), the headers of its
    ``audio.wav`` and (mic mode) ``mic_raw.wav`` are repaired, and its index row
    rebuilt. Folders missing from the index are indexed. Unreadable folders (a corrupt
    ``session.json`` or ``turns.json``, a file that cannot be opened) are left alone,
    and ``on_unreadable(folder, reason)`` is told about each (:func:`unreadable_reason`),
    so that a command that lists sessions can say which it could not show.

    Threading: run it once at start-up, before new sessions start (any thread).

    Returns:
        The ids of the sessions closed out or (re)indexed, sorted.
    """
    if index is None:
        index = SessionIndex(Path(root) / "sessions.db")
    sessions = Path(root) / "sessions"
    if not sessions.is_dir():
        return []
    try:
        private_dir(sessions, tighten=True)  # left 0755 by an older voiceprobe
    except OSError:
        pass  # not ours to change (another user's folder, read-only media): read anyway
    known = index.ids()
    fixed: list[str] = []
    for folder in sorted(p for p in sessions.iterdir() if p.is_dir()):
        if not (folder / SESSION_FILE).exists():
            continue
        try:
            record = load_session(folder)
        except StoreError as exc:
            if on_unreadable is not None:
                on_unreadable(folder, unreadable_reason(folder, exc))
            continue
        meta = dict(record.meta)
        meta.setdefault("session_id", record.session_id)
        changed = False
        if meta.get("status") == "running" and not writer_alive(meta):
            meta = _close_out(record)
            meta.setdefault("session_id", record.session_id)
            changed = True
        if changed or record.session_id not in known:
            index.upsert(meta, turns=record.turns)
            fixed.append(record.session_id)
    return fixed
