"""The SQLite index of sessions (``<data dir>/sessions.db``, WAL mode).

The folders are the truth; the index is a cache for history, search and aggregates that
:func:`app.store.reader.recover_unfinished` can rebuild. Every call opens its own
connection and a short transaction, with a busy timeout, so the app, the CLI and a test
may read and write it from several processes at once. The database (and its
``-wal``/``-shm`` files) is ``0600``.

One module on purpose (over 500 lines): the schema, its in-place migrations and every
query against it change together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from app.errors import StoreError
from app.metrics.percentile import percentile
from app.metrics.records import TurnRecord
from app.private_files import private_dir, private_file
from app.store.tags import KNOWN_KEYS, dimension_values
from app.textsafe import safe_text

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000
#: Tags kept as columns of ``sessions``, for the coverage matrix.
TAG_COLUMNS = KNOWN_KEYS
#: Each session's turn figures rolled up on its row (kept by :func:`_roll_up` whenever
#: its turns or verdicts change), so the coverage matrix reads one row per session:
#: judged/passed turns (the verdict that counts), the sum and count of known WERs and of
#: judged reply languages, and the turns' voice_to_voice in ms, comma-separated.
ROLLUP_COLUMNS = (("judged", "INTEGER"), ("passed", "INTEGER"), ("wer_sum", "REAL"),
                  ("wer_n", "INTEGER"), ("lang_n", "INTEGER"), ("lang_matched", "INTEGER"),
                  ("v2v_list", "TEXT"))  # fmt: skip
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
#: The fields of a :meth:`SessionIndex.list` row in the order a session list shows them
#: (the desktop history's columns, one per field).
LIST_KEYS = ("started_at", "id", "provider", "model", "profile", "turns", "p50_v2v_ms",
             "p95_v2v_ms", "errors", "status")  # fmt: skip
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
    # Tags as columns, per-turn figures and verdicts (docs/coverage.md). The rows of
    # sessions indexed before are filled in by :func:`_backfill_facts`.
    2: (
        *(f"ALTER TABLE sessions ADD COLUMN {c} TEXT" for c in TAG_COLUMNS),
        "ALTER TABLE sessions ADD COLUMN cost_usd REAL",
        *(f"ALTER TABLE sessions ADD COLUMN {c} {t}" for c, t in ROLLUP_COLUMNS),
        """CREATE TABLE IF NOT EXISTS turn_facts (
            session_id TEXT NOT NULL,
            turn INTEGER NOT NULL,
            v2v_ms REAL,
            wer REAL,
            lang_match INTEGER,
            verdict TEXT,
            PRIMARY KEY (session_id, turn)
        )""",
        """CREATE TABLE IF NOT EXISTS verdicts (
            session_id TEXT NOT NULL,
            turn INTEGER NOT NULL,
            source TEXT NOT NULL,
            verdict TEXT NOT NULL,
            reason TEXT,
            note TEXT,
            who TEXT,
            at TEXT,
            PRIMARY KEY (session_id, turn, source)
        )""",
        """CREATE TABLE IF NOT EXISTS ingested (
            path TEXT PRIMARY KEY,
            stamp TEXT NOT NULL
        )""",
    ),
}
#: What :meth:`SessionIndex.verdicts` returns per verdict.
VERDICT_FIELDS = ("turn", "source", "verdict", "reason", "note", "who", "at")


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple):
        return len(value)
    return None


def _v2v_ms(turns: Sequence[Any]) -> list[float]:
    return [ms for ms in map(_turn_v2v, turns) if ms is not None]


def _turn_v2v(turn: Any) -> float | None:
    """The ``voice_to_voice`` figure of a stored turn (any JSON value), if it has one."""
    if not isinstance(turn, Mapping):
        return None
    ms = TurnRecord.from_dict(turn).voice_to_voice_ms
    return None if ms is None else float(ms)


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


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def turn_facts(turns: Sequence[Any]) -> list[tuple[int, float | None, float | None, int | None]]:
    """Per-turn figures of ``turns`` (turn records): ``(number, v2v_ms, wer, lang_match)``
    with ``number`` the 1-based turn number people read (``index`` + 1), ``wer`` and
    ``lang_match`` from the record's ``wer``/``reply_language_match`` when it has them."""
    from app.metrics.presentation import turn_number

    out: list[tuple[int, float | None, float | None, int | None]] = []
    for row, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            continue
        v2v = _turn_v2v(turn)
        match = turn.get("reply_language_match")
        out.append(
            (
                turn_number(dict(turn), row),
                v2v,
                _number(turn.get("wer")),
                int(match) if isinstance(match, bool) else None,
            )
        )
    return out


