"""Clock drift between the mic (which paces the bridge's writes) and the speaker (which
drains the playout queue): the compensator keeps the queue bounded and click-free.

The simulation runs two clocks against each other faster than real time: the producer
writes one 20 ms block per mic period (with the bridge loop's jitter), the consumer reads
10 ms per speaker callback at a rate 10 Hz off 48 kHz. Clicks are measured, not guessed:
an underrun during speech or a dropped/duplicated sample shows as a sample-to-sample jump
larger than the source signal ever makes.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.drift import DriftCompensator

RATE = 48000
BLOCK_IN = 960  # one 20 ms frame at the device rate
BLOCK_OUT = 480  # one 10 ms speaker callback


#: A speaker move: how long nothing drains, and how many callbacks the new stream pulls
#: at once to fill its buffer.
MOVE_GAP_S = 0.016
MOVE_PREFILL = 3
#: An output underflow: the speaker's clock runs on while nothing drains (s; 45 ms is what
#: an 80 ms stall of the callback left on the PulseAudio rig).
UNDERFLOW_S = 0.045
QUIET_S = 3  # the agent is silent for the call's first seconds, then talks without a pause


def _speech_like(start: int, n: int) -> np.ndarray:
    """Silence, then a continuous, never-silent signal (two tones starting at zero): any
    gap or jump in it is a defect."""
    t = (start + np.arange(n)) / RATE
    x = 6000 * np.sin(2 * np.pi * 220 * t) + 3000 * np.sin(2 * np.pi * 1030 * t)
    x[start + np.arange(n) < QUIET_S * RATE] = 0
    return np.round(x).astype(np.int16)


def _simulate(
    speaker_rate: float,
    seconds: float,
    compensate: bool,
    seed: int = 1,
    move: tuple[float, float, bool] | None = None,
    underflows: tuple[float, ...] = (),
    count_silence: bool = True,
) -> dict[str, float]:
    """Run mic-paced writes against a speaker draining at ``speaker_rate``.

    ``move=(at_s, new_rate, told)``: at ``at_s`` the speaker goes away and another one
    takes over, as ``DevicePort`` moves a lost speaker: nothing drains for
    :data:`MOVE_GAP_S`, the new stream pulls :data:`MOVE_PREFILL` callbacks at once to fill
    its buffer, then drains at ``new_rate``; ``told`` says whether the compensator is
    told (``new_speaker``).

    ``underflows``: times (s) at which the speaker underflows for :data:`UNDERFLOW_S`: it
    plays that much silence that no read took from the queue. ``count_silence`` says
    whether the compensator is given the running count of such silence (and of reads the
    queue could not fill), as ``DevicePort`` counts it from the callback's DAC times.
    """
    rng = np.random.default_rng(seed)
    comp = DriftCompensator(RATE)
    n_writes = int(seconds * 1000 / 20)
    # Write k happens at k*20 ms on the mic clock, late by the bridge loop's jitter
    # (0-15 ms), never before the previous write.
    due = np.arange(n_writes) * 0.020 + rng.uniform(0, 0.015, n_writes)
    due = np.maximum.accumulate(due)
    read_period = BLOCK_OUT / speaker_rate
    fifo = np.zeros(int(seconds * RATE * 1.01) + 10 * BLOCK_IN, dtype=np.int16)
    head = tail = 0  # fifo[tail:head] is queued
    out = np.zeros(int(seconds / read_period + 2) * BLOCK_OUT, dtype=np.int16)
    out_n = 0
    underruns = 0
    max_queued = 0
    fed = 0
    w = 0
    next_read = 0.030  # the speaker starts a little after the first write
    prefill = 0
    pending_underflows = sorted(underflows)
    silence = 0  # samples the speaker played that no read took from the queue
    while w < n_writes:
        if pending_underflows and next_read >= pending_underflows[0]:
            pending_underflows.pop(0)
            next_read += UNDERFLOW_S
            silence += round(UNDERFLOW_S * speaker_rate)
        if move is not None and next_read >= move[0]:
            at_s, speaker_rate, told = move
            move = None
            read_period = BLOCK_OUT / speaker_rate
            next_read += MOVE_GAP_S
            prefill = MOVE_PREFILL
            if told:
                comp.new_speaker()
        if due[w] <= next_read:
            x = _speech_like(fed, BLOCK_IN)
            fed += BLOCK_IN
            queued = head - tail
            y = comp.process(x, queued, silence if count_silence else 0) if compensate else x
            fifo[head : head + len(y)] = y
            head += len(y)
            max_queued = max(max_queued, head - tail)
            w += 1
        else:
            take = min(BLOCK_OUT, head - tail)
            out[out_n : out_n + take] = fifo[tail : tail + take]
            if take < BLOCK_OUT:
                underruns += 1
                silence += BLOCK_OUT - take
            tail += take
            out_n += BLOCK_OUT
            if prefill:
                prefill -= 1
            else:
                next_read += read_period
    played = out[: out_n - BLOCK_OUT].astype(np.int32)  # the last read may be short by design
    src = _speech_like(QUIET_S * RATE, RATE).astype(np.int32)
    return {
        "max_queued_ms": 1000 * max_queued / RATE,
        "underruns": underruns,
        "max_jump": float(np.abs(np.diff(played)).max()),
        "source_max_jump": float(np.abs(np.diff(src)).max()),
        "drift_ppm": comp.drift_ppm,
    }


@pytest.mark.parametrize("speaker_rate", [RATE + 10.0, RATE - 10.0])
def test_ten_minutes_at_10_hz_drift_stay_bounded_and_click_free(speaker_rate: float) -> None:
    r = _simulate(speaker_rate, 600.0, compensate=True)
    assert r["max_queued_ms"] <= 100.0, r
    assert r["underruns"] == 0, r
    # A gap or a dropped sample in a 1 kHz tone jumps far beyond the tone's own slope.
    assert r["max_jump"] <= 1.05 * r["source_max_jump"], r
    expected_ppm = (speaker_rate / RATE - 1) * 1e6  # ±208 ppm
    assert r["drift_ppm"] == pytest.approx(expected_ppm, abs=25.0), r


def test_without_compensation_the_same_drift_overflows_or_clicks() -> None:
    """The check above has teeth: the same run with no compensation fails it."""
    slow = _simulate(RATE - 10.0, 600.0, compensate=False)
    assert slow["max_queued_ms"] > 100.0, slow
    fast = _simulate(RATE + 10.0, 600.0, compensate=False)
    assert fast["underruns"] > 0 and fast["max_jump"] > 1.05 * fast["source_max_jump"], fast


def test_no_drift_is_an_exact_copy() -> None:
    """Without drift the audio passes unchanged (apart from one sample of delay)."""
    comp = DriftCompensator(RATE)
    x = _speech_like(0, BLOCK_IN * 50)
    ys = [comp.process(x[i : i + BLOCK_IN], 1500) for i in range(0, len(x), BLOCK_IN)]
    y = np.concatenate(ys)
    assert abs(len(y) - len(x)) <= 1
    assert np.array_equal(y[1:], x[: len(y) - 1]) or np.array_equal(y, x[: len(y)])
    assert comp.drift_ppm == 0.0


def test_a_short_queue_is_topped_up_with_silence_at_a_quiet_point() -> None:
    """After a flush (barge-in) the queue is empty: the next silent block refills it to
    the target at once instead of leaving speech to underrun."""
    comp = DriftCompensator(RATE)
    quiet = np.zeros(BLOCK_IN, dtype=np.int16)
    for _ in range(int(3 * RATE / BLOCK_IN)):
        assert len(comp.process(quiet, 1920)) in (BLOCK_IN - 1, BLOCK_IN)  # settles at 40 ms
    drift = comp.drift_ppm
    comp.reset(dropped=1920)
    first = comp.process(quiet, 0)  # the first block after the flush: back to 40 ms at once
    assert BLOCK_IN + 1920 - 1 <= len(first) <= BLOCK_IN + 1920 + 1, len(first)
    assert not first.any()
    blocks = int(3 * RATE / BLOCK_IN)  # the queue now holds its level: no further top-up
    out = [comp.process(quiet, 1920) for _ in range(blocks)]
    assert all(len(y) in (BLOCK_IN - 1, BLOCK_IN, BLOCK_IN + 1) for y in out)
    assert abs(comp.drift_ppm - drift) < 1.0  # the flush is kept out of the drift figure
    tone = _speech_like(QUIET_S * RATE, BLOCK_IN)
    assert len(comp.process(tone, 0)) in (BLOCK_IN - 1, BLOCK_IN, BLOCK_IN + 1)  # speech is
    # never padded


@pytest.mark.parametrize("new_rate", [RATE, RATE - 10.0])
def test_a_speaker_move_restarts_the_drift_figure_on_the_new_clock(new_rate: float) -> None:
    """A drift belongs to one pair of clocks. After the speaker moves (a gap, the new
    stream's first fill, its own clock), the figure is the new pair's; fitted across the
    move it read hundreds of ppm off, even with both speakers on one clock."""
    told = _simulate(RATE + 10.0, 240.0, compensate=True, move=(90.0, new_rate, True))
    expected_ppm = (new_rate / RATE - 1) * 1e6
    assert told["drift_ppm"] == pytest.approx(expected_ppm, abs=25.0), told
    assert told["max_queued_ms"] <= 100.0 and told["underruns"] == 0, told
    assert told["max_jump"] <= 1.05 * told["source_max_jump"], told
    untold = _simulate(RATE + 10.0, 240.0, compensate=True, move=(90.0, new_rate, False))
    assert abs(untold["drift_ppm"] - expected_ppm) > 50.0, untold


def test_right_after_a_move_the_figure_of_the_speaker_before_stands() -> None:
    """Until the new fit spans a second (after the new device settles), drift_ppm keeps
    the figure measured before the move rather than dropping to 0."""
    comp = DriftCompensator(RATE)
    quiet = np.zeros(BLOCK_IN, dtype=np.int16)
    queued = 1920
    for _ in range(int(10 * RATE / BLOCK_IN)):  # drained 1 sample per block slower
        queued += len(comp.process(quiet, queued)) - (BLOCK_IN - 1)
    before = comp.drift_ppm
    assert before == pytest.approx(-1e6 / BLOCK_IN, rel=0.2)
    comp.new_speaker()
    for _ in range(int(2.5 * RATE / BLOCK_IN)):  # settling and the first half second
        queued += len(comp.process(quiet, queued)) - BLOCK_IN
        assert comp.drift_ppm == before


def test_silence_the_speaker_played_on_underflows_is_not_read_as_drift() -> None:
    """An output underflow stops the queue draining while the speaker's clock runs on:
    four 45 ms underflows in four minutes read as a speaker hundreds of ppm slow unless
    the silence it played is counted as played (on the PulseAudio rig, four 80 ms stalls
    of the callback read -4322 ppm for a true -833; counted, -526)."""
    at = (60.0, 100.0, 140.0, 180.0)
    counted = _simulate(RATE + 10.0, 240.0, compensate=True, underflows=at)
    assert counted["drift_ppm"] == pytest.approx(208.3, abs=25.0), counted
    # Each underflow leaves its 45 ms in the queue, which the controller then drains.
    assert counted["max_queued_ms"] <= 60.0 + 1000 * UNDERFLOW_S + 5.0, counted
    assert counted["underruns"] == 0, counted
    uncounted = _simulate(RATE + 10.0, 240.0, compensate=True, underflows=at, count_silence=False)
    assert uncounted["drift_ppm"] < 208.3 - 300.0, uncounted
