"""The coverage matrix from the SQLite index, and the store written by the previous
voiceprobe migrated in place."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from app.store.coverage import CoverageQuery, coverage
from app.store.index import SCHEMA_VERSION, SessionIndex
from tests.conftest import TIME_SCALE
from tests.coverage_helpers import cli, cli_process, make_session, turn_record, write_old_store

OLD_ID = "20261120-090000-0ld0"


def _old_meta() -> dict[str, object]:
    return {
        "session_id": OLD_ID, "provider": "openai", "model": "gpt-realtime",
        "tags": ["language=fr-FR", "demo"], "started_at": "2026-11-20T09:00:00+00:00",
        "ended_at": "2026-11-20T09:01:00+00:00", "status": "complete",
        "summary": {"turns": 2, "voice_to_voice": {"count": 2, "p50_ms": 750.0,
                                                   "p95_ms": 795.0},
                    "cost_usd": 0.02, "errors": []},
    }  # fmt: skip


def test_a_store_from_the_previous_version_migrates_in_place(home: Path, tmp_path: Path) -> None:
    turns = [turn_record(0, "bonjour", "bonjour !", 700.0),
             turn_record(1, "météo", "il fait beau", 800.0)]  # fmt: skip
    write_old_store(home, OLD_ID, turns, _old_meta())
    con = sqlite3.connect(home / "sessions.db")
    old_row = con.execute("SELECT * FROM sessions").fetchone()
    con.close()

    listed = cli_process(home, "sessions", "list", "--json")  # the real entry point
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row == {
        "id": OLD_ID, "started_at": old_row[1], "ended_at": old_row[2], "status": "complete",
        "provider": "openai", "model": "gpt-realtime", "profile": "", "turns": 2,
        "p50_v2v_ms": 750.0, "p95_v2v_ms": 795.0, "errors": 0,
        "tags": ["language=fr-FR", "demo"], "summary": _old_meta()["summary"],
    }  # fmt: skip
    assert SessionIndex(home / "sessions.db").schema_version == SCHEMA_VERSION
    shown = cli(home, "sessions", "show", OLD_ID)
    assert shown.returncode == 0 and "il fait beau" in shown.stdout
    out = tmp_path / "old.html"
    assert cli(home, "report", "session", OLD_ID, "--html", str(out)).returncode == 0
    assert "il fait beau" in out.read_text()
    assert cli(home, "sessions", "export", OLD_ID, "--html", str(out)).returncode == 0

    # Figures of the old session come from its row (turn v2v from the stored summary is
    # not per turn, so the migration reads the folder's turns.json once).
    cov = json.loads(cli(home, "coverage", "--json").stdout)
    (cell,) = cov["cells"]
    assert cell["key"] == {"language": "fr-FR", "accent": ""}
    assert cell["calls"] == 1 and cell["turns"] == 2
    assert cell["v2v_p50_ms"] == 750.0 and cell["pass_rate"] is None
    # A verdict on the migrated session works like on a new one.
    assert cli(home, "sessions", "verdict", OLD_ID, "--turn", "1", "fail").returncode == 0
    cov = json.loads(cli(home, "coverage", "--json").stdout)
    assert cov["cells"][0]["pass_rate"] == 0.0


def test_figures_filters_and_compare(home: Path) -> None:
    make_session(home, "20261201-100000-0001", [("a", "b", 100.0), ("c", "d", 300.0)],
                 tags=["language=hi-IN", "accent=tamil", "agent_version=v1"],
                 started_at="2026-12-01T10:00:00+00:00")  # fmt: skip
    make_session(home, "20261202-100000-0002", [("a", "b", 500.0)],
                 tags=["language=hi-IN", "accent=tamil", "agent_version=v2"],
                 provider="gemini", model="gemini-live",
                 started_at="2026-12-02T10:00:00+00:00")  # fmt: skip
    make_session(home, "20261203-100000-0003", [("a", "b", 900.0)],
                 tags=["language=en-GB", "agent_version=v2"],
                 started_at="2026-12-03T10:00:00+00:00")  # fmt: skip
    index = SessionIndex(home / "sessions.db")
    result = coverage(index, CoverageQuery())
    cells = {tuple(c["key"].values()): c for c in result["cells"]}
    hi = cells[("hi-IN", "tamil")]
    assert (hi["calls"], hi["turns"]) == (2, 3)
    assert hi["v2v_p50_ms"] == 300.0 and hi["v2v_p95_ms"] == 480.0  # linear interpolation
    assert result["languages"]["hi-IN"]["calls"] == 2

    only = coverage(index, CoverageQuery(since="2026-12-02", until="2026-12-02"))
    assert [c["calls"] for c in only["cells"]] == [1]
    assert coverage(index, CoverageQuery(provider="gemini"))["cells"][0]["calls"] == 1
    assert coverage(index, CoverageQuery(model="nope"))["cells"] == []
    assert len(coverage(index, CoverageQuery(agent_version="v2"))["cells"]) == 2

    cmp_ = json.loads(cli(home, "coverage", "--compare", "v1", "v2", "--json").stdout)
    row = next(r for r in cmp_["compare"] if r["key"]["language"] == "hi-IN")
    assert row["a"]["v2v_p50_ms"] == 200.0 and row["b"]["v2v_p50_ms"] == 500.0
    assert row["delta"]["v2v_p50_ms"] == 300.0
    text = cli(home, "coverage", "--compare", "v1", "v2")
    assert text.returncode == 0 and "hi-IN" in text.stdout and "+300" in text.stdout

    table = cli(home, "coverage")
    assert table.returncode == 0 and "hi-IN" in table.stdout and "tamil" in table.stdout
    for bad in (["--since", "yesterday"], ["--by", "colour"], ["--by", ""],
                ["--until", "2026-13-01"], ["--by", "language,language"],
                # a time of day would be dropped, an empty day is no filter, and a range
                # backwards has no day in it: each is refused, not run
                ["--since", "2026-12-04T18:05:00"], ["--since", ""],
                ["--since", "2026-12-05", "--until", "2026-12-01"]):  # fmt: skip
        proc = cli(home, "coverage", *bad)
        assert proc.returncode == 2, (bad, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1


def test_coverage_of_ten_thousand_sessions_is_under_a_second(tmp_path: Path) -> None:
    from app.bench.coverage import generate

    db = tmp_path / "sessions.db"
    generate(db, 10_000, seed=1)
    index = SessionIndex(db)
    coverage(index, CoverageQuery())  # warm the page cache, as a second opening would
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = coverage(index, CoverageQuery())
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert sum(c["calls"] for c in result["cells"]) == 10_000
    assert result["total"]["turns"] > 10_000 and result["total"]["judged"] > 0
    # CPU time: the machine may be shared (wall time then includes waiting for a core).
    assert cpu < 1.0, f"coverage over 10,000 sessions took {cpu:.2f} s CPU ({wall:.2f} s wall)"
    assert wall < 1.0 * TIME_SCALE * 3, f"{wall:.2f} s wall"


def test_a_report_is_never_written_into_the_data_folder(home: Path) -> None:
    """Over the index or a stored suite run, a report would destroy it: refused, one line,
    exit 2, and the file is left as it was. A new file beside them is the user's own (a
    data folder given with --out may be any folder)."""
    make_session(home, OLD_ID, [("hola", "hola", 800.0)], tags=["language=es-MX"])
    runs = home / "suite-runs"
    runs.mkdir(exist_ok=True)
    stored = runs / "20261201-100000-aaaa.json"
    stored.write_text('{"kept": true}')
    index = home / "sessions.db"
    before = index.read_bytes()
    for args in (["coverage", "--html", str(index)],
                 ["coverage", "--html", str(home / "sessions.db-wal")],
                 ["session", OLD_ID, "--html", str(stored)],
                 ["session", OLD_ID, "--html", str(home / "samples")]):  # fmt: skip
        proc = cli(home, "report", *args)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "data folder" in lines[0], proc.stderr
    assert index.read_bytes() == before and stored.read_text() == '{"kept": true}'
    assert not (home / "sessions.db-wal").exists()
    assert cli(home, "coverage", "--json").returncode == 0
    assert cli(home, "report", "coverage", "--html", str(home / "new.html")).returncode == 0
    assert "<h1>Coverage</h1>" in (home / "new.html").read_text()
