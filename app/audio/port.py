"""The caller-side port interface shared by the WAV file, the microphone and a SIP call.

A port delivers caller audio as 20 ms PCM16 mono frames at ``rate`` and accepts agent
audio (same format) for playout. Every source looks the same to the bridge
(docs/architecture.md#caller-side-and-agent-side).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from dataclasses import dataclass

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
