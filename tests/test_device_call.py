"""Mic mode on real PortAudio devices: a PulseAudio null sink as the laptop's sound card.

The test plays a caller WAV into the virtual microphone, the app's device port captures
it, the call reaches the simulator, and the agent's reply is recorded back from the
speaker sink's monitor.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from app.bridge.controller import CallController
from app.bridge.request import CallRequest
from app.events import Event, PlaybackStopped
from app.profile import load_profile
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario

pytestmark = [pytest.mark.device, pytest.mark.slow]


def _rms_blocks(pcm: np.ndarray, block: int) -> np.ndarray:
    n = len(pcm) // block
    x = pcm[: n * block].astype(np.float64).reshape(n, block)
    return np.sqrt(np.mean(x * x, axis=1))


def test_mic_call_reaches_the_simulator_and_plays_the_reply(
    pulse_server,
    tmp_path: Path,
) -> None:
    from app.audio.deviceport import DevicePort

    scenario_path = tmp_path / "one.yaml"
    scenario_path.write_text(
        yaml.safe_dump(
            {
                "name": "one",
                "turns": [
                    {"hears": "Hello, can you hear me?", "reply": "Yes, I can hear you clearly."}
                ],
            }
        )
    )
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(scenario_path)), wav, rate=48000)
    truth = tmp_path / "truth.jsonl"
    played = threading.Event()

    def on_event(ev: Event) -> None:
        if isinstance(ev, PlaybackStopped) and not ev.interrupted:
            played.set()

    controller = CallController(data_root=tmp_path / "data")
    controller.subscribe(on_event)
    rec = pulse_server.popen(
        "parec",
        "-d",
        "vsink.monitor",
        "--format=s16le",
        "--rate=16000",
        "--channels=1",
        "--latency-msec=20",
    )
    chunks: list[bytes] = []
    assert rec.stdout is not None
    reader = threading.Thread(
        target=lambda: chunks.extend(iter(lambda: rec.stdout.read(3200), b""))
    )
    reader.start()
    try:
        controller.start_call(
            CallRequest(
                profile=load_profile(None),
                provider="sim",
                scenario=str(scenario_path),
                port=DevicePort(input_device="pulse", output_device="pulse"),
                truth=str(truth),
            )
        )
        player = pulse_server.popen("paplay", "-d", "vmic", str(wav))
        assert played.wait(60), "the agent's reply never finished playing"
        assert player.wait(timeout=30) == 0
        controller.hangup()
        summary = controller.wait(30)
    finally:
        time.sleep(0.3)  # the monitor delivers the tail a device period later
        rec.terminate()
        rec.wait(timeout=5)
        reader.join(timeout=5)
        controller.shutdown()
    assert summary is not None
    turn = summary["turns"][0]
    assert turn["user_transcript"] == "Hello, can you hear me?"  # the simulator heard it
    assert "hear you" in turn["agent_transcript"]
    heard = np.frombuffer(b"".join(chunks), dtype=np.int16)
    loud = _rms_blocks(heard, 160) > 300  # 10 ms blocks
    assert loud.any(), "nothing came out of the speaker"
    first, last = int(np.argmax(loud)), len(loud) - int(np.argmax(loud[::-1]))
    heard_ms = (last - first) * 10
    reply_ms = turn["spans"]["agent_speech"]["ms"]
    assert heard_ms == pytest.approx(reply_ms, rel=0.2), (heard_ms, reply_ms)
    assert reply_ms > 1000
