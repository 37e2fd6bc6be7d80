"""Echo cancellation on the mic path, through real PortAudio devices on PulseAudio null
sinks and a simulated room between them (tests/echo_rig.py).

The agent's voice goes out through :class:`DevicePort` (``vsink``), the rig turns it into
a room echo in the microphone (``vmic``), and the port's frames are what the bridge would
send. The local VAD on those frames stands for barge-in: a start while only the agent
talks is a false barge-in; a start after the caller speaks over the agent is a real one.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from app.audio.aec import AudioProcessing, EchoCanceller, ProcessingUnavailable
from app.audio.processing.room import block_erle_db
from app.audio.recorder import StereoRecorder
from app.audio.vad import VadTracker
from app.audio.wavio import read_wav
from app.sim.tts import synthesize
from tests.echo_rig import RIG_RATE, EchoRig

#: Echo figures need a device that never underflows: an overloaded CPU starves PortAudio
#: and the canceller re-converges, so these run alone (serial phase, scripts/test.sh).
pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.serial]

AGENT = (
    "Thanks for calling. Your order shipped this morning and should arrive on Thursday. "
    "Is there anything else I can help you with today?"
)
CALLER = "Wait, stop, I need to change the delivery address please."


def _loud(pcm: np.ndarray, peak: int = 26000) -> np.ndarray:
    x = pcm.astype(np.float64)
    return np.clip(x * peak / max(1.0, np.abs(x).max()), -32768, 32767).astype(np.int16)


def _run(
    pulse_server,
    tmp_path: Path,
    processing,
    barge_at_s: float | None,
    seconds: float,
    port_type: type | None = None,
):
    """Play the agent for ``seconds`` through the port with the rig's echo; return the
    processed frames, the raw recording, VAD starts (s) and the rig."""
    from app.audio.deviceport import DevicePort

    agent = _loud(np.concatenate([synthesize(AGENT, RIG_RATE)] * 3))
    port = (port_type or DevicePort)(
        input_device="pulse", output_device="pulse", processing=processing
    )
    rig = EchoRig(pulse_server, delay_ms=80, gain_db=-6)
    t0 = time.monotonic_ns()
    port.raw_recorder = StereoRecorder(tmp_path / "mic_raw.wav", port.rate, t0, channels=1)
    # What was sent, on the same timeline (the left channel of audio.wav in a call).
    sent = StereoRecorder(tmp_path / "sent.wav", port.rate, t0, channels=1)
    vad = VadTracker(rate=16000)
    starts: list[float] = []
    out: list[np.ndarray] = []
    stamps: list[int] = []
    rig.start()
    port.start(t0)
    try:
        pos = 0
        n = port.frame_samples
        end = time.monotonic() + seconds
        barged = False
        while time.monotonic() < end:
            for frame in port.read(time.monotonic_ns()):
                out.append(frame.pcm)
                sent.left(frame.pcm, frame.t_ns - 20_000_000)
                stamps.append(frame.t_ns)
                for edge in vad.feed(frame.pcm):
                    if edge.speaking:
                        starts.append(time.monotonic() - (end - seconds))
                block = agent[pos : pos + n] if pos < len(agent) else np.zeros(n, np.int16)
                pos += n
                port.write(block, time.monotonic_ns())
            due = barge_at_s is not None and time.monotonic() > end - seconds + barge_at_s
            if due and not barged:
                rig.say(_loud(synthesize(CALLER, RIG_RATE), 20000))
                barged = True
            time.sleep(0.005)  # pacing the read loop like the bridge's 5 ms poll
    finally:
        port.stop()
        rig.stop()
        port.raw_recorder.close()
        sent.close()
    raw, _ = read_wav(tmp_path / "mic_raw.wav")
    processed, _ = read_wav(tmp_path / "sent.wav")
    rig.said_at = [int(t - (end - seconds) * 1e9) for t in rig.said_at]
    return processed, raw, starts, rig, port, stamps, t0


def test_aec_cancels_the_room_echo_without_false_barge_ins(pulse_server, tmp_path: Path) -> None:
    processed, raw, starts, rig, port, stamps, t0 = _run(
        pulse_server, tmp_path, AudioProcessing(), None, 6.0
    )
    assert port.processing_state == "echo cancellation"
    # mic_raw.wav and what was sent share one timeline (zeros before the first frame).
    first = round((stamps[0] - 20_000_000 - t0) * 16000 / 1e9)
    erle = block_erle_db(raw[first:], processed[first:], 1600)  # per 100 ms
    after = erle[20:]  # convergence within 2 s
    loud = after[~np.isnan(after)]
    assert len(loud) > 10, "the rig produced no echo in the microphone"
    median = float(np.median(loud))
    print(f"ERLE after 2 s: median {median:.1f} dB, p10 {np.percentile(loud, 10):.1f} dB")
    print(f"reference gaps {port.reference_gaps}, xruns {port.xruns()}")
    print(np.round(erle, 0))
    assert median >= 25.0
    print(f"VAD starts with AEC on (s into the call): {starts}")
    assert [t for t in starts if t >= 2.0] == [], "false barge-ins after convergence"
    # The processing adds no buffering (whole 10 ms blocks in 20 ms frames) and its CPU
    # per 20 ms frame is far below 10 ms.
    cpu_ms_per_frame = port.processing_cpu_ns / 1e6 / (port.processing_samples / 320)
    print(f"processing CPU {cpu_ms_per_frame:.3f} ms per 20 ms frame")
    assert cpu_ms_per_frame < 10.0


#: Output stalls forced by :func:`_stalling_port`: (output callback number, ms). At 10 ms
#: a callback, the first comes about 2.5 s into the call, the second a second later.
STALLS = ((250, 120), (350, 200))


def _stalling_port() -> type:
    """A :class:`DevicePort` whose output callback oversleeps at :data:`STALLS`: the device
    runs dry and plays silence the callback never sees (a real PortAudio underflow, as a
    starved CPU makes one)."""
    from app.audio.deviceport import DevicePort

    stalls = dict(STALLS)

    class StallingPort(DevicePort):
        def _out_callback(self, outdata, frames, time_info, status) -> None:  # type: ignore[no-untyped-def]
            stall_ms = stalls.get(self._out_calls)
            if stall_ms:
                # Not a synchronisation: holding the PortAudio thread is the fault forced.
                time.sleep(stall_ms / 1000)
            super()._out_callback(outdata, frames, time_info, status)

    return StallingPort


def test_aec_survives_output_underflows(pulse_server, tmp_path: Path) -> None:
    processed, raw, starts, rig, port, stamps, t0 = _run(
        pulse_server, tmp_path, AudioProcessing(), None, 8.0, _stalling_port()
    )
    print(f"reference gaps {port.reference_gaps}, xruns {port.xruns()}")
    assert port.output_underflows >= 1, "the stalls forced no underflow"
    # The silence each underflow played went into the reference at its DAC time.
    assert port.reference_gaps >= 1
    first = round((stamps[0] - 20_000_000 - t0) * 16000 / 1e9)
    erle = block_erle_db(raw[first:], processed[first:], 1600)  # per 100 ms
    print(np.round(erle, 0))
    # The last stall ends about 3.7 s into the call: 2 s later the canceller is back.
    after = erle[57:]
    loud = after[~np.isnan(after)]
    assert len(loud) > 5, "the rig produced no echo in the microphone"
    median = float(np.median(loud))
    print(f"ERLE 2 s after the last stall: median {median:.1f} dB, min {loud.min():.1f} dB")
    assert median >= 25.0
    # Reported, not asserted: on this machine a false VAD start still follows one of
    # the two stalls in about half the runs (see docs/audio.md, "Output underflows").
    print(f"VAD starts (s into the call): {starts}")


def test_double_talk_is_heard_within_300_ms(pulse_server, tmp_path: Path) -> None:
    processed, raw, starts, rig, port, stamps, t0 = _run(
        pulse_server, tmp_path, AudioProcessing(), 3.0, 5.0
    )
    assert rig.said_at, "the caller never spoke"
    said = rig.said_at[0] / 1e9
    late = [s - said for s in starts if s >= 2.0]  # after convergence
    print(f"barge-in detected {[round(1000 * x) for x in late]} ms after the caller spoke")
    assert len(starts) >= 1 and all(x > -0.05 for x in late), late  # none before the caller
    # The VAD needs 30 ms of speech; the path (rig + PulseAudio + port) adds its latency.
    assert late[0] <= 0.300


def test_an_unsupported_rate_falls_back_to_half_duplex_with_a_warning(
    pulse_server, tmp_path: Path
) -> None:
    from app.audio.deviceport import DevicePort

    with pytest.raises(ProcessingUnavailable, match="24000 Hz"):
        EchoCanceller(AudioProcessing(), 24000)
    port = DevicePort(
        input_device="pulse", output_device="pulse", rate=24000, processing=AudioProcessing()
    )
    port.start(time.monotonic_ns())
    try:
        assert port.half_duplex_fallback
        assert port.processing_state == "half duplex (fallback)"
        warnings = [n for n in port.notices if n.level == "warning"]
        assert len(warnings) == 1 and "24000 Hz" in warnings[0].message
        assert "half duplex" in warnings[0].message
    finally:
        port.stop()

