"""Calls that survive: rollover to fresh sessions, drops at many points of a call.

Each test runs a real-time call against the simulator, whose ground-truth log shows what
each provider session received (the replayed context included).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.bridge.providers import DEFAULT_SCENARIO
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def run_call(tmp: Path, scenario: dict[str, Any], *extra: str) -> dict[str, Any]:
    sc_path = tmp / "scenario.yaml"
    sc_path.write_text(yaml.safe_dump(scenario))
    wav = tmp / "caller.wav"
    utterances = write_caller_wav(load_scenario(str(sc_path)), wav)
    truth_path = tmp / "truth.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "call",
            "--input",
            str(wav),
            "--provider",
            "sim",
            "--scenario",
            str(sc_path),
            "--json",
            "--out",
            str(tmp / "data"),
            "--truth",
            str(truth_path),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    session = Path(summary["session_dir"])
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
    return {"summary": summary, "events": events, "truth": truth, "utterances": utterances}


def demo_turns() -> list[dict[str, Any]]:
    return yaml.safe_load(Path(DEFAULT_SCENARIO).read_text())["turns"]


def test_rollover_spans_several_sessions_and_loses_no_turn(tmp_path: Path) -> None:
    turns = demo_turns()
    turns[2]["reply"] = "The Eiffel Tower is in Paris."  # no barge-in here
    turns.append({"hears": "One more question.", "reply": "Of course, go ahead."})
    call = run_call(tmp_path, {"name": "rollover", "turns": turns}, "--rollover-s", "3")
    summary, truth, events = call["summary"], call["truth"], call["events"]
    assert summary["ok"], summary["errors"]
    got = summary["turns"]
    assert len(got) == 5
    for turn, script in zip(got, turns, strict=True):
        assert turn["user_transcript"] == script["hears"]
        assert turn["agent_transcript"].startswith(script["reply"].split()[0])
    opened = [r for r in truth if r["event"] == "connection" and r["state"] == "open"]
    assert len(opened) >= 2
    reconnects = [e for e in events if e["kind"] == "Reconnected"]
    assert reconnects and all(e["reason"] == "rollover" for e in reconnects)
    # Every new session was told what had been said before it.
    replayed = [r for r in truth if r["event"] == "replayed_item"]
    assert {"Hello, can you hear me?"} <= {r["text"] for r in replayed if r["role"] == "user"}
    assert any(r["item_type"] == "function_call" for r in replayed)
    assert any(r["item_type"] == "function_call_output" for r in replayed)


#: (point of the call, fault) — one drop per turn, each at a different point.
FAULT_MATRIX: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "Hello, can you hear me?",
        "Yes, I can hear you.",
        "mid caller speech",
        {"action": "close", "at": "input_audio_buffer.speech_started"},
    ),
    (
        "What time is it?",
        "It is noon.",
        "caller done, before the response",
        {"action": "close", "at": "input_audio_buffer.committed"},
    ),
    (
        "Where are you based?",
        "I am based in Paris.",
        "at response.created",
        {"action": "close", "at": "response.created"},
    ),
    (
        "Tell me a fact.",
        "Honey never spoils, it can last for thousands of years.",
        "mid agent audio",
        {"action": "close", "at": "response.output_audio.delta", "nth": 3},
    ),
    (
        "What's the weather in Paris?",
        "Let me check.",
        "between tool call and result",
        {"action": "close", "at": "response.done"},
    ),
    (
        "Thank you.",
        "You are welcome.",
        "during response.done",
        {"action": "close", "at": "response.done"},
    ),
    (
        "Can you repeat that?",
        "Sure, you are very welcome.",
        "before the caller transcript",
        {"action": "close", "at": "conversation.item.input_audio_transcription.completed"},
    ),
    (
        "What is your name?",
        "My name is Probe.",
        "at the agent transcript end",
        {"action": "close", "at": "response.output_audio_transcript.done"},
    ),
    (
        "Goodbye.",
        "Goodbye, have a nice day.",
        "session_expired error",
        {
            "action": "error",
            "at": "response.output_item.added",
            "code": "session_expired",
            "message": "Your session hit the maximum duration of 60 minutes.",
        },
    ),
]


def test_fault_matrix_every_turn_survives_a_drop(tmp_path: Path) -> None:
    turns = []
    for i, (hears, reply, _point, fault) in enumerate(FAULT_MATRIX):
        turn: dict[str, Any] = {"hears": hears, "reply": reply, "faults": [fault]}
        if i == 4:
            turn["tool_call"] = {
                "name": "get_weather",
                "arguments": {"city": "Paris"},
                "after_result": "It is sunny in Paris.",
            }
        turns.append(turn)
    call = run_call(tmp_path, {"name": "faults", "turns": turns})
    summary, truth, events = call["summary"], call["truth"], call["events"]
    assert summary["ok"], summary["errors"]
    got = summary["turns"]
    # Every scripted turn finished, in order, with the caller's words and the agent's reply.
    assert [t["user_transcript"] for t in got] == [t[0] for t in FAULT_MATRIX]
    for turn, (_h, reply, point, _f) in zip(got, FAULT_MATRIX, strict=True):
        assert turn["agent_transcript"].split()[0] == reply.split()[0], point
    assert "sunny" in got[4]["agent_transcript"]
    assert got[4]["tool_calls"][0]["status"] == "ok"
    # One drop per point, each survived in a new session.
    fired = [r for r in truth if r["event"] == "fault"]
    assert len(fired) == len(FAULT_MATRIX)
    reconnects = [e for e in events if e["kind"] == "Reconnected"]
    assert len(reconnects) == len(FAULT_MATRIX)
    opened = [r for r in truth if r["event"] == "connection" and r["state"] == "open"]
    assert len(opened) == len(FAULT_MATRIX) + 1
    # The replayed context reached the new sessions: the last one heard every earlier turn.
    last_index = opened[-1]["index"]
    last_open = opened[-1]["t_ns"]
    replayed = [r for r in truth if r["event"] == "replayed_item" and r["t_ns"] >= last_open]
    replayed_users = [r["text"] for r in replayed if r["role"] == "user"]
    assert replayed_users == [t[0] for t in FAULT_MATRIX[:-1]], last_index
    assert any(r["item_type"] == "function_call_output" for r in replayed)

    # Nothing the simulator sent before a drop is missing from the events file.
    def ids(kind: str, key: str) -> set[str]:
        return {e.get(key) for e in events if e["kind"] == kind}

    lost = 0
    for rec in truth:
        if rec["event"] == "response.created":
            lost += rec["response_id"] not in ids("ResponseStarted", "response_id")
        elif rec["event"] == "first_audio":
            lost += rec["response_id"] not in ids("AgentAudio", "response_id")
        elif rec["event"] == "speech_stopped":
            lost += rec["item_id"] not in ids("ServerSpeechStopped", "item_id")
        elif rec["event"] == "function_call_arguments.done":
            lost += rec["call_id"] not in ids("ToolCallRequested", "call_id")
        elif rec["event"] == "transcript":
            lost += rec["item_id"] not in ids("UserTranscript", "item_id")
    assert lost == 0
    gaps_ms = [(e["t_ns"] - e["dropped_ns"]) / 1e6 for e in reconnects]
    figures = {
        "drops_tried": len(fired),
        "drops_survived": len(reconnects),
        "turns_lost": len(FAULT_MATRIX) - len(got),
        "events_lost": lost,
        "mean_reconnect_ms": round(sum(gaps_ms) / len(gaps_ms), 1),
        "max_reconnect_ms": round(max(gaps_ms), 1),
    }
    print("fault matrix:", json.dumps(figures))
