"""A barge-in flush on real PortAudio devices: the cut is silence, not an underrun.

The bridge feeds the speaker one 20 ms block per caller frame (mic mode). A barge-in
drops the queued agent audio (``DevicePort.flush_output``); the output callback performs
the drop. What the speaker plays next is the silence the cut asked for, so it must not
count as an underrun (``playout_underruns`` is a figure the tester reads as "the speaker
ran dry mid-stream"), and the queue must be back at its working level by the next block,
or the agent's next reply would play from an empty queue and click.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.pulse import speaker_drains

# Serial: a real-time feed whose underrun count must be exact; a CPU-starved PulseAudio
# daemon underflows for reasons of its own (see test_drift_devices.py).
pytestmark = [pytest.mark.device, pytest.mark.serial]

#: The bridge's block: 20 ms at the port's 16 kHz.
BLOCK = 320
#: When each barge-in comes (s after the first block), mid-reply each time.
FLUSH_AT_S = (3.0, 4.5, 6.0)
#: Silence fed after each flush (the cut reply's remaining chunks are discarded).
QUIET_AFTER_S = 0.5
#: Length of the feed (s).
FEED_S = 7.5


def _tone_block(k: int) -> np.ndarray:
    t = (np.arange(BLOCK) + k * BLOCK) / 16000
    return (8000 * np.sin(2 * np.pi * 330 * t)).astype(np.int16)


def test_a_barge_in_flush_is_not_an_underrun_and_the_queue_refills_at_once(pulse_server):
    from app.audio.deviceport import DevicePort

    port = DevicePort(input_device="pulse", output_device="pulse")
    port.start(time.monotonic_ns())
    silence = np.zeros(BLOCK, dtype=np.int16)
    levels_after: list[float] = []  # queue level after the second block fed after a flush
    short_at: list[float] = []  # when each counted underrun was seen (s into the feed)
    level_before: list[float] = []  # queue level just before each flush
    try:
        # The feed below starts on a running device.
        assert speaker_drains(port, _tone_block(0), 10.0), "the speaker never started"
        t0 = time.monotonic()
        flushes = list(FLUSH_AT_S)
        quiet_until = 0.0
        after_flush = 0  # blocks still to feed before the level after a flush is read
        k = 0
        while (elapsed := time.monotonic() - t0) < FEED_S:
            port.read(time.monotonic_ns())  # keep the capture side drained, as a call does
            if flushes and elapsed >= flushes[0]:
                flushes.pop(0)
                level_before.append(port.output_queued_ms)
                port.flush_output()
                quiet_until = elapsed + QUIET_AFTER_S
                after_flush = 2  # by the second block the callback has surely dropped
            # Quiet until 2.5 s (the queue settles to its working level on a quiet start,
            # as a call's does), then a reply that each barge-in cuts and that resumes
            # after its quiet gap.
            speaking = elapsed >= 2.5 and elapsed >= quiet_until
            port.write(_tone_block(k) if speaking else silence, time.monotonic_ns())
            if after_flush:
                after_flush -= 1
                if not after_flush:
                    levels_after.append(port.output_queued_ms)
            k += 1
            if port.playout_underruns > len(short_at):
                short_at.append(round(elapsed, 3))
            # Pace like the bridge's 20 ms tick (real time is the thing under test).
            time.sleep(max(0.0, t0 + k * 0.02 - time.monotonic()))
        underruns = port.playout_underruns
        xruns = port.xruns()
    finally:
        port.stop()
    assert underruns == 0, (underruns, short_at, xruns, level_before, levels_after)
    assert len(level_before) == len(FLUSH_AT_S)
    # There was agent audio queued to cut, within the queue's bound.
    assert all(0.0 < level <= 100.0 for level in level_before), level_before
    # The first block after each flush topped the queue back up to its working level
    # (at least 30 ms, app/audio/drift.py); before this, it ran near empty for 2 s.
    assert all(level >= 25.0 for level in levels_after), (levels_after, level_before)
