"""Shared checks for the end-to-end call tests (OpenAI, Gemini and Twilio paths).

``voiceprobe call`` against the simulator: a subprocess runner, the simulator's ground
truth log, and the recording's alignment with the caller and the agent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from app.audio.wavio import read_wav, read_wav_channels
from tests.conftest import REPO, TIME_SCALE

TOL_MS = 20 * TIME_SCALE
TRUNC_TOL_MS = 40 * TIME_SCALE


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def _envelope_db(x: np.ndarray, rate: int, win_ms: int = 5) -> np.ndarray:
    win = rate * win_ms // 1000
    n = len(x) // win
    frames = x[: n * win].astype(np.float64).reshape(n, win)
    rms = np.sqrt(np.mean(frames**2, axis=1)) + 1e-9
    return 20 * np.log10(rms / 32768.0)


def speech_end_after(x: np.ndarray, rate: int, start: int, end: int) -> int:
    """Last sample in [start, end) whose 5 ms window is above -45 dBFS."""
    env = _envelope_db(x[start:end], rate)
    loud = np.nonzero(env > -45)[0]
    assert len(loud), "no speech in range"
    return start + (int(loud[-1]) + 1) * (rate * 5 // 1000)


def first_sound_after(x: np.ndarray, start: int) -> int:
    nz = np.nonzero(np.abs(x[start:].astype(np.int32)) > 0)[0]
    assert len(nz), "no sound after position"
    return start + int(nz[0])


def truth_by(truth: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [r for r in truth if r["event"] == event]


def check_recording_alignment(demo_call: dict[str, Any]) -> None:
    """The recording holds the caller sample for sample and the agent where its stamps say.

    Args:
        demo_call: the finished call as the tests' ``demo_call`` fixtures give it
            (``session_dir``, ``caller_wav``, ``meta``, ``summary``, ``utterances``).
    """
    stereo, rate = read_wav_channels(demo_call["session_dir"] / "audio.wav")
    assert stereo.shape[1] == 2
    left, right = stereo[:, 0], stereo[:, 1]
    caller, caller_rate = read_wav(demo_call["caller_wav"])
    assert caller_rate == rate == 16000
    # The caller sits on the left, sample for sample, from the recording's anchor.
    t0 = demo_call["meta"]["audio_t0_ns"]
    offset = first_sound_after(left, 0) - first_sound_after(caller, 0)
    assert 0 <= offset < rate  # the port started within a second of t0
    n = min(len(caller), len(left) - offset)
    assert np.array_equal(left[offset : offset + n], caller[:n])
    events = [
        json.loads(line)
        for line in (demo_call["session_dir"] / "events.jsonl").read_text().splitlines()
    ]
    plays = [e for e in events if e["kind"] == "PlaybackStarted"]
    frame = rate // 50
    after_silence = 0
    for ev in plays:
        pos = round((ev["t_ns"] - t0) * rate / 1e9)
        if right[max(0, pos - frame) : pos].any():
            continue  # queued right behind the previous item: no edge to see
        after_silence += 1
        first = first_sound_after(right, max(0, pos - frame))
        assert abs(first - pos) <= frame  # the agent is where its stamp says, within a frame
    assert after_silence >= 4
    turns = demo_call["summary"]["turns"]
    for i, utt in enumerate(demo_call["utterances"]):
        if i == 3:
            break
        end = speech_end_after(left, rate, offset + utt.start, offset + utt.end + rate // 10)
        agent = first_sound_after(right, end)
        gap_ms = (agent - end) * 1000 / rate
        assert turns[i]["spans"]["voice_to_voice"]["ms"] == pytest.approx(gap_ms, abs=TOL_MS), i
