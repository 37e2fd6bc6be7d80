"""End to end over Gemini Live: ``voiceprobe call --provider sim`` with a Gemini profile.

The bridge speaks :class:`GeminiProtocol` to the simulator's Gemini dialect over ``wss://``
(the simulator's own certificate). The same checks as ``tests/test_call_e2e.py``, in
Gemini's terms: ``end_of_turn_delay`` ends at the first sign of a response (Gemini has no
``speech_stopped``), barge-in is honoured through ``interrupted`` (no truncate), and a
``goAway`` mid-call is survived by resuming the session with its handle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from app.audio.wavio import read_wav, read_wav_channels
from app.bridge.providers import DEFAULT_SCENARIO
from app.profile import RESOURCES
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.call_e2e_helpers import (
    TOL_MS,
    check_recording_alignment,
    first_sound_after,
    run_cli,
    truth_by,
)
from tests.conftest import TIME_SCALE

#: Spans checked against ground truth to ±20 ms: run alone (see scripts/test.sh).
pytestmark = pytest.mark.paired

MODEL = "gemini-live-test"
#: After the caller starts talking over the agent: local VAD start (30 ms) plus a frame.
CUT_MS = 120 * TIME_SCALE


def gemini_profile(folder: Path) -> Path:
    """The default profile turned into a Gemini one, as a YAML file."""
    data = yaml.safe_load((RESOURCES / "profiles" / "default.yaml").read_text())
    data.update(name="gemini-e2e", provider="gemini", model=MODEL, voice="Puck")
    path = folder / "gemini.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def gemini_call(
    folder: Path, scenario_path: Path | None, barge_in: dict[int, int]
) -> dict[str, Any]:
    scenario = load_scenario(str(scenario_path or DEFAULT_SCENARIO))
    wav = folder / "caller.wav"
    utterances = write_caller_wav(scenario, wav, barge_in=barge_in)
    truth_path = folder / "truth.jsonl"
    args = ["call", "--input", str(wav), "--provider", "sim", "--profile",
            str(gemini_profile(folder)), "--json", "--out", str(folder / "data"),
            "--truth", str(truth_path)]
    if scenario_path is not None:
        args += ["--scenario", str(scenario_path)]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    session_dir = Path(summary["session_dir"])
    events = [json.loads(line)
              for line in (session_dir / "events.jsonl").read_text().splitlines()]
    return {
        "summary": summary,
        "truth": [json.loads(line) for line in truth_path.read_text().splitlines()],
        "utterances": utterances,
        "caller_wav": wav,
        "session_dir": session_dir,
        "meta": json.loads((session_dir / "session.json").read_text()),
        "events": events,
    }


@pytest.fixture(scope="module")
def demo_call(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return gemini_call(tmp_path_factory.mktemp("e2e-gemini"), None, {2: 1500})


@pytest.fixture(scope="module")
def go_away_call(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("e2e-gemini-goaway")
    data = yaml.safe_load(Path(DEFAULT_SCENARIO).read_text())
    # goAway right after turn 2 has completed: the bridge must move to a resumed session
    data["faults"] = [{"action": "go_away", "at": "sessionResumptionUpdate", "turn": 2,
                       "ms": 2000}]
    path = folder / "go_away.yaml"
    path.write_text(yaml.safe_dump(data))
    return gemini_call(folder, path, {})


def _check_turns(call: dict[str, Any]) -> list[dict[str, Any]]:
    summary = call["summary"]
    turns = summary["turns"]
    assert summary["ok"] and summary["errors"] == []
    assert not truth_by(call["truth"], "sim_error")
    assert len(turns) == 4
    hears = [t.hears for t in load_scenario(str(DEFAULT_SCENARIO)).turns]
    assert [t["user_transcript"] for t in turns] == hears
    assert turns[1]["tool_calls"][0]["name"] == "get_weather"
    assert turns[1]["tool_calls"][0]["status"] == "ok"
    for turn in turns:
        assert turn["agent_transcript"]
        assert "voice_to_voice" in turn["spans"]
    return turns


@pytest.mark.slow
def test_call_speaks_gemini_and_has_every_turn(demo_call: dict[str, Any]) -> None:
    turns = _check_turns(demo_call)
    assert turns[2]["interrupted"] and not turns[1]["interrupted"]
    assert "It is sunny" in turns[1]["agent_transcript"]
    truth = demo_call["truth"]
    conn = truth_by(truth, "connection")[0]
    assert "GenerativeService.BidiGenerateContent" in conn["path"] and conn["authorization"]
    setup = next(r for r in truth_by(truth, "client_event") if r["type"] == "setup")
    assert setup["model"] == f"models/{MODEL}" and setup["tools"] == ["get_weather"]
    assert not truth_by(truth, "error_sent")
    for name in ("session.json", "events.jsonl", "audio.wav", "turns.json"):
        assert (demo_call["session_dir"] / name).exists()


@pytest.mark.slow
def test_spans_match_simulator_ground_truth(demo_call: dict[str, Any]) -> None:
    turns = demo_call["summary"]["turns"]
    truth = demo_call["truth"]
    stopped = truth_by(truth, "speech_stopped")
    created = truth_by(truth, "response.created")
    first_audio = {r["response_id"]: r for r in truth_by(truth, "first_audio")}
    assert len(stopped) >= 4
    for i, turn in enumerate(turns):
        spans = turn["spans"]
        st = stopped[i]
        assert st["turn"] == i + 1
        # Gemini: local VAD end → the first message of the model turn
        cr = next(r for r in created if r["turn"] == i + 1)
        eot_truth = (cr["t_ns"] - st["speech_end_t_ns"]) / 1e6
        assert spans["end_of_turn_delay"]["ms"] == pytest.approx(eot_truth, abs=TOL_MS), i
        fa = first_audio[cr["response_id"]]
        assert spans["ttfb"]["ms"] == pytest.approx((fa["t_ns"] - cr["t_ns"]) / 1e6,
                                                    abs=TOL_MS), i
    done = truth_by(truth, "function_call_arguments.done")[0]
    out = truth_by(truth, "function_call_output")[0]
    assert out["call_id"] == done["call_id"] and out["known"]
    tool_truth = (out["t_ns"] - done["t_ns"]) / 1e6
    assert turns[1]["spans"]["tool:get_weather"]["ms"] == pytest.approx(tool_truth, abs=TOL_MS)


@pytest.mark.slow
def test_recording_is_aligned_and_voice_to_voice_matches_the_silence(
    demo_call: dict[str, Any],
) -> None:
    check_recording_alignment(demo_call)


@pytest.mark.slow
def test_barge_in_cuts_playout_and_the_server_interrupts(demo_call: dict[str, Any]) -> None:
    truth = demo_call["truth"]
    cuts = truth_by(truth, "interrupted")
    assert [c["turn"] for c in cuts] == [3]
    sent = next(r for r in truth_by(truth, "audio_sent") if r["turn"] == 3)
    assert sent["cancelled"] and sent["ms"] < sent["total_ms"]
    kinds = [e["kind"] for e in demo_call["events"]]
    assert "AgentInterrupted" in kinds and "BargeIn" in kinds
    stereo, rate = read_wav_channels(demo_call["session_dir"] / "audio.wav")
    left, right = stereo[:, 0], stereo[:, 1].astype(np.int32)
    caller, _ = read_wav(demo_call["caller_wav"])
    offset = first_sound_after(left, 0) - first_sound_after(caller, 0)
    talk = offset + demo_call["utterances"][3].start  # the caller talks over turn 3
    assert np.any(right[talk - rate // 10 : talk])  # the agent was speaking then
    # the agent falls silent at once and stays silent until the caller has finished
    quiet_until = offset + demo_call["utterances"][3].end
    nz = np.nonzero(right[talk:quiet_until])[0]
    last = talk + (int(nz[-1]) + 1 if len(nz) else 0)
    assert (last - talk) * 1000 / rate <= CUT_MS


@pytest.mark.slow
def test_go_away_moves_the_call_to_a_resumed_session(go_away_call: dict[str, Any]) -> None:
    turns = _check_turns(go_away_call)
    assert not any(t["interrupted"] for t in turns)
    truth = go_away_call["truth"]
    fault = [r for r in truth_by(truth, "fault") if r["action"] == "go_away"]
    assert len(fault) == 1 and fault[0]["turn"] == 2
    opened = [r for r in truth_by(truth, "connection") if r["state"] == "open"]
    assert [r["index"] for r in opened] == [1, 2]
    issued = {r["handle"] for r in truth_by(truth, "resumption_update")}
    resumed = truth_by(truth, "resumed")
    assert len(resumed) == 1 and resumed[0]["handle"] in issued and resumed[0]["index"] == 2
    assert resumed[0]["turn"] == 3  # the conversation went on where it was
    assert not truth_by(truth, "replayed_item")  # resumed, so nothing was replayed
    reconnected = [e for e in go_away_call["events"] if e["kind"] == "Reconnected"]
    assert len(reconnected) == 1 and reconnected[0]["resumed"]
    # turns 3 and 4 were answered on the new connection, each exactly once
    for n in (3, 4):
        answered = [r for r in truth_by(truth, "response.created") if r["turn"] == n]
        assert len(answered) == 1 and answered[0]["t_ns"] > resumed[0]["t_ns"]
