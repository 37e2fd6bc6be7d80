"""Untrusted text on the way out: a server's bytes can neither brick nor drive the terminal.

Whatever a provider sends (a lone UTF-16 surrogate, ESC/OSC sequences, CR and bidi
tricks) must still print and export, and must reach the terminal or the HTML report only
as harmless text. ``sessions export`` must never overwrite the session's own files and
writes its report atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.audio.wavio import read_wav
from app.events import AgentTranscript, ProviderErrorEvent, ResponseStarted, TurnCompleted
from app.metrics.records import TurnRecord
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from app.store.writer import SessionWriter
from tests.conftest import REPO

# A lone surrogate (as json.loads makes of "\ud800"), OSC window title, clear screen, CR
# overwrite, RTL override, and an 8-bit C1 CSI.
HOSTILE = "A\ud800B \x1b]0;pwned\x07 \x1b[2J C\rD \u202eE\u2066 \x9b31mF"
BAD_TERMINAL = ("\x1b", "\x07", "\r", "\x9b", "\u202e", "\u2066", "\ud800")
SID = "20261127-120000-dead"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {"VOICEPROBE_HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )


def _turn() -> dict[str, object]:
    return {
        "index": 0,
        "user_transcript": HOSTILE,
        "agent_transcript": HOSTILE,
        "interrupted": False,
        "spans": {
            "voice_to_voice": {
                "start_ns": 0,
                "end_ns": 950_000_000,
                "ms": 950.0,
                "from": "LocalSpeechStopped",
                "to": "PlaybackStarted",
            },
        },
        "tool_calls": [{"name": "lookup", "arguments": HOSTILE, "status": "ok", "ms": 25.0}],
    }


def make_session(home: Path) -> Path:
    meta = {"provider": "sim", "model": "m" + HOSTILE, "tags": [HOSTILE]}
    w = SessionWriter(home, SID, meta)
    w.append_event(ResponseStarted(t_ns=1, response_id="r1"))
    w.append_event(AgentTranscript(t_ns=2, response_id="r1", item_id="a", text=HOSTILE, final=True))
    w.append_event(ProviderErrorEvent(t_ns=3, code="x" + HOSTILE, message=HOSTILE))
    w.append_event(TurnCompleted(t_ns=4, turn=TurnRecord.from_dict(_turn())))
    w.write_turns([_turn()])
    w.finish("complete")
    return w.dir


def _assert_clean_terminal(out: bytes) -> None:
    text = out.decode("utf-8")  # strict: the output is valid UTF-8
    for bad in BAD_TERMINAL:
        assert bad not in text, (bad, text)


@pytest.fixture
def session(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    return home, make_session(home)


@pytest.mark.parametrize(
    "argv",
    [["sessions", "show", SID], ["sessions", "list"]],
    ids=["show", "list"],
)
def test_sessions_table_output_is_plain_text(session: tuple[Path, Path], argv: list[str]) -> None:
    home, _ = session
    proc = cli(home, *argv)
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    _assert_clean_terminal(proc.stdout + proc.stderr)
    assert SID.encode() in proc.stdout


@pytest.mark.parametrize(
    "argv",
    [["sessions", "show", SID, "--json"], ["sessions", "list", "--json"]],
    ids=["show", "list"],
)
def test_sessions_json_output_survives_a_lone_surrogate(
    session: tuple[Path, Path], argv: list[str]
) -> None:
    home, _ = session
    proc = cli(home, *argv)
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    text = proc.stdout.decode("utf-8")  # strict
    json.loads(text)
    for bad in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
        assert bad not in text  # escaped inside the JSON strings


def test_export_survives_surrogates_and_neutralises_bidi(
    session: tuple[Path, Path], tmp_path: Path
) -> None:
    home, _ = session
    out = tmp_path / "report.html"
    proc = cli(home, "sessions", "export", SID, "--html", str(out))
    assert proc.returncode == 0, proc.stderr
    raw = out.read_bytes()
    assert raw, "empty report"
    page = raw.decode("utf-8")  # strict
    for bad in ("\u202e", "\u2066", "\x1b", "\x07", "\x9b", "\ud800"):
        assert bad not in page, bad
    assert "Errors" in page and "pwned" in page  # the text is shown, as text


def test_print_turn_table_on_a_real_stdout() -> None:
    """The call command's table printer writes to a strict UTF-8 pipe without failing."""
    code = textwrap.dedent(
        f"""
        import sys
        from app.cli_output import print_turn_table
        turns = [{_turn()!r}]
        print_turn_table(turns, sys.stdout)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        timeout=60,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
    )
    assert proc.returncode == 0, proc.stderr
    _assert_clean_terminal(proc.stdout)
    assert b"pwned" in proc.stdout


HOSTILE_SCENARIO = r"""
name: hostile
timing: {response_delay_ms: 50, first_audio_ms: 50, transcript_delay_ms: 20, realtime_factor: 0}
turns:
  - hears: "caller A\ud800B \e]0;pwned\a \e[2J C\rD \u202eE"
    reply: "Fine."
    faults:
      - action: error
        at: response.done
        code: "rate\e[2Jlimit"
        message: "boom \e]0;pwned\a \e[2J C\rD \u202eE \x9b31m"
"""
CLEAN_SCENARIO = """
name: clean
turns:
  - hears: "Hello there."
    reply: "Fine."
"""


def test_call_output_is_plain_text(tmp_path: Path) -> None:
    """A real headless call whose server sends hostile transcripts and error messages."""
    home = tmp_path / "home"
    (tmp_path / "hostile.yaml").write_text(HOSTILE_SCENARIO)
    (tmp_path / "clean.yaml").write_text(CLEAN_SCENARIO)
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(tmp_path / "clean.yaml"), wav)
    assert len(read_wav(wav)[0])
    proc = cli(
        home,
        "call",
        "--input",
        str(wav),
        "--provider",
        "sim",
        "--scenario",
        str(tmp_path / "hostile.yaml"),
        "--no-record",
    )
    assert b"Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), proc.stderr
    _assert_clean_terminal(proc.stdout + proc.stderr)
    assert b"pwned" in proc.stderr  # the error line is shown, as text
    assert b"caller" in proc.stdout  # the turn row is shown


# --- sessions export: where it may write, and how ------------------------------------------


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("target", ["session.json", "events.jsonl", "sub/../turns.json", "."])
def test_export_refuses_the_session_folder(session: tuple[Path, Path], target: str) -> None:
    home, folder = session
    before = {p.name: _digest(p) for p in folder.iterdir()}
    proc = cli(home, "sessions", "export", SID, "--html", str(folder / target))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and "data folder" in lines[0], lines
    assert {p.name: _digest(p) for p in folder.iterdir()} == before


def test_export_refuses_a_symlink_into_the_session_folder(
    session: tuple[Path, Path], tmp_path: Path
) -> None:
    home, folder = session
    link = tmp_path / "innocent.html"
    link.symlink_to(folder / "session.json")
    before = _digest(folder / "session.json")
    proc = cli(home, "sessions", "export", SID, "--html", str(link))
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.decode().splitlines()) == 1
    assert _digest(folder / "session.json") == before


def test_export_to_a_missing_folder_is_one_line(session: tuple[Path, Path], tmp_path: Path) -> None:
    home, _ = session
    target = tmp_path / "no" / "such" / "report.html"
    proc = cli(home, "sessions", "export", SID, "--html", str(target))
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and str(target.parent) in lines[0] and "Traceback" not in lines[0]
    assert not target.parent.exists()


def test_export_replaces_atomically_and_leaves_no_temp(
    session: tuple[Path, Path], tmp_path: Path
) -> None:
    home, _ = session
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    target = out_dir / "r.html"
    target.write_text("old")
    inode = os.stat(target).st_ino
    proc = cli(home, "sessions", "export", SID, "--html", str(target))
    assert proc.returncode == 0, proc.stderr
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert os.stat(target).st_ino != inode  # a new file renamed over the old one
    assert sorted(p.name for p in out_dir.iterdir()) == ["r.html"]
