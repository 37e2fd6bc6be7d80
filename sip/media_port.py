"""The pjsua2 media port of a call: copies 20 ms frames into and out of ring buffers.

:class:`FramePort` callbacks run on pjmedia's clock thread. They only copy between the
frame's ``std::vector`` and preallocated numpy arrays / :class:`RingBuffer`s, stamp the
frame, and count; no logging, no locks, no per-frame Python buffers (``bytes(frame.buf)``
costs ~230 µs a frame; reading the vector's pointers with ctypes costs ~1.5 µs).
"""

from __future__ import annotations

import ctypes
import time

import numpy as np
import pjsua2 as pj
from numpy.typing import NDArray

from app.audio.ringbuffer import RingBuffer

_u64 = ctypes.c_uint64
_memmove = ctypes.memmove


def _vector_data(vec: pj.ByteVector) -> tuple[int, int]:
    """(data pointer, byte size) of a SWIG-wrapped ``std::vector<unsigned char>``.

    libstdc++ and libc++ lay a vector out as three pointers: begin, end, capacity end.
    """
    addr = int(vec.this)
    begin = _u64.from_address(addr).value
    return begin, _u64.from_address(addr + 8).value - begin


class MediaStats:
    """Counters kept by the clock thread (read them anywhere; values are approximate).

    Attributes:
        rx_frames / tx_frames: frames received from / requested by the conference bridge.
        rx_cost_ns / tx_cost_ns: total time spent inside the callbacks.
        rx_cost_max_ns / tx_cost_max_ns: the slowest callback.
        intervals_ms: the last ``window`` intervals between received frames (ring).
        errors: exceptions caught inside callbacks (should stay 0).
    """

    def __init__(self, window: int = 1024) -> None:
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_cost_ns = 0
        self.tx_cost_ns = 0
        self.rx_cost_max_ns = 0
        self.tx_cost_max_ns = 0
        self.errors = 0
        self.intervals_ms = np.zeros(window, dtype=np.float64)
        self.last_rx_ns = 0

    def jitter_summary(self) -> dict[str, float]:
        """Mean, standard deviation, p99 and max of received-frame intervals (ms)."""
        n = min(max(self.rx_frames - 1, 0), len(self.intervals_ms))
        if n == 0:
            return {"n": 0, "mean_ms": 0.0, "std_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        x = self.intervals_ms[:n]  # once wrapped, n == window and every slot is valid
        return {
            "n": float(n),
            "mean_ms": float(x.mean()),
            "std_ms": float(x.std()),
            "p99_ms": float(np.percentile(x, 99)),
            "max_ms": float(x.max()),
        }

    def add_rx_cost(self, dt_ns: int) -> None:
        """Count one receive callback that took ``dt_ns`` (clock thread)."""
        self.rx_cost_ns += dt_ns
        self.rx_cost_max_ns = max(self.rx_cost_max_ns, dt_ns)

    def add_tx_cost(self, dt_ns: int) -> None:
        """Count one transmit callback that took ``dt_ns`` (clock thread)."""
        self.tx_cost_ns += dt_ns
        self.tx_cost_max_ns = max(self.tx_cost_max_ns, dt_ns)

    def cost_summary(self) -> dict[str, float]:
        """Mean and max callback cost in microseconds."""
        return {
            "rx_mean_us": self.rx_cost_ns / max(self.rx_frames, 1) / 1000.0,
            "rx_max_us": self.rx_cost_max_ns / 1000.0,
            "tx_mean_us": self.tx_cost_ns / max(self.tx_frames, 1) / 1000.0,
            "tx_max_us": self.tx_cost_max_ns / 1000.0,
        }


class MediaLink:
    """What a call's :class:`FramePort` shares with its :class:`sip.port.SipCallPort`.

    Plain Python state only, so the port (held by user code) never keeps the pjsua2
    media port alive: an ``AudioMediaPort`` alive at ``libDestroy`` aborts the process.

    Attributes:
        rx: ring the received (caller) audio is written to (clock thread writes).
        tx: ring the audio to send (agent) is read from (clock thread reads).
        stats: counters updated by the clock thread.
        rx_mark: ``(total samples received, clock time of the last one)``, replaced
            atomically by the clock thread.
        tx_after / tx_ns: for the last ``len(tx_ns)`` frames requested by pjmedia,
            ``tx_consumed`` after the frame and the clock time it was handed over
            (slot ``i % len``); ``tx_requests`` counts the frames (published last).
        rx_closing: set by the SIP thread when the call is disconnected. The stream may
            still hand over what its jitter buffer held (the far end's last audio).
        rx_ended: no received audio can follow; set once and never cleared. The clock
            thread sets it at the first frame without audio after ``rx_closing`` (the
            stream is gone), the SIP thread when the media port is removed or never
            existed. Every sample received is in ``rx`` before it is set.
    """

    def __init__(self, rx: RingBuffer, tx: RingBuffer, stats: MediaStats,
                 tx_history: int = 1024) -> None:
        self.rx = rx
        self.tx = tx
        self.stats = stats
        self.rx_mark: tuple[int, int] = (0, 0)
        self.tx_after = np.zeros(tx_history, dtype=np.int64)
        self.tx_ns = np.zeros(tx_history, dtype=np.int64)
        self.tx_requests = 0
        self.rx_closing = False
        self.rx_ended = False

    @property
    def tx_consumed(self) -> int:
        """Samples taken out of ``tx`` so far (sent, or dropped by a barge-in's flush,
        which the bridge asks of ``tx`` and the clock thread honours): the same
        numbering as the writer's count of samples accepted by ``tx``."""
        return self.tx.consumed

    def handed_ns(self, position: int) -> int | None:
        """Clock time at which sample ``position`` of ``tx`` (0-based, in the writer's
        numbering) was handed to pjmedia; ``None`` if not yet, or too long ago to know.

        Any thread; reads the clock thread's history without locks (a frame being
        recorded at that moment is simply not seen yet).
        """
        k = self.tx_requests
        size = len(self.tx_ns)
        n = min(k, size)
        if n == 0:
            return None
        idx = np.arange(k - n, k) % size
        after = self.tx_after[idx]
        j = int(np.searchsorted(after, position, side="right"))
        if j >= n or (j == 0 and k > size):
            return None
        return int(self.tx_ns[idx[j]])


class FramePort(pj.AudioMediaPort):  # type: ignore[misc]
    """A conference-bridge port exchanging PCM16 mono 20 ms frames with two ring buffers.

    Created, connected and destroyed on the SIP thread; its two callbacks run on
    pjmedia's clock thread and must never raise, block, log or allocate buffers.

    Args:
        rate: 8000 or 16000.
        link: the rings, counters and flags shared with the call's :class:`SipCallPort`.
    """

    def __init__(self, rate: int, link: MediaLink) -> None:
        super().__init__()
        self.rate = rate
        self.samples = rate // 50
        self.nbytes = self.samples * 2
        self._link = link
        self._rx = link.rx
        self._tx = link.tx
        self._stats = link.stats
        self._scratch = np.zeros(self.samples, dtype=np.int16)
        self._scratch_ptr = self._scratch.ctypes.data
        # Outgoing frames are assembled in this vector's own memory, then assigned (one
        # std::vector copy in C++, no Python buffer per frame).
        self._txvec = pj.ByteVector()
        self._txvec.resize(self.nbytes)
        ptr, size = _vector_data(self._txvec)
        assert size == self.nbytes
        self._txview: NDArray[np.int16] = np.ctypeslib.as_array(
            (ctypes.c_int16 * self.samples).from_address(ptr)
        )
        self._rx_total = 0
        self._frame_type = pj.PJMEDIA_FRAME_TYPE_AUDIO

    def create(self, name: str) -> None:
        """Register the port in the conference bridge (SIP thread)."""
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, self.rate, 1, 20000, 16)
        self.createPort(name, fmt)

    def end_rx(self) -> None:
        """SIP thread, as the port is freed: no received audio can follow."""
        self._link.rx_ended = True

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 - pjsua2 API
        """Clock thread: copy the frame into the rx ring; stamp it."""
        t0 = time.perf_counter_ns()
        now = time.monotonic_ns()
        st = self._stats
        try:
            link = self._link
            ptr, size = _vector_data(frame.buf)
            n = min(size, self.nbytes) if not link.rx_ended else 0
            if n > 0:
                _memmove(self._scratch_ptr, ptr, n)
                k = n >> 1
                self._rx.write(self._scratch[:k] if k < self.samples else self._scratch)
                self._rx_total += k
                link.rx_mark = (self._rx_total, now)
            elif link.rx_closing:
                link.rx_ended = True  # hung up and the stream is gone: nothing can follow
            if st.last_rx_ns:
                st.intervals_ms[(st.rx_frames - 1) % len(st.intervals_ms)] = (
                    now - st.last_rx_ns
                ) / 1e6
            st.last_rx_ns = now
            st.rx_frames += 1
        except Exception:  # a callback must never raise into pjmedia
            st.errors += 1
        st.add_rx_cost(time.perf_counter_ns() - t0)

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802 - pjsua2 API
        """Clock thread: fill the frame from the tx ring (silence when it runs dry)."""
        t0 = time.perf_counter_ns()
        st = self._stats
        try:
            tx = self._tx
            link = self._link
            tx.apply_drop()  # a barge-in's flush, asked by SipCallPort.flush
            if tx.available > 0:
                tx.read_into(self._txview)
            else:
                self._txview[:] = 0
            slot = link.tx_requests % len(link.tx_ns)
            link.tx_ns[slot] = time.monotonic_ns()
            link.tx_after[slot] = link.tx_consumed
            link.tx_requests += 1
            frame.type = self._frame_type
            frame.buf = self._txvec
            frame.size = self.nbytes
            st.tx_frames += 1
        except Exception:  # a callback must never raise into pjmedia
            st.errors += 1
        st.add_tx_cost(time.perf_counter_ns() - t0)
