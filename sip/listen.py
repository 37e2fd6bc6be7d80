"""Listen in: hear both sides of a SIP call on the laptop's speakers, with mute.

:class:`ListenIn` taps a call's :class:`sip.port.SipCallPort` (its ``monitor`` hook): the
caller's frames as the bridge reads them and the agent's audio as the bridge writes it.
:class:`ListenMixer` mixes the two at the port rate, paced by the caller's frames (the
call's RTP clock: one 20 ms frame per tick, speech or not), so agent audio queued ahead
of playout is heard when the far end hears it, not when it was written. The mix is
resampled to the device rate and written to a ring buffer that the PortAudio output
callback only copies from.

The call's frames come on the RTP clock and the sound card drains on its own, so the ring
gains or loses a little every second (500 ppm is 30 ms a minute). A
:class:`~app.audio.drift.DriftCompensator` between the mix and the ring resamples by a
ratio within ±1000 ppm of 1 to hold the ring at its level, and measures the drift
(:attr:`ListenIn.drift_ppm`); dropping blocks past :data:`MAX_AHEAD_MS` (a click) stays as
the last resort. A device that takes a while to start playing (PulseAudio's first stream
stalls ~2 s) does not leave the listener that far behind for the rest of the call: the
output starts on the newest :data:`PREBUFFER_MS` of audio (stale audio is skipped, counted
in :attr:`ListenIn.stale_skipped`).

Threads: :meth:`ListenIn.caller` / :meth:`ListenIn.agent` run on the bridge's loop thread
inside ``read``/``write``; they never block (no lock, no device call) and never raise.
The output callback runs on PortAudio's thread and only copies. :meth:`ListenIn.start`,
:meth:`ListenIn.stop`, :meth:`ListenIn.attach`, :meth:`ListenIn.detach` and
:meth:`ListenIn.set_muted` may be called from any thread (e.g. the Qt main thread).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.drift import DriftCompensator
from app.audio.resample import StreamResampler
from app.audio.ringbuffer import RingBuffer
from app.errors import AudioDeviceError
from sip.port import SipCallPort

#: Output callback block length.
BLOCK_MS = 10
#: Audio the output waits for before it starts (and after running dry): absorbs the
#: bridge's uneven reads without underrunning on every block.
PREBUFFER_MS = 60
#: Mixed audio further ahead of the device than this is dropped (bounded added delay).
MAX_AHEAD_MS = 300
#: Agent audio held ahead of the caller's frames (what the send ring may hold).
AGENT_QUEUE_S = 60


class ListenMixer:
    """Mixes caller and agent audio at one rate, paced by the caller's frames.

    One thread only (the bridge's loop thread). :meth:`agent` queues agent samples;
    :meth:`caller` returns the caller frame plus as many queued agent samples (the rest of
    the frame is the caller alone), clipped to int16.

    Args:
        rate: the port rate (Hz).
        agent_queue_s: how much agent audio may wait; beyond it, audio is dropped and
            counted in ``agent_dropped``.
    """

    def __init__(self, rate: int, agent_queue_s: float = AGENT_QUEUE_S) -> None:
        self.rate = rate
        self._agent = RingBuffer(int(rate * agent_queue_s))
        self._scratch = np.zeros(rate // 50, dtype=np.int16)
        self.agent_dropped = 0

    def agent(self, pcm: NDArray[np.int16]) -> None:
        """Queue agent audio."""
        before = self._agent.overruns
        self._agent.write(pcm)
        self.agent_dropped += self._agent.overruns - before

    def caller(self, pcm: NDArray[np.int16]) -> NDArray[np.int16]:
        """One caller block mixed with the agent audio due at the same time."""
        n = len(pcm)
        if len(self._scratch) < n:
            self._scratch = np.zeros(n, dtype=np.int16)
        agent = self._scratch[:n]
        if self._agent.available:
            self._agent.read_into(agent)  # zero-fills the rest
        else:
            agent[:] = 0
        mixed = pcm.astype(np.int32) + agent
        out: NDArray[np.int16] = np.clip(mixed, -32768, 32767).astype(np.int16)
        return out

    def clear(self) -> None:
        """Drop queued agent audio."""
        self._agent.clear()

    @property
    def agent_queued(self) -> int:
        """Agent samples waiting for caller frames."""
        return self._agent.available


class ListenIn:
    """Plays a SIP call's two sides, mixed, on an output device (sounddevice).

    Args:
        rate: the call port's rate (8000 or 16000).
        device: output device index or (partial) name; ``None`` for the default.
        device_rate: force the device rate; ``None`` picks one the device accepts.
        muted: start muted (nothing is played; the tap keeps running).
    """

    def __init__(self, rate: int = 16000, device: int | str | None = None, *,
                 device_rate: int | None = None, muted: bool = False) -> None:
        self.rate = rate
        self.device = device
        self.muted = muted
        self._want_rate = device_rate
        self.device_rate = 0
        self.mixer = ListenMixer(rate)
        self._ring: RingBuffer | None = None
        self._rs: StreamResampler | None = None
        self._stream: Any = None
        self._primed = False
        self._prebuffer = 0
        self._max_ahead = 0
        self._port: SipCallPort | None = None
        self._drift: DriftCompensator | None = None
        self._compensating = False  # loop side: the output has played; drift is counted
        self._skip_buf = np.zeros(0, dtype=np.int16)
        self._peak = 0
        #: Output blocks the device asked for while the ring was dry (callback-owned).
        self.underruns = 0
        #: Device-rate samples dropped because the output ran too far behind (loop side).
        self.dropped = 0
        #: Device-rate samples skipped as stale when the output (re)started: what queued
        #: beyond :data:`PREBUFFER_MS` while the device was not yet playing (callback-owned).
        self.stale_skipped = 0
        #: Exceptions caught in the tap (should stay 0; loop side).
        self.errors = 0

    # --- device ---------------------------------------------------------------------------

    def start(self) -> None:
        """Open the output device and start playing (silence until audio arrives).

        Raises:
            AudioDeviceError: no such device, or it cannot play at any usable rate.
        """
        if self._stream is not None:
            return
        from app.audio.devices import pick_rate, resolve_portaudio, sounddevice_module

        sd = sounddevice_module()
        idx, info, api = resolve_portaudio(sd, self.device, "output")
        rate = pick_rate(sd, idx, info, api, "output", self._want_rate)
        self._ring = RingBuffer(rate * 2)
        self._rs = StreamResampler(self.rate, rate)
        self._prebuffer = rate * PREBUFFER_MS // 1000
        self._max_ahead = rate * MAX_AHEAD_MS // 1000
        self._skip_buf = np.zeros(rate * BLOCK_MS // 1000, dtype=np.int16)
        self._drift = DriftCompensator(rate)
        self._compensating = False
        self._peak = 0
        self.device_rate = rate
        try:
            stream = sd.OutputStream(
                device=idx, samplerate=rate, channels=1, dtype="int16",
                blocksize=rate * BLOCK_MS // 1000, latency="low", callback=self._callback,
            )
            stream.start()
        except sd.PortAudioError as exc:
            raise AudioDeviceError(
                f"cannot open output device {info['name']!r} at {rate} Hz to listen in ({exc})",
                info["name"], api) from None
        self._stream = stream

    def stop(self) -> None:
        """Detach from the call and close the device; idempotent."""
        self.detach()
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):  # a vanished device: nothing to recover
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio thread: copy only.
        ring = self._ring
        out = outdata[:, 0]
        if ring is None:
            out.fill(0)
            return
        if not self._primed:
            available = ring.available
            if available < self._prebuffer:
                out.fill(0)
                return
            excess = available - self._prebuffer  # queued while the device did not play
            while excess > 0:  # read into a preallocated block: no allocation here
                k = ring.read_into(self._skip_buf[: min(excess, len(self._skip_buf))])
                self.stale_skipped += k
                excess = excess - k if k else 0
            self._primed = True
        if ring.available < frames:
            self.underruns += 1
            self._primed = False
        ring.read_into(out)

    # --- the call ---------------------------------------------------------------------------

    def attach(self, port: SipCallPort) -> None:
        """Tap ``port`` (replacing any other tap on it)."""
        if port.rate != self.rate:
            raise ValueError(f"port rate {port.rate} Hz differs from the listener's {self.rate}")
        self.detach()
        self._port = port
        port.monitor = self

    def detach(self) -> None:
        """Stop tapping the call (a no-op when not attached)."""
        port, self._port = self._port, None
        if port is not None and port.monitor is self:
            port.monitor = None

    def set_muted(self, muted: bool) -> None:
        """Mute or unmute; muted, nothing more is queued for the device."""
        self.muted = muted

    # --- PortMonitor (bridge loop thread) -------------------------------------------------

    def agent(self, pcm: NDArray[np.int16]) -> None:
        """Agent audio written to the call."""
        try:
            self.mixer.agent(pcm)
        except Exception:  # never break the bridge
            self.errors += 1

    def caller(self, pcm: NDArray[np.int16]) -> None:
        """A caller frame read from the call: mix, resample, queue for the device."""
        try:
            mixed = self.mixer.caller(pcm)
            ring, rs = self._ring, self._rs
            if ring is None or rs is None:
                return
            out = rs.process(mixed)
            if self.muted:
                return
            drift = self._drift
            if not self._compensating:
                # Until the output first plays, the ring's level says nothing about the
                # clocks (the callback skips what queued beyond the prebuffer).
                self._compensating = self._primed
            if drift is None or not self._compensating:
                ring.write(out)
                return
            out = drift.process(out, ring.available)
            if ring.available + len(out) > self._max_ahead:
                self.dropped += len(out)
                drift.discard(len(out))
                return
            ring.write(out)
            self._peak = max(self._peak, ring.available)
        except Exception:
            self.errors += 1

    @property
    def drift_ppm(self) -> float:
        """The sound card's clock against the call's, measured by the drift compensation
        (ppm, positive: the card drains faster than the call's frames come; 0 until
        measured, a few seconds after the output starts)."""
        return self._drift.drift_ppm if self._drift is not None else 0.0

    @property
    def peak_ahead_ms(self) -> float:
        """The most audio queued ahead of the device after a write, since it started
        playing (ms)."""
        return 1000.0 * self._peak / self.device_rate if self.device_rate else 0.0
