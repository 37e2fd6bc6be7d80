"""DevicePort on real PortAudio devices backed by a private PulseAudio null sink.

The test plays a tone into the virtual mic ``vmic`` and reads it back through the port;
it writes agent audio through the port and records it from the ``vsink`` monitor.
"""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from app.errors import AudioDeviceError
from tests.pulse import RATE

pytestmark = pytest.mark.device


def tone(rate: int, seconds: float, freq: float = 440.0, amp: float = 12000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def test_list_devices_sees_pulse(pulse_server):
    from app.audio.devices import list_devices

    devices = list_devices()
    names = [d.name for d in devices]
    assert "pulse" in names
    pulse = devices[names.index("pulse")]
    assert pulse.max_input_channels > 0 and pulse.max_output_channels > 0
    assert pulse.host_api == "ALSA"


def test_missing_device_is_a_clear_error(pulse_server):
    from app.audio.deviceport import DevicePort

    port = DevicePort(input_device="no-such-device-xyz", output_device="pulse")
    with pytest.raises(AudioDeviceError) as err:
        port.start(time.monotonic_ns())
    assert "no-such-device-xyz" in str(err.value)
    assert err.value.device == "no-such-device-xyz"
    port.stop()


def test_capture_and_playback_through_null_sinks(pulse_server, tmp_path: Path):
    from app.audio.deviceport import DevicePort

    wav = tmp_path / "caller.wav"
    caller = tone(RATE, 1.0)
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(caller.tobytes())

    port = DevicePort(input_device="pulse", output_device="pulse")
    port.start(time.monotonic_ns())
    try:
        assert port.in_rate == 48000 and port.out_rate == 48000
        # Capture: play the caller tone into the virtual mic, read 20 ms frames back.
        player = pulse_server.popen("paplay", "-d", "vmic", str(wav))
        frames = []
        deadline = time.monotonic() + 10
        loud = 0
        while time.monotonic() < deadline:
            got = port.read(time.monotonic_ns())
            frames += got
            loud += sum(1 for f in got if rms(f.pcm) > 3000)
            if loud >= 40 and player.poll() is not None and rms(frames[-1].pcm) < 100:
                break
            time.sleep(0.02)  # the bridge's 20 ms tick: pacing a real-time poll
        assert player.wait(timeout=10) == 0
        assert all(len(f.pcm) == 320 for f in frames)
        # ~1 s of tone = ~50 loud frames at 16 kHz (allow the edges).
        assert 44 <= loud <= 53, loud
        stamps = np.array([f.t_ns for f in frames], dtype=np.int64)
        steps_ms = np.diff(stamps) / 1e6
        assert np.all(steps_ms > 0)
        assert abs(float(np.median(steps_ms)) - 20.0) < 1.0
        # Capture stamps are in the recent past, never in the future.
        assert stamps[-1] <= time.monotonic_ns()
        assert time.monotonic_ns() - stamps[-1] < 1_000_000_000

        # Playback: write 1 s of agent tone, record it from the sink's monitor.
        rec = pulse_server.popen(
            "parec",
            "-d",
            "vsink.monitor",
            "--format=s16le",
            f"--rate={RATE}",
            "--channels=1",
            "--latency-msec=20",
        )
        chunks: list[bytes] = []
        reader = threading.Thread(
            target=lambda: chunks.extend(iter(lambda: rec.stdout.read(4800), b""))
        )
        reader.start()
        now = time.monotonic_ns()
        agent = tone(16000, 1.0, freq=300.0)
        play_at = port.write(agent, now)
        assert now <= play_at < now + 500_000_000
        deadline = time.monotonic() + 10
        while port.output_queued_ms > 0 and time.monotonic() < deadline:
            port.read(time.monotonic_ns())
            time.sleep(0.02)
        assert port.output_queued_ms == 0
        time.sleep(0.3)  # let the monitor deliver the tail (real-time device latency)
        rec.terminate()
        rec.wait(timeout=5)
        reader.join(timeout=5)
        heard = np.frombuffer(b"".join(chunks), dtype=np.int16)
        blocks = heard[: len(heard) // 480 * 480].reshape(-1, 480)
        loud_blocks = int(np.sum(np.sqrt(np.mean(blocks.astype(np.float64) ** 2, axis=1)) > 3000))
        # 1 s = 100 blocks of 10 ms at 48 kHz.
        assert 94 <= loud_blocks <= 102, loud_blocks
        assert port.xruns()["output_ring_overruns"] == 0
    finally:
        port.stop()
        port.stop()  # idempotent
