"""Crash safety: a writer killed with SIGKILL, a reader beside a live writer, recovery."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import StoreError
from app.store import SessionIndex, SessionWriter, load_session, recover_unfinished
from app.store.reader import writer_alive
from app.store.writer import process_identity

REPO = Path(__file__).resolve().parents[1]

# Appends events forever; prints "ready" once `n` events are on disk.
WRITER = """
import sys, pathlib
from app.events import Notice
from app.store.writer import SessionWriter
root, sid, n = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
w = SessionWriter(root, sid, {"provider": "openai", "model": "m", "tags": ["crash"]})
i = 0
while True:
    w.append_event(Notice(t_ns=i, level="info", message="x" * (i % 40)))
    i += 1
    if i == n:
        print("ready", flush=True)
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env
    )


def _wait_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "subprocess did not report in time"
    return proc.stdout.readline().strip()


@pytest.fixture
def writer_proc(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    proc = _spawn(WRITER, str(tmp_path), "crash-1", "300")
    try:
        assert _wait_line(proc) == "ready"
        yield proc, tmp_path / "sessions" / "crash-1"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _assert_prefix(events: list[dict]) -> None:
    assert [e["t_ns"] for e in events] == list(range(len(events)))


def test_reader_beside_a_live_writer(writer_proc: tuple[subprocess.Popen[str], Path]) -> None:
    proc, folder = writer_proc
    counts = []
    for _ in range(12):
        rec = load_session(folder)
        _assert_prefix(rec.events)  # never a hole or a reordering
        assert rec.skipped_lines <= 1  # at most the line being written
        assert rec.meta["status"] == "running"
        counts.append(len(rec.events))
    assert counts == sorted(counts) and counts[0] >= 300
    assert counts[-1] > counts[0]  # the writer kept going while we read
    assert proc.poll() is None


def test_kill_9_loses_at_most_the_last_event(
    tmp_path: Path, writer_proc: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, folder = writer_proc
    before = len(load_session(folder).events)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    rec = load_session(folder)
    assert rec.skipped_lines <= 1
    _assert_prefix(rec.events)
    assert len(rec.events) >= before
    assert rec.meta["status"] == "running"
    assert not writer_alive(rec.meta)

    index = SessionIndex(tmp_path / "sessions.db")
    fixed = recover_unfinished(tmp_path, index)
    assert fixed == ["crash-1"]
    after = load_session(folder)
    assert after.meta["status"] == "incomplete"
    assert after.meta["ended_at"] and after.meta["ended_ns"] == len(rec.events) - 1
    rows = index.list()
    assert [r["id"] for r in rows] == ["crash-1"]
    assert rows[0]["status"] == "incomplete" and rows[0]["tags"] == ["crash"]
    assert recover_unfinished(tmp_path, index) == []  # idempotent


def test_truncated_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    from app.events import Notice

    w = SessionWriter(tmp_path, "t1", {})
    for i in range(3):
        w.append_event(Notice(t_ns=i, level="info", message="ok"))
    w.close()
    with open(w.events_path, "ab") as fh:
        fh.write(b'{"t_ns": 3, "kind": "Notice", "mess')
    rec = load_session(w.dir)
    assert len(rec.events) == 3 and rec.skipped_lines == 1


def test_live_session_in_this_process_is_left_alone(tmp_path: Path) -> None:
    index = SessionIndex(tmp_path / "sessions.db")
    w = SessionWriter(tmp_path, "live", {}, index=index)
    assert writer_alive(w.meta)
    assert recover_unfinished(tmp_path, index) == []
    assert load_session(w.dir).meta["status"] == "running"
    w.finish()


def test_pid_reuse_and_dead_pid_count_as_gone() -> None:
    me = process_identity()
    assert writer_alive(me)
    if me["proc_start"] is not None:
        assert not writer_alive({**me, "proc_start": me["proc_start"] + 1})
    assert not writer_alive({**me, "boot_id": "another-boot"}) or not me["boot_id"]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=10)
    assert not writer_alive({**me, "pid": dead.pid})
    assert not writer_alive({})


def test_recovery_reindexes_unknown_folders_and_skips_broken_ones(tmp_path: Path) -> None:
    SessionWriter(tmp_path, "a", {"provider": "openai"}).finish()
    SessionWriter(tmp_path, "b", {"provider": "gemini"}).finish()
    broken = tmp_path / "sessions" / "broken"
    broken.mkdir()
    (broken / "session.json").write_text("{not json")
    (tmp_path / "sessions.db").unlink()
    for extra in tmp_path.glob("sessions.db-*"):
        extra.unlink()
    index = SessionIndex(tmp_path / "sessions.db")
    assert index.list() == []
    assert recover_unfinished(tmp_path, index) == ["a", "b"]
    assert {r["id"]: r["status"] for r in index.list()} == {"a": "complete", "b": "complete"}
    with pytest.raises(StoreError, match="not valid JSON"):
        load_session(broken)
    with pytest.raises(StoreError, match="no session folder"):
        load_session(tmp_path / "sessions" / "nope")


def test_recovery_repairs_the_wav_header(tmp_path: Path) -> None:
    w = SessionWriter(tmp_path, "wav", {})
    frames = b"\x01\x00\x02\x00" * 8000  # 8000 stereo frames
    with wave.open(str(w.audio_path), "wb") as wf:
        wf.setnchannels(2)
        wf.setsampwidth(2)
        wf.setframerate(16000)
        wf.writeframes(frames)
    data = bytearray(w.audio_path.read_bytes())
    data[4:8] = b"\0\0\0\0"  # the sizes a crash leaves behind
    data[40:44] = b"\0\0\0\0"
    w.audio_path.write_bytes(bytes(data))
    meta = json.loads((w.dir / "session.json").read_text())
    meta["pid"] = 0  # pretend the writer died
    (w.dir / "session.json").write_text(json.dumps(meta))
    assert recover_unfinished(tmp_path, SessionIndex(tmp_path / "sessions.db")) == ["wav"]
    with wave.open(str(w.audio_path), "rb") as wf:
        assert wf.getnframes() == 8000
    assert "audio_repair_error" not in load_session(w.dir).meta
