"""SessionIndex: schema, upsert/list/get/search, and access from two processes at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import StoreError
from app.metrics.percentile import percentile
from app.store.index import SCHEMA_VERSION, SessionIndex

REPO = Path(__file__).resolve().parents[1]


def _meta(sid: str, **kw: object) -> dict:
    return {"session_id": sid, "started_at": f"2026-11-27T13:{sid[-2:]}:00+00:00", **kw}


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    index = SessionIndex(tmp_path / "sessions.db")
    assert index.schema_version == SCHEMA_VERSION
    con = sqlite3.connect(tmp_path / "sessions.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        SessionIndex(tmp_path / "sessions.db")


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "sessions.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="sessions.db"):
        SessionIndex(tmp_path / "sessions.db")


def test_upsert_list_get_and_search(tmp_path: Path) -> None:
    index = SessionIndex(tmp_path / "sessions.db")
    index.upsert(_meta("s-01", provider="openai", model="gpt-realtime", tags=["eu", "smoke"]))
    index.upsert(_meta("s-02", provider="gemini", model="gemini-live", profile={"name": "bank"}))
    index.upsert(_meta("s-03", provider="openai", model="gpt-realtime-mini", status="running"))
    index.upsert(_meta("s-03", provider="openai", model="gpt-realtime-mini", status="complete"))
    assert [r["id"] for r in index.list()] == ["s-03", "s-02", "s-01"]
    assert [r["id"] for r in index.list(limit=1)] == ["s-03"]
    assert [r["id"] for r in index.list(query="OPENAI")] == ["s-03", "s-01"]
    assert [r["id"] for r in index.list(query="smoke")] == ["s-01"]
    assert [r["id"] for r in index.list(query="bank")] == ["s-02"]
    assert [r["id"] for r in index.list(query="openai mini")] == ["s-03"]
    assert index.list(query="100%") == []
    row = index.get("s-03")
    assert row is not None and row["status"] == "complete"
    assert index.get("missing") is None
    assert index.ids() == {"s-01", "s-02", "s-03"}
    index.delete("s-01")
    assert index.ids() == {"s-02", "s-03"}


def test_summary_figures_win_over_turns(tmp_path: Path) -> None:
    index = SessionIndex(tmp_path / "sessions.db")
    summary = {"turns": [{}, {}], "p50_v2v_ms": 812.5, "p95_v2v_ms": 990.0, "errors": ["e"]}
    index.upsert(_meta("s-10", summary=summary))
    row = index.get("s-10")
    assert row is not None
    assert (row["turns"], row["p50_v2v_ms"], row["p95_v2v_ms"], row["errors"]) == (
        2,
        812.5,
        990.0,
        1,
    )
    assert row["summary"] == summary
    with pytest.raises(StoreError):
        index.upsert({"provider": "openai"})  # no id


def test_timeline_summary_shape_is_understood(tmp_path: Path) -> None:
    index = SessionIndex(tmp_path / "sessions.db")
    summary = {"turns": 3, "voice_to_voice": {"p50_ms": 700.0, "p95_ms": 910.0}, "errors": 0}
    index.upsert(_meta("s-11", summary=summary))
    row = index.get("s-11")
    assert row is not None
    assert (row["turns"], row["p50_v2v_ms"], row["p95_v2v_ms"], row["errors"]) == (
        3,
        700.0,
        910.0,
        0,
    )


def test_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)


WRITER = """
import sys, pathlib
from app.store.index import SessionIndex
index = SessionIndex(pathlib.Path(sys.argv[1]))
for i in range(150):
    index.upsert({"session_id": f"p-{i:04d}", "started_at": f"{i:04d}", "provider": "sim"})
print("done", flush=True)
"""


def test_two_processes_write_and_read_at_once(tmp_path: Path) -> None:
    db = tmp_path / "sessions.db"
    index = SessionIndex(db)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        seen = 0
        i = 0
        while proc.poll() is None:
            index.upsert({"session_id": f"m-{i:04d}", "started_at": f"{i:04d}", "provider": "x"})
            rows = index.list(limit=1000, query="sim")
            assert len(rows) >= seen  # the other process's rows only ever appear
            seen = len(rows)
            i += 1
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0 and out.strip() == "done"
    assert len(index.list(limit=1000, query="sim")) == 150
    assert len(index.list(limit=1000, query="m-")) == i
