"""``voiceprobe call --provider twilio-ws`` against a real Pipecat bot.

The bot (``tests/twilio_pipecat_bot.py``) runs as its own process: Pipecat's FastAPI
WebSocket transport with its ``TwilioFrameSerializer`` and its OpenAI Realtime service
pointed at ``voiceprobe sim``, served by uvicorn on loopback. voiceprobe plays Twilio
towards it with a caller WAV of four lines and a barge-in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.audio.wavio import read_wav, read_wav_channels
from app.bridge.providers import DEFAULT_SCENARIO
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.call_e2e_helpers import first_sound_after, speech_end_after
from tests.conftest import REPO, TIME_SCALE
from tests.twilio_helpers import start_line, stop

#: Spans checked against ground truth to ±20 ms: run alone (see scripts/test.sh).
pytestmark = pytest.mark.paired

TOL_MS = 20 * TIME_SCALE


@pytest.fixture(scope="module")
def pipecat_bot() -> Iterator[str]:
    sim, sim_url = start_line(["-m", "app.cli", "sim"])
    try:
        bot, url = start_line(["-m", "tests.twilio_pipecat_bot", "--llm-url", sim_url])
        try:
            yield url
        finally:
            stop(bot)
    finally:
        stop(sim)


@pytest.fixture(scope="module")
def pipecat_call(pipecat_bot: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("twilio-pipecat")
    wav = tmp / "caller.wav"
    utterances = write_caller_wav(load_scenario(str(DEFAULT_SCENARIO)), wav, barge_in={2: 1500})
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "call",
            "--provider",
            "twilio-ws",
            "--url",
            pipecat_bot,
            "--param",
            "from_number=+15550100",
            "--input",
            str(wav),
            "--out",
            str(tmp / "data"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    session = Path(summary["session_dir"])
    events = [json.loads(x) for x in (session / "events.jsonl").read_text().splitlines()]
    meta = json.loads((session / "session.json").read_text())
    assert meta["provider"] == "twilio-ws"
    return {
        "summary": summary,
        "events": events,
        "session": session,
        "wav": wav,
        "utterances": utterances,
    }


@pytest.mark.slow
def test_every_turn_is_answered_and_clear_is_seen_at_the_barge_in(
    pipecat_call: dict[str, Any],
) -> None:
    summary = pipecat_call["summary"]
    turns = summary["turns"]
    assert summary["ok"] and summary["provider"] == "twilio-ws" and summary["errors"] == []
    assert len(turns) == 4
    for turn in turns:
        spans = turn["spans"]
        for name in ("user_speech", "end_of_turn_delay", "playback_latency", "voice_to_voice"):
            assert name in spans, (turn["index"], name)
        assert "ttfb" not in spans and "response_start" not in spans
        assert turn["agent_transcript"] == ""  # no local transcription configured
    assert [t["interrupted"] for t in turns] == [False, False, True, False]
    reaction = turns[2]["spans"]["barge_in_reaction"]
    assert reaction["from"] == "LocalSpeechStarted" and reaction["to"] == "AgentInterrupted"
    assert 0 < reaction["ms"] < 3000
    interrupted = [e for e in pipecat_call["events"] if e["kind"] == "AgentInterrupted"]
    assert len(interrupted) == 1 and interrupted[0]["raw"]["event"] == "clear"
    sent = [e for e in pipecat_call["events"] if e["kind"] == "ClientMessageSent"]
    assert [e["type"] for e in sent[:2]] == ["connected", "start"]
    assert sent[1]["raw"]["start"]["customParameters"] == {"from_number": "+15550100"}
    assert sent[-1]["type"] == "stop"


@pytest.mark.slow
def test_voice_to_voice_equals_the_silent_gap_in_the_recording(
    pipecat_call: dict[str, Any],
) -> None:
    stereo, rate = read_wav_channels(pipecat_call["session"] / "audio.wav")
    left, right = stereo[:, 0], stereo[:, 1]
    caller, caller_rate = read_wav(pipecat_call["wav"])
    assert caller_rate == rate
    offset = first_sound_after(left, 0) - first_sound_after(caller, 0)
    assert 0 <= offset < rate
    turns = pipecat_call["summary"]["turns"]
    for i, utt in enumerate(pipecat_call["utterances"][:3]):
        end = speech_end_after(left, rate, offset + utt.start, offset + utt.end + rate // 10)
        agent = first_sound_after(right, end)
        gap_ms = (agent - end) * 1000 / rate
        assert turns[i]["spans"]["voice_to_voice"]["ms"] == pytest.approx(gap_ms, abs=TOL_MS), i
    assert np.abs(right).max() > 0
