"""Low-delay streaming sample-rate conversion (8, 16, 24, 48 kHz and common file rates).

A polyphase windowed-sinc (Kaiser) FIR: conceptually upsample by ``L``, low-pass at 0.9 x
the lower Nyquist frequency, downsample by ``M`` (``L/M = out/in`` in lowest terms). The
filter spans 5 ms, so its group delay is :data:`DELAY_MS` = 2.5 ms for every rate pair,
against 40+ ms for soxr's default streaming quality. Stopband attenuation is about 60 dB
with a transition band roughly 600 Hz wide centred on the cutoff.

Everything is synchronous and pure; the work per 20 ms block is a handful of numpy
matrix-vector products (tens of microseconds). Not for use inside a real-time audio
callback (it allocates per call): run it on the bridge thread.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import round_to_int16
from app.errors import ConfigError

#: The stream rates voiceprobe uses (any pair, including identity). Other rates work as
#: long as ``out/in`` in lowest terms has a numerator and denominator up to
#: :data:`MAX_FACTOR` (11025, 22050, 32000, 44100, 96000 ... all do).
SUPPORTED_RATES = (8000, 16000, 24000, 48000)

#: Largest up- or down-sampling factor (after reducing out/in) accepted.
MAX_FACTOR = 1024

#: Sample rates accepted anywhere (WAV files, devices, streams). Below about 200 Hz the
#: filter design degenerates (phases without taps give NaN audio) and its size grows
#: without bound; nothing voiceprobe meets is outside this range.
MIN_RATE = 1000
MAX_RATE = 384_000

#: Group delay of every non-identity conversion, in milliseconds (exactly, for the
#: :data:`SUPPORTED_RATES`; within one sample at the upsampled rate for others).
DELAY_MS = 2.5

#: Low-pass cutoff as a fraction of the lower of the two Nyquist frequencies.
CUTOFF = 0.9

#: Kaiser window beta (about 60 dB stopband).
KAISER_BETA = 6.0


@lru_cache(maxsize=32)
def _design(in_rate: int, out_rate: int) -> tuple[int, int, int, NDArray[np.float64]]:
    """Return ``(L, M, D, bank)``: up/down factors, delay in upsampled samples, and the
    polyphase bank of shape ``(L, T)`` with each phase's taps reversed for a dot product
    against ``x[i-T+1 .. i]``. Cached and read-only (shared by every resampler).
    """
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    fs_up = in_rate * up
    delay_up = round(DELAY_MS * fs_up / 1000)
    n_taps = 2 * delay_up + 1
    cutoff_hz = CUTOFF * min(in_rate, out_rate) / 2
    t = (np.arange(n_taps) - delay_up) / fs_up
    h = 2 * cutoff_hz / fs_up * np.sinc(2 * cutoff_hz * t) * np.kaiser(n_taps, KAISER_BETA)
    per_phase = -(-n_taps // up)
    padded = np.zeros(per_phase * up)
    padded[:n_taps] = h
    bank = padded.reshape(per_phase, up).T.copy()  # bank[p, t] = h[p + t*L]
    # Unit DC gain on every phase: no DC ripple (imaging of DC) when upsampling.
    bank /= bank.sum(axis=1, keepdims=True)
    bank = bank[:, ::-1].copy()
    bank.setflags(write=False)
    return up, down, delay_up, bank


def _check_rates(in_rate: int, out_rate: int) -> None:
    for rate in (in_rate, out_rate):
        if not MIN_RATE <= rate <= MAX_RATE:
            raise ConfigError(
                f"unsupported sample rate {rate} Hz (voiceprobe handles {MIN_RATE}-{MAX_RATE} Hz)"
            )
    g = math.gcd(in_rate, out_rate)
    if max(in_rate, out_rate) // g > MAX_FACTOR:
        raise ConfigError(f"cannot convert {in_rate} Hz to {out_rate} Hz (ratio too complex)")


@lru_cache(maxsize=128)
def _block_taps(in_rate: int, out_rate: int, residue: int) -> tuple[int, NDArray[np.float64]]:
    """``(W, taps)``: the filter of ``L`` consecutive outputs as one ``(W, L)`` matrix.

    For outputs ``j0 .. j0+L-1`` whose first upsampled index ``n0 = j0*M + shift`` has
    ``n0 % L == residue``, output ``j0 + r`` is the dot product of its phase's taps with
    the input window starting ``((residue + r*M) // L)`` samples after that of output
    ``j0``. Column ``r`` holds those taps at that offset (zeros elsewhere), so the
    windows ``x[s0 + k*M : s0 + k*M + W]`` (one per group of ``L`` outputs) times this
    matrix give every output of a block in one matrix product. Cached, read-only.
    """
    up, down, _, bank = _design(in_rate, out_rate)
    taps = bank.shape[1]
    offsets = [(residue + r * down) // up for r in range(up)]
    width = taps + offsets[-1]
    matrix = np.zeros((width, up))
    for r, off in enumerate(offsets):
        matrix[off : off + taps, r] = bank[(residue + r * down) % up]
    matrix.setflags(write=False)
    return width, matrix


def _filter(
    in_rate: int,
    out_rate: int,
    buf: NDArray[np.float64],
    g0: int,
    j0: int,
    count: int,
    shift: int,
) -> NDArray[np.float64]:
    """Compute outputs ``j0 .. j0+count-1``; ``buf[k]`` holds input sample ``g0 + k``.

    Output ``j`` is the filter centred on upsampled index ``n = j*M + shift``: it needs
    ``x[i-T+1 .. i]`` with ``i = n // L`` and phase ``p = n % L``. The outputs come in
    groups of ``L`` (one per phase) whose windows advance by ``M`` input samples per
    group, so the whole block is one product of a strided view of ``buf`` (one row per
    group, no copy) with :func:`_block_taps`' matrix: one BLAS call per block instead of
    a numpy call per phase (measured ~6x faster on 20 ms blocks).
    """
    if count == 0:
        return np.empty(0)
    up, down, _, bank = _design(in_rate, out_rate)
    taps = bank.shape[1]
    n0 = j0 * down + shift
    width, matrix = _block_taps(in_rate, out_rate, n0 % up)
    s0 = n0 // up - (taps - 1) - g0
    rows = -(-count // up)
    need = s0 + (rows - 1) * down + width
    # The last group's unused outputs may reach past the input: zeros, discarded below.
    data = np.ascontiguousarray(buf if need <= len(buf) else np.pad(buf, (0, need - len(buf))))
    windows: NDArray[np.float64] = np.ndarray(
        (rows, width), dtype=np.float64, buffer=data, offset=s0 * data.itemsize,
        strides=(down * data.itemsize, data.itemsize),
    )
    out: NDArray[np.float64] = np.dot(windows, matrix).ravel()[:count]
    return out


class StreamResampler:
    """Converts one mono int16 stream from ``in_rate`` to ``out_rate``, block by block.

    Filter state is kept across :meth:`process` calls, so a stream cut into blocks of any
    size gives the samples of the whole stream converted at once (to within one LSB of
    floating-point rounding). After ``N`` input samples in total, exactly
    ``floor(N * out_rate / in_rate)`` samples have come out (no drift); with 20 ms blocks
    every block yields exactly 20 ms. Output is delayed by :attr:`delay_ms` (zeros come
    out first); :meth:`flush` drains the tail.

    Not thread-safe: one owner thread calls every method. Allocates per call (its output
    and the filter's product), so it belongs on the bridge thread, not in a device
    callback.

    Raises:
        ConfigError: a rate outside :data:`MIN_RATE`..:data:`MAX_RATE`, or a ratio whose
            reduced terms exceed :data:`MAX_FACTOR`.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        _check_rates(in_rate, out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._identity = in_rate == out_rate
        if self._identity:
            self._up, self._down, self._delay_up = 1, 1, 0
            self._bank: NDArray[np.float64] = np.ones((1, 1))
        else:
            self._up, self._down, self._delay_up, self._bank = _design(in_rate, out_rate)
        taps = self._bank.shape[1]
        # History kept between blocks: the filter span, plus the input that an output
        # straddling the previous block boundary still needs (at most M/L + 1 samples).
        self._keep = taps - 1 + self._down + 1
        self.reset()

    def reset(self) -> None:
        """Drop the filter's history and start a new stream (also when the input so far
        is cut and its tail is not wanted: a barge-in)."""
        # x[n_in - keep .. n_in - 1] in _buf[:keep]; each block is copied in after it
        # (process() grows the array to the largest block).
        self._buf = np.zeros(self._keep)
        self._n_in = 0
        self._n_out = 0

    @property
    def delay_ms(self) -> float:
        """Algorithmic (group) delay of the conversion in milliseconds (0 for identity)."""
        return 1000.0 * self._delay_up / (self.in_rate * self._up)

    def process(self, x: NDArray[np.int16]) -> NDArray[np.int16]:
        """Convert the next block of the stream and return the output it completes.

        Args:
            x: the next int16 mono samples (any length, may be empty).

        Returns:
            A new int16 array: ``floor(N_total*out/in)`` minus what was already returned.
        """
        x = np.asarray(x)
        if self._identity:
            self._n_in += len(x)
            self._n_out += len(x)
            return x.astype(np.int16, copy=True)
        n, keep = len(x), self._keep
        n_in_before = self._n_in
        self._n_in = n_in_before + n
        n_out_end = self._n_in * self._up // self._down
        if len(self._buf) < keep + n:  # one scratch array, grown to the largest block
            grown = np.zeros(keep + n)
            grown[:keep] = self._buf[:keep]
            self._buf = grown
        buf = self._buf[: keep + n]
        buf[keep:] = x  # int16 -> float64 on assignment, no temporary
        out = _filter(
            self.in_rate,
            self.out_rate,
            buf,
            n_in_before - self._keep,
            self._n_out,
            n_out_end - self._n_out,
            0,
        )
        buf[:keep] = buf[n:]  # the new history (numpy copes with the overlap)
        self._n_out = n_out_end
        return round_to_int16(out)

    def flush(self) -> NDArray[np.int16]:
        """Drain the filter: return the last :attr:`delay_ms` of output and reset.

        After ``flush`` the resampler is back in its initial state (zero history), ready
        for a new stream.
        """
        if self._identity:
            self.reset()
            return np.zeros(0, dtype=np.int16)
        tail = self.process(np.zeros(-(-self._delay_up // self._up), dtype=np.int16))
        self.reset()
        return tail


def resample(x: NDArray[np.int16], in_rate: int, out_rate: int) -> NDArray[np.int16]:
    """Convert a whole signal, with the filter delay removed.

    The output is aligned in time with the input (output sample ``k`` is at time
    ``k / out_rate`` of the input) and has ``round(len(x)*out/in)`` samples. Any pair of
    rates :class:`StreamResampler` accepts works, e.g. 22050 -> 16000.

    Raises:
        ConfigError: a rate the resampler cannot convert.
    """
    x = np.asarray(x, dtype=np.int16)
    _check_rates(in_rate, out_rate)
    if in_rate == out_rate:
        return x.copy()
    up, down, delay_up, bank = _design(in_rate, out_rate)
    taps = bank.shape[1]
    n_out = round(len(x) * out_rate / in_rate)
    pad_after = delay_up // up + down + 2
    buf = np.concatenate((np.zeros(taps - 1), x.astype(np.float64), np.zeros(pad_after)))
    return round_to_int16(_filter(in_rate, out_rate, buf, -(taps - 1), 0, n_out, delay_up))
