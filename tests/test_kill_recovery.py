"""A call killed with SIGKILL mid-call leaves a session that the next start recovers.

A real ``voiceprobe call`` against the built-in simulator is killed once its first turn
is on disk; ``voiceprobe sessions list`` (which runs start-up recovery) must then show it
as ``incomplete``, with a readable WAV that holds the audio up to the kill, and an
``events.jsonl`` that reads back except at most its last line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.audio.wavio import read_wav_channels
from app.store.reader import load_session
from tests.conftest import REPO, TIME_SCALE

#: The WAV must hold audio up to this close to the kill (seconds).
KILL_TOL_S = 1.0


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["VOICEPROBE_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[str]
) -> None:
    """Poll ``predicate`` until it holds; fail early if the call process ended."""
    deadline = time.monotonic() + timeout * TIME_SCALE
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"call ended (rc {proc.returncode}) before {what}: {err[-2000:]}")
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow
def test_kill_9_mid_call_is_recovered(home: Path, tmp_path: Path) -> None:
    wav = tmp_path / "caller.wav"
    sample = subprocess.run(
        [sys.executable, "-m", "app.cli", "sample", "--out", str(wav)],
        capture_output=True, text=True, cwd=REPO, env=_env(home), timeout=120,
    )  # fmt: skip
    assert sample.returncode == 0, sample.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "call", "--input", str(wav), "--provider", "sim"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=_env(home),
    )  # fmt: skip
    try:
        sessions = home / "sessions"

        def folder() -> Path | None:
            found = sorted(sessions.glob("*/events.jsonl")) if sessions.is_dir() else []
            return found[0].parent if found else None

        def turn_on_disk() -> bool:
            f = folder()
            return f is not None and b'"kind":"TurnCompleted"' in (f / "events.jsonl").read_bytes()

        _wait_for(turn_on_disk, 60, "the first TurnCompleted in events.jsonl", proc)
        t_kill = time.monotonic_ns()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    session_dir = folder()
    assert session_dir is not None
    meta = json.loads((session_dir / "session.json").read_text())
    assert meta["status"] == "running", "the killed writer never closed the session"

    listing = subprocess.run(
        [sys.executable, "-m", "app.cli", "sessions", "list", "--json"],
        capture_output=True, text=True, cwd=REPO, env=_env(home), timeout=60,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    rows = {r["id"]: r for r in json.loads(listing.stdout)}
    assert rows[session_dir.name]["status"] == "incomplete"

    record = load_session(session_dir)
    assert record.status == "incomplete"
    assert record.skipped_lines <= 1
    raw_lines = [ln for ln in (session_dir / "events.jsonl").read_bytes().split(b"\n") if ln]
    for line in raw_lines[:-1]:
        assert isinstance(json.loads(line), dict)  # every line but the last is whole
    kinds = [e["kind"] for e in record.events]
    assert kinds[0] == "CallStarted" and "TurnCompleted" in kinds and "CallEnded" not in kinds

    audio, rate = read_wav_channels(session_dir / "audio.wav")
    assert audio.shape[1] == 2 and rate == meta["audio_rate"]
    recorded_s = audio.shape[0] / rate
    alive_s = (t_kill - meta["audio_t0_ns"]) / 1e9
    assert alive_s - KILL_TOL_S * TIME_SCALE <= recorded_s <= alive_s + 0.05, (
        f"WAV holds {recorded_s:.3f} s, the call ran {alive_s:.3f} s before the kill"
    )
    # Both sides really were recorded: the caller's first line and the agent's first reply.
    assert abs(audio[:, 0]).max() > 1000 and abs(audio[:, 1]).max() > 1000