def facts_from_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The coverage columns of a session: its indexed tags (:data:`TAG_COLUMNS`, ``""``
    when absent) and ``cost_usd`` from the summary (``None`` when unknown)."""
    tags = meta.get("tags") or []
    tags = [tags] if isinstance(tags, str) else tags
    summary = meta.get("summary")
    cost = summary.get("cost_usd") if isinstance(summary, Mapping) else None
    dims = dimension_values(tags if isinstance(tags, list | tuple) else [])
    return {**{k: safe_text(v) for k, v in dims.items()}, "cost_usd": _number(cost)}


_FACTS_SQL = (
    "INSERT INTO turn_facts (session_id, turn, v2v_ms, wer, lang_match) VALUES (?,?,?,?,?) "
    "ON CONFLICT(session_id, turn) DO UPDATE SET v2v_ms=excluded.v2v_ms, "
    "wer=COALESCE(excluded.wer, turn_facts.wer), "
    "lang_match=COALESCE(excluded.lang_match, turn_facts.lang_match)"
)


def _write_facts(
    con: sqlite3.Connection, sid: str, meta: Mapping[str, Any], turns: Sequence[Any]
) -> None:
    facts = facts_from_meta(meta)
    sets = ", ".join(f"{c}=:{c}" for c in facts)
    con.execute(f"UPDATE sessions SET {sets} WHERE id=:id", {**facts, "id": sid})
    con.executemany(_FACTS_SQL, [(sid, *f) for f in turn_facts(turns)])
    _roll_up(con, sid)


def _roll_up(con: sqlite3.Connection, sid: str) -> None:
    """Recompute the :data:`ROLLUP_COLUMNS` of session ``sid`` from its ``turn_facts``."""
    con.execute(
        "UPDATE sessions SET (judged, passed, wer_sum, wer_n, lang_n, lang_matched, v2v_list)"
        " = (SELECT COUNT(verdict), COALESCE(SUM(verdict = 'pass'), 0), SUM(wer), COUNT(wer),"
        " COUNT(lang_match), COALESCE(SUM(lang_match), 0), GROUP_CONCAT(v2v_ms)"
        " FROM turn_facts WHERE session_id = ?1) WHERE id = ?1",
        (sid,),
    )


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
                if version == 2 and current >= 1:
                    self._backfill_facts(con)
                con.execute("DELETE FROM schema_version")
                con.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _backfill_facts(self, con: sqlite3.Connection) -> None:
        """Fill the coverage columns of rows indexed by schema 1: tags and cost from the
        row, per-turn figures from the session folder's ``turns.json`` (when readable;
        a session without one keeps its row and has no per-turn figures)."""
        sessions = self.db_path.parent / "sessions"
        rows = con.execute("SELECT id, tags, summary_json FROM sessions").fetchall()
        for row in rows:
            try:
                tags = json.loads(row["tags"] or "[]")
                summary = json.loads(row["summary_json"]) if row["summary_json"] else {}
            except ValueError:
                tags, summary = [], {}
            turns: Any = []
            try:
                turns = json.loads((sessions / row["id"] / "turns.json").read_text("utf-8"))
            except (OSError, ValueError, UnicodeDecodeError):
                pass
            meta = {"tags": tags if isinstance(tags, list) else [], "summary": summary}
            _write_facts(con, row["id"], meta, turns if isinstance(turns, list) else [])

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
            _write_facts(con, row["id"], meta, turns or [])

    def upsert_many(self, items: Sequence[tuple[Mapping[str, Any], Sequence[Any]]]) -> None:
        """:meth:`upsert` of many ``(meta, turns)`` in one transaction (bulk loads)."""
        cols = ", ".join(COLUMNS)
        marks = ", ".join(f":{c}" for c in COLUMNS)
        with self._write() as con:
            for meta, turns in items:
                row = row_from_meta(meta, turns)
                con.execute(f"INSERT OR REPLACE INTO sessions ({cols}) VALUES ({marks})", row)
                _write_facts(con, row["id"], meta, turns)

    # -- verdicts -------------------------------------------------------------------------

    def set_verdicts(
        self,
        session_id: str,
        source: str,
        verdicts: Sequence[Mapping[str, Any]],
        facts: Sequence[tuple[int, float | None, int | None]] = (),
    ) -> None:
        """Replace every ``source`` (``manual`` or ``auto``) verdict of ``session_id`` by
        ``verdicts`` (mappings with :data:`VERDICT_FIELDS` but ``source``), and record
        ``facts`` ``(turn, wer, lang_match)`` (a suite's scoring) on its turns; one
        transaction."""
        self.set_verdicts_many([(session_id, source, verdicts, facts)])

    def set_verdicts_many(
        self,
        items: Sequence[
            tuple[str, str, Sequence[Mapping[str, Any]], Sequence[tuple[int, Any, Any]]]
        ],
    ) -> None:
        """:meth:`set_verdicts` of many ``(session_id, source, verdicts, facts)`` in one
        transaction."""
        with self._write() as con:
            for session_id, source, verdicts, facts in items:
                con.execute(
                    "DELETE FROM verdicts WHERE session_id=? AND source=?", (session_id, source)
                )
                con.executemany(
                    "INSERT INTO verdicts (session_id, turn, source, verdict, reason, note, "
                    "who, at) VALUES (?,?,?,?,?,?,?,?)",
                    [
                        (session_id, int(v["turn"]), source, str(v["verdict"]),
                         *(safe_text(v.get(k)) if v.get(k) is not None else None
                           for k in ("reason", "note", "who", "at")))
                        for v in verdicts
                    ],
                )  # fmt: skip
                con.executemany(
                    "INSERT INTO turn_facts (session_id, turn, wer, lang_match) VALUES (?,?,?,?)"
                    " ON CONFLICT(session_id, turn) DO UPDATE SET wer=excluded.wer, "
                    "lang_match=excluded.lang_match",
                    [(session_id, t, w, m) for t, w, m in facts],
                )
                # The verdict that counts, kept on the turn so the matrix needs no join:
                # the manual one, else the automatic one.
                con.executemany(
                    "INSERT OR IGNORE INTO turn_facts (session_id, turn) VALUES (?, ?)",
                    [(session_id, int(v["turn"])) for v in verdicts],
                )
                con.execute(
                    "UPDATE turn_facts SET verdict = (SELECT v.verdict FROM verdicts v "
                    "WHERE v.session_id = turn_facts.session_id AND v.turn = turn_facts.turn "
                    "ORDER BY v.source = 'manual' DESC LIMIT 1) WHERE session_id = ?",
                    (session_id,),
                )
                _roll_up(con, session_id)

    def verdicts(self, session_id: str) -> list[dict[str, Any]]:
        """Every verdict of ``session_id`` (manual and automatic), by turn then source."""
        with self._connect() as con:
            rows = con.execute(
                f"SELECT {', '.join(VERDICT_FIELDS)} FROM verdicts WHERE session_id=? "
                "ORDER BY turn, source DESC",
                (session_id,),
            ).fetchall()
        return [dict(r) for r in rows]

    def ingested_stamp(self, path: str) -> str | None:
        """The stamp recorded by :meth:`mark_ingested` for ``path``, or ``None``."""
        with self._connect() as con:
            row = con.execute("SELECT stamp FROM ingested WHERE path=?", (path,)).fetchone()
        return str(row[0]) if row is not None else None

    def ingested_stamps(self) -> dict[str, str]:
        """Every ``path → stamp`` of :meth:`mark_ingested`."""
        with self._connect() as con:
            return {r[0]: r[1] for r in con.execute("SELECT path, stamp FROM ingested")}

    def mark_ingested(self, path: str, stamp: str) -> None:
        """Record that the file ``path`` was read into the index as it was at ``stamp``."""
        with self._write() as con:
            con.execute(
                "INSERT INTO ingested (path, stamp) VALUES (?, ?) "
                "ON CONFLICT(path) DO UPDATE SET stamp=excluded.stamp",
                (path, stamp),
            )

    def query(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only ``SELECT`` (for :mod:`app.store.coverage`): the column names
        and the rows as plain tuples (the fastest shape to aggregate)."""
        with self._connect() as con:
            con.row_factory = None
            cur = con.execute(sql, params)
            rows = cur.fetchall()
            return [d[0] for d in cur.description], rows

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
        """Remove the rows of ``session_id`` (the folder is left alone)."""
        with self._write() as con:
            con.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            con.execute("DELETE FROM turn_facts WHERE session_id = ?", (session_id,))
            con.execute("DELETE FROM verdicts WHERE session_id = ?", (session_id,))
