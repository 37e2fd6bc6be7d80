"""Sessions, suite runs and old-schema stores made by hand for the coverage and report
tests (real files through the real writer; no call is placed)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import wave
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.store.writer import SessionWriter
from tests.conftest import REPO

RATE = 16000
T0_NS = 1_000_000_000_000


def cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``voiceprobe ARGS`` with ``VOICEPROBE_HOME=home``, run in this process (the entry
    point itself is run as a subprocess by test_sessions_cli.py); ``timeout`` is unused."""
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.get("VOICEPROBE_HOME")
    os.environ["VOICEPROBE_HOME"] = str(home)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        if saved is None:
            os.environ.pop("VOICEPROBE_HOME", None)
        else:
            os.environ["VOICEPROBE_HOME"] = saved
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def cli_process(
    home: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m app.cli ARGS`` with ``VOICEPROBE_HOME=home`` (a real process), and
    ``env`` besides."""
    env = {"VOICEPROBE_HOME": str(home), "PATH": "/usr/bin:/bin", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


def turn_record(index: int, user: str, agent: str, v2v_ms: float | None) -> dict[str, Any]:
    """A turn as ``turns.json`` holds it: caller speech from ``index`` * 4 s to +1.5 s,
    then ``voice_to_voice`` of ``v2v_ms`` and 1 s of agent speech."""
    start = T0_NS + index * 4_000_000_000
    stop = start + 1_500_000_000
    spans: dict[str, Any] = {
        "user_speech": {"start_ns": start, "end_ns": stop, "ms": 1500.0,
                        "from": "LocalSpeechStarted", "to": "LocalSpeechStopped"},
    }  # fmt: skip
    if v2v_ms is not None:
        end = stop + int(v2v_ms * 1e6)
        spans["voice_to_voice"] = {
            "start_ns": stop, "end_ns": end, "ms": float(v2v_ms),
            "from": "LocalSpeechStopped", "to": "PlaybackStarted",
        }  # fmt: skip
        spans["agent_speech"] = {
            "start_ns": end, "end_ns": end + 1_000_000_000, "ms": 1000.0,
            "from": "PlaybackStarted", "to": "PlaybackStopped",
        }  # fmt: skip
    return {
        "index": index,
        "user_transcript": user,
        "agent_transcript": agent,
        "interrupted": False,
        "spans": spans,
        "tool_calls": [],
    }


def write_stereo(path: Path, seconds: float) -> None:
    """A stereo PCM16 recording: a 440 Hz tone left (caller), 660 Hz right (agent)."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    left = (3000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    right = (3000 * np.sin(2 * np.pi * 660 * t)).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.column_stack([left, right]).tobytes())


def make_session(
    home: Path,
    sid: str,
    turns: Sequence[tuple[str, str, float | None]],
    *,
    tags: Sequence[str] = (),
    provider: str = "openai",
    model: str = "gpt-realtime",
    started_at: str = "2026-12-01T10:00:00+00:00",
    audio: bool = True,
    cost_usd: float | None = 0.0123,
) -> Path:
    """A finished session folder (and its index row) written by the real writer."""
    records = [turn_record(i, u, a, v) for i, (u, a, v) in enumerate(turns)]
    meta = {"provider": provider, "model": model, "tags": list(tags),
            "started_at": started_at, "audio_t0_ns": T0_NS, "source": "file:x.wav"}  # fmt: skip
    w = SessionWriter(home, sid, meta, now=datetime.fromisoformat(started_at))
    if audio:
        write_stereo(w.audio_path, 4.0 * max(1, len(records)) + 1)
    w.write_turns(records)
    v2v = [v for _, _, v in turns if v is not None]
    w.finish(
        "complete",
        {
            "turns": len(records),
            "voice_to_voice": {
                "count": len(v2v),
                "p50_ms": float(np.percentile(v2v, 50)) if v2v else None,
                "p95_ms": float(np.percentile(v2v, 95)) if v2v else None,
            },  # fmt: skip
            "network_rtt": {"count": 3, "p50_ms": 41.0, "p95_ms": 55.0},
            "errors": [],
            "cost_usd": cost_usd,
        },
    )
    return w.dir


def write_suite_run(home: Path, run_id: str, cases: list[dict[str, Any]]) -> Path:
    """A stored suite run (the shape ``app.suite.runner`` writes) with ``cases``."""
    folder = home / "suite-runs"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{run_id}.json"
    path.write_text(json.dumps({"run_id": run_id, "suite": "smoke", "cases": cases,
                                "summary": {}, "status": "complete"}))  # fmt: skip
    return path


def suite_case(
    session_id: str, language: str, turns: list[dict[str, Any]], checks: list[dict[str, Any]]
) -> dict[str, Any]:
    """One case of a stored suite run."""
    return {"index": 1, "id": f"c/{language}", "language": language, "accent": None,
            "session_id": session_id, "passed": all(c["passed"] for c in checks),
            "checks": checks, "turns": turns}  # fmt: skip


# The index schema as voiceprobe wrote it before tags, verdicts and coverage (schema 1).
OLD_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version(version) VALUES (1)",
    """CREATE TABLE sessions (id TEXT PRIMARY KEY, started_at TEXT, ended_at TEXT,
       status TEXT, provider TEXT, model TEXT, profile TEXT, turns INTEGER,
       p50_v2v_ms REAL, p95_v2v_ms REAL, errors INTEGER, tags TEXT, summary_json TEXT)""",
    "CREATE INDEX sessions_started_at ON sessions(started_at)",
)


def write_old_store(
    home: Path, sid: str, turns: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    """A session folder and a schema-1 ``sessions.db`` as the previous voiceprobe left them
    (the row filled the way its ``row_from_meta`` did)."""
    folder = home / "sessions" / sid
    folder.mkdir(parents=True, mode=0o700)
    (folder / "session.json").write_text(json.dumps(meta, indent=2))
    (folder / "turns.json").write_text(json.dumps(turns, indent=2))
    (folder / "events.jsonl").write_text("")
    con = sqlite3.connect(home / "sessions.db")
    con.execute("PRAGMA journal_mode=WAL")
    for statement in OLD_SCHEMA:
        con.execute(statement)
    summary = meta["summary"]
    con.execute(
        "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (sid, meta["started_at"], meta["ended_at"], meta["status"], meta["provider"],
         meta["model"], "", summary["turns"], summary["voice_to_voice"]["p50_ms"],
         summary["voice_to_voice"]["p95_ms"], 0, json.dumps(meta["tags"]),
         json.dumps(summary)),
    )  # fmt: skip
    con.commit()
    con.close()
