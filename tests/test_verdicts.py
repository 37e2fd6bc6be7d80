"""Tags and per-turn verdicts: ``voiceprobe sessions verdict``, suite checks as automatic
verdicts, and bad input that changes nothing."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest

from app.cli_support import plan_agent
from app.errors import ConfigError
from tests.coverage_helpers import cli, make_session, suite_case, write_suite_run

SID = "20261201-100000-aaaa"


def _snapshot(home: Path) -> dict[str, str]:
    """Every stored file's hash (the database read back as its rows)."""
    out: dict[str, str] = {}
    for p in sorted((home / "sessions").rglob("*")):
        if p.is_file():
            out[str(p.relative_to(home))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_manual_verdict_is_stored_shown_and_overrides_the_suite(home: Path) -> None:
    make_session(home, SID, [("hola", "hola, ¿qué tal?", 800.0), ("tiempo", "soleado", 900.0)],
                 tags=["language=es-MX", "accent=norteño", "tester=ana"])  # fmt: skip
    checks = [
        {"turn": 1, "name": "heard", "passed": True, "value": 0.0, "limit": 0.3, "message": ""},
        {"turn": 2, "name": "says", "passed": False, "value": None, "limit": "sol",
         "message": "no match for 'sol'"},
    ]  # fmt: skip
    turns = [{"turn": 1, "wer": 0.0, "reply_language": "es"},
             {"turn": 2, "wer": 0.25, "reply_language": "en"}]  # fmt: skip
    write_suite_run(home, "20261201-100500-0001", [suite_case(SID, "es-MX", turns, checks)])

    proc = cli(home, "sessions", "verdict", SID, "--turn", "2", "pass", "--reason", "other",
               "--note", "<b>fine</b> by ear", "--who", "ana")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    stored = json.loads((home / "sessions" / SID / "verdicts.json").read_text())
    assert stored[0]["turn"] == 2 and stored[0]["verdict"] == "pass"
    assert stored[0]["who"] == "ana" and stored[0]["at"]

    proc = cli(home, "sessions", "verdicts", SID, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {(v["turn"], v["source"]): v for v in json.loads(proc.stdout)}
    assert rows[(2, "manual")]["verdict"] == "pass"
    assert rows[(2, "auto")]["verdict"] == "fail"  # both kept
    assert "no match for 'sol'" in rows[(2, "auto")]["note"]
    assert rows[(1, "auto")]["verdict"] == "pass"

    # The coverage cell counts the manual verdict, not the suite's.
    cov = json.loads(cli(home, "coverage", "--json").stdout)
    (cell,) = cov["cells"]
    assert cell["key"] == {"language": "es-MX", "accent": "norteño"}
    assert cell["judged"] == 2 and cell["passed"] == 2 and cell["pass_rate"] == 100.0
    assert cell["mean_wer"] == 0.125
    assert cell["reply_language_match"] == 50.0

    # A second verdict for the same turn replaces the first (one manual verdict a turn).
    proc = cli(home, "sessions", "verdict", SID, "--turn", "2", "fail", "--reason", "misheard")
    assert proc.returncode == 0, proc.stderr
    cov = json.loads(cli(home, "coverage", "--json").stdout)
    assert cov["cells"][0]["passed"] == 1
    stored = json.loads((home / "sessions" / SID / "verdicts.json").read_text())
    assert [(v["turn"], v["verdict"], v["reason"]) for v in stored] == [(2, "fail", "misheard")]


def test_bad_verdicts_say_one_line_exit_2_and_change_nothing(home: Path) -> None:
    make_session(home, SID, [("hi", "hello", 700.0)], tags=["language=en-US"])
    assert cli(home, "sessions", "verdict", SID, "--turn", "1", "fail",
               "--reason", "cut_off").returncode == 0  # fmt: skip
    before = _snapshot(home)
    bad = [
        ("--turn", "2", "pass"),  # no turn 2
        ("--turn", "0", "pass"),  # numbered from 1
        ("--turn", "x", "pass"),
        ("--turn", "1", "maybe"),
        ("--turn", "1", "fail", "--reason", "bored"),
        ("--turn", "1", "pass", "--note", "x" * 5000),
    ]
    for args in bad:
        proc = cli(home, "sessions", "verdict", SID, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    proc = cli(home, "sessions", "verdict", "20991231-000000-ffff", "--turn", "1", "pass")
    assert proc.returncode == 2 and "no session" in proc.stderr
    assert _snapshot(home) == before
    v = json.loads(cli(home, "sessions", "verdicts", SID, "--json").stdout)
    assert [(x["turn"], x["verdict"], x["reason"]) for x in v] == [(1, "fail", "cut_off")]


def test_tags_with_an_empty_key_are_refused_before_any_call(home: Path, tmp_path: Path) -> None:
    for tag in ("=hi-IN", " =x", "=", "lang uage=x=y\n"):
        proc = cli(home, "call", "--input", str(tmp_path / "missing.wav"), "--tag", tag)
        assert proc.returncode == 2, (tag, proc.stderr)
        assert "tag" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (home / "sessions").exists()
    # The SIP and Twilio commands place calls through plan_agent, which checks the same.
    with pytest.raises(ConfigError, match="empty key"):
        plan_agent(argparse.Namespace(tag=["=x"]), None)


def test_tags_are_read_from_session_json_into_the_index(home: Path) -> None:
    tags = ["language=hi-IN", "accent=tamil", "scenario=billing", "tester=ravi",
            "agent_version=v7", "noise=babble@10", "line=g711", "suite=s", "vip"]  # fmt: skip
    make_session(home, SID, [("hi", "namaste", 700.0)], tags=tags)
    cov = json.loads(cli(home, "coverage", "--by", "scenario,tester,agent_version",
                         "--json").stdout)  # fmt: skip
    assert cov["cells"][0]["key"] == {"scenario": "billing", "tester": "ravi",
                                      "agent_version": "v7"}  # fmt: skip
    cov = json.loads(cli(home, "coverage", "--by", "condition", "--json").stdout)
    assert cov["cells"][0]["key"] == {"condition": "babble@10/g711"}
    listed = json.loads(cli(home, "sessions", "list", "--json").stdout)
    assert "vip" in listed[0]["tags"] and "language=hi-IN" in listed[0]["tags"]


def test_a_rebuilt_index_reads_manual_verdicts_back_from_the_folder(home: Path) -> None:
    make_session(home, SID, [("hi", "hello", 700.0)], tags=["language=en-US"])
    assert cli(home, "sessions", "verdict", SID, "--turn", "1", "fail").returncode == 0
    for name in ("sessions.db", "sessions.db-wal", "sessions.db-shm"):
        (home / name).unlink(missing_ok=True)
    rows = json.loads(cli(home, "sessions", "verdicts", SID, "--json").stdout)
    assert [(v["turn"], v["source"], v["verdict"]) for v in rows] == [(1, "manual", "fail")]
    assert json.loads(cli(home, "coverage", "--json").stdout)["total"]["passed"] == 0
