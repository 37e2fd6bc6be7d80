"""End to end: ``voiceprobe call`` against the simulator, checked against ground truth.

The simulator logs when it really sent each event; the recording holds what was really
captured and played. The bridge's figures must match both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.audio.wavio import read_wav_channels
from app.bridge.providers import DEFAULT_SCENARIO
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.call_e2e_helpers import (
    TOL_MS,
    TRUNC_TOL_MS,
    check_recording_alignment,
    first_sound_after,
    run_cli,
    truth_by,
)

#: Spans checked against ground truth to ±20 ms: run with at most one other such call
#: and nothing else (see scripts/test.sh).
pytestmark = pytest.mark.paired


@pytest.fixture(scope="module")
def demo_call(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("e2e")
    scenario = load_scenario(str(DEFAULT_SCENARIO))
    wav = tmp / "caller.wav"
    utterances = write_caller_wav(scenario, wav, barge_in={2: 1500})
    truth_path = tmp / "truth.jsonl"
    proc = run_cli(
        "call",
        "--input",
        str(wav),
        "--provider",
        "sim",
        "--json",
        "--out",
        str(tmp / "data"),
        "--truth",
        str(truth_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
    session_dir = Path(summary["session_dir"])
    meta = json.loads((session_dir / "session.json").read_text())
    return {
        "summary": summary,
        "truth": truth,
        "utterances": utterances,
        "caller_wav": wav,
        "session_dir": session_dir,
        "meta": meta,
    }


@pytest.mark.slow
def test_call_has_every_turn_with_transcripts_and_tool(demo_call: dict[str, Any]) -> None:
    summary = demo_call["summary"]
    turns = summary["turns"]
    assert summary["ok"] and summary["errors"] == []
    assert len(turns) == 4
    assert "Paris" in turns[1]["user_transcript"]
    assert turns[1]["tool_calls"][0]["name"] == "get_weather"
    assert turns[1]["tool_calls"][0]["status"] == "ok"
    assert turns[2]["interrupted"] and not turns[1]["interrupted"]
    for turn in turns:
        assert turn["agent_transcript"]
        assert "voice_to_voice" in turn["spans"]
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
    checked = 0
    for i, turn in enumerate(turns):
        spans = turn["spans"]
        st = stopped[i]
        eot_truth = (st["t_ns"] - st["speech_end_t_ns"]) / 1e6
        assert spans["end_of_turn_delay"]["ms"] == pytest.approx(eot_truth, abs=TOL_MS), i
        rid = turn["response_ids"][0]
        cr = next(r for r in created if r["response_id"] == rid)
        assert spans["response_start"]["ms"] == pytest.approx(
            (cr["t_ns"] - st["t_ns"]) / 1e6, abs=TOL_MS
        ), i
        audio_rids = [r for r in turn["response_ids"] if r in first_audio]
        fa = min((first_audio[r] for r in audio_rids), key=lambda r: r["t_ns"])
        cr_fa = next(r for r in created if r["response_id"] == fa["response_id"])
        assert spans["ttfb"]["ms"] == pytest.approx(
            (fa["t_ns"] - cr_fa["t_ns"]) / 1e6, abs=TOL_MS
        ), i
        checked += 1
    assert checked == 4
    done = truth_by(truth, "function_call_arguments.done")[0]
    out = truth_by(truth, "function_call_output")[0]
    tool_truth = (out["t_ns"] - done["t_ns"]) / 1e6
    assert turns[1]["spans"]["tool:get_weather"]["ms"] == pytest.approx(tool_truth, abs=TOL_MS)


@pytest.mark.slow
def test_recording_is_aligned_and_voice_to_voice_matches_the_silence(
    demo_call: dict[str, Any],
) -> None:
    check_recording_alignment(demo_call)


@pytest.mark.slow
def test_barge_in_truncates_at_the_played_duration(demo_call: dict[str, Any]) -> None:
    truth = demo_call["truth"]
    truncates = [r for r in truth_by(truth, "truncate") if r.get("ok", True)]
    assert len(truncates) == 1
    trunc = truncates[0]
    stereo, rate = read_wav_channels(demo_call["session_dir"] / "audio.wav")
    right = stereo[:, 1].astype(np.int32)
    t0 = demo_call["meta"]["audio_t0_ns"]
    events = [
        json.loads(line)
        for line in (demo_call["session_dir"] / "events.jsonl").read_text().splitlines()
    ]
    start_ev = next(
        e for e in events if e["kind"] == "PlaybackStarted" and e["item_id"] == trunc["item_id"]
    )
    start = first_sound_after(stereo[:, 1], round((start_ev["t_ns"] - t0) * rate / 1e9) - 320)
    # The cut: the last agent sample before a quarter second of silence.
    quiet = rate // 4
    pos = start
    while pos < len(right) and np.any(right[pos : pos + quiet]):
        nz = np.nonzero(right[pos : pos + quiet])[0]
        pos += int(nz[-1]) + 1
    played_ms = (pos - start) * 1000 / rate
    assert played_ms > 500
    assert trunc["audio_end_ms"] == pytest.approx(played_ms, abs=TRUNC_TOL_MS)
    assert trunc["audio_end_ms"] <= trunc["sent_ms"] + 1
