"""A speaker that starts late does not start the call early.

The first stream a fresh PulseAudio daemon serves plays nothing for about 1.8 s (a
Bluetooth headset's start is similar). ``DevicePort.start`` waits for the speaker's first
pull before it opens the microphone, so nothing queues meanwhile: before, the agent's
first audio played that much later than stamped, and the queue caught up later by
skipping the silence between two turns. The slow start is reported (a notice and the
summary's ``devices.output.start_ms``), and the bridge's loop is not held meanwhile.
Real PortAudio devices on a private PulseAudio daemon, in a child process
(tests/speaker_start_child.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.audio.deviceport import SPEAKER_SLOW_MS
from tests.conftest import REPO

pytestmark = pytest.mark.paired  # start and drain figures to tens of milliseconds


def test_a_late_speaker_is_awaited_and_reported() -> None:
    r = subprocess.run([sys.executable, "-m", "tests.speaker_start_child"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    fresh, warm = json.loads(r.stdout.strip().splitlines()[-1])
    # The fresh daemon's first stream stalls on this rig; start() waited it out.
    assert fresh["start_ms"] is not None and fresh["start_ms"] >= 1000, fresh
    assert fresh["start_s"] * 1000 >= fresh["start_ms"], fresh
    assert fresh["stats_start_ms"] == fresh["start_ms"]
    slow = [n for n in fresh["notices"] if "to start playing" in n]
    assert slow == [f"speaker 'vsink' took {fresh['start_ms'] / 1000:.2f} s to start playing; "
                    "the call began once it did"], fresh["notices"]
    # The next port on the same daemon starts at once and says nothing about it.
    assert warm["start_ms"] is not None and warm["start_ms"] < SPEAKER_SLOW_MS, warm
    assert not any("to start playing" in n for n in warm["notices"]), warm["notices"]
    # The bridge starts a port on a worker thread: the loop went on while the speaker
    # stalled (before, the loop was held for the whole start), and the port's notices
    # reached the bridge on the loop's own thread.
    assert fresh["loop_max_gap_ms"] < 100, fresh
    assert fresh["notices_on_loop"] and all(fresh["notices_on_loop"]), fresh
    for port in (fresh, warm):
        # Once start() returns the speaker plays and the microphone captures: a block
        # written then leaves within a few callbacks, and the first frame comes as soon.
        assert port["drained_s"] is not None and port["drained_s"] < 0.1, port
        assert port["first_frame_s"] is not None and port["first_frame_s"] < 0.2, port
