"""``voiceprobe call --mic``: the desktop's mic call without the window, as a subprocess on
PulseAudio null sinks (the private daemon of ``tests/pulse.py``) against the simulator.

The caller's line is played into ``vmic`` (whose monitor is the default source, the
app's microphone); the agent's reply is recorded from the speaker sink's monitor.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from app.audio.wavio import read_wav_channels
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.conftest import REPO, TIME_SCALE

pytestmark = [pytest.mark.device, pytest.mark.slow]

READY = "mic call:"  # the stderr line that says the devices are open and the call runs


def _scenario(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "one.yaml"
    path.write_text(
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
    write_caller_wav(load_scenario(str(path)), wav, rate=48000)
    return path, wav


class _Cli:
    """``python -m app.cli call --mic …`` with stderr read line by line on a thread."""

    def __init__(self, pulse: Any, home: Path, *args: str) -> None:
        env = dict(pulse.env, VOICEPROBE_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "call", *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {text!r} on stderr: {''.join(self.err)}") from None
            if text in line:
                return line

    def finish(self, timeout: float) -> tuple[int, str, str]:
        assert self.proc.stdout is not None
        done = threading.Event()
        out: list[str] = []
        reader = threading.Thread(target=lambda: (out.append(self.proc.stdout.read()), done.set()))
        reader.start()  # stderr is the other thread's alone (communicate() would race it)
        try:
            assert done.wait(timeout), f"the call did not end: {''.join(self.err)}"
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            reader.join(5)
            self._reader.join(5)
        return self.proc.returncode, "".join(out), "".join(self.err)


class _Monitor:
    """``parec`` of a sink's monitor at 16 kHz (what came out of that speaker)."""

    def __init__(self, pulse: Any, sink: str) -> None:
        self.proc = pulse.popen(
            "parec", "-d", f"{sink}.monitor", "--format=s16le", "--rate=16000", "--channels=1"
        )
        self.chunks: list[bytes] = []
        self._reader = threading.Thread(
            target=lambda: self.chunks.extend(iter(lambda: self.proc.stdout.read(3200), b""))
        )
        self._reader.start()

    def stop(self) -> np.ndarray:
        self.proc.terminate()
        self.proc.wait(5)
        self._reader.join(5)
        return np.frombuffer(b"".join(self.chunks), dtype=np.int16)


def _loud_ms(pcm: np.ndarray) -> int:
    """From the first to the last loud 10 ms block (what came out, pauses included)."""
    n = len(pcm) // 160
    x = pcm[: n * 160].astype(np.float64).reshape(n, 160)
    loud = np.sqrt(np.mean(x * x, axis=1)) > 300
    if not loud.any():
        return 0
    return (len(loud) - int(np.argmax(loud[::-1])) - int(np.argmax(loud))) * 10


class _Sink:
    """A null sink loaded for one test, kept clocked like the fixture's (an idle null sink
    renders in bursts); :meth:`unload` is the headset being unplugged."""

    def __init__(self, pulse: Any, name: str, rate: int) -> None:
        self.pulse = pulse
        done = pulse.run(
            "pactl", "load-module", "module-null-sink", f"sink_name={name}", f"rate={rate}"
        )
        self.module = done.stdout.decode().strip()
        self.clock = pulse.popen(
            "pacat", "--playback", "-d", name, "--latency-msec=20", "--format=s16le",
            f"--rate={rate}", "--channels=1", "/dev/zero",
        )  # fmt: skip

    def unload(self) -> None:
        if self.module:
            self.pulse.run("pactl", "unload-module", self.module)
            self.module = ""
        self.clock.terminate()
        self.clock.wait(5)


