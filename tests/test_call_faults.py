"""Faults a call must report plainly: a full disk, a message over the size limit, a
response that never finishes, a server that never confirms the session, SIGTERM/SIGINT.

Every test places a real call: ``voiceprobe call`` in a subprocess (or :func:`run_call`
in-process where a knob has no flag) against the simulator or a loopback WebSocket server,
and writes to a real file system (a 300 KiB tmpfs for the full disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from app.audio.fileport import WavFilePort
from app.audio.recorder import StereoRecorder
from app.audio.wavio import read_wav_channels, write_wav
from app.bridge.call import BridgeOptions
from app.bridge.providers import DEFAULT_SCENARIO, plan_provider
from app.bridge.session import CallSetup, run_call
from app.profile import load_profile
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.conftest import REPO, TIME_SCALE

#: Bytes of a canonical PCM WAV header (what the recorder writes).
WAV_HEADER = 44
OPENAI_KEY = "sk-test-call-faults-0000000000"


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(VOICEPROBE_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def _cli(
    home: Path,
    *args: str,
    timeout: float = 180,
    preexec: Callable[[], None] | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True, text=True, cwd=REPO, env=_env(home, **env), timeout=timeout,
        preexec_fn=preexec,
    )  # fmt: skip


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def _only_session(root: Path) -> Path:
    found = sorted((root / "sessions").glob("*/session.json"))
    assert len(found) == 1, found
    return found[0].parent


def _assert_whole_wav(path: Path) -> tuple[int, int]:
    """The WAV's header matches what is in the file; return (frames, rate)."""
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (2, 2)
        frames, rate = w.getnframes(), w.getframerate()
    assert path.stat().st_size == WAV_HEADER + frames * 4, "header sizes disagree with the file"
    audio, _ = read_wav_channels(path)
    assert audio.shape == (frames, 2)
    return frames, rate


@pytest.fixture(scope="module")
def demo_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo scenario's caller lines (about 25 s)."""
    wav = tmp_path_factory.mktemp("caller") / "demo.wav"
    write_caller_wav(load_scenario(str(DEFAULT_SCENARIO)), wav)
    return wav


