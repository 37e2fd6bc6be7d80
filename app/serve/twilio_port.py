"""One Twilio Media Stream as a caller-side port (:class:`app.audio.port.CallerPort`).

The stream's reader feeds caller ``media`` in (:meth:`TwilioStreamPort.feed`); the bridge
reads 20 ms frames at 8 kHz, each stamped with the clock time its message arrived, and is
woken as soon as one does (:meth:`TwilioStreamPort.wait_readable`). Agent audio the
bridge writes goes out as ``media`` at once, paced by the bridge (one frame per caller
frame), so Twilio's own buffer stays empty and what is sent is what the caller hears; a
quiet spell after agent audio sends a ``mark`` (Twilio echoes it once that audio has
played), and a barge-in sends ``clear``. Everything runs on the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from app.audio.port import CallerFrame, CallerPort
from app.events import Event, Notice
from app.providers.twilio.protocol import RATE, CallerMedia, StreamNote, TwilioStreamProtocol

#: Silent frames after agent audio that end a burst (then a ``mark`` goes out).
QUIET_FRAMES = 10
FRAME_NS = 20_000_000


class TwilioStreamPort(CallerPort):
    """Caller audio from a Twilio stream, agent audio back to it (PCM16 mono, 8 kHz).

    Args:
        protocol: the stream's dialect (builds ``media``/``mark``/``clear``).
        send: queues one text message for the socket (never blocks).
        now_ns: the clock, for stamping notes.
    """

    rate = RATE

    def __init__(
        self, protocol: TwilioStreamProtocol, send: Callable[[str], None], now_ns: Callable[[], int]
    ) -> None:
        self.protocol = protocol
        self._send = send
        self._now_ns = now_ns
        self._frames: deque[CallerFrame] = deque()
        self._partial = np.zeros(0, dtype=np.int16)
        self._ready = asyncio.Event()
        self._burst = False
        self._quiet = 0
        self._early: list[Event] = []
        self._pad_ns = 0  # stamp of the last silent frame read after the stream ended
        #: Set once Twilio said ``stop`` or the socket closed.
        self.closed = False
        self.stopped = False
        #: Marks sent and not yet echoed: name → send stamp.
        self.marks_out: dict[str, int] = {}
        #: Mark round trips (ms), in echo order.
        self.mark_ms: list[float] = []
        #: Per agent block sent: ns from the bridge's write to the message queued.
        self.write_ns: list[int] = []
        #: Per message: ns from queued to handed to the socket (set by the server).
        self.send_ns: list[int] = []

    # --- stream side (reader task) -------------------------------------------------------

    def feed(self, media: CallerMedia) -> None:
        """Caller audio of one ``media`` message; whole 20 ms frames become readable, each
        stamped with the message's arrival (a longer payload is split, a shorter one
        waits for the rest)."""
        x = media.pcm if not len(self._partial) else np.concatenate([self._partial, media.pcm])
        n = self.frame_samples
        whole = len(x) // n
        for i in range(whole):
            behind = (whole - 1 - i) * 1_000_000_000 * n // RATE
            self._frames.append(
                CallerFrame(pcm=x[i * n : (i + 1) * n].copy(), t_ns=media.t_ns - behind)
            )
        self._partial = x[whole * n :]
        if whole:
            self._ready.set()

    def note(self, note: StreamNote) -> None:
        """Log a stream note (dtmf, a mark echo, an oddity) as a Notice."""
        if note.mark is not None and note.mark in self.marks_out:
            sent = self.marks_out.pop(note.mark)
            ms = (note.t_ns - sent) / 1e6
            self.mark_ms.append(ms)
            message = f"{note.message} ({ms:.0f} ms after it was sent)"
        else:
            message = note.message
        self.log(Notice(t_ns=note.t_ns, raw=note.raw, level=note.level, message=message))

    def log(self, ev: Event) -> None:
        """Emit ``ev`` into the call (kept until the call runs)."""
        if self.emit is None:
            self._early.append(ev)
            return
        self.flush_early()
        self.emit(ev)

    def flush_early(self) -> None:
        """Emit what was logged before the call ran."""
        if self.emit is None or not self._early:
            return
        early, self._early = self._early, []
        for ev in early:
            self.emit(ev)

    def close(self) -> None:
        """The stream ended (``stop`` or the socket closed): from now on the port reads
        silence in real time, so agent audio still queued drains and the call ends after
        its tail instead of waiting for frames that will never come."""
        if not self.closed:
            self.closed = True
            self._pad_ns = self._now_ns()
        self._ready.set()

    # --- bridge side ---------------------------------------------------------------------

    def start(self, t0_ns: int) -> None:
        """Nothing to open: Twilio's stream is already flowing."""

    def read(self, now_ns: int) -> list[CallerFrame]:
        """The caller frames that arrived since the last read (silence, paced, once the
        stream has ended)."""
        frames = list(self._frames)
        self._frames.clear()
        if self.closed and not frames:
            while now_ns - self._pad_ns >= FRAME_NS:
                self._pad_ns += FRAME_NS
                frames.append(CallerFrame(np.zeros(self.frame_samples, np.int16), self._pad_ns))
        return frames

    async def wait_readable(self, timeout_s: float) -> None:
        """Wake on the next caller frame (or the stream's end), at most ``timeout_s``."""
        if self._frames:
            return
        if self.closed:
            await asyncio.sleep(min(timeout_s, FRAME_NS / 1e9))
            return
        self._ready.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)

    def write(self, pcm: NDArray[np.int16], now_ns: int) -> int:
        """Send agent audio as ``media`` now; returns ``now_ns`` (Twilio plays it as it
        comes, its own buffer being empty while the bridge paces the audio). Silence is
        not sent outside an agent burst; a burst's end sends a ``mark``."""
        if self.stopped or self.closed:
            return now_ns
        loud = bool(pcm.any())
        if loud:
            self._burst, self._quiet = True, 0
        elif self._burst:
            self._quiet += 1
            if self._quiet >= QUIET_FRAMES:
                self._burst = False
                text, name = self.protocol.mark()
                self.marks_out[name] = now_ns
                self._send(text)
                return now_ns
        if self._burst:
            self._send(self.protocol.media(pcm))
            self.write_ns.append(self._now_ns() - now_ns)
        return now_ns

    def flush_output(self) -> None:
        """Barge-in: ``clear`` Twilio's buffer."""
        if not (self.stopped or self.closed):
            self._send(self.protocol.clear())
        self._burst, self._quiet = False, 0

    @property
    def exhausted(self) -> bool:
        """True once the stream ended and every frame it sent was read."""
        return self.closed and not self._frames

    def stop(self) -> None:
        """The call is over; nothing more is sent (the server closes the socket)."""
        self.stopped = True
