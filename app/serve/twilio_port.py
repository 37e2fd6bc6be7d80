"""One Twilio Media Stream as a caller-side port (:class:`app.audio.port.CallerPort`).

The stream's reader feeds caller ``media`` in (:meth:`TwilioStreamPort.feed`); the bridge
reads 20 ms frames at 8 kHz, each stamped with the clock time its message arrived, and is
woken as soon as one does (:meth:`TwilioStreamPort.wait_readable`). Agent audio the
bridge writes goes out as ``media`` at once, paced by the bridge (one frame per caller
frame), so Twilio's own buffer stays empty and what is sent is what the caller hears:
every block that carries agent audio is sent, the agent's own digital silence included
(the playback counts it as played), and no block without any. A spell without agent
audio after a burst sends a ``mark`` (Twilio echoes it once that audio has played), and a
barge-in sends ``clear``. Everything runs on the loop thread.

Caller audio is held to real time: since the stream's ``start``, no more than the time
that has passed (plus :data:`AHEAD_MS`) is accepted, so one oversized payload cannot
stretch the recording or stamp speech before the call began. The excess (the oldest
samples of the message) is dropped and said once; stamps never go back in time nor before
``start``.

The stream's end (:meth:`TwilioStreamPort.end`: Twilio's ``stop``, or the socket closing)
is reported twice. ``on_gone`` at once: nothing is heard after the end, so the server
stops the call's playback there (:meth:`app.bridge.playback.Playback.sink_gone`); the
bridge still handles the caller frames that came before the end, and without that each
would hand this port one more agent block that :meth:`TwilioStreamPort.write` drops but
the play clock would count as played after the end. ``on_end`` once the bridge has read
those frames: the call ends then (the server decides how, from :class:`StreamEnd`),
rather than playing agent audio into a stream that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from websockets.exceptions import ConnectionClosed
from websockets.frames import CLOSE_CODE_EXPLANATIONS, Close, CloseCode

from app.audio.port import CallerFrame, CallerPort
from app.events import Event, Notice
from app.providers.twilio.protocol import RATE, CallerMedia, StreamNote, TwilioStreamProtocol
from app.textsafe import printable

#: Blocks without agent audio after a burst that end it (then a ``mark`` goes out).
QUIET_FRAMES = 10
FRAME_NS = 20_000_000
#: How far the caller audio received may run ahead of the time since ``start`` before the
#: excess is dropped: a frame's audio predates its message, and a sender's clock may run
#: fast (100 ppm is 200 ms after 33 minutes). A network stall followed by a burst never
#: runs ahead: the burst only catches up.
AHEAD_MS = 200

#: Close codes of a caller that hung up cleanly (without ``stop``).
CLEAN_CLOSE_CODES = (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY)

#: How a stream ended: Twilio's ``stop``; the caller closed the socket cleanly without
#: one (1000/1001); the connection failed or voiceprobe closed it on an error (no close
#: frame, 1009, 1011, ...); the server shut down.
EndKind = Literal["stop", "hangup", "dropped", "shutdown"]


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How and when a stream ended.

    Attributes:
        kind: see :data:`EndKind`.
        t_ns: when the server saw it.
        code: the WebSocket close code (``None`` for ``stop``; 1006 when no close frame
            was exchanged).
        message: one line for the log (``"twilio stop"``, or what closed the socket).
    """

    kind: EndKind
    t_ns: int
    code: int | None = None
    message: str = "twilio stop"

    def to_dict(self) -> dict[str, object]:
        """The ``twilio.end`` entry of the call's summary."""
        return {"kind": self.kind, "close_code": self.code, "message": self.message}


def _close_text(close: Close) -> str:
    """A close frame for the log: code, its meaning and the (untrusted) reason, short."""
    text = f"close code {close.code}"
    if close.code in CLOSE_CODE_EXPLANATIONS:
        text += f", {CLOSE_CODE_EXPLANATIONS[close.code]}"
    if close.reason:
        text += f": {close.reason[:120]}"
    return printable(text)


def stream_end_of_close(exc: ConnectionClosed, t_ns: int) -> StreamEnd:
    """How a stream that closed before ``stop`` ended, from the close frames exchanged:
    the caller's clean close is a hang-up; no close frame, an error code, or a close
    voiceprobe started (e.g. 1009 for a message over the size limit) is a drop."""
    rcvd, sent = exc.rcvd, exc.sent
    if rcvd is not None and (sent is None or exc.rcvd_then_sent):
        kind: EndKind = "hangup" if rcvd.code in CLEAN_CLOSE_CODES else "dropped"
        return StreamEnd(
            kind=kind,
            t_ns=t_ns,
            code=rcvd.code,
            message=f"twilio stream ended without stop: the caller closed the socket "
            f"({_close_text(rcvd)})",
        )
    if sent is not None:
        return StreamEnd(
            kind="dropped",
            t_ns=t_ns,
            code=sent.code,
            message=f"twilio stream ended without stop: voiceprobe closed the socket "
            f"({_close_text(sent)})",
        )
    return StreamEnd(
        kind="dropped",
        t_ns=t_ns,
        code=CloseCode.ABNORMAL_CLOSURE,
        message="twilio stream ended without stop: connection lost (close code 1006, no close "
        "frame)",
    )


