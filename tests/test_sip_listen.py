"""Listen-in: both sides of a SIP call mixed onto a real output device (PulseAudio null
sink), recorded from ``vsink.monitor``.

The mixer is tested with plain function calls; the device path with a tone fed straight
into the tap (mute on, then off); and end to end with baresip calling voiceprobe, bridged
to the simulator, while the test records what the tester would hear.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.events import (
    Event,
    LocalSpeechStarted,
    LocalSpeechStopped,
    PlaybackStarted,
    PlaybackStopped,
)
from sip.config import SipAccountConfig
from tests.pulse import PulseServer
from tests.sip_peers import have, run_baresip, wait_until

REC_RATE = 48000
SCENARIO = """name: listen-one-turn
voice_rate: 175
turns:
  - hears: "Hello, can you hear me?"
    reply: "Yes, I can hear you clearly. How can I help you today?"
"""


# --- the mixer ---------------------------------------------------------------------------


def test_mixer_paces_agent_audio_by_caller_frames_and_clips() -> None:
    from sip.listen import ListenMixer

    m = ListenMixer(16000)
    caller = np.full(320, 1000, dtype=np.int16)
    # 50 ms of agent audio written at once comes out over three caller frames.
    m.agent(np.full(800, 2000, dtype=np.int16))
    outs = [m.caller(caller) for _ in range(4)]
    assert [int(o[0]) for o in outs] == [3000, 3000, 3000, 1000]
    assert int(outs[2][159]) == 3000 and int(outs[2][160]) == 1000  # 800 = 2.5 frames
    assert m.agent_queued == 0
    # Sums saturate instead of wrapping.
    m.agent(np.full(320, 30000, dtype=np.int16))
    assert int(m.caller(np.full(320, 10000, dtype=np.int16)).max()) == 32767
    m.agent(np.full(320, -30000, dtype=np.int16))
    assert int(m.caller(np.full(320, -10000, dtype=np.int16)).min()) == -32768


# --- a real device -----------------------------------------------------------------------


class Recorder:
    """``parec`` from the null sink's monitor; each chunk is stamped on arrival, so that a
    clock time maps to a sample even if the recorder started late or stalled."""

    def __init__(self, server: PulseServer) -> None:
        self.proc = subprocess.Popen(
            ["parec", "-d", f"{server.sink}.monitor", "--raw", "--format=s16le",
             f"--rate={REC_RATE}", "--channels=1", "--latency-msec=20"],
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        self.chunks: list[tuple[int, bytes]] = []
        self._reader = threading.Thread(target=self._read, name="parec-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while chunk := out.read1(4800):
            self.chunks.append((time.monotonic_ns(), chunk))

    def wait_started(self, timeout: float = 5.0) -> None:
        wait_until(lambda: bool(self.chunks), timeout, "parec to deliver audio")

    def stop(self) -> np.ndarray:
        self.proc.terminate()
        self.proc.wait(5)
        self._reader.join(5)
        return np.frombuffer(b"".join(c for _, c in self.chunks), dtype="<i2")

    def window(self, x: np.ndarray, start_ns: int, end_ns: int) -> np.ndarray:
        ends = np.cumsum([len(c) // 2 for _, c in self.chunks])
        stamps = np.array([t for t, _ in self.chunks], dtype=np.float64)
        a, b = np.interp([start_ns, end_ns], stamps, ends).astype(int)
        return x[a:max(a, b)]


def loud_fraction(x: np.ndarray, rate: int = REC_RATE, threshold: float = 300.0) -> float:
    n = rate // 50
    blocks = len(x) // n
    if blocks == 0:
        return 0.0
    b = x[: blocks * n].astype(np.float64).reshape(blocks, n)
    return float((np.sqrt((b * b).mean(axis=1)) > threshold).mean())


@pytest.mark.device
def test_listen_in_plays_the_tap_and_mute_silences_it(
        pulse_server: PulseServer, tmp_path: Path) -> None:
    from sip.listen import ListenIn
    from sip.port import SipCallPort

    port = SipCallPort(16000)
    listen = ListenIn(16000, device="pulse")
    listen.start()
    listen.attach(port)
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(320) / 16000)).astype(np.int16)
    rec = Recorder(pulse_server)
    rec.wait_started()
    try:
        marks = []
        for muted in (True, False):
            listen.set_muted(muted)
            marks.append(time.monotonic_ns())
            for _ in range(50):  # 1 s of caller frames, fed at the call's pace
                port.rx.write(tone)
                port.read(time.monotonic_ns())
                time.sleep(0.02)  # paces the feed like RTP; not synchronisation
        marks.append(time.monotonic_ns())
        done = time.monotonic() + 0.5
        while time.monotonic() < done:  # let the last of it reach the sink
            time.sleep(0.02)
    finally:
        x = rec.stop()
        listen.stop()
    assert port.monitor is None
    muted_part = rec.window(x, marks[0] + 200_000_000, marks[1])
    live_part = rec.window(x, marks[1] + 300_000_000, marks[2])
    assert loud_fraction(muted_part) == 0.0
    assert loud_fraction(live_part) > 0.9
    assert listen.errors == 0 and listen.device_rate == REC_RATE


# --- end to end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sip() -> Iterator[tuple[Any, Any]]:
    from sip.endpoint import SipEndpoint

    ep = SipEndpoint(on_incoming=lambda call: 180, media_rate=16000)
    ep.start()
    try:
        yield ep, ep.add_account(SipAccountConfig(uri="sip:agent@127.0.0.1"))
    finally:
        ep.shutdown()


@pytest.mark.sip
@pytest.mark.slow
@pytest.mark.device
@pytest.mark.skipif(not have("baresip", "espeak-ng", "sox"), reason="SIP peers not installed")
def test_listen_in_hears_caller_and_agent_of_a_bridged_call(
        pulse_server: PulseServer, tmp_path: Path, sip: tuple[Any, Any]) -> None:
    from app.bridge.providers import plan_provider
    from app.bridge.session import CallSetup
    from app.profile import load_profile
    from app.sim.caller import write_caller_wav
    from app.sim.scenario import load_scenario
    from sip.bridge import bridge_sip_call
    from sip.listen import ListenIn

    ep, acc = sip
    sc = tmp_path / "scenario.yaml"
    sc.write_text(SCENARIO)
    wav = tmp_path / "caller8k.wav"
    write_caller_wav(load_scenario(str(sc)), wav, rate=8000)
    plan, profile = plan_provider("sim", load_profile(None), scenario=str(sc))
    setup = CallSetup(profile=profile, plan=plan, data_root=tmp_path / "data")
    events: list[Event] = []
    listen = ListenIn(16000, device="pulse")
    listen.start()
    rec = Recorder(pulse_server)
    rec.wait_started()
    try:
        with run_baresip(tmp_path / "bob", wav, user="bob") as bob:
            bob.dial(f"sip:agent@{acc.contact.removeprefix('sip:')}")
            call = ep.wait_incoming(5.0)
            assert call is not None
            listen.attach(call.port)
            # baresip hangs up when its WAV ends; the bridge returns then.
            summary = asyncio.run(bridge_sip_call(call, setup, [events.append]))
        done = time.monotonic() + 0.4
        while time.monotonic() < done:  # the last agent audio reaches the sink
            time.sleep(0.02)
    finally:
        x = rec.stop()
        listen.stop()
    assert summary["ok"], summary["errors"]
    assert summary["turns"][0]["user_transcript"] == "Hello, can you hear me?"

    def first(kind: type) -> Any:
        return next(e for e in events if isinstance(e, kind))

    said = (first(LocalSpeechStarted).t_ns, first(LocalSpeechStopped).t_ns)
    replied = (first(PlaybackStarted).t_ns, first(PlaybackStopped).t_ns)
    margin = 250_000_000  # VAD hangover, device and recorder latency
    caller_part = rec.window(x, said[0] + margin, said[1] - margin)
    agent_part = rec.window(x, replied[0] + margin, replied[1] - margin)
    quiet_part = rec.window(x, said[1] + margin, replied[0])
    print(f"caller {loud_fraction(caller_part):.2f} over {len(caller_part) / REC_RATE:.2f} s, "
          f"agent {loud_fraction(agent_part):.2f} over {len(agent_part) / REC_RATE:.2f} s, "
          f"gap {loud_fraction(quiet_part):.2f}; underruns {listen.underruns}, "
          f"dropped {listen.dropped}")
    assert len(caller_part) > REC_RATE // 2 and len(agent_part) > REC_RATE
    assert loud_fraction(caller_part) > 0.5
    assert loud_fraction(agent_part) > 0.5
    assert loud_fraction(quiet_part) < 0.3
    assert listen.errors == 0
    assert summary["sip"]["callback_errors"] == 0
