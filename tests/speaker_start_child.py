"""Run by ``tests/test_speaker_start.py`` in a process of its own: a fresh PulseAudio
daemon (not warmed, so its first stream stalls as it does on a freshly started desktop
daemon), two ``DevicePort``s opened one after the other, and what each did, as JSON on
stdout. A process of its own because a process runs one private daemon at a time
(``tests.pulse.running_pulse_server``). Each port is started the way the bridge starts
it (``app.audio.port.start_port``), with a ticker on the same loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import numpy as np

from app.audio.deviceport import DevicePort
from app.audio.port import start_port
from tests.pulse import running_pulse_server


async def _start_on_a_loop(port: DevicePort) -> dict[str, Any]:
    """``start_port`` as the bridge calls it, with a 5 ms ticker on the same loop: the
    loop's longest gap while the port starts, and the threads the port's notices came in
    on."""
    loop_thread = threading.get_ident()
    threads: list[bool] = []
    port.emit = lambda ev: threads.append(threading.get_ident() == loop_thread)
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.02)  # the ticker is running
    try:
        await start_port(port, time.monotonic_ns)
        await asyncio.sleep(0.02)  # the notices handed back to the loop are delivered
    finally:
        done.set()
        await ticker
    return {"loop_max_gap_ms": 1000 * max(gaps), "notices_on_loop": threads}


def _open_and_measure() -> dict[str, object]:
    port = DevicePort(input_device="pulse", output_device="pulse")
    t0 = time.monotonic()
    on_loop = asyncio.run(_start_on_a_loop(port))
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
        **on_loop,
    }
    port.stop()
    return out


def main() -> None:
    with running_pulse_server(warm=False):
        print(json.dumps([_open_and_measure(), _open_and_measure()]))


if __name__ == "__main__":
    main()
