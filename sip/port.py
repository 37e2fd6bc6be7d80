"""A SIP call as a caller-side port (:class:`app.audio.port.CallerPort`).

The bridge reads the caller's audio and writes the agent's audio here; the call's
:class:`sip.media_port.FramePort` moves frames between these rings and RTP on pjmedia's
clock thread. Nothing here touches pjsua2.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from app.audio.port import CallerFrame, CallerPort
from app.audio.ringbuffer import RingBuffer
from sip.media_port import MediaLink, MediaStats

_FRAME_NS = 20_000_000


class PortMonitor(Protocol):
    """A tap on a call's audio (e.g. :class:`sip.listen.ListenIn`), called on the bridge's
    thread; it must return quickly, never block and never raise."""

    def caller(self, pcm: NDArray[np.int16]) -> None:
        """One 20 ms frame of the caller, as :meth:`SipCallPort.read` returns it."""

    def agent(self, pcm: NDArray[np.int16]) -> None:
        """A block of agent audio, as :meth:`SipCallPort.write` accepted it."""


class SipCallPort(CallerPort):
    """Caller audio from a SIP call, agent audio to it. PCM16 mono at :attr:`rate`.

    ``read``/``write``/``flush``/``stop`` run on the bridge's thread (one reader of the
    received ring, one writer of the send ring); the clock thread is the other side.

    Args:
        rate: 8000 or 16000 (the media port's rate; pjmedia resamples to the codec).
        hangup: called (once) by :meth:`stop` while the call is up.
        rx_seconds: capacity of the received-audio ring.
        tx_seconds: capacity of the send ring (agent audio queued ahead of playout).
    """

    def __init__(
        self,
        rate: int = 16000,
        hangup: Callable[[], object] | None = None,
        rx_seconds: float = 5.0,
        tx_seconds: float = 60.0,
    ) -> None:
        if rate not in (8000, 16000):
            raise ValueError(f"SIP media port rate must be 8000 or 16000, not {rate}")
        self.rate = rate
        self.rx = RingBuffer(int(rate * rx_seconds))
        self.tx = RingBuffer(int(rate * tx_seconds))
        self.stats = MediaStats()
        #: Shared with the call's media port (plain state; holds no pjsua2 object).
        self.link = MediaLink(self.rx, self.tx, self.stats)
        self.disconnected = threading.Event()
        self._hangup = hangup
        self._stopped = False
        self._read_total = 0
        #: Silent samples :meth:`write` dropped to keep the send queue short.
        self.dropped_silence = 0
        #: Samples accepted by :meth:`write` so far (dropped overruns not counted).
        self.written_samples = 0
        #: ``(written_samples before, now_ns, returned play time)`` of the last :meth:`write`.
        self.last_write: tuple[int, int, int] = (0, 0, 0)
        #: An optional tap on both directions (see :class:`PortMonitor`); set or cleared
        #: from any thread (one attribute store).
        self.monitor: PortMonitor | None = None

    def start(self, t0_ns: int) -> None:
        """Nothing to open: the call's media is already flowing."""

    def read(self, now_ns: int) -> list[CallerFrame]:
        """Return whole 20 ms frames received so far, each stamped with the clock time of
        its last sample (the time its 20 ms frame reached the media port).
        """
        n = self.frame_samples
        # The mark first: the clock thread writes a frame into the ring and then publishes
        # the mark, so every sample the mark counts is already in the ring. A frame written
        # but not yet marked waits for the next read (else it would share a stamp).
        total, last_ns = self.link.rx_mark
        ready = self.rx.available
        if last_ns:
            ready = min(ready, total - self._read_total)
        count = ready // n
        if count <= 0:
            return []
        frames: list[CallerFrame] = []
        for _ in range(count):
            pcm = np.empty(n, dtype=np.int16)
            self.rx.read_into(pcm)
            self._read_total += n
            behind = max(0, total - self._read_total)  # samples received after this frame
            t = last_ns - behind * 1_000_000_000 // self.rate if last_ns else now_ns
            frames.append(CallerFrame(pcm=pcm, t_ns=t))
        monitor = self.monitor
        if monitor is not None:
            for f in frames:
                monitor.caller(f.pcm)
        return frames

    def write(self, pcm: NDArray[np.int16], now_ns: int) -> int:
        """Queue agent audio toward RTP; returns the estimated clock time at which its
        first sample leaves in an RTP packet (queued audio plus one frame). Audio beyond
        the ring's capacity is dropped and counted in ``tx.overruns``; an all-silent block
        is dropped while a frame or more is already queued (see :attr:`dropped_silence`).
        """
        x = np.asarray(pcm, dtype=np.int16)
        ahead = self.tx.available
        play_ns = now_ns + ahead * 1_000_000_000 // self.rate + _FRAME_NS
        self.last_write = (self.written_samples, now_ns, play_ns)
        if ahead >= self.frame_samples and not x.any():
            # Silence while audio is already queued: drop it. The bridge writes one frame
            # per frame read, so a stall of its loop (or audio buffered before it started)
            # would otherwise stay queued here and delay every later reply.
            self.dropped_silence += len(x)
            return play_ns
        accepted = self.tx.write(x)
        self.written_samples += accepted
        monitor = self.monitor
        if monitor is not None and accepted:
            monitor.agent(x[:accepted])
        return play_ns

    def handed_ns(self, position: int) -> int | None:
        """Clock time at which written sample ``position`` (0-based count of samples
        accepted by :meth:`write`) was handed to pjmedia for sending, measured on the
        clock thread; ``None`` if not yet sent or older than the history (~20 s).
        """
        return self.link.handed_ns(position)

    def flush(self) -> None:
        """Drop queued agent audio (barge-in); takes effect at the next frame."""
        self.tx.request_drop()

    def flush_output(self) -> None:
        """The bridge's barge-in hook (:meth:`CallerPort.flush_output`)."""
        self.flush()

    @property
    def queued_samples(self) -> int:
        """Agent samples waiting to be sent."""
        return self.tx.available

    @property
    def exhausted(self) -> bool:
        """True once the call is disconnected, its stream can deliver no more audio
        (:attr:`MediaLink.rx_ended`) and every received frame has been read. Once true it
        stays true: the far end's last audio, still in the jitter buffer at the hang-up,
        is received first."""
        return self.link.rx_ended and self.rx.available < self.frame_samples

    def stop(self) -> None:
        """Hang up the call if it is still up; idempotent, does not wait."""
        if self._stopped:
            return
        self._stopped = True
        if self._hangup is not None and not self.disconnected.is_set():
            self._hangup()
