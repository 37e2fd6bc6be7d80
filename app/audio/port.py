"""The caller-side port interface shared by the WAV file, the microphone and a SIP call.

A port delivers caller audio as 20 ms PCM16 mono frames at ``rate`` and accepts agent
audio (same format) for playout. Every source looks the same to the bridge
(docs/architecture.md#caller-side-and-agent-side).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import FRAME_MS
from app.events import EventBase


@dataclass(frozen=True, slots=True)
class CallerFrame:
    """One frame of caller audio.

    Attributes:
        pcm: int16 samples, mono, at the port's rate.
        t_ns: clock time at which the frame's *last* sample was captured.
    """

    pcm: NDArray[np.int16]
    t_ns: int


class CallerPort(abc.ABC):
    """A caller-side source and sink. Methods run on the bridge's asyncio thread unless
    stated otherwise; device callbacks behind a port only copy into ring buffers.
    """

    #: Sample rate of frames in and out.
    rate: int
    #: True when the port's echo canceller could not start: the bridge then mutes the
    #: caller while agent audio is audible (half duplex), as if the tester had asked.
    half_duplex_fallback: bool = False
    #: Where the port reports events of its own (a device that went away, where the call
    #: went, an echo canceller that could not start): the bridge sets it to its ``emit``
    #: before :meth:`start`. ``None``: nobody listens.
    emit: Callable[[EventBase], None] | None = None
    #: True when :meth:`start` can take seconds (opening devices, waiting for a speaker's
    #: first play): :func:`start_port` then runs it on a worker thread.
    start_blocks: ClassVar[bool] = False

    @property
    def frame_samples(self) -> int:
        """Samples per 20 ms frame at :attr:`rate`."""
        return self.rate * FRAME_MS // 1000

    @abc.abstractmethod
    def start(self, t0_ns: int) -> None:
        """Open the source and sink. ``t0_ns`` anchors a paced (file) port's clock."""

    @abc.abstractmethod
    def read(self, now_ns: int) -> list[CallerFrame]:
        """Return the caller frames captured up to ``now_ns`` (possibly none)."""

    @abc.abstractmethod
    def write(self, pcm: NDArray[np.int16], now_ns: int) -> int:
        """Hand agent audio to the sink; returns the clock time (ns) at which its first
        sample will be played.
        """

    def write_for_frame(self, pcm: NDArray[np.int16], now_ns: int, frame_t_ns: int) -> int:
        """Hand the sink the agent audio that follows the caller frame stamped
        ``frame_t_ns`` (the bridge writes one block per caller frame it handles); returns
        the clock time (ns) at which its first sample will be played.

        A paced port places the block by the frame's stamp, so its play clock does not
        depend on when the loop ran (see ``WavFilePort``). A sink on a device clock places
        audio by that clock: the default ignores the stamp and calls :meth:`write`.
        """
        return self.write(pcm, now_ns)

    def flush_output(self) -> None:
        """Drop agent audio the sink has queued but not played yet (barge-in).

        A port whose sink queues nothing (a paced file) has nothing to drop.
        """
        return None

    async def wait_readable(self, timeout_s: float) -> None:
        """Wait until :meth:`read` may have frames, at most ``timeout_s`` (loop thread).

        The default sleeps ``timeout_s``; a port fed by the network (a Twilio stream)
        wakes the bridge as soon as a frame arrives.
        """
        await asyncio.sleep(timeout_s)

    def next_due_ns(self) -> int | None:
        """When the next frame will be available (paced ports), or ``None`` to poll."""
        return None

    @property
    def exhausted(self) -> bool:
        """True once a finite source (a WAV file) has delivered all its audio."""
        return False

    @abc.abstractmethod
    def stop(self) -> None:
        """Close devices; idempotent."""


async def start_port(port: CallerPort, now_ns: Callable[[], int]) -> None:
    """Start ``port`` from the bridge's loop without holding the loop.

    A port whose :meth:`~CallerPort.start` blocks (:attr:`~CallerPort.start_blocks`: a
    speaker that takes seconds to play, docs/audio.md) starts on a worker thread, so the
    provider's messages, the network round-trip probes and everything else on the loop go
    on meanwhile (a probe answered during a held loop would read the hold as network
    delay). The port's notices are handed back to the loop while it starts. A cancel (a
    hang-up meanwhile) waits for the start to finish, so that the port is never stopped
    half open; the start's own error is then dropped with the cancel.

    Raises:
        whatever the port's ``start`` raises (an ``AudioDeviceError``).
    """
    if not port.start_blocks:
        port.start(now_ns())
        return
    loop = asyncio.get_running_loop()
    emit = port.emit
    if emit is not None:

        def emit_on_loop(ev: EventBase) -> None:
            loop.call_soon_threadsafe(emit, ev)

        port.emit = emit_on_loop
    opening = asyncio.ensure_future(asyncio.to_thread(port.start, now_ns()))
    try:
        await asyncio.shield(opening)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await opening
        raise
    finally:
        port.emit = emit