class TwilioStreamPort(CallerPort):
    """Caller audio from a Twilio stream, agent audio back to it (PCM16 mono, 8 kHz).

    Args:
        protocol: the stream's dialect (builds ``media``/``mark``/``clear``).
        send: queues one text message for the socket (never blocks).
        now_ns: the clock, for stamping notes.
        start_ns: when the stream's ``start`` arrived (default: now): no caller audio is
            stamped before it, nor runs ahead of the time since.
        on_end: called once (loop thread) when the stream has ended and the bridge has
            read every frame that came before the end (at once if the bridge is not
            reading yet); reads :attr:`ended`.
        on_gone: called once (loop thread) the moment the stream ends, before
            ``on_end``: from then on nothing reaches the caller (stop the playback).
        carrying: whether the block being written carries agent audio (the bridge's
            :attr:`~app.bridge.playback.Playback.block_agent_samples`); only such blocks
            are sent. Without it (a port driven by hand) a block carries agent audio when
            it is not all zeros, which drops an agent's own silence.
    """

    rate = RATE

    def __init__(
        self,
        protocol: TwilioStreamProtocol,
        send: Callable[[str], None],
        now_ns: Callable[[], int],
        start_ns: int | None = None,
        on_end: Callable[[StreamEnd], None] | None = None,
        on_gone: Callable[[StreamEnd], None] | None = None,
        carrying: Callable[[], bool] | None = None,
    ) -> None:
        self.protocol = protocol
        self._carrying = carrying
        self._send = send
        self._now_ns = now_ns
        self._on_end = on_end
        self._on_gone = on_gone
        self._frames: deque[CallerFrame] = deque()
        self._partial = np.zeros(0, dtype=np.int16)
        self._ready = asyncio.Event()
        self._burst = False
        self._quiet = 0
        # Where the blocks written so far lie on the clock: the end of the last one's
        # play time (its slot, for a block not sent). Twilio plays media in order.
        self._play_end_ns = 0
        self._early: list[Event] = []
        self._start_ns = now_ns() if start_ns is None else start_ns
        self._last_ns = self._start_ns  # stamp of the last frame made readable
        self._accepted = 0  # caller samples accepted since start
        self._reading = False  # the bridge's audio loop has started
        self._end_told = False
        #: Set once Twilio said ``stop`` or the socket closed.
        self.closed = False
        self.stopped = False
        #: How the stream ended (``None`` while it runs).
        self.ended: StreamEnd | None = None
        #: Caller samples dropped for running ahead of real time.
        self.dropped_samples = 0
        #: Marks sent and not yet echoed: name → send stamp.
        self.marks_out: dict[str, int] = {}
        #: Mark round trips (ms), in echo order.
        self.mark_ms: list[float] = []
        #: Per agent block sent: ns from the bridge's write to the message queued.
        self.write_ns: list[int] = []
        #: Agent samples sent as ``media`` (whole 20 ms blocks).
        self.samples_sent = 0
        #: Per message: ns from queued to handed to the socket (set by the server).
        self.send_ns: list[int] = []

    # --- stream side (reader task) -------------------------------------------------------

    def feed(self, media: CallerMedia) -> None:
        """Caller audio of one ``media`` message; whole 20 ms frames become readable, each
        stamped with the message's arrival (a longer payload is split, a shorter one
        waits for the rest). Audio beyond the time since ``start`` (plus
        :data:`AHEAD_MS`) is dropped, its oldest samples first; ignored after the end."""
        if self.closed:
            return
        pcm = self._hold_to_real_time(media)
        x = pcm if not len(self._partial) else np.concatenate([self._partial, pcm])
        n = self.frame_samples
        whole = len(x) // n
        for i in range(whole):
            behind = (whole - 1 - i) * 1_000_000_000 * n // RATE
            # Never back in time, never before start (the clock is monotonic, so never
            # after the arrival either).
            t = max(media.t_ns - behind, self._last_ns)
            self._last_ns = t
            self._frames.append(CallerFrame(pcm=x[i * n : (i + 1) * n].copy(), t_ns=t))
        self._partial = x[whole * n :]
        if whole:
            self._ready.set()

    def _hold_to_real_time(self, media: CallerMedia) -> NDArray[np.int16]:
        """The samples of ``media`` that fit in the time since start (the newest kept)."""
        pcm = media.pcm
        elapsed_ns = max(0, media.t_ns - self._start_ns) + AHEAD_MS * 1_000_000
        room = max(0, elapsed_ns * RATE // 1_000_000_000 - self._accepted)
        if len(pcm) > room:
            over = len(pcm) - room
            if not self.dropped_samples:
                self.log(
                    Notice(
                        t_ns=media.t_ns,
                        level="warning",
                        message=f"twilio stream: a media message of {len(pcm) * 1000 // RATE}"
                        f" ms arrived {(media.t_ns - self._start_ns) / 1e9:.1f} s into the "
                        f"stream, more audio than real time allows: its first "
                        f"{over * 1000 // RATE} ms dropped (later excess is dropped too and "
                        "counted in the summary)",
                    )
                )
            self.dropped_samples += over
            pcm = pcm[over:]
        self._accepted += len(pcm)
        return pcm

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

    def end(self, how: StreamEnd) -> None:
        """The stream ended (``stop`` or the socket closed); the first call counts. Nothing
        is sent or accepted after it: ``on_gone`` now, ``on_end`` once the frames before
        it are read."""
        if self.ended is not None:
            return
        self.ended = how
        self.closed = True
        self._ready.set()
        if self._on_gone is not None:
            self._on_gone(how)
        if not self._reading:
            self._tell_end()

    def _tell_end(self) -> None:
        if self._end_told or self.ended is None:
            return
        self._end_told = True
        if self._on_end is not None:
            self._on_end(self.ended)

    # --- bridge side ---------------------------------------------------------------------

    def start(self, t0_ns: int) -> None:
        """Nothing to open: Twilio's stream is already flowing."""
        self._reading = True

    def read(self, now_ns: int) -> list[CallerFrame]:
        """The caller frames that arrived since the last read. Once the stream has ended
        and every frame before its end was read (the bridge has handled them all by its
        next read), ``on_end`` is called."""
        frames = list(self._frames)
        self._frames.clear()
        if self.closed and not frames:
            self._tell_end()
        return frames

    async def wait_readable(self, timeout_s: float) -> None:
        """Wake on the next caller frame (or the stream's end), at most ``timeout_s``."""
        if self._frames:
            return
        if self.closed:
            if self._end_told:  # nothing more will come; the call is ending
                await asyncio.sleep(min(timeout_s, FRAME_NS / 1e9))
            return
        self._ready.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)

    def write(self, pcm: NDArray[np.int16], now_ns: int) -> int:
        """:meth:`write_for_frame` for a block that follows no caller frame (its slot is
        ``now_ns``)."""
        return self._write(pcm, now_ns, now_ns)

    def write_for_frame(self, pcm: NDArray[np.int16], now_ns: int, frame_t_ns: int) -> int:
        """Send a block that carries agent audio as ``media`` now and return when Twilio
        plays its first sample: now, or when the audio sent before it ends if later
        (Twilio plays media in order, as it comes; the bridge paces its writes, so that
        is now unless a late loop handed over several blocks at once).

        A block carries agent audio when any of its samples is the agent's, silent or
        not (see ``carrying``): what the playback stamps as played is what was sent. A
        block without any is not sent and plays nothing; it is placed at the slot of the
        caller frame it follows (``frame_t_ns``), after the blocks before it, so the
        recording's agent channel, which the returned times place, stays on the clock
        (it used to run 106 ms late for the whole call after the frames of the call's
        start were handled at once, each block stamped with the same "now").
        :data:`QUIET_FRAMES` such blocks after a burst send a ``mark``. After the end
        nothing is sent, and the stamp is no play time: the playback was stopped at the
        end (``on_gone``), so only silence comes here then."""
        return self._write(pcm, now_ns, frame_t_ns)

    def _write(self, pcm: NDArray[np.int16], now_ns: int, slot_ns: int) -> int:
        if self.stopped or self.closed:
            return now_ns
        carrying = self._carrying() if self._carrying is not None else bool(pcm.any())
        if carrying:
            t = max(now_ns, self._play_end_ns)
            self._burst, self._quiet = True, 0
            self._send(self.protocol.media(pcm))
            self.samples_sent += len(pcm)
            self.write_ns.append(self._now_ns() - now_ns)
        else:
            t = max(slot_ns, self._play_end_ns)
            if self._burst:
                self._quiet += 1
                if self._quiet >= QUIET_FRAMES:
                    self._burst = False
                    text, name = self.protocol.mark()
                    self.marks_out[name] = now_ns
                    self._send(text)
        self._play_end_ns = t + len(pcm) * 1_000_000_000 // RATE
        return t

    def flush_output(self) -> None:
        """Barge-in: ``clear`` Twilio's buffer (what it had not played yet is dropped)."""
        if not (self.stopped or self.closed):
            self._send(self.protocol.clear())
        self._burst, self._quiet = False, 0
        self._play_end_ns = min(self._play_end_ns, self._now_ns())

    @property
    def exhausted(self) -> bool:
        """True once the stream ended and every frame it sent was read."""
        return self.closed and not self._frames

    def stop(self) -> None:
        """The call is over; nothing more is sent (the server closes the socket)."""
        self.stopped = True
