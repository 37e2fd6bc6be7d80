"""What the benchmarks share: the caller workload, the simulator process, CPU and delay figures.

A workload is the demo scenario's turns repeated until the caller track lasts the asked
length, written as a scenario file (for ``voiceprobe sim``) and a 16 kHz caller WAV. The
simulator always runs in a process of its own, so a client's CPU figure is that client's
process alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.audio.wavio import write_wav
from app.bridge.providers import DEFAULT_SCENARIO
from app.metrics.percentile import percentile
from app.sim.caller import caller_track
from app.sim.scenario import load_scenario

#: Sample rate of the caller WAV.
CALLER_RATE = 16000
#: One caller frame.
FRAME_NS = 20_000_000
#: How long the agent must stay quiet after the caller track before a call ends (the
#: bridge's own ``tail_ms``).
TAIL_NS = 1_500_000_000


@dataclass(frozen=True, slots=True)
class Workload:
    """One benchmark call's inputs, on disk.

    Attributes:
        wav: the caller track (mono PCM16 at :data:`CALLER_RATE`).
        scenario: the simulator scenario the track was made for.
        seconds: length of the caller track.
        turns: number of scripted turns.
    """

    wav: Path
    scenario: Path
    seconds: float
    turns: int


def make_workload(folder: Path, seconds: float, tools: bool = True) -> Workload:
    """Write the caller WAV and the scenario for a call of at least ``seconds``.

    Args:
        folder: where to write ``caller.wav`` and ``scenario.yaml``.
        seconds: minimum length of the caller track.
        tools: keep the demo's tool call; without it every client can hold the same call
            with no tool plumbing of its own (the side-by-side comparison).
    """
    raw = yaml.safe_load(Path(DEFAULT_SCENARIO).read_text())
    if not tools:
        for turn in raw["turns"]:
            turn.pop("tool_call", None)
    base = list(raw["turns"])
    folder.mkdir(parents=True, exist_ok=True)
    sc_path = folder / "scenario.yaml"
    copies = 1
    while True:
        raw["turns"] = base * copies
        sc_path.write_text(yaml.safe_dump(raw))
        scenario = load_scenario(str(sc_path))
        pcm, _ = caller_track(dataclasses.replace(scenario))
        if len(pcm) / CALLER_RATE >= seconds:
            break
        copies += 1
    wav = folder / "caller.wav"
    write_wav(wav, pcm, CALLER_RATE)
    return Workload(wav, sc_path, len(pcm) / CALLER_RATE, len(raw["turns"]))


class Simulator:
    """``voiceprobe sim`` (OpenAI dialect) in its own process; use as a context manager.

    Attributes:
        url: the simulator's WebSocket URL (``ws://127.0.0.1:N/v1/realtime``).
        base: the URL without ``/realtime`` (an SDK's ``websocket_base_url``).
    """

    def __init__(self, scenario: Path, home: Path) -> None:
        env = dict(os.environ, VOICEPROBE_HOME=str(home))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "sim", "--scenario", str(scenario)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url:
            self.close()
            raise RuntimeError("the simulator did not start")
        self.base = self.url.split("/realtime")[0]

    def close(self) -> None:
        """Stop the simulator."""
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cpu_s() -> float:
    """User + system CPU seconds of this process so far (all its threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def switches() -> int:
    """Context switches of this process so far (all its threads): each is a wake-up."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_nvcsw + ru.ru_nivcsw


def figures(values_ns: list[int]) -> dict[str, Any]:
    """count, p50, p95, p99 and max of nanosecond samples, in ms."""
    ms = [v / 1e6 for v in values_ns]
    return {
        "count": len(ms),
        "p50_ms": _round(percentile(ms, 50)),
        "p95_ms": _round(percentile(ms, 95)),
        "p99_ms": _round(percentile(ms, 99)),
        "max_ms": _round(max(ms) if ms else None),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


@dataclass(slots=True)
class ClientRun:
    """Raw figures of one benchmark call, taken inside the client's process.

    Attributes:
        send_ns: per caller frame: its due time (nominal capture end) → its bytes handed
            to the socket.
        recv_ns: per agent audio message: socket receive → its audio queued for the sink.
        lag_ns: per wake-up of the pacing loop: how late the event loop woke it.
        extra: client-specific figures (JSON-ready).
    """

    send_ns: list[int] = dataclasses.field(default_factory=list)
    recv_ns: list[int] = dataclasses.field(default_factory=list)
    lag_ns: list[int] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class PacedSink:
    """A virtual speaker for the bare clients: agent audio is queued as bytes and one
    20 ms block is taken per caller frame, as a sound card would (no device)."""

    __slots__ = ("_buf", "_block")

    def __init__(self, block_bytes: int) -> None:
        self._buf = bytearray()
        self._block = block_bytes

    def push(self, pcm: bytes) -> None:
        """Queue agent audio (PCM16)."""
        self._buf += pcm

    def play_block(self) -> bytes:
        """Take the next block (shorter or empty when little is queued)."""
        block = bytes(self._buf[: self._block])
        del self._buf[: self._block]
        return block

    @property
    def queued(self) -> int:
        """Bytes waiting to be played."""
        return len(self._buf)


async def pace(
    frames: list[bytes],
    silence: bytes,
    send: Callable[[bytes, int], Awaitable[None]],
    sink: PacedSink,
    idle: Callable[[int], bool],
    run: ClientRun,
) -> None:
    """The bare clients' caller loop: one frame every 20 ms on the clock, as a microphone.

    Frame ``k`` falls due at ``t0 + (k+1) * 20 ms``; ``send(frame, due_ns)`` hands it to
    the client under test; then one block is taken from ``sink``. After the track,
    silence is sent (as the bridge does) until ``idle(now_ns)`` has held for
    :data:`TAIL_NS`. Each wake-up's lateness goes to ``run.lag_ns``.
    """
    t0 = time.monotonic_ns()
    k = 0
    idle_since: int | None = None
    while True:
        due = t0 + (k + 1) * FRAME_NS
        before = time.monotonic_ns()
        if due > before:
            await asyncio.sleep((due - before) / 1e9)
            run.lag_ns.append(max(0, time.monotonic_ns() - due))
        await send(frames[k] if k < len(frames) else silence, due)
        sink.play_block()
        k += 1
        if k < len(frames):
            continue
        now = time.monotonic_ns()
        if not idle(now):
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= TAIL_NS:
            return


class StallTracer:
    """Finds what blocks an event loop: a ticker on the loop marks every ``tick_s``; a
    watcher thread that sees no mark for ``threshold_s`` records the loop thread's stack
    once per stall (the code running, or the call blocked in, at that moment).

    Costs a wake-up per tick: for diagnosis (``bridge_load --trace-stalls``), not for the
    figures. A whole process held off the CPU shows no stall here (the watcher is off the
    CPU too); a loop kept busy or blocked in a system call does.
    """

    def __init__(self, threshold_s: float = 0.05, tick_s: float = 0.005) -> None:
        self.threshold_s = threshold_s
        self.tick_s = tick_s
        self._open: list[list[Any]] = []
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._loop_thread = threading.get_ident()

    async def run(self) -> None:
        """The ticker: run as a task on the loop to watch (cancel it to stop)."""
        self._loop_thread = threading.get_ident()
        watcher = threading.Thread(target=self._watch, name="stall-watch", daemon=True)
        watcher.start()
        try:
            while True:
                self._last = time.monotonic()
                await asyncio.sleep(self.tick_s)
        finally:
            self._stop.set()
            watcher.join(1.0)

    def _watch(self) -> None:
        current: list[Any] | None = None  # [ms, stack, tick it started after]
        while not self._stop.wait(self.tick_s / 2):
            last = self._last
            late = time.monotonic() - last
            if late < self.threshold_s:
                current = None
            elif current is not None and current[2] == last:
                current[0] = late * 1000  # the same stall, longer
            else:
                frame = sys._current_frames().get(self._loop_thread)
                stack = [f"{f.filename}:{f.lineno} {f.name}"
                         for f in traceback.extract_stack(frame)[-8:]] if frame else []
                current = [late * 1000, stack, last]
                self._open.append(current)

    @property
    def stalls(self) -> list[tuple[float, list[str]]]:
        """(stall length in ms, innermost frames of the loop thread) per stall seen."""
        return [(ms, stack) for ms, stack, _ in self._open]
