"""A room between the app's speaker and its microphone, on PulseAudio null sinks.

:class:`EchoRig` starts the echo path as a process of its own (``python -m
tests.echo_rig``), so the test's threads (the bridge, the port) cannot starve it of the
GIL: it records the agent sink's monitor (``vsink.monitor``, what the app plays),
convolves it with a generated room impulse response
(:func:`app.audio.processing.room.room_impulse_response`: 30–150 ms delay, −6 to −20 dB),
mixes in the caller's speech when asked, and plays the result into ``vmic``, whose
monitor is the app's microphone. Everything goes through real PulseAudio streams
(``parec``/``pacat``), so the app meets the echo through real PortAudio devices.

Protocol on the process's stdin/stdout (one line each): ``say <wav path>`` mixes that
16 kHz mono WAV in from the next 10 ms block; the process answers ``said <t_ns>``
(``time.monotonic_ns``, the same clock in every process) when its first block goes to
``pacat``. Closing stdin ends the process.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.processing.room import EchoPath, room_impulse_response, to_int16

RIG_RATE = 16000
BLOCK = RIG_RATE // 100
LATENCY_MS = 40
_FMT = ("--format=s16le", f"--rate={RIG_RATE}", "--channels=1", f"--latency-msec={LATENCY_MS}")


class EchoRig:
    """Speaker → room → microphone, started with :meth:`start`, ended with :meth:`stop`.

    Args:
        pulse: the running PulseAudio server (tests/pulse.py).
        delay_ms / gain_db: the room's direct path.
    """

    def __init__(self, pulse: object, delay_ms: float = 80.0, gain_db: float = -6.0) -> None:
        self.env: dict[str, str] = dict(pulse.env)  # type: ignore[attr-defined]
        self.delay_ms = delay_ms
        self.gain_db = gain_db
        self.said_at: list[int] = []
        self._said = threading.Condition()
        self._tmp = Path(tempfile.mkdtemp(prefix="vp-rig-"))
        self._n = 0
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        env = {**self.env, "PYTHONPATH": root + os.pathsep + self.env.get("PYTHONPATH", "")}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.echo_rig", str(self.delay_ms), str(self.gain_db)],
            env=env,
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("said "):
                with self._said:
                    self.said_at.append(int(line.split()[1]))
                    self._said.notify_all()

    def say(self, pcm: NDArray[np.int16]) -> None:
        """Mix ``pcm`` (caller speech at 16 kHz) into the mic from the next block on."""
        from app.audio.wavio import write_wav

        assert self._proc is not None and self._proc.stdin is not None
        self._n += 1
        path = self._tmp / f"say{self._n}.wav"
        write_wav(path, np.asarray(pcm, dtype=np.int16), RIG_RATE)
        self._proc.stdin.write(f"say {path}\n")
        self._proc.stdin.flush()

    def wait_said(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` utterances have started."""
        with self._said:
            return self._said.wait_for(lambda: len(self.said_at) >= count, timeout)

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        for p in self._tmp.iterdir():
            p.unlink()
        self._tmp.rmdir()


def _serve(delay_ms: float, gain_db: float) -> int:
    """The echo path process (see the module docstring)."""
    from app.audio.wavio import read_wav

    path = EchoPath(room_impulse_response(RIG_RATE, delay_ms, gain_db))
    rec = subprocess.Popen(
        ["parec", "-d", "vsink.monitor", *_FMT], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    play = subprocess.Popen(
        ["pacat", "--playback", "-d", "vmic", *_FMT],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    speech: collections.deque[NDArray[np.int16]] = collections.deque()
    done = threading.Event()

    def commands() -> None:
        for line in sys.stdin:
            if line.startswith("say "):
                pcm, _ = read_wav(line[4:].strip())
                speech.append(pcm)
        done.set()

    threading.Thread(target=commands, daemon=True).start()
    assert rec.stdout is not None and play.stdin is not None
    current: NDArray[np.int16] | None = None
    pos = 0
    try:
        while not done.is_set():
            data = rec.stdout.read(BLOCK * 2)
            if not data:
                break
            y = path.process(np.frombuffer(data, dtype=np.int16))
            if current is None and speech:
                current, pos = speech.popleft(), 0
                print(f"said {time.monotonic_ns()}", flush=True)
            if current is not None:
                part = current[pos : pos + len(y)]
                y[: len(part)] += part
                pos += len(part)
                if pos >= len(current):
                    current = None
            play.stdin.write(to_int16(y).tobytes())
            play.stdin.flush()
    finally:
        for p in (rec, play):
            p.terminate()
        for p in (rec, play):
            p.wait(timeout=5)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="echo path between two null sinks")
    parser.add_argument("delay_ms", type=float)
    parser.add_argument("gain_db", type=float)
    a = parser.parse_args()
    raise SystemExit(_serve(a.delay_ms, a.gain_db))
