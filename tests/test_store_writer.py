"""SessionWriter: events round-trip, meta scrubbing, secret redaction, paths and ids."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.clock import FakeClock
from app.errors import StoreError
from app.events import AgentAudio, Notice, ProviderErrorEvent, ToolCallCancelled, UserTranscript
from app.store import SessionIndex, SessionWriter, load_session
from app.store.paths import config_dir, data_dir, new_session_id, sessions_dir


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VOICEPROBE_HOME", str(tmp_path / "vp"))
    return tmp_path / "vp"


def test_paths_follow_voiceprobe_home(home: Path) -> None:
    assert data_dir() == home and home.is_dir()
    assert config_dir() == home / "config" and (home / "config").is_dir()
    assert sessions_dir() == home / "sessions" and (home / "sessions").is_dir()


def test_paths_without_home_use_platformdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VOICEPROBE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert data_dir() == tmp_path / "data" / "voiceprobe"
    assert config_dir() == tmp_path / "cfg" / "voiceprobe"
    assert config_dir().is_dir()


def test_session_ids_sort_by_time_and_are_unique(tmp_path: Path) -> None:
    t1 = datetime(2026, 11, 27, 13, 45, 1, tzinfo=UTC)
    t2 = datetime(2026, 11, 27, 13, 45, 2, tzinfo=UTC)
    a, b = new_session_id(t1), new_session_id(t2)
    assert re.fullmatch(r"20261127-134501-[0-9a-f]{4}", a)
    assert a < b
    seen = set()
    for _ in range(300):  # same second: the folder check keeps them unique
        sid = new_session_id(t1, root=tmp_path)
        (tmp_path / "sessions" / sid).mkdir(parents=True)
        seen.add(sid)
    assert len(seen) == 300


def test_events_round_trip(home: Path) -> None:
    clock = FakeClock(5_000)
    w = SessionWriter(home, "s1", {"provider": "openai", "model": "gpt-realtime"}, clock=clock)
    events = [
        UserTranscript(t_ns=1, item_id="i1", text="héllo", final=True, raw={"type": "x"}),
        AgentAudio(t_ns=2, response_id="r", item_id="i2", pcm=b"\0" * 960, sample_rate=24000),
        ToolCallCancelled(t_ns=3, call_ids=("a", "b")),
        Notice(
            t_ns=4, level="info", message="m", raw={"odd": object(), "set": {2}, "blob": b"abc"}
        ),
    ]
    for ev in events:
        w.append_event(ev)
    assert w.events_written == 4
    # Readable while still open: every event is flushed.
    rec = load_session(home / "sessions" / "s1")
    assert [e["kind"] for e in rec.events] == [
        "UserTranscript",
        "AgentAudio",
        "ToolCallCancelled",
        "Notice",
    ]
    assert rec.events[0]["text"] == "héllo" and rec.events[0]["raw"] == {"type": "x"}
    assert rec.events[1]["pcm_bytes"] == 960 and "pcm" not in rec.events[1]
    assert rec.events[2]["call_ids"] == ["a", "b"]
    assert rec.events[3]["raw"]["blob"] == "<3 bytes>"
    assert rec.events[3]["raw"]["odd"].startswith("<object object")
    assert rec.events[3]["raw"]["set"] == [2]
    assert rec.meta["status"] == "running" and rec.meta["started_ns"] == 5_000
    assert rec.skipped_lines == 0
    assert w.audio_path == home / "sessions" / "s1" / "audio.wav"


def test_finish_updates_meta_turns_and_index(home: Path) -> None:
    clock = FakeClock(1_000)
    w = SessionWriter(
        home,
        "s2",
        {"provider": "gemini", "model": "m2", "tags": ["smoke", "eu"], "profile": {"name": "p1"}},
        clock=clock,
    )
    w.append_event(ProviderErrorEvent(t_ns=1, code="rate_limit", message="slow down"))
    turns = [
        {"index": i, "spans": {"voice_to_voice": {"start_ns": 0, "end_ns": 1, "ms": ms}}}
        for i, ms in enumerate([400.0, 500.0, 600.0, 700.0, 800.0])
    ]
    w.write_turns(turns)
    clock.advance_ms(2500)
    w.finish("complete", summary={"note": "done"})
    rec = load_session(w.dir)
    assert rec.turns == turns
    assert rec.meta["status"] == "complete"
    assert rec.meta["ended_ns"] - rec.meta["started_ns"] == 2_500_000_000
    assert rec.meta["summary"] == {"note": "done"}
    row = SessionIndex(home / "sessions.db").get("s2")
    assert row is not None
    assert row["status"] == "complete" and row["provider"] == "gemini"
    assert row["profile"] == "p1" and row["tags"] == ["smoke", "eu"]
    assert row["turns"] == 5 and row["errors"] == 1
    assert row["p50_v2v_ms"] == pytest.approx(600.0)
    assert row["p95_v2v_ms"] == pytest.approx(780.0)
    with pytest.raises(StoreError):
        w.append_event(Notice(t_ns=9, level="info", message="late"))


def test_existing_folder_is_refused(home: Path) -> None:
    SessionWriter(home, "dup", {}).close()
    with pytest.raises(StoreError, match="already exists"):
        SessionWriter(home, "dup", {})
    with pytest.raises(StoreError):
        SessionWriter(home, "../evil", {})


def test_secrets_never_reach_disk(home: Path) -> None:
    key = "sk-test-ABCDEFGHIJKLMNOP1234"
    odd = 'pa"ss\\wörd-1234'  # a secret with characters JSON escapes
    google = "AIza" + "B" * 35  # shaped like a Google key, never declared
    meta = {
        "provider": "openai",
        "model": "m",
        "url": f"wss://api.example/v1/realtime?model=m&api_key={key}&key=zzzz",
        "profile": {
            "name": "p",
            "api_key": "declared-elsewhere",
            "tools": [{"parameters": {"properties": {"key": {"type": "string"}}}}],
        },
        "note": f"given {odd}",
    }
    w = SessionWriter(home, "sec", meta, redact_secrets=[key, odd, ""])
    w.append_event(
        ProviderErrorEvent(
            t_ns=1,
            code="invalid_api_key",
            message=f"Incorrect API key provided: {key}",
            raw={"error": {"message": f"bad key {key}", "other": odd, "g": google}},
        )
    )
    w.write_turns([{"index": 0, "agent_transcript": f"the key is {key}"}])
    w.finish(summary={"errors": [f"401 {key}"]})
    blobs = {p.name: p.read_bytes() for p in w.dir.iterdir()}
    blobs["sessions.db"] = b"".join(p.read_bytes() for p in home.glob("sessions.db*"))
    for name, blob in blobs.items():
        text = blob.decode("utf-8", "replace")
        for secret in (key, odd, json.dumps(odd)[1:-1], google, "declared-elsewhere", "zzzz"):
            assert secret not in text, (name, secret)
    events = (w.dir / "events.jsonl").read_text()
    assert "Incorrect API key provided: ***" in events
    meta_on_disk = json.loads((w.dir / "session.json").read_text())
    assert meta_on_disk["url"].startswith("wss://api.example/v1/realtime?model=m&api_key=***")
    # A JSON schema under a secret-looking name is not a secret and is kept.
    tool = meta_on_disk["profile"]["tools"][0]
    assert tool["parameters"]["properties"]["key"] == {"type": "string"}
    assert meta_on_disk["note"] == "given ***"
