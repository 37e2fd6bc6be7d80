"""Clock-drift compensation for a playout queue fed on one clock and drained on another.

In mic mode the bridge writes one 20 ms block of agent audio per caller frame, so the
speaker's queue is *fed* on the microphone's clock and *drained* on the speaker's. Two
sound cards (or a SIP call's RTP clock against a sound card) differ by tens to hundreds of
ppm: 10 Hz at 48 kHz is 208 ppm, 125 ms of queue gained or lost over ten minutes. Left
alone, the queue grows (latency creeps up) or empties (an underrun clicks mid-word).

:class:`DriftCompensator` sits between the feeder and the queue. It watches the queue
level at each feed and resamples the fed audio by a ratio within ±:data:`MAX_PPM` of 1
(linear interpolation across block edges, so no sample is dropped or repeated and the
waveform stays continuous): a PI controller on the smoothed level. Its integral term is
the drift itself, which :attr:`DriftCompensator.drift_ppm` reports. Measured by
``tests/test_drift.py``: ten minutes at ±10 Hz on 48 kHz keep the queue under 100 ms with
no underrun and no jump larger than the source's own.

Linear interpolation at a ratio this close to 1 is a slowly sliding fractional delay: at
its worst (half a sample) it attenuates 4 kHz by 0.3 dB at 48 kHz, far below what a
listener or the barge-in VAD notices.

Synchronous and pure; one owner thread calls every method.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: Largest correction applied (parts per million): 1.7 cents of pitch, inaudible, and five
#: times the 10 Hz drift the tests simulate.
MAX_PPM = 1000.0
#: Time constant of the queue-level smoothing (s): averages out the feeder's jitter.
SMOOTH_S = 2.0
#: Lowest target level (ms): the queue must outlast the feeder's jitter (a late bridge
#: loop, 10 ms callbacks) or the speaker underruns mid-word.
MIN_TARGET_MS = 30.0
#: Highest target level (ms): a queue that starts deeper (a capture backlog flushed at
#: the start of a call) is drained slowly to this, at most :data:`MAX_PPM`, instead of
#: keeping its latency for the whole call.
MAX_TARGET_MS = 60.0
#: Audio fed before the controller starts; the level reached by then is its target (s).
SETTLE_S = 2.0
#: Natural frequency of the closed loop (rad/s), critically damped: the queue deviates by
#: at most drift / (e * OMEGA) (1.5 ms for 208 ppm) and the estimate settles in ~100 s.
OMEGA = 0.05


class DriftCompensator:
    """Keeps a playout queue at its natural level against the drift of two clocks.

    Args:
        rate: sample rate of the fed audio and of the queue (Hz).
        max_ppm: bound on the correction.
    """

    def __init__(self, rate: int, max_ppm: float = MAX_PPM) -> None:
        self.rate = rate
        self.max_ppm = max_ppm
        self._kp = 2 * OMEGA  # 1/s
        self._ki = OMEGA * OMEGA  # 1/s^2
        self._integral = 0.0  # the drift estimate (relative)
        self._fed_in = 0  # samples given to process() since the controller started
        self._fed_out = 0  # samples it returned (silence inserted included)
        # (in, out, level, silence played) at that start
        self._start: tuple[int, int, float, int] | None = None
        self._silence = 0  # the owner's count of silence the speaker played (process())
        # After the speaker moved: samples fed in at which the fit starts afresh, and the
        # figure of the device before (reported until the new fit spans a second).
        self._refit_at: int | None = None
        self._before_ppm = 0.0
        # Least-squares fit of samples drained against samples fed in since that start
        # (Welford's running means and co-moments): its slope is 1 + the drift.
        self._fit_n = 0
        self._fit_mx = self._fit_my = self._fit_cxx = self._fit_cxy = 0.0
        self._ratio = 1.0  # output samples per input sample
        self._pos = 1.0  # read position of the next output sample in [last, *block]
        self._last = 0.0
        self._level: float | None = None
        self._target: float | None = None
        self._settled = 0  # samples fed since the last reset

    @property
    def drift_ppm(self) -> float:
        """Measured drift: how much faster the queue is drained than fed (ppm; positive
        when the speaker's clock runs fast against the feeder's); 0 until measured.

        Counted over the whole call, not read off the controller: at every fed block,
        the samples the speaker played so far (fed out less the queue's level, plus the
        silence it played that the queue did not give) against the samples fed in,
        fitted by least squares from the controller's start on (from the new device's,
        after the speaker moved: :meth:`new_speaker`). A real device drains in bursts of
        tens of milliseconds; two end points would carry that into the figure (10 ms
        over 30 s is 330 ppm), the fit averages it out over every block.
        """
        start = self._start
        if (
            start is None
            or self._refit_at is not None
            or self._fed_in - start[0] < self.rate
            or self._fit_cxx <= 0
        ):
            return self._before_ppm
        return (self._fit_cxy / self._fit_cxx - 1.0) * 1e6

    def new_speaker(self) -> None:
        """The queue is drained by another device from now on (the speaker moved, its
        stream reopened). A drift is a property of one pair of clocks, and the move itself
        (the gap while no stream drained, the new stream's first fill) is a step in the
        drained count that a fit across it would read as drift: the fit starts afresh
        once the new device has played :data:`SETTLE_S`, and until it spans a second
        :attr:`drift_ppm` keeps the figure of the device before. The controller keeps its
        state and follows the new clock from there.
        """
        if self._start is None:  # nothing fitted yet: the first fit is still to start
            return
        self._before_ppm = self.drift_ppm
        self._refit_at = self._fed_in + int(SETTLE_S * self.rate)
        self._fit_n = 0
        self._fit_mx = self._fit_my = self._fit_cxx = self._fit_cxy = 0.0

    def _fit(self, queued: int) -> None:
        """Add one point (fed in, drained) to the drift fit (queue level before a block)."""
        if self._refit_at is not None:
            if self._fed_in < self._refit_at:
                return
            self._refit_at = None
            self._start = (self._fed_in, self._fed_out, float(queued), self._silence)
        start = self._start
        if start is None:
            return
        x = float(self._fed_in - start[0])
        y = float(self._fed_out - queued + self._silence - (start[1] - start[2] + start[3]))
        self._fit_n += 1
        dx = x - self._fit_mx
        self._fit_mx += dx / self._fit_n
        self._fit_my += (y - self._fit_my) / self._fit_n
        self._fit_cxx += dx * (x - self._fit_mx)
        self._fit_cxy += dx * (y - self._fit_my)

    @property
    def correction_ppm(self) -> float:
        """The correction applied to the last block (ppm)."""
        return (self._ratio - 1.0) * 1e6

    def reset(self, dropped: int = 0) -> None:
        """The queue was flushed (barge-in) or its stream restarted: keep the drift and
        the target level; the level is measured afresh at the next block, and the next
        quiet block tops the queue back up to the target at once (:meth:`process`), so
        the agent's next reply does not start on an empty queue. Before the target is
        known, the level settles as at the start.

        Args:
            dropped: samples the flush dropped unplayed (kept out of the drift figure).
        """
        self._fed_out -= dropped
        self._level = None
        if self._target is None:
            self._settled = 0

    def discard(self, n: int) -> None:
        """``n`` samples that :meth:`process` returned were not queued after all (the
        owner skipped a silent block to bound the queue): kept out of the drift figure,
        which otherwise counts them as drained. Level and target stay as they are.
        """
        self._fed_out -= n

    def process(
        self, x: NDArray[np.int16], queued: int, silence_played: int = 0
    ) -> NDArray[np.int16]:
        """Resample one fed block by the current correction.

        Args:
            x: the block about to be queued (int16, mono, at :attr:`rate`).
            queued: samples already in the queue before this block.
            silence_played: samples the speaker has played so far that the queue did not
                give (an underflow's gap, a dry queue's shortfall; a running total). Its
                clock ran through them, so the drift figure counts them as drained: a
                speaker that underflowed for 80 ms would otherwise read as 80 ms slower.

        Returns:
            The block to queue instead: within one sample of ``len(x) * ratio`` samples,
            continuous with the previous block.
        """
        n = len(x)
        if n == 0:
            return x
        self._silence = silence_played
        self._steer(n, queued)
        self._fit(queued)
        self._fed_in += n
        y = self._resample(x)
        if self._target is not None and self._level is not None and not x.any():
            # A quiet point and a queue short of its target: top it up with silence now
            # (a call's start, or after a flush) instead of stretching speech for seconds.
            short = int(self._target - self._level)
            if short > n // 2:
                y = np.concatenate((y, np.zeros(short, dtype=np.int16)))
                self._level += short
        self._fed_out += len(y)
        return y

    def _resample(self, x: NDArray[np.int16]) -> NDArray[np.int16]:
        """``x`` at the current ratio, continuous with the previous block."""
        n = len(x)
        buf = np.empty(n + 1, dtype=np.float64)
        buf[0] = self._last
        buf[1:] = x
        self._last = float(x[-1])
        step = 1.0 / self._ratio
        pos0 = self._pos
        if pos0 >= n:  # the correction consumed more than a block: nothing to output
            self._pos = pos0 - n
            return np.zeros(0, dtype=np.int16)
        m = int(np.ceil((n - pos0) / step))
        pos = pos0 + np.arange(m) * step
        i = pos.astype(np.int64)
        f = pos - i
        y = buf[i] * (1.0 - f) + buf[np.minimum(i + 1, n)] * f
        self._pos = pos0 + m * step - n
        if abs(self._pos - round(self._pos)) < 1e-9:  # keep an exact ratio exact
            self._pos = float(round(self._pos))
        out: NDArray[np.int16] = np.clip(np.rint(y), -32768, 32767).astype(np.int16)
        return out

    def _steer(self, n: int, queued: int) -> None:
        """Update the smoothed level and the ratio for a block of ``n`` samples."""
        dt = n / self.rate
        self._settled += n
        if self._level is None:
            # A fresh level (the start, or right after a flush): nothing to steer on yet;
            # a flushed queue is topped up by process(), not chased by the ratio.
            self._level = float(queued)
            self._ratio = 1.0 + self._integral
            return
        self._level += min(1.0, dt / SMOOTH_S) * (queued - self._level)
        if self._settled < SETTLE_S * self.rate:
            self._ratio = 1.0 + self._integral
            return
        if self._target is None:
            low, high = MIN_TARGET_MS * self.rate / 1000, MAX_TARGET_MS * self.rate / 1000
            self._target = min(max(self._level, low), high)
            if self._start is None:
                self._start = (self._fed_in, self._fed_out, self._level, self._silence)
        error_s = (self._level - self._target) / self.rate
        limit = self.max_ppm / 1e6
        self._integral = min(limit, max(-limit, self._integral - self._ki * error_s * dt))
        u = min(limit, max(-limit, self._integral - self._kp * error_s))
        self._ratio = 1.0 + u
