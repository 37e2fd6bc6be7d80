"""A private PulseAudio daemon with null sinks, so PortAudio has real devices in tests.

``vsink`` is the default sink (what the app plays to; record its monitor to hear it) and
``vmic`` a second null sink whose monitor is a virtual microphone (play a caller WAV into
``vmic``). Both are kept clocked with ``pacat`` writing silence, because an idle null sink
renders in ~2 s bursts and its monitor would stall.

Use the ``pulse_server`` fixture (session scope, defined in ``tests/conftest.py`` only);
it sets ``PULSE_SERVER`` in ``os.environ`` for the test process and re-initialises
PortAudio if sounddevice was already imported (PortAudio scans devices at import).
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

RATE = 48000


@dataclass
class PulseServer:
    """A running private PulseAudio daemon."""

    socket: Path
    env: dict[str, str]
    sink: str = "vsink"
    mic: str = "vmic"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"unix:{self.socket}"

    def run(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            list(args), env=self.env, capture_output=True, timeout=timeout, check=True
        )

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            list(args),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )


def _wait_ready(env: dict[str, str], deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        r = subprocess.run(["pactl", "info"], env=env, capture_output=True, timeout=5)
        if r.returncode == 0:
            return
        time.sleep(0.02)  # polling a program's readiness, not synchronising threads
    raise RuntimeError("PulseAudio did not become ready")


def _warm_first_stream(deadline_s: float) -> None:
    """Open and drain one PortAudio stream on the fresh daemon, as a desktop's long-running
    daemon would have done long ago.

    The first PortAudio stream a fresh daemon serves takes about 1.7 s before it drains
    anything (measured: a 20 ms block written to a new ``DevicePort`` drained after 1.71 s
    on a fresh daemon, after 0.01-0.02 s on the next ports). A test that happened to open
    the first stream of its worker saw that stall, the others did not: the demo's speaker
    test failed whenever it ran first on its worker (its caller audio queued for 1.7 s and
    then caught up in the first silence, merging two turns). ``DevicePort.start`` now waits
    the stall out itself (docs/audio.md, "A speaker that starts late"); the warm-up keeps
    those seconds out of every test's timing, and ``tests/test_speaker_start.py`` keeps
    the stall (``warm=False``) to test that wait.
    """
    import numpy as np

    from app.audio.deviceport import DevicePort

    port = DevicePort(input_device="pulse", output_device="pulse")
    port.start(time.monotonic_ns())
    try:
        if not speaker_drains(port, np.zeros(320, dtype=np.int16), deadline_s):
            raise RuntimeError("the fresh PulseAudio daemon never played a first stream")
    finally:
        port.stop()


def speaker_drains(port: Any, block: Any, deadline_s: float) -> bool:
    """Write ``block`` to a started ``DevicePort`` and wait until its speaker has played
    it (its capture side kept drained meanwhile); False if that takes ``deadline_s``."""
    port.write(block, time.monotonic_ns())
    end = time.monotonic() + deadline_s
    while port.output_queued_ms > 0 and time.monotonic() < end:
        port.read(time.monotonic_ns())
        time.sleep(0.01)  # polling the device's drain, not synchronising threads
    return bool(port.output_queued_ms == 0)


@contextlib.contextmanager
def running_pulse_server(warm: bool = True) -> Iterator[PulseServer]:
    """Run a private PulseAudio daemon with ``vsink`` and ``vmic`` null sinks.

    ``warm=False`` leaves the first stream's stall in place (see
    :func:`_warm_first_stream`): ``tests/speaker_start_child.py`` measures it.

    It points ``PULSE_SERVER`` (process-wide) and PortAudio at itself while it runs, so a
    process must run one at a time: the session fixture ``pulse_server`` in
    ``tests/conftest.py`` is the only user. (A second copy of the fixture, imported into a
    test module, used to start a second daemon that took the environment over from the
    first one while tests still held the first, so later device tests played into one
    server and recorded from the other.)
    """
    if shutil.which("pulseaudio") is None or shutil.which("pacat") is None:
        pytest.fail("pulseaudio / pacat not installed: ./scripts/setup.sh installs it")
    tmp = Path(tempfile.mkdtemp(prefix="vp-pulse-"))
    sock = tmp / "native"
    script = tmp / "ci.pa"
    script.write_text(
        f"load-module module-native-protocol-unix auth-anonymous=1 socket={sock}\n"
        f"load-module module-null-sink sink_name=vsink rate={RATE} channels=1\n"
        f"load-module module-null-sink sink_name=vmic rate={RATE} channels=1\n"
        "set-default-sink vsink\n"
        "set-default-source vmic.monitor\n"
    )
    env = dict(os.environ)
    env.update(
        {
            "PULSE_SERVER": f"unix:{sock}",
            "PULSE_RUNTIME_PATH": str(tmp / "runtime"),
            "PULSE_STATE_PATH": str(tmp / "state"),
            "HOME": str(tmp),
            "XDG_RUNTIME_DIR": str(tmp / "xdg"),
        }
    )
    (tmp / "xdg").mkdir(mode=0o700)
    daemon = subprocess.Popen(
        [
            "pulseaudio",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "-n",
            "-F",
            str(script),
            "--log-target=stderr",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = PulseServer(sock, env)
    server.procs.append(daemon)
    saved = {
        k: os.environ.get(k) for k in ("PULSE_SERVER", "PULSE_RUNTIME_PATH", "PULSE_STATE_PATH")
    }
    try:
        _wait_ready(env, 10.0)
        for sink in ("vsink", "vmic"):
            server.procs.append(
                server.popen(
                    "pacat",
                    "--playback",
                    "-d",
                    sink,
                    "--latency-msec=20",
                    "--format=s16le",
                    f"--rate={RATE}",
                    "--channels=1",
                    "/dev/zero",
                )
            )
        for key in saved:
            os.environ[key] = env[key]
        if "sounddevice" in sys.modules:
            from app.audio.devices import rescan_devices

            rescan_devices()
        if warm:
            _warm_first_stream(10.0)
        yield server
    finally:
        for p in reversed(server.procs):
            p.terminate()
        for p in reversed(server.procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(tmp, ignore_errors=True)


class PacedPipeSource:
    """A PulseAudio source on the clock of its writer: a microphone whose clock drifts.

    Every null sink (and its monitor) runs on the daemon's clock, so none of them can
    drift against another. ``module-pipe-source`` posts whatever its FIFO delivers, when
    it delivers it, so its clock is the writer's: a thread here writes 10 ms blocks of
    PCM at ``rate_hz`` samples per second of ``time.monotonic`` (block ``k`` is due at
    ``t0 + k * block / rate_hz``, absolute deadlines, so a late wake-up never accumulates),
    while the source claims :data:`RATE`. Silence is written while nothing is queued.

    Use: :meth:`start` (loads the module and starts pacing), :meth:`play` (PCM at
    :data:`RATE`, from the next block on), :meth:`wait_drained`, :meth:`stop` (ends the
    thread and unloads the module; idempotent).

    Args:
        server: the running daemon.
        name: the source's name (what the app opens as its microphone).
        rate_hz: samples written per second of monotonic time.
    """

    BLOCK = RATE // 100

    def __init__(self, server: PulseServer, name: str, rate_hz: float) -> None:
        self.server = server
        self.name = name
        self.rate_hz = rate_hz
        #: Samples written into the FIFO so far (pacer-owned).
        self.written = 0
        self._fifo = Path(tempfile.mkdtemp(prefix="vp-pipe-")) / "mic.fifo"
        self._module = ""
        self._queue: collections.deque[bytes] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._drained = threading.Event()
        self._drained.set()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        done = self.server.run(
            "pactl", "load-module", "module-pipe-source", f"source_name={self.name}",
            f"file={self._fifo}", "format=s16le", f"rate={RATE}", "channels=1",
        )  # fmt: skip
        self._module = done.stdout.decode().strip()
        fd = os.open(self._fifo, os.O_WRONLY)  # the module holds the read end open
        self._thread = threading.Thread(
            target=self._pace, args=(fd,), name="pipe-source-pacer", daemon=True
        )
        self._thread.start()

    def play(self, pcm: bytes) -> None:
        """Queue s16le mono PCM (at :data:`RATE`) to be written from the next block on."""
        with self._lock:
            self._drained.clear()
            step = 2 * self.BLOCK
            self._queue.extend(pcm[i : i + step] for i in range(0, len(pcm), step))

    def wait_drained(self, timeout: float) -> bool:
        """Wait until everything :meth:`play` queued has been written."""
        return self._drained.wait(timeout)

    def _pace(self, fd: int) -> None:
        silence = bytes(2 * self.BLOCK)
        t0 = time.monotonic()
        try:
            while True:
                due = t0 + self.written / self.rate_hz
                if self._stop.wait(max(0.0, due - time.monotonic())):  # pacing, not sync
                    return
                with self._lock:
                    block = self._queue.popleft() if self._queue else silence
                    if not self._queue:
                        self._drained.set()
                block = block.ljust(len(silence), b"\0")
                os.write(fd, block)
                self.written += self.BLOCK
        finally:
            os.close(fd)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._module:
            self.server.run("pactl", "unload-module", self._module)
            self._module = ""
        shutil.rmtree(self._fifo.parent, ignore_errors=True)
