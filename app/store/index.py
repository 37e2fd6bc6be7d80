"""The SQLite index of sessions (``<data dir>/sessions.db``, WAL mode).

The folders are the truth; the index is a cache for history, search and aggregates that
:func:`app.store.reader.recover_unfinished` can rebuild. Every call opens its own
connection and a short transaction, with a busy timeout, so the app, the CLI and a test
may read and write it from several processes at once. The database (and its
``-wal``/``-shm`` files) is ``0600``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from app.errors import StoreError
from app.private_files import private_dir, private_file
from app.textsafe import safe_text

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
COLUMNS = (
    "id",
    "started_at",
    "ended_at",
    "status",
    "provider",
    "model",
    "profile",
    "turns",
    "p50_v2v_ms",
    "p95_v2v_ms",
    "errors",
    "tags",
    "summary_json",
)
# version → statements that bring the schema from version-1 to version.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS sessions (
            id TEXT PRIMARY KEY,
            started_at TEXT,
            ended_at TEXT,
            status TEXT,
            provider TEXT,
            model TEXT,
            profile TEXT,
            turns INTEGER,
            p50_v2v_ms REAL,
            p95_v2v_ms REAL,
            errors INTEGER,
            tags TEXT,
            summary_json TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS sessions_started_at ON sessions(started_at)",
    ),
}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile ``q`` (0–100) of ``values``; ``None`` when empty."""
    data = sorted(values)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple):
        return len(value)
    return None


def _v2v_ms(turns: Sequence[Any]) -> list[float]:
    out: list[float] = []
    for turn in turns:
        if not isinstance(turn, Mapping):
            continue
        span = (turn.get("spans") or {}).get("voice_to_voice")
        ms = span.get("ms") if isinstance(span, Mapping) else None
        if isinstance(ms, int | float) and not isinstance(ms, bool):
            out.append(float(ms))
    return out


def row_from_meta(meta: Mapping[str, Any], turns: Sequence[Any] | None = None) -> dict[str, Any]:
    """Build an index row from a ``session.json`` mapping (and the turns, if known).

    Figures come from ``meta["summary"]`` when it has them (``turns`` as a count or list,
    ``p50_v2v_ms``/``p95_v2v_ms`` or ``voice_to_voice: {p50_ms, p95_ms}`` as made by
    ``app.metrics.timeline.summarize``, ``errors`` as a count or list); otherwise from the
    turns' ``voice_to_voice`` spans and ``meta["error_events"]``.
    """
    summary = meta.get("summary")
    summary = summary if isinstance(summary, Mapping) else {}
    sid = meta.get("session_id") or meta.get("id")
    if not isinstance(sid, str) or not sid:
        raise StoreError("session meta has no session_id")
    turn_list: Sequence[Any] = turns or ()
    if isinstance(summary.get("turns"), list):
        turn_list = summary["turns"]
    n_turns = _count(summary.get("turns"))
    if n_turns is None:
        n_turns = len(turn_list)
    v2v = _v2v_ms(turn_list)
    agg = summary.get("voice_to_voice")
    agg = agg if isinstance(agg, Mapping) else {}
    p50 = summary.get("p50_v2v_ms", agg.get("p50_ms", percentile(v2v, 50)))
    p95 = summary.get("p95_v2v_ms", agg.get("p95_ms", percentile(v2v, 95)))
    errors = _count(summary.get("errors"))
    if errors is None:
        errors = _count(meta.get("error_events")) or 0
    profile = meta.get("profile")
    if isinstance(profile, Mapping):
        profile = profile.get("name", "")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    row = {
        "id": sid,
        "started_at": str(meta.get("started_at") or ""),
        "ended_at": meta.get("ended_at"),
        "status": str(meta.get("status") or ""),
        "provider": str(meta.get("provider") or ""),
        "model": str(meta.get("model") or ""),
        "profile": str(profile or ""),
        "turns": n_turns,
        "p50_v2v_ms": p50 if isinstance(p50, int | float) else None,
        "p95_v2v_ms": p95 if isinstance(p95, int | float) else None,
        "errors": errors,
        "tags": json.dumps([str(t) for t in tags], ensure_ascii=False),
        "summary_json": json.dumps(dict(summary), ensure_ascii=False, default=str)
        if summary
        else None,
    }
    # SQLite stores UTF-8: a lone surrogate a server sent (in a tag, a model name...)
    # would fail the insert, so every text column is made encodable.
    return {k: safe_text(v) if isinstance(v, str) else v for k, v in row.items()}


