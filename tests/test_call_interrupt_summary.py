"""A headless call stopped by Ctrl-C or SIGTERM still prints the figures of the turns
that finished (the session is closed out with them), as a finished call prints them:
the table on stdout, or with ``--json`` one JSON object that says the call was
interrupted; the ``interrupted by …`` line stays on stderr and the exit code is 130/143.

Every test runs ``voiceprobe call`` as a real subprocess against the built-in simulator
and signals it once its first turn is done (seen on stderr, or in the session folder's
``turns.json`` with ``--json``, which prints no progress).
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.bridge.providers import DEFAULT_SCENARIO
from app.cli_support import interrupted_summary
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.conftest import TIME_SCALE
from tests.sip_peers import wait_until
from tests.suite_helpers import start_cli


@pytest.fixture(scope="module")
def demo_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo scenario's caller lines (four turns, about 30 s)."""
    wav = tmp_path_factory.mktemp("caller") / "demo.wav"
    write_caller_wav(load_scenario(str(DEFAULT_SCENARIO)), wav)
    return wav


def _call(wav: Path, home: Path, *extra: str) -> subprocess.Popen[str]:
    # --max-seconds bounds the call, so reading its stderr to the end always ends.
    return start_cli(
        ["call", "--input", str(wav), "--provider", "sim", "--max-seconds", "120", *extra], home
    )


def _stored_turns(home: Path) -> list[dict[str, Any]]:
    found = sorted((home / "sessions").glob("*/turns.json"))
    return json.loads(found[0].read_text(encoding="utf-8")) if found else []


def _signal_after_first_turn(
    proc: subprocess.Popen[str], home: Path, sig: signal.Signals, as_json: bool
) -> tuple[str, str]:
    """Send ``sig`` once the call's first turn is done; return (stdout, stderr)."""
    seen: list[str] = []
    try:
        assert proc.stderr is not None
        if as_json:  # no progress lines: the turn shows in the session folder
            wait_until(
                lambda: bool(_stored_turns(home)) or proc.poll() is not None,
                60 * TIME_SCALE,
                "the first turn in turns.json",
            )
        else:
            for line in proc.stderr:
                seen.append(line)
                if "turn 1 done" in line:
                    break
        assert proc.poll() is None, f"the call ended first: {''.join(seen)}"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60 * TIME_SCALE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return out, "".join(seen) + err


def _check_interrupted(err: str, sig: signal.Signals, home: Path) -> dict[str, Any]:
    """The one ``interrupted by`` line names the signal and the session; the session is
    closed out ``interrupted``; returns its session.json."""
    assert "Traceback" not in err, err[-3000:]
    said = [ln for ln in err.splitlines() if ln.startswith("interrupted by")]
    assert len(said) == 1 and sig.name in said[0], err
    (meta_path,) = (home / "sessions").glob("*/session.json")
    assert meta_path.parent.name in said[0]
    meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    assert meta["status"] == "interrupted"
    return meta


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_json_call_prints_its_finished_turns(
    demo_wav: Path, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    home = tmp_path / "home"
    proc = _call(demo_wav, home, "--json")
    out, err = _signal_after_first_turn(proc, home, sig, True)
    assert proc.returncode == code, err[-3000:]
    meta = _check_interrupted(err, sig, home)
    summary = json.loads(out)  # exactly one JSON object on stdout
    assert isinstance(summary, dict)
    assert summary["ok"] is False and summary["reason"] == "interrupted"
    assert summary["session_id"] == meta["session_id"]
    assert Path(summary["session_dir"]).name == meta["session_id"]
    assert summary["provider"] == "sim" and summary["errors"] == []
    turns = summary["turns"]
    assert turns == _stored_turns(home)  # the turns the session was closed out with
    assert turns and turns[0]["index"] == 0
    assert turns[0]["user_transcript"] == "Hello, can you hear me?"
    finished = [t for t in turns if "voice_to_voice" in t["spans"]]
    assert summary["voice_to_voice"]["count"] == len(finished) >= 1
    assert summary["voice_to_voice"]["p50_ms"] > 0
    assert meta["summary"]["turns"] == len(turns)


@pytest.mark.slow
def test_interrupted_call_prints_its_turn_table(demo_wav: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = _call(demo_wav, home)
    out, err = _signal_after_first_turn(proc, home, signal.SIGINT, False)
    assert proc.returncode == 130, err[-3000:]
    meta = _check_interrupted(err, signal.SIGINT, home)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["#", "caller", "agent"], out
    assert any(ln.split()[:1] == ["1"] and "Hello, can you" in ln for ln in lines), out
    assert any(
        ln.startswith("voice_to_voice (LocalSpeechStopped → PlaybackStarted)") for ln in lines
    )
    assert any(ln.startswith("cost: ") for ln in lines), out
    assert lines[-1] == f"session {meta['session_id']}: {home / 'sessions' / meta['session_id']}"


def test_an_unreadable_session_folder_gives_no_summary(tmp_path: Path) -> None:
    """Then the command prints only its ``interrupted by`` line, as before."""
    assert interrupted_summary(tmp_path / "missing") is None
    folder = tmp_path / "20261204-120000-abcd"
    folder.mkdir()
    (folder / "session.json").write_text('{"status": "interrupted", "summ', encoding="utf-8")
    assert interrupted_summary(folder) is None