def test_max_seconds_ends_a_mic_call_normally_on_a_44k_speaker(pulse_server, tmp_path) -> None:
    """A whole turn through real devices; ``--max-seconds`` is a normal end (exit 0) with
    the JSON summary, and a 44.1 kHz speaker is converted to, not refused."""
    scenario, wav = _scenario(tmp_path)
    sink = _Sink(pulse_server, "s44", 44100)
    monitor = _Monitor(pulse_server, "s44")
    try:
        cli = _Cli(
            pulse_server,
            tmp_path / "home",
            "--mic",
            "--speaker",
            "s44",
            "--scenario",
            str(scenario),
            "--max-seconds",
            str(15 * TIME_SCALE),
            "--json",
        )
        cli.wait_for(READY, 60)
        player = pulse_server.popen("paplay", "-d", "vmic", str(wav))
        assert player.wait(timeout=30) == 0
        code, out, err = cli.finish(120)
    finally:
        heard = monitor.stop()
        sink.unload()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] and summary["reason"] == "max_duration"
    turn = summary["turns"][0]
    assert turn["user_transcript"] == "Hello, can you hear me?"
    assert "hear you" in turn["agent_transcript"]
    devices = summary["devices"]
    assert devices["output"]["name"] == "s44" and devices["input"]["name"] == "vmic.monitor"
    assert isinstance(devices["drift_ppm"], float)
    reply_ms = turn["spans"]["agent_speech"]["ms"]
    assert _loud_ms(heard) == pytest.approx(reply_ms, rel=0.2), "the reply was not heard whole"


@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_ends_a_mic_call_normally(pulse_server, tmp_path, as_json: bool) -> None:
    """SIGINT is how a person ends a mic call: exit 0 and the same summary as a WAV call."""
    scenario, _ = _scenario(tmp_path)
    args = ["--mic", "--scenario", str(scenario)] + (["--json"] if as_json else [])
    cli = _Cli(pulse_server, tmp_path / "home", *args)
    cli.wait_for(READY, 60)
    cli.proc.send_signal(signal.SIGINT)
    code, out, err = cli.finish(60)
    assert code == 0, err
    assert "Traceback" not in err
    if as_json:
        summary = json.loads(out)
        assert summary["reason"] == "hangup" and summary["ok"]
        assert Path(summary["session_dir"], "audio.wav").exists()
    else:
        assert any("caller" in line and "v2v" in line for line in out.splitlines()), out
        assert "session " in out


def _eight_seconds_on(pulse_server: Any, tmp_path: Path, speaker: str, *args: str) -> _Cli:
    """A mic call of 8 s (scaled) that plays to ``speaker``, once it is ready."""
    scenario, _ = _scenario(tmp_path)
    cli = _Cli(
        pulse_server,
        tmp_path / "home",
        "--mic",
        "--speaker",
        speaker,
        "--scenario",
        str(scenario),
        "--max-seconds",
        str(8 * TIME_SCALE),
        *args,
    )
    cli.wait_for(READY, 60)
    return cli


def test_a_speaker_removed_mid_call_moves_to_the_default_and_keeps_the_recording(
    pulse_server, tmp_path
) -> None:
    sink = _Sink(pulse_server, "gone", 48000)
    try:
        cli = _eight_seconds_on(pulse_server, tmp_path, "gone")
    finally:
        sink.unload()
    line = cli.wait_for("went away", 30)
    code, out, err = cli.finish(60)
    assert code == 0, err
    assert "'gone'" in line and "system default" in line, line
    folder = Path(out.strip().splitlines()[-1].split(": ", 1)[1])
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    notices = [e["message"] for e in events if e["kind"].lower() == "notice"]
    assert any("went away" in m for m in notices), notices
    audio, rate = read_wav_channels(folder / "audio.wav")
    assert audio.shape[1] == 2
    # The recording runs to the end of the call, across the switch: ~6 s of 16 kHz audio.
    assert len(audio) >= 5 * rate, len(audio) / rate
    meta = json.loads((folder / "session.json").read_text())
    assert meta["status"] == "complete"


