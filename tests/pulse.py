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

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


@contextlib.contextmanager
def running_pulse_server() -> Iterator[PulseServer]:
    """Run a private PulseAudio daemon with ``vsink`` and ``vmic`` null sinks.

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
