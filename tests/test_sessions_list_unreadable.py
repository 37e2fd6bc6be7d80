"""``sessions list`` says which session folders it cannot read: one ``warning:`` line each
on stderr, naming the folder and the fault (never the file's contents); the readable
sessions are still listed, stdout stays a table or valid JSON, and the exit code stays 0.
Such folders used to be skipped without a word. Run as a real ``voiceprobe`` process.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.coverage_helpers import cli_process, make_session

GOOD = "20261201-100000-aaaa"
SECRET = "sk-do-not-print-0123456789"


def _unreadable_sessions(home: Path) -> dict[str, str]:
    """Session folders the reader refuses, by id → the fault the warning must name."""
    sessions = home / "sessions"
    cut = sessions / "20261201-110000-bbbb"  # cut mid-write, never indexed
    cut.mkdir(parents=True)
    (cut / "session.json").write_text(f'{{\n  "status": "running",\n  "note": "{SECRET}', "utf-8")
    deep = sessions / "20261201-120000-cccc"  # would overflow the parser's stack
    deep.mkdir()
    (deep / "session.json").write_text("[" * 100_000, encoding="utf-8")
    bad_turns = make_session(home, "20261201-130000-dddd", [("hi", "hello", 700.0)])
    (bad_turns / "turns.json").write_text(f'[{{"index": "{SECRET}"}}]', encoding="utf-8")
    return {
        cut.name: "session.json is not valid JSON (line 3)",
        deep.name: "session.json is not valid JSON (nested too deeply)",
        bad_turns.name: "turns.json: turns[0].index: expected an integer",
    }


def _warnings(stderr: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in stderr.splitlines():
        assert line.startswith("warning: session "), stderr
        folder, _, reason = line.removeprefix("warning: session ").partition(" cannot be read: ")
        found[Path(folder).name] = reason
    return found


def test_unreadable_sessions_are_named_on_stderr(home: Path) -> None:
    make_session(home, GOOD, [("hi", "hello", 700.0)])
    bad = _unreadable_sessions(home)

    proc = cli_process(home, "sessions", "list")
    assert proc.returncode == 0, proc.stderr
    assert _warnings(proc.stderr) == bad
    for sid in bad:
        assert f"warning: session {home / 'sessions' / sid} cannot be read: " in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert any(line.startswith(GOOD) for line in proc.stdout.splitlines()), proc.stdout

    proc = cli_process(home, "sessions", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)  # the warnings stay on stderr
    assert GOOD in {r["id"] for r in rows}
    assert not {r["id"] for r in rows} & (set(bad) - {"20261201-130000-dddd"})
    assert _warnings(proc.stderr) == bad


def test_no_warning_when_every_session_reads(home: Path) -> None:
    make_session(home, GOOD, [("hi", "hello", 700.0)])
    proc = cli_process(home, "sessions", "list")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
