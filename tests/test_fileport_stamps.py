"""The WAV-file port's play clock: batches of frames cannot move it, stalls cannot bend it.

The unit test drives the port the way the bridge does (every released frame answered by
its writes) with the frames read in batches of 1, 5 and 45; the end-to-end test freezes a
real ``voiceprobe call`` (SIGSTOP/SIGCONT) for 300 ms in the caller's first utterance and
compares the later turns with an unfrozen run of the same WAV.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from app.audio.fileport import WavFilePort
from app.bridge.providers import DEFAULT_SCENARIO
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.conftest import REPO, TIME_SCALE

MS = 1_000_000
FRAME = 20 * MS
T0 = 5_000 * MS
RATE = 16000
N_FRAMES = 90  # a multiple of every batch size below

#: How long the call process is frozen, and the bounds the later turns must keep.
FREEZE_S = 0.3
PLAYBACK_LATENCY_MAX_MS = 40 * TIME_SCALE
V2V_TOL_MS = 30 * TIME_SCALE


def _script(j: int) -> list[NDArray[np.int16]]:
    """The blocks written while frame ``j`` is handled (the bridge writes one 20 ms block
    per frame; extra and short writes exercise queueing and the idle sink)."""
    n = RATE // 50
    block = np.full(n, j + 1, dtype=np.int16)
    if j == 30:
        return [block, np.full(n // 2, -1, dtype=np.int16)]  # a second write queues behind
    if j in (50, 60):
        return [block[: n // 2]]  # a short write: the sink runs idle before the next one
    return [block]


def _drive(batch: int) -> tuple[list[int], list[NDArray[np.int16]], WavFilePort]:
    port = WavFilePort(np.zeros(RATE * 3, dtype=np.int16), RATE)
    port.start(T0)
    stamps: list[int] = []
    blocks: list[NDArray[np.int16]] = []
    released = 0
    while released < N_FRAMES:
        # The loop wakes 3 ms after the last frame of the batch fell due.
        frames = port.read(T0 + (released + batch) * FRAME + 3 * MS)
        assert len(frames) == batch
        for frame in frames:
            j = (frame.t_ns - T0) // FRAME - 1
            assert j == released
            for block in _script(j):
                now = T0 + (released + batch) * FRAME + 4 * MS
                stamps.append(port.write_for_frame(block, now, frame.t_ns))
                blocks.append(block)
            released += 1
    return stamps, blocks, port


def _expected() -> list[int]:
    """Hand-computed stamps: frame j's stamp T0 + (j+1)·20 ms unless audio is still queued."""
    p = [T0 + (j + 1) * FRAME for j in range(N_FRAMES)]
    half = 10 * MS
    out: list[int] = []
    for j in range(N_FRAMES):
        if j < 30:
            out.append(p[j])
        elif j == 30:
            out += [p[30], p[31]]  # the extra half block plays right after frame 30's
        elif j <= 50:
            out.append(p[j] + half)  # everything runs half a frame late ...
        elif j <= 60:
            out.append(p[j])  # ... until frame 50's short write took it back
        else:
            out.append(p[j])  # frame 60's short write: 10 ms of silence, then on time
    return out


