"""The turn record is a type, the event stream a closed union, and stored events are read
back by the store (not by the Qt layer)."""

from __future__ import annotations

import ast
import json
import typing
from pathlib import Path

import pytest

from app import events as E
from app.metrics.records import Span, ToolCallRecord, TurnRecord
from app.metrics.timeline import Timeline
from app.store.reader import load_session, session_events
from app.store.writer import SessionWriter

MS = 1_000_000
ROOT = Path(__file__).resolve().parents[1]


def _tool_call_events() -> list[E.Event]:
    return [
        E.LocalSpeechStarted(t_ns=1000 * MS, sample=16000),
        E.ServerSpeechStarted(t_ns=1300 * MS, item_id="u1", audio_start_ms=700),
        E.LocalSpeechStopped(t_ns=2000 * MS, sample=32000),
        E.ServerSpeechStopped(t_ns=2500 * MS, item_id="u1", audio_end_ms=2500),
        E.ResponseStarted(t_ns=2600 * MS, response_id="r1"),
        E.ToolCallRequested(
            t_ns=2700 * MS, call_id="c1", name="get_weather", arguments="{}", response_id="r1"
        ),
        E.ResponseFinished(t_ns=2701 * MS, response_id="r1"),
        E.ToolCallFinished(
            t_ns=2950 * MS, call_id="c1", name="get_weather", arguments="{}", status="ok",
            output="{}", ms=250.0,
        ),
        E.ResponseStarted(t_ns=2960 * MS, response_id="r2"),
        E.AgentAudio(t_ns=3200 * MS, response_id="r2", item_id="a2", pcm=bytes(480),
                     sample_rate=24000),
        E.PlaybackStarted(t_ns=3210 * MS, item_id="a2", response_id="r2"),
        E.AgentTranscript(t_ns=3220 * MS, response_id="r2", item_id="a2", text="Sunny",
                          final=True),
        E.UserTranscript(t_ns=3230 * MS, item_id="u1", text="Weather?", final=True),
        E.ResponseFinished(t_ns=3300 * MS, response_id="r2"),
        E.PlaybackStopped(t_ns=4000 * MS, item_id="a2", played_samples=16000, sample_rate=16000),
    ]  # fmt: skip


def _completed() -> list[E.TurnCompleted]:
    tl = Timeline()
    done: list[E.TurnCompleted] = []
    for ev in _tool_call_events():
        done.extend(tl.feed(ev))
    return done


def test_timeline_sends_a_typed_frozen_turn_record() -> None:
    (done,) = _completed()
    rec = done.turn
    assert isinstance(rec, TurnRecord)
    assert rec.voice_to_voice_ms == 1210.0
    assert rec.spans["voice_to_voice"] == Span(
        start_ns=2000 * MS, end_ns=3210 * MS, ms=1210.0,
        start_event="LocalSpeechStopped", end_event="PlaybackStarted",
    )  # fmt: skip
    assert rec.tool_calls == (
        ToolCallRecord(call_id="c1", name="get_weather", arguments="{}", status="ok", ms=250.0),
    )
    with pytest.raises(AttributeError):
        rec.index = 3  # type: ignore[misc]


def test_turn_record_json_shape_is_the_contract() -> None:
    (done,) = _completed()
    d = done.turn.to_dict()
    assert list(d) == [
        "index", "user_transcript", "agent_transcript", "interrupted", "spans", "tool_calls",
        "response_ids", "user_item_ids", "server_audio_start_ms", "server_audio_end_ms",
        "usage", "events_used",
    ]  # fmt: skip
    assert d["spans"]["tool:get_weather"] == {
        "start_ns": 2700 * MS, "end_ns": 2950 * MS, "ms": 250.0,
        "from": "ToolCallRequested", "to": "ToolCallFinished",
    }  # fmt: skip
    assert d["tool_calls"] == [
        {"call_id": "c1", "name": "get_weather", "arguments": "{}", "status": "ok", "ms": 250.0}
    ]
    assert d["response_ids"] == ["r1", "r2"] and d["user_item_ids"] == ["u1"]
    assert (d["user_transcript"], d["agent_transcript"]) == ("Weather?", "Sunny")
    # The same text as the timeline writes to turns.json, and it reads back equal.
    assert json.dumps(d) == json.dumps(Timeline_to_list(_tool_call_events())[0])
    assert TurnRecord.from_dict(json.loads(json.dumps(d))) == done.turn