def _public(row: sqlite3.Row) -> dict[str, Any]:
    out = {k: row[k] for k in COLUMNS if k != "summary_json"}
    try:
        tags = json.loads(row["tags"] or "[]")
    except ValueError:
        tags = []
    out["tags"] = tags if isinstance(tags, list) else []
    try:
        out["summary"] = json.loads(row["summary_json"]) if row["summary_json"] else None
    except ValueError:
        out["summary"] = None
    return out


def _like(term: str) -> str:
    escaped = safe_text(term).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SessionIndex:
    """SQLite index over session folders.

    Threading: any thread, any process. Each call opens a connection, runs one short
    transaction and closes it; writers wait up to ``BUSY_TIMEOUT_MS`` for a lock.

    Raises:
        StoreError: the database cannot be opened, is corrupt, or is from a newer
            voiceprobe (schema version above :data:`SCHEMA_VERSION`).
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        try:
            private_dir(self.db_path.parent)
        except OSError as exc:
            raise StoreError(
                f"cannot create {self.db_path.parent} ({exc.strerror or exc})"
            ) from None
        self._make_private()
        with self._connect() as con:
            mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"session index {self.db_path}: cannot use WAL mode ({mode})")
            self._migrate(con)

    def _make_private(self) -> None:
        """The database and its WAL/shared-memory files are ``0600``: SQLite gives the
        ``-wal`` and ``-shm`` files the mode of the database, so the database is created
        (or tightened) first.
        """
        try:
            private_file(self.db_path)
            for suffix in ("-wal", "-shm"):
                side = self.db_path.with_name(self.db_path.name + suffix)
                if side.exists():
                    private_file(side)
        except OSError as exc:
            raise StoreError(f"cannot create {self.db_path} ({exc.strerror or exc})") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(
                sqlite3.connect(
                    str(self.db_path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
                )
            ) as con:
                con.row_factory = sqlite3.Row
                con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                con.execute("PRAGMA synchronous=NORMAL")
                yield con
        except sqlite3.Error as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"session index {self.db_path}: {msg}") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            # IMMEDIATE takes the write lock up front, so the busy timeout applies (a
            # deferred read→write upgrade would fail at once under contention).
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _migrate(self, con: sqlite3.Connection) -> None:
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = con.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0] or 0)
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"session index {self.db_path} has schema {current}, newer than this "
                    f"voiceprobe ({SCHEMA_VERSION})"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    con.execute(statement)
                con.execute("DELETE FROM schema_version")
                con.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def upsert(self, meta: Mapping[str, Any], turns: Sequence[Any] | None = None) -> None:
        """Insert or replace the row of the session described by ``meta`` (a
        ``session.json`` mapping); see :func:`row_from_meta` for where figures come from.
        """
        row = row_from_meta(meta, turns)
        cols = ", ".join(COLUMNS)
        marks = ", ".join(f":{c}" for c in COLUMNS)
        updates = ", ".join(f"{c}=excluded.{c}" for c in COLUMNS if c != "id")
        with self._write() as con:
            con.execute(
                f"INSERT INTO sessions ({cols}) VALUES ({marks}) "
                f"ON CONFLICT(id) DO UPDATE SET {updates}",
                row,
            )

    def list(self, limit: int = 50, query: str | None = None) -> list[dict[str, Any]]:
        """Sessions newest first. ``query``: whitespace-separated terms, each of which must
        appear (case-insensitively) in the id, provider, model, tags or profile.
        """
        where: list[str] = []
        params: list[Any] = []
        for term in (query or "").split():
            where.append(
                "("
                + " OR ".join(
                    f"{c} LIKE ? ESCAPE '\\'"
                    for c in ("id", "provider", "model", "tags", "profile")
                )
                + ")"
            )
            params.extend([_like(term)] * 5)
        sql = "SELECT * FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        params.append(max(0, int(limit)))
        with self._connect() as con:
            return [_public(r) for r in con.execute(sql, params).fetchall()]

    def get(self, session_id: str) -> dict[str, Any] | None:
        """The row of ``session_id``, or ``None``."""
        with self._connect() as con:
            row = con.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return _public(row) if row is not None else None

    def ids(self) -> set[str]:
        """Every indexed session id."""
        with self._connect() as con:
            return {r[0] for r in con.execute("SELECT id FROM sessions")}

    def delete(self, session_id: str) -> None:
        """Remove the row of ``session_id`` (the folder is left alone)."""
        with self._write() as con:
            con.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