def test_a_speaker_that_stops_playing_mid_call_moves_to_the_default(
    pulse_server, tmp_path
) -> None:
    """A sink suspended mid-call (what a headset that hangs looks like): the stream stays
    open and active, its callbacks just stop, so only the stall rule can notice it."""
    sink = _Sink(pulse_server, "hung", 48000)
    try:
        cli = _eight_seconds_on(pulse_server, tmp_path, "hung", "--json")
        pulse_server.run("pactl", "suspend-sink", "hung", "1")
        line = cli.wait_for("stopped answering", 30)
        code, out, err = cli.finish(60)
    finally:
        sink.unload()
    assert code == 0, err
    assert "speaker 'hung'" in line and "system default" in line, line
    summary = json.loads(out)
    assert summary["ok"] and summary["reason"] == "max_duration", summary["reason"]
    assert summary["devices"]["output"]["name"] != "hung"
    assert any("stopped answering" in n for n in summary["devices"]["notices"])
    meta = json.loads((Path(summary["session_dir"]) / "session.json").read_text())
    assert meta["status"] == "complete"


def test_bad_device_lists_the_devices_that_exist(pulse_server, tmp_path) -> None:
    cli = _Cli(pulse_server, tmp_path / "home", "--mic", "no-such-mic", "--max-seconds", "5")
    code, out, err = cli.finish(60)
    assert code == 2 and out == ""
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "no-such-mic" in lines[0] and "vmic.monitor" in lines[0] and "pulse" in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--mic", "--input", "x.wav"],
        ["--speaker", "vsink", "--input", "x.wav"],
        ["--aec", "sometimes", "--mic"],
    ],
)
def test_bad_mic_flags_are_one_line_and_exit_2(pulse_server, tmp_path, args) -> None:
    env = dict(pulse_server.env, VOICEPROBE_HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "call", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_environment_is_not_left_pointing_at_a_pulse_device(pulse_server) -> None:
    """Opening a named PulseAudio device must not change what later streams open."""
    from app.audio.deviceport import DevicePort

    before = {k: os.environ.get(k) for k in ("PULSE_SINK", "PULSE_SOURCE")}
    port = DevicePort(input_device="vmic.monitor", output_device="vsink")
    port.start(0)
    port.stop()
    assert {k: os.environ.get(k) for k in ("PULSE_SINK", "PULSE_SOURCE")} == before


def _wait_recorded(home: Path, timeout: float) -> None:
    """Wait until the call's recording holds audio (its data chunk has grown)."""
    tick = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if any(p.stat().st_size > 44 for p in home.glob("sessions/*/audio.wav")):
            return
        tick.wait(0.05)  # the recorder writes every 100 ms
    raise AssertionError(f"no audio recorded within {timeout} s")


def test_a_microphone_removed_mid_call_ends_it_cleanly(pulse_server, tmp_path) -> None:
    """A lost microphone cannot be replaced without breaking the capture clock: the call
    ends (normally, before --max-seconds) with a notice and the recording kept."""
    scenario, _ = _scenario(tmp_path)
    sink = _Sink(pulse_server, "mic2", 48000)
    try:
        cli = _Cli(
            pulse_server,
            tmp_path / "home",
            "--mic",
            "mic2.monitor",
            "--scenario",
            str(scenario),
            "--max-seconds",
            str(60 * TIME_SCALE),
            "--json",
        )
        cli.wait_for(READY, 60)
        _wait_recorded(tmp_path / "home", 30)  # the mic goes away mid-call, not before it
    finally:
        sink.unload()
    line = cli.wait_for("went away", 30)
    code, out, err = cli.finish(60)
    assert code == 0, err
    assert "microphone 'mic2.monitor'" in line and "call ends" in line, line
    summary = json.loads(out)
    assert summary["ok"] and summary["reason"] == "completed", summary["reason"]
    assert any("went away" in n for n in summary["devices"]["notices"])
    audio, rate = read_wav_channels(Path(summary["session_dir"]) / "audio.wav")
    assert audio.shape[1] == 2 and len(audio) > 0
