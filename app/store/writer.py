"""Write one session folder: ``session.json``, ``events.jsonl``, ``turns.json``.

Layout (docs/architecture.md#sessions-on-disk)::

    <data dir>/sessions/<session id>/
        session.json   meta: profile snapshot (no secrets), provider, model, url, tags,
                       start/end, status, pid of the writer, summary
        events.jsonl   one JSON object per event, appended and flushed per event
        turns.json     spans per turn, rewritten atomically
        audio.wav      written by app.audio.recorder.StereoRecorder at ``audio_path``

The folders are ``0700`` and the files ``0600`` (see :mod:`app.private_files`).
Every string written to any of these files goes through :class:`Redactor`, which replaces
each known secret (and anything shaped like an OpenAI or Google API key) by ``***``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import weakref
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.clock import MONOTONIC, Clock
from app.errors import StoreError
from app.events import EventBase, Notice, ProviderErrorEvent, event_to_dict
from app.private_files import PRIVATE_DIR_MODE, open_private, private_dir
from app.secrets import is_secret_name, scrub_url
from app.store.index import SessionIndex

SESSION_FILE = "session.json"
EVENTS_FILE = "events.jsonl"
TURNS_FILE = "turns.json"
AUDIO_FILE = "audio.wav"
INDEX_FILE = "sessions.db"
REDACTED = "***"
MIN_SECRET_LEN = 4

# A server may send a lone UTF-16 surrogate as a JSON escape ("\ud800"); Python keeps it
# in the str, and strict UTF-8 cannot encode it. Every string we write is JSON, where the
# surrogate only occurs inside a string literal, so writing it back as the escape
# ``\ud800`` keeps the line valid JSON that reads back to the same value.
_ENCODING_ERRORS = "backslashreplace"

# Shapes of vendor API keys, redacted even when nobody told us the key (defense in depth).
_KEY_SHAPES = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}|\bAIza[0-9A-Za-z_\-]{30,}")

# The writers of this process by session folder (see :func:`open_writer`): a session's
# meta is changed through its own writer, or the writer's next write would undo it.
_WRITERS: weakref.WeakValueDictionary[str, SessionWriter] = weakref.WeakValueDictionary()
_WRITERS_LOCK = threading.Lock()


class Redactor:
    """Replaces secrets in text by ``***``.

    Secrets shorter than 4 characters are ignored (they would shred every file). Each
    secret is also matched in its JSON-escaped form, so redacting serialized JSON works.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if not isinstance(secret, str) or len(secret) < MIN_SECRET_LEN:
                continue
            forms.add(secret)
            forms.add(json.dumps(secret)[1:-1])
            forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret replaced."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return _KEY_SHAPES.sub(REDACTED, text)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def dumps(obj: Any, redact: Redactor | None = None, indent: int | None = None) -> str:
    """Serialize ``obj`` as JSON (bytes → sizes, other unknown values → ``str``), redacted."""
    text = json.dumps(
        obj,
        default=_json_default,
        ensure_ascii=False,
        indent=indent,
        separators=None if indent else (",", ":"),
    )
    return redact(text) if redact is not None else text