@pytest.fixture(scope="module")
def quiet_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds of near silence: a caller who says nothing."""
    wav = tmp_path_factory.mktemp("caller") / "quiet.wav"
    rng = np.random.default_rng(1)
    write_wav(wav, rng.integers(-20, 20, 3 * 16000).astype(np.int16), 16000)
    return wav


# --- a full disk -----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 300 KiB tmpfs (tests run as root), unmounted afterwards."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the test needs root): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def test_recorder_on_a_full_disk_keeps_whole_frames_and_stops(small_disk: Path) -> None:
    rate, t0, frame = 16000, 1_000_000_000, 320
    # Leave about 100 KiB free: the recording fills it in under a second of audio.
    (small_disk / "filler").write_bytes(b"\0" * (200 * 1024))
    path = small_disk / "audio.wav"
    rec = StereoRecorder(path, rate, t0)
    k = 0
    while rec.error is None:
        assert k < 50 * 10, "the disk never filled"
        t = t0 + k * 20_000_000
        rec.left(np.full(frame, 1000 + k, np.int16), t)
        rec.right(np.full(frame, -1000 - k, np.int16), t)
        k += 1
    assert "No space left on device" in rec.error and str(path) in rec.error
    kept = rec.frames_on_disk
    assert path.stat().st_size == WAV_HEADER + kept * 4
    rec.left(np.ones(frame, np.int16), t0 + k * 20_000_000)  # recording has stopped
    rec.right(np.ones(frame, np.int16), t0 + k * 20_000_000)
    rec.flush()
    rec.close()
    frames, _ = _assert_whole_wav(path)
    assert frames == kept and frames >= 20 * frame
    audio, _ = read_wav_channels(path)
    whole = frames // frame
    assert (audio[(whole - 1) * frame : whole * frame, 0] == 1000 + whole - 1).all()
    # Giving back the end of the recording makes room on the disk again.
    assert rec.give_back(8192) == 2048
    (small_disk / "after.json").write_text("{}" * 1000)
    assert _assert_whole_wav(path)[0] == frames - 2048


def _assert_stopped_on_write_error(
    proc: subprocess.CompletedProcess[str], root: Path, problem: str
) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: store: cannot ") and problem in errors[0], errors[0]
    session = _only_session(root)
    meta = json.loads((session / "session.json").read_text())
    assert meta["status"] == "incomplete", meta
    assert problem in meta["summary"]["reason"], meta["summary"]
    frames, rate = _assert_whole_wav(session / "audio.wav")
    assert rate == meta["audio_rate"]
    recorded_s = frames / rate
    assert recorded_s >= 1.0, f"only {recorded_s:.2f} s of audio kept"
    # The call ended at the write error, not at the end of the 25 s caller file.
    ran_s = (meta["ended_ns"] - meta["audio_t0_ns"]) / 1e9
    assert ran_s <= recorded_s + 1.1 + 2.0 * TIME_SCALE, (ran_s, recorded_s)


@pytest.mark.slow
def test_full_disk_stops_the_call_and_keeps_a_whole_recording(
    home: Path, demo_wav: Path, small_disk: Path
) -> None:
    proc = _cli(home, "call", "--input", str(demo_wav), "--provider", "sim",
                "--out", str(small_disk))  # fmt: skip
    _assert_stopped_on_write_error(proc, small_disk, "No space left on device")


def _file_size_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a core dump

    return apply


@pytest.mark.slow
def test_file_too_large_stops_the_call_the_same_way(
    home: Path, demo_wav: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    proc = _cli(home, "call", "--input", str(demo_wav), "--provider", "sim", "--out", str(root),
                preexec=_file_size_limit(200_000))  # fmt: skip
    _assert_stopped_on_write_error(proc, root, "File too large")


# --- loopback servers that misbehave ----------------------------------------------------------


class LoopbackServer:
    """A WebSocket server on 127.0.0.1 on its own thread, running ``handler`` per
    connection; records when each connection opened and closed (monotonic ns)."""

    def __init__(self, handler: Callable[[ServerConnection, int], Awaitable[None]]) -> None:
        self.port = 0
        self.opened: list[int] = []
        self.closed: list[int] = []
        self._handler = handler
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _handle(self, ws: ServerConnection) -> None:
        self.opened.append(time.monotonic_ns())
        try:
            with contextlib.suppress(ConnectionClosed):
                await self._handler(ws, len(self.opened))
                await ws.wait_closed()
        finally:
            self.closed.append(time.monotonic_ns())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, ping_interval=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _session_event(kind: str) -> str:
    session = {"id": "sess_1", "type": "realtime", "model": "gpt-realtime"}
    return json.dumps({"type": kind, "event_id": f"evt_{kind}", "session": session})


async def _oversize_on_first_connection(ws: ServerConnection, index: int) -> None:
    """Configure the session; on the first connection only, after some caller audio,
    send one 17 MiB message (a later connection behaves and stays quiet)."""
    await ws.send(_session_event("session.created"))
    await ws.recv()  # session.update
    await ws.send(_session_event("session.updated"))
    appended = 0
    async for message in ws:
        appended += "input_audio_buffer.append" in str(message)
        if index == 1 and appended == 10:
            delta = {"type": "response.output_audio.delta", "event_id": "evt_big",
                     "response_id": "resp_1", "item_id": "item_1", "output_index": 0,
                     "content_index": 0, "delta": "A" * (17 * 1024 * 1024)}  # fmt: skip
            await ws.send(json.dumps(delta))


@pytest.mark.slow
def test_message_over_the_size_limit_fails_the_call(
    home: Path, quiet_wav: Path, tmp_path: Path
) -> None:
    with LoopbackServer(_oversize_on_first_connection) as server:
        proc = _cli(home, "call", "--input", str(quiet_wav), "--provider", "openai",
                    "--url", server.url, "--json", "--out", str(tmp_path / "data"),
                    OPENAI_API_KEY=OPENAI_KEY)  # fmt: skip
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ok"] is False
    assert len(summary["errors"]) == 1, summary["errors"]
    message = summary["errors"][0]["message"]
    assert "larger than 16 MiB" in message and "1009" in message, message
    assert "connection lost" not in message
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1 and "larger than 16 MiB" in errors[0], proc.stderr
    assert len(server.opened) == 1, "a message over the limit is not a drop to recover from"


async def _never_answer(ws: ServerConnection, index: int) -> None:
    async for _ in ws:  # read session.update and the rest; never reply
        pass


@pytest.mark.slow
def test_configuration_wait_stays_within_max_seconds(
    home: Path, quiet_wav: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    with LoopbackServer(_never_answer) as server:
        proc = _cli(home, "call", "--input", str(quiet_wav), "--provider", "openai",
                    "--url", server.url, "--max-seconds", "3", "--out", str(root),
                    OPENAI_API_KEY=OPENAI_KEY)  # fmt: skip
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1 and "config_timeout" in errors[0], proc.stderr
    meta = json.loads((_only_session(root) / "session.json").read_text())
    ran_s = (meta["ended_ns"] - meta["started_ns"]) / 1e9
    assert ran_s <= 3.0 + 1.0 * TIME_SCALE, f"the call ran {ran_s:.2f} s with --max-seconds 3"
    assert len(server.opened) == 1 and len(server.closed) == 1
    held_s = (server.closed[0] - server.opened[0]) / 1e9
    assert held_s <= 3.0 + 1.0 * TIME_SCALE, held_s


# --- a response that never finishes ---------------------------------------------------------


WATCHDOG_S = 1.0


@pytest.mark.slow
def test_stalled_response_ends_the_call_after_the_watchdog(tmp_path: Path) -> None:
    scenario = {
        "name": "stall",
        "turns": [{
            "hears": "Hello, can you hear me?",
            "reply": "Yes, I can hear you clearly. How can I help you today?",
            "faults": [{"action": "stall", "at": "response.output_audio.delta", "nth": 3,
                        "ms": 30000}],
        }],
    }  # fmt: skip
    sc_path = tmp_path / "stall.yaml"
    sc_path.write_text(yaml.safe_dump(scenario))
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(sc_path)), wav)
    truth_path = tmp_path / "truth.jsonl"
    plan, profile = plan_provider(
        "sim", load_profile(None), scenario=str(sc_path), truth_path=str(truth_path)
    )
    setup = CallSetup(
        profile=profile,
        plan=plan,
        data_root=tmp_path / "data",
        options=BridgeOptions(max_seconds=20.0, response_stall_s=WATCHDOG_S),
    )
    summary = asyncio.run(run_call(setup, WavFilePort.from_wav(wav, rate=16000)))

    assert summary["ok"] is False
    codes = [e["code"] for e in summary["errors"]]
    assert codes == ["response_stalled"], summary["errors"]
    assert "no server event for 1 s" in summary["errors"][0]["message"]
    truth = [json.loads(line) for line in truth_path.read_text().splitlines()]
    stall = next(r for r in truth if r["event"] == "fault" and r["action"] == "stall")
    events = [
        json.loads(line)
        for line in (Path(summary["session_dir"]) / "events.jsonl").read_text().splitlines()
    ]
    ended = next(e for e in events if e["kind"] == "CallEnded")
    late_s = (ended["t_ns"] - stall["t_ns"]) / 1e9
    assert late_s <= WATCHDOG_S + 2.0 * TIME_SCALE, late_s
    # ...and not before the server had really been quiet that long.
    last_sent = max(r["t_ns"] for r in truth if r["t_ns"] <= stall["t_ns"] and r is not stall)
    alarm = next(e for e in events if e["kind"] == "Notice" and "stalled" in e["message"])
    assert (alarm["t_ns"] - last_sent) / 1e9 >= WATCHDOG_S
    finished = [e for e in events if e["kind"] == "ResponseFinished"]
    assert [(e["status"], e["reason"]) for e in finished] == [("incomplete", "stalled")]
    meta = json.loads((Path(summary["session_dir"]) / "session.json").read_text())
    assert meta["status"] == "failed"


# --- SIGTERM / SIGINT -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_ends_the_call_as_interrupted(
    home: Path, demo_wav: Path, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    root = tmp_path / "data"
    truth = tmp_path / "truth.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "call", "--input", str(demo_wav), "--provider", "sim",
         "--out", str(root), "--truth", str(truth)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=_env(home),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60 * TIME_SCALE
        audio: list[Path] = []
        # One second of both channels on disk: the recording is well under way.
        while not (audio and audio[0].stat().st_size >= WAV_HEADER + 4 * 16000):
            if proc.poll() is not None:
                pytest.fail(f"call ended (rc {proc.returncode}) early: {proc.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("the call recorded no audio in time")
            time.sleep(0.02)
            audio = sorted(root.glob("sessions/*/audio.wav"))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30 * TIME_SCALE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, (proc.returncode, err[-3000:])
    assert "Traceback" not in out + err, err[-3000:]
    said = [ln for ln in err.splitlines() if "interrupted" in ln]
    assert len(said) == 1 and sig.name in said[0], err
    session = _only_session(root)
    meta = json.loads((session / "session.json").read_text())
    assert meta["status"] == "interrupted"
    frames, rate = _assert_whole_wav(session / "audio.wav")
    assert frames >= rate
    # The socket the bridge closed on its way out is not a drop: no second session (on a
    # real provider, a new billed session opened with the key and the turns replayed).
    opened = [json.loads(x) for x in truth.read_text().splitlines()]
    opened = [r for r in opened if r["event"] == "connection" and r["state"] == "open"]
    assert len(opened) == 1, opened
    kinds = [json.loads(x)["kind"] for x in (session / "events.jsonl").read_text().splitlines()]
    assert "Reconnected" not in kinds and "after the drop" not in err, err
