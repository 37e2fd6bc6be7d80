"""Run by ``tests/test_speaker_start.py`` in a process of its own: a fresh PulseAudio
daemon (not warmed, so its first stream stalls as it does on a freshly started desktop
daemon), two ``DevicePort``s opened one after the other, and what each did, as JSON on
stdout. A process of its own because a process runs one private daemon at a time
(``tests.pulse.running_pulse_server``)."""

from __future__ import annotations

import json
import time

import numpy as np

from app.audio.deviceport import DevicePort
from tests.pulse import running_pulse_server


def _open_and_measure() -> dict[str, object]:
    port = DevicePort(input_device="pulse", output_device="pulse")
    t0 = time.monotonic()
    port.start(time.monotonic_ns())
    started = time.monotonic()
    port.write(np.full(320, 1000, dtype=np.int16), time.monotonic_ns())
    drained = first_frame = None
    while time.monotonic() - started < 3.0 and (drained is None or first_frame is None):
        if first_frame is None and port.read(time.monotonic_ns()):
            first_frame = time.monotonic() - started
        if drained is None and port.output_queued_ms == 0:
            drained = time.monotonic() - started
        time.sleep(0.002)  # polling the devices, not synchronising threads
    out = {
        "start_s": started - t0,
        "start_ms": port.speaker_start_ms,
        "stats_start_ms": port.device_stats()["output"]["start_ms"],
        "notices": [n.message for n in port.notices],
        "drained_s": drained,
        "first_frame_s": first_frame,
    }
    port.stop()
    return out


def main() -> None:
    with running_pulse_server(warm=False):
        print(json.dumps([_open_and_measure(), _open_and_measure()]))


if __name__ == "__main__":
    main()