def Timeline_to_list(events: list[E.Event]) -> list[dict[str, object]]:  # noqa: N802
    tl = Timeline()
    for ev in events:
        tl.feed(ev)
    return tl.to_list()


def test_turn_record_reads_an_old_or_partial_record() -> None:
    rec = TurnRecord.from_dict(
        {"index": 2, "spans": {"voice_to_voice": {"ms": 812}}, "tool_calls": [{"name": "x"}],
         "cost_usd": 0.01}
    )  # fmt: skip
    assert rec.index == 2 and rec.voice_to_voice_ms == 812
    assert rec.spans["voice_to_voice"].start_ns is None
    assert rec.tool_calls[0].name == "x" and rec.tool_calls[0].ms is None
    assert rec.span_ms("ttfb") is None


def test_every_event_round_trips_through_event_from_dict() -> None:
    (done,) = _completed()
    samples: list[E.Event] = [*_tool_call_events(), done,
        E.ConnectionState(t_ns=1, provider="openai", state="connected"),
        E.Notice(t_ns=2, level="warning", message="slow"),
        E.ToolCallCancelled(t_ns=3, call_ids=("a", "b")),
        E.NetworkSample(t_ns=4, provider="openai", source="tcp", ms=12.5),
    ]  # fmt: skip
    for ev in samples:
        back = E.event_from_dict(json.loads(json.dumps(E.event_to_dict(ev))))
        if isinstance(ev, E.AgentAudio):
            assert isinstance(back, E.AgentAudio) and len(back.pcm) == len(ev.pcm)
        else:
            assert back == ev, ev.kind
    assert E.event_from_dict({"kind": "NoSuchKind", "t_ns": 1}) is None
    assert E.event_from_dict({"kind": "Notice", "t_ns": 1}) is None  # required field missing


def test_event_is_a_closed_union_with_literal_fields() -> None:
    members = typing.get_args(E.Event)
    assert E.TurnCompleted in members and E.ConnectionState in members
    assert all(issubclass(m, E.EventBase) for m in members)
    defined = {c for c in vars(E).values()
               if isinstance(c, type) and issubclass(c, E.EventBase) and c is not E.EventBase}
    assert defined == set(members), defined ^ set(members)  # every event class is in it
    assert E.response_status("cancelled") == "cancelled"
    assert E.response_status("in_progress") == "incomplete"  # unknown: never a free string
    hints = typing.get_type_hints
    for cls, name in [(E.ConnectionState, "state"), (E.ResponseFinished, "status"),
                      (E.Notice, "level")]:  # fmt: skip
        assert typing.get_origin(hints(cls)[name]) is typing.Literal, (cls, name)
    from app.bridge.call import BridgeOptions

    assert typing.get_origin(hints(BridgeOptions)["barge_in"]) is typing.Literal


def test_store_reader_returns_events(tmp_path: Path) -> None:
    events = _tool_call_events()
    with SessionWriter(tmp_path, "s1", {"provider": "sim"}) as w:
        for ev in events:
            w.append_event(ev)
        w.append_event(_completed()[0])
        w.finish()
        folder = w.dir
    got = session_events(load_session(folder))
    assert [ev.kind for ev in got] == [ev.kind for ev in events] + ["TurnCompleted"]
    assert isinstance(got[-1], E.TurnCompleted) and isinstance(got[-1].turn, TurnRecord)


def _defs(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(ROOT)}:{n.lineno}"
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef) and n.name.lstrip("_") == name
    ]


def test_one_percentile_helper() -> None:
    found = [d for pkg in ("app", "ui", "sip") for p in sorted((ROOT / pkg).rglob("*.py"))
             for d in _defs(p, "percentile")]  # fmt: skip
    assert found == ["app/metrics/percentile.py:11"], found


def test_qt_layer_does_not_rebuild_stored_events() -> None:
    src = (ROOT / "ui" / "models" / "replay.py").read_text(encoding="utf-8")
    assert "def event_from_dict" not in src and "dataclasses.fields" not in src
