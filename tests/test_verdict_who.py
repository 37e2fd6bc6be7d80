"""``sessions verdict --who``: a name over the limit, or one holding control characters,
is refused with one line naming the option (exit 2) and nothing stored changes; it used
to be cut to 100 characters without a word. ``$VOICEPROBE_TESTER``, the default, is the
user's own words too and checked the same. Run as a real ``voiceprobe`` process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.store.verdicts import MAX_WHO
from tests.coverage_helpers import cli_process, make_session

SID = "20261201-100000-abcd"


def _stored(home: Path) -> str | None:
    path = home / "sessions" / SID / "verdicts.json"
    return path.read_text(encoding="utf-8") if path.exists() else None


def test_a_who_over_the_limit_is_refused(home: Path) -> None:
    make_session(home, SID, [("hi", "hello", 700.0)])
    proc = cli_process(home, "sessions", "verdict", SID, "--turn", "1", "pass",
                       "--who", "a" * (MAX_WHO + 1))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "--who" in line and f"at most {MAX_WHO}" in line and str(MAX_WHO + 1) in line
    assert proc.stdout == "" and _stored(home) is None

    proc = cli_process(home, "sessions", "verdict", SID, "--turn", "1", "pass",
                       "--who", "a" * MAX_WHO)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(_stored(home) or "[]")
    assert entry["who"] == "a" * MAX_WHO  # kept whole


@pytest.mark.parametrize("who", ["ana\x1b[2Jbob", "ana\nbob", "ana\u202ebob", "ana\tbob"])
def test_a_who_with_control_characters_is_refused(home: Path, who: str) -> None:
    make_session(home, SID, [("hi", "hello", 700.0)])
    proc = cli_process(home, "sessions", "verdict", SID, "--turn", "1", "pass", "--who", who)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "--who" in line and "control characters" in line
    assert "\x1b" not in proc.stderr and "\u202e" not in proc.stderr  # shown escaped
    assert _stored(home) is None


@pytest.mark.parametrize(
    ("tester", "says"),
    [("t" * (MAX_WHO + 1), f"at most {MAX_WHO}"), ("ana\nbob", "control characters")],
)
def test_a_tester_from_the_environment_is_checked_like_who(
    home: Path, tester: str, says: str
) -> None:
    make_session(home, SID, [("hi", "hello", 700.0)])
    env = {"VOICEPROBE_TESTER": tester}
    proc = cli_process(home, "sessions", "verdict", SID, "--turn", "1", "pass", env=env)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "$VOICEPROBE_TESTER" in line and says in line
    assert _stored(home) is None
    # --who given: the environment is not consulted.
    proc = cli_process(home, "sessions", "verdict", SID, "--turn", "1", "pass", "--who", "ana",
                       env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(_stored(home) or "[]")
    assert entry["who"] == "ana"
    # A name within the limit is kept whole.
    env = {"VOICEPROBE_TESTER": "t" * MAX_WHO}
    proc = cli_process(home, "sessions", "verdict", SID, "--turn", "1", "fail", env=env)
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(_stored(home) or "[]")
    assert entry["who"] == "t" * MAX_WHO