def test_batches_of_1_5_and_45_frames_give_the_same_stamps() -> None:
    results = {batch: _drive(batch) for batch in (1, 5, 45)}
    stamps_1, blocks, port = results[1]
    assert stamps_1 == _expected()
    for batch in (5, 45):
        assert results[batch][0] == stamps_1, f"batches of {batch} moved the play clock"
    # The sink's record is the lockstep output: sample s plays at T0 + 20 ms + s / rate,
    # so every block sits in it exactly where its stamp says (silence where it was idle).
    played = port.played()
    for stamp, block in zip(stamps_1, blocks, strict=True):
        pos = (stamp - T0 - FRAME) * RATE // 1_000_000_000
        assert np.array_equal(played[pos : pos + len(block)], block)
    frame_61 = stamps_1[62]  # frame 30 had two writes
    assert frame_61 == T0 + 62 * FRAME
    gap = (frame_61 - T0 - FRAME) * RATE // 1_000_000_000
    assert not played[gap - RATE // 100 : gap].any()  # frame 60's idle 10 ms is silence


def test_writes_before_any_frame_start_at_the_first_slot() -> None:
    port = WavFilePort(np.zeros(RATE, dtype=np.int16), RATE)
    port.start(T0)
    assert port.write(np.ones(320, np.int16), T0 + 7 * MS) == T0 + FRAME
    (frame,) = port.read(T0 + FRAME)
    # Frame 0's slot is taken by the block already queued, so its answer follows.
    assert port.write_for_frame(np.ones(320, np.int16), T0 + FRAME, frame.t_ns) == T0 + 2 * FRAME
    # Frame 1 answered by a short block (queued behind), frame 2 by none, frame 3 by a
    # block: the sink ran dry 10 ms before frame 3's slot and idled until it.
    (frame,) = port.read(T0 + 2 * FRAME)
    frames = port.read(T0 + 4 * FRAME)
    assert len(frames) == 2
    assert port.write_for_frame(np.ones(160, np.int16), T0 + 4 * FRAME, frame.t_ns) == (
        T0 + 3 * FRAME
    )
    assert port.write_for_frame(np.ones(320, np.int16), T0 + 4 * FRAME, frames[1].t_ns) == (
        T0 + 4 * FRAME
    )
    played = port.played()
    assert len(played) == 4 * 320 and played[: 2 * 320 + 160].all()
    assert not played[2 * 320 + 160 : 3 * 320].any() and played[3 * 320 :].all()


# --- a frozen call -------------------------------------------------------------------------


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
            _, err = proc.communicate()
            pytest.fail(f"call ended (rc {proc.returncode}) before {what}: {err[-2000:]}")
        time.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}")


def _call(wav: Path, out: Path, freeze_s: float | None) -> dict[str, Any]:
    """Run ``voiceprobe call`` on ``wav``; with ``freeze_s``, stop the process for that long
    once the simulator has heard the caller's first utterance start."""
    truth = out / "truth.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "call", "--input", str(wav), "--provider", "sim",
         "--json", "--out", str(out / "data"), "--truth", str(truth)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=_env(out),
    )  # fmt: skip
    try:
        if freeze_s is not None:

            def speech_started() -> bool:
                return truth.exists() and b'"event": "speech_started"' in truth.read_bytes()

            _wait_for(speech_started, 60, "the caller's first speech_started", proc)
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                time.sleep(freeze_s)  # the stall under test, not a synchronisation
            finally:
                os.kill(proc.pid, signal.SIGCONT)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    summary: dict[str, Any] = json.loads(stdout)
    assert summary["ok"] and summary["errors"] == [], summary["errors"]
    return summary


def _span(turn: dict[str, Any], name: str) -> float:
    return float(turn["spans"][name]["ms"])


@pytest.mark.slow
@pytest.mark.serial  # figures compared to ±30 ms
def test_a_300_ms_freeze_does_not_bend_later_turns(tmp_path: Path) -> None:
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(DEFAULT_SCENARIO)), wav)
    # The two calls run at once (each mostly waits on its real-time audio).
    with ThreadPoolExecutor(2) as pool:
        plain_f = pool.submit(_call, wav, tmp_path / "plain", None)
        frozen_f = pool.submit(_call, wav, tmp_path / "frozen", FREEZE_S)
        plain, frozen = plain_f.result(), frozen_f.result()
    assert len(plain["turns"]) == len(frozen["turns"]) == 4
    report = [
        (
            i,
            _span(a, "playback_latency"),
            _span(b, "playback_latency"),
            _span(a, "voice_to_voice"),
            _span(b, "voice_to_voice"),
        )
        for i, (a, b) in enumerate(zip(plain["turns"], frozen["turns"], strict=True))
    ]
    print("turn, playback_latency plain/frozen, voice_to_voice plain/frozen (ms):", report)
    for i, pl_plain, pl_frozen, v2v_plain, v2v_frozen in report[1:]:
        assert pl_frozen < PLAYBACK_LATENCY_MAX_MS, (i, report)
        assert pl_plain < PLAYBACK_LATENCY_MAX_MS, (i, report)
        assert v2v_frozen == pytest.approx(v2v_plain, abs=V2V_TOL_MS), (i, report)