def atomic_write_text(path: Path, text: str, *, private: bool = True) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (never half a file).

    The temporary file is created next to ``path`` under a random name (never an existing
    file or a symlink). With ``private`` (the default, for the store's own files) the
    result is ``0600``; otherwise it gets the user's umask, like any new file.

    Raises:
        StoreError: the file cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        if private:
            fh = open_private(tmp, "x", encoding="utf-8", errors=_ENCODING_ERRORS, newline="\n")
        else:
            fh = open(tmp, "x", encoding="utf-8", errors=_ENCODING_ERRORS, newline="\n")
        with fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise StoreError(f"cannot write {path} ({exc.strerror or exc})") from None


def scrub_mapping(value: Any) -> Any:
    """Copy ``value`` with string values of secret-named keys replaced by ``***``
    (recursively; non-string values under such keys, e.g. JSON schemas, are kept).
    """
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(v, str) and is_secret_name(str(k)):
                out[str(k)] = REDACTED if v else v
            elif str(k) == "url" and isinstance(v, str):
                out[str(k)] = scrub_url(v)
            else:
                out[str(k)] = scrub_mapping(v)
        return out
    if isinstance(value, list | tuple):
        return [scrub_mapping(v) for v in value]
    return value


# --- who is writing ------------------------------------------------------------------------


def boot_id() -> str:
    """Return the boot id (Linux ``/proc/sys/kernel/random/boot_id``), or ``""`` elsewhere."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_stamp(pid: int) -> int | None:
    """Boot-relative start time of process ``pid`` in clock ticks (Linux ``/proc/<pid>/stat``
    field 22), or ``None`` if the process does not exist or the platform has no ``/proc``.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def process_identity() -> dict[str, Any]:
    """Identify the current process so that a later start can tell if it is still alive."""
    pid = os.getpid()
    return {"pid": pid, "proc_start": process_start_stamp(pid), "boot_id": boot_id()}


# --- the writer ----------------------------------------------------------------------------


class SessionWriter:
    """Writes one session folder under ``root/sessions/<session_id>/``.

    ``root`` is the data folder (:func:`app.store.paths.data_dir`); the index is
    ``root/sessions.db`` unless ``index`` is given.

    Threading: every method is synchronous, blocking file I/O (one ``write`` + ``flush``
    per event; ``fsync`` in :meth:`write_turns`, :meth:`finish` and :meth:`close`) guarded
    by a lock, so calls from any thread are safe but serialised. Never call it on an
    asyncio loop that moves audio: wrap it in :class:`app.store.writer_thread.WriterThread`
    (as ``run_call`` does), which writes on a thread of its own.

    Must not: write a secret. ``meta`` is scrubbed (secret-named keys, URL query secrets),
    and every string written passes through a :class:`Redactor` over ``redact_secrets``.

    Raises:
        StoreError: the folder exists already or cannot be written.
    """

    def __init__(
        self,
        root: Path,
        session_id: str,
        meta: Mapping[str, Any],
        *,
        redact_secrets: Iterable[str] = (),
        clock: Clock = MONOTONIC,
        index: SessionIndex | None = None,
        now: datetime | None = None,
    ) -> None:
        if not session_id or any(c in session_id for c in "/\\") or session_id in (".", ".."):
            raise StoreError(f"invalid session id {session_id!r}")
        self.root = Path(root)
        self.session_id = session_id
        self.dir = self.root / "sessions" / session_id
        self._clock = clock
        self._redact = Redactor(redact_secrets)
        self._lock = threading.Lock()
        self._index = index
        self.index_error: str | None = None
        self._events_written = 0
        self._error_events = 0
        self._turns: list[dict[str, Any]] = []
        self._closed = False
        try:
            private_dir(self.dir.parent, tighten=True)
            self.dir.mkdir(mode=PRIVATE_DIR_MODE)
            os.chmod(self.dir, PRIVATE_DIR_MODE)  # whatever the umask
        except FileExistsError:
            raise StoreError(f"session folder {self.dir} already exists") from None
        except OSError as exc:
            raise StoreError(f"cannot create {self.dir} ({exc.strerror or exc})") from None
        started = now if now is not None else datetime.now(UTC)
        clean = scrub_mapping(dict(meta))
        self.meta: dict[str, Any] = {
            "session_id": session_id,
            "tags": [],
            **clean,
            "started_at": clean.get("started_at") or started.isoformat(),
            "started_ns": clean.get("started_ns") or clock.now_ns(),
            "status": "running",
            **process_identity(),
        }
        if isinstance(self.meta.get("url"), str):
            self.meta["url"] = scrub_url(self.meta["url"])
        self._write_meta()
        try:
            self._events = open_private(
                self.dir / EVENTS_FILE,
                "a",
                encoding="utf-8",
                errors=_ENCODING_ERRORS,
                newline="\n",
            )
        except OSError as exc:
            raise StoreError(
                f"cannot open {self.dir / EVENTS_FILE} ({exc.strerror or exc})"
            ) from None
        try:
            self._upsert_index()
        except StoreError as exc:
            # History is rebuilt from the folders on the next start; the call goes on.
            self.index_error = str(exc)
        with _WRITERS_LOCK:
            _WRITERS[_writer_key(self.dir)] = self

    @property
    def audio_path(self) -> Path:
        """Where the stereo recording goes (``audio.wav``; written by the recorder)."""
        return self.dir / AUDIO_FILE

    @property
    def events_path(self) -> Path:
        return self.dir / EVENTS_FILE

    @property
    def events_written(self) -> int:
        return self._events_written

    def _write_meta(self) -> None:
        atomic_write_text(self.dir / SESSION_FILE, dumps(self.meta, self._redact, indent=2) + "\n")

    def _upsert_index(self) -> None:
        if self._index is None:
            self._index = SessionIndex(self.root / INDEX_FILE)
        row = json.loads(dumps(self.meta, self._redact))
        self._index.upsert(row, turns=self._turns)

    def append_event(self, ev: EventBase) -> None:
        """Append one event as a JSON line and flush it (a crash loses at most this line).

        Raises:
            StoreError: the writer is finished, or the disk refused the write.
        """
        line = dumps(event_to_dict(ev), self._redact) + "\n"
        with self._lock:
            if self._closed:
                raise StoreError(f"session {self.session_id} is already finished")
            try:
                self._events.write(line)
                self._events.flush()
            except OSError as exc:
                raise StoreError(
                    f"cannot append to {self.events_path} ({exc.strerror or exc})"
                ) from None
            self._events_written += 1
            if isinstance(ev, ProviderErrorEvent) or (
                isinstance(ev, Notice) and ev.level == "error"
            ):
                self._error_events += 1

    def write_turns(self, turns: list[dict[str, Any]]) -> None:
        """Rewrite ``turns.json`` atomically with ``turns`` (JSON-ready turn records)."""
        with self._lock:
            self._turns = list(turns)
            atomic_write_text(
                self.dir / TURNS_FILE, dumps(self._turns, self._redact, indent=2) + "\n"
            )

    def set_tags(self, tags: list[str]) -> None:
        """Replace the session's tags (checked by the caller: see
        :func:`app.store.session_tags.set_session_tags`) in ``session.json`` and the index,
        and keep them for every later write of the meta (:meth:`finish`). Works before and
        after :meth:`finish`.

        Raises:
            StoreError: ``session.json`` or the index could not be updated.
        """
        with self._lock:
            self.meta["tags"] = list(tags)
            self._write_meta()
            self._upsert_index()

    def finish(self, status: str = "complete", summary: Mapping[str, Any] | None = None) -> None:
        """Close the events file (fsync), record the end in ``session.json``, update the index.

        Calling it twice updates the status and summary again; appending after it fails.

        Raises:
            StoreError: ``session.json`` or the index could not be updated (the index is
                updated last, so the folder is complete even then).
        """
        self.close()
        with self._lock:
            self.meta.update(
                ended_at=datetime.now(UTC).isoformat(),
                ended_ns=self._clock.now_ns(),
                status=status,
                events=self._events_written,
                error_events=self._error_events,
            )
            if summary is not None:
                self.meta["summary"] = dict(summary)
            self._write_meta()
            self._upsert_index()

    def close(self) -> None:
        """Flush, fsync and close ``events.jsonl`` without touching ``session.json``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._events.flush()
                os.fsync(self._events.fileno())
            except OSError:
                pass
            finally:
                self._events.close()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._closed:
            self.finish("complete" if exc_type is None else "failed")


def open_writer(session_dir: Path) -> SessionWriter | None:
    """The writer of this process that records (or recorded) ``session_dir``, while it is
    still referenced, else ``None`` (any thread)."""
    with _WRITERS_LOCK:
        return _WRITERS.get(_writer_key(session_dir))


def _writer_key(session_dir: Path) -> str:
    return os.path.normcase(os.path.abspath(session_dir))
