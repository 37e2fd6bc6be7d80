"""``voiceprobe sessions list | show | export`` over a recorded session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from app.events import AgentTranscript, ResponseStarted, TurnCompleted
from app.metrics.records import TurnRecord
from app.store.writer import SessionWriter
from tests.conftest import REPO

HOSTILE = '<script>alert("x")</script> <img src=x onerror=alert(1)>'


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"VOICEPROBE_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )


def make_session(home: Path) -> str:
    turn = {
        "index": 0,
        "user_transcript": "Hello?",
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
        "tool_calls": [
            {"name": "get_weather", "arguments": '{"city": "<Paris>"}', "status": "ok", "ms": 250.0}
        ],
    }
    w = SessionWriter(home, "20261127-120000-abcd", {"provider": "sim", "model": "gpt-realtime"})
    w.append_event(ResponseStarted(t_ns=1, response_id="r1"))
    w.append_event(
        AgentTranscript(t_ns=2, response_id="r1", item_id="a1", text=HOSTILE, final=True)
    )
    w.append_event(TurnCompleted(t_ns=3, turn=TurnRecord.from_dict(turn)))
    w.write_turns([turn])
    w.finish("complete", {"voice_to_voice": {"p50_ms": 950.0, "p95_ms": 950.0}})
    return w.session_id


def test_list_show_and_export_escape_untrusted_text(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sid = make_session(home)
    listed = cli(home, "sessions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [sid] and rows[0]["status"] == "complete"
    table = cli(home, "sessions", "list")
    assert sid in table.stdout and "950 ms" in table.stdout
    shown = cli(home, "sessions", "show", sid)
    assert shown.returncode == 0 and "Hello?" in shown.stdout
    out = tmp_path / "report.html"
    exported = cli(home, "sessions", "export", sid, "--html", str(out))
    assert exported.returncode == 0, exported.stderr
    page = out.read_text()
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page and "&lt;Paris&gt;" in page
    assert "voice_to_voice" in page


def test_unknown_session_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = cli(tmp_path / "home", "sessions", "show", "nope")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no session 'nope'" in proc.stderr
