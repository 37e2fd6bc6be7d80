"""A simulated room echo path and the figures that judge an echo canceller.

Pure and synchronous (numpy only). :func:`room_impulse_response` makes a reproducible
impulse response: a direct path after ``delay_ms``, then an exponentially decaying
noise tail (RT60 ``rt60_ms``), scaled so the echo sits ``gain_db`` below the played
signal. :class:`EchoPath` applies it block by block (streaming overlap-add), so the rig
can run it on live audio. :func:`erle_db` is echo return loss enhancement: how far the
canceller brought the echo down, measured on the raw and processed mic signals of a
stretch with far-end speech only.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def room_impulse_response(
    rate: int,
    delay_ms: float = 80.0,
    gain_db: float = -10.0,
    rt60_ms: float = 120.0,
    seed: int = 7,
) -> NDArray[np.float64]:
    """A room impulse response: direct path at ``delay_ms``, decaying tail, overall
    energy gain ``gain_db`` (negative: quieter than the loudspeaker signal)."""
    rng = np.random.default_rng(seed)
    d = int(round(delay_ms * rate / 1000))
    tail = int(rt60_ms * rate / 1000)
    t = np.arange(tail) / rate
    decay = np.exp(-6.91 * t / (rt60_ms / 1000))  # −60 dB at rt60
    h = np.zeros(d + tail)
    h[d:] = rng.standard_normal(tail) * decay * 0.3
    h[d] = 1.0  # the direct path dominates
    h *= 10 ** (gain_db / 20) / math.sqrt(float(np.sum(h * h)))
    return h


class EchoPath:
    """Streaming convolution of played audio with an impulse response.

    Args:
        rir: the impulse response (see :func:`room_impulse_response`).
    """

    def __init__(self, rir: NDArray[np.float64]) -> None:
        self.rir = np.asarray(rir, dtype=np.float64)
        self._tail = np.zeros(len(self.rir) - 1)

    def process(self, x: NDArray[np.int16]) -> NDArray[np.float64]:
        """The echo of block ``x`` (float samples, same length as ``x``)."""
        y = np.convolve(x.astype(np.float64), self.rir)
        n = len(x)
        k = min(len(self._tail), len(y))
        y[:k] += self._tail[:k]
        rest = np.zeros(len(self.rir) - 1)
        over = y[n:]
        rest[: len(over)] = over
        if len(self._tail) > len(y):
            rest[: len(self._tail) - len(y)] += self._tail[len(y) :]
        self._tail = rest
        return y[:n]


def to_int16(x: NDArray[np.float64]) -> NDArray[np.int16]:
    """Round and clip float samples to int16."""
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def erle_db(raw: NDArray[np.int16], processed: NDArray[np.int16], floor: float = 1.0) -> float:
    """Echo return loss enhancement (dB): energy of ``raw`` over that of ``processed``,
    on the same far-end-only stretch. ``floor`` (per-sample RMS) keeps a perfectly
    silent output finite."""
    r = float(np.mean(raw.astype(np.float64) ** 2))
    p = float(np.mean(processed.astype(np.float64) ** 2))
    return 10 * math.log10(max(r, floor**2) / max(p, floor**2))


def block_erle_db(
    raw: NDArray[np.int16], processed: NDArray[np.int16], block: int, min_rms: float = 100.0
) -> NDArray[np.float64]:
    """ERLE per ``block`` samples, NaN where the raw echo is quieter than ``min_rms``."""
    n = min(len(raw), len(processed)) // block
    r = raw[: n * block].astype(np.float64).reshape(n, block)
    p = processed[: n * block].astype(np.float64).reshape(n, block)
    er = np.mean(r * r, axis=1)
    ep = np.maximum(np.mean(p * p, axis=1), 1.0)
    out = 10 * np.log10(np.maximum(er, 1.0) / ep)
    out[np.sqrt(er) < min_rms] = np.nan
    return np.asarray(out, dtype=np.float64)
