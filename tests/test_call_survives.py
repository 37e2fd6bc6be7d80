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
