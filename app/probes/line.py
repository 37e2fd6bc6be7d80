"""The telephone line: band-limit, 8 kHz G.711 mu-law, optional packet loss, back to 16 kHz.

:func:`telephone_line` models a narrowband PSTN/SIP leg end to end:

1. band-limit to 300-3400 Hz (a zero-phase FFT mask with raised-cosine edges from
   200 to 300 Hz and from 3400 to 3600 Hz; nothing passes below 200 or above 3600 Hz);
2. resample 16 kHz -> 8 kHz (:func:`app.audio.resample.resample`);
3. G.711 mu-law encode and decode (:mod:`app.audio.g711`);
4. packet loss: the 8 kHz stream is cut into 20 ms packets (160 samples) and exactly
   ``round(loss_pct/100 * packets)`` of them, chosen by the seed, are lost; a lost
   packet is concealed with silence (no packet-loss concealment, the harshest case);
5. resample 8 kHz -> 16 kHz and apply the band mask again (the receiving side's filter,
   which also removes imaging and quantisation noise outside the band).

The output has the input's length. Pure and synchronous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.audio.g711 import ulaw_decode, ulaw_encode
from app.audio.resample import resample

LINE_RATE = 8000
PACKET_MS = 20
BAND_HZ = (300.0, 3400.0)
EDGE_HZ = (200.0, 3600.0)


@dataclass(frozen=True, slots=True)
class LineResult:
    """What :func:`telephone_line` did.

    Attributes:
        audio: the output, int16 at the input rate, the input's length.
        packets: how many 20 ms packets the 8 kHz stream had (a partial last one counts).
        lost: indices of the lost packets, ascending.
    """

    audio: NDArray[np.int16]
    packets: int
    lost: tuple[int, ...]


def band_limit(x: NDArray[np.float64], rate: int) -> NDArray[np.float64]:
    """Return ``x`` band-limited to :data:`BAND_HZ` (edges as in the module docstring)."""
    if len(x) == 0:
        return np.zeros(0)
    f = np.fft.rfftfreq(len(x), 1.0 / rate)
    lo0, hi0 = EDGE_HZ
    lo1, hi1 = BAND_HZ
    gain = np.zeros_like(f)
    gain[(f >= lo1) & (f <= hi1)] = 1.0
    rise = (f > lo0) & (f < lo1)
    gain[rise] = 0.5 - 0.5 * np.cos(np.pi * (f[rise] - lo0) / (lo1 - lo0))
    fall = (f > hi1) & (f < hi0)
    gain[fall] = 0.5 + 0.5 * np.cos(np.pi * (f[fall] - hi1) / (hi0 - hi1))
    return np.fft.irfft(np.fft.rfft(x) * gain, len(x))


def lost_packets(packets: int, loss_pct: float, rng: np.random.Generator) -> tuple[int, ...]:
    """Return the indices (ascending) of ``round(loss_pct/100 * packets)`` distinct packets
    drawn uniformly by ``rng``."""
    count = int(round(loss_pct / 100.0 * packets))
    if count <= 0:
        return ()
    return tuple(int(i) for i in np.sort(rng.permutation(packets)[:count]))


def _int16(y: NDArray[np.float64]) -> NDArray[np.int16]:
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def telephone_line(
    x: NDArray[np.int16],
    rate: int,
    *,
    loss_pct: float = 0.0,
    rng: np.random.Generator | None = None,
) -> LineResult:
    """Pass ``x`` (mono int16 at ``rate``) through the line described in the module docstring.

    Args:
        x: the caller's audio.
        rate: its sample rate (16000 for probes).
        loss_pct: percentage of 20 ms packets lost, 0-100.
        rng: draws the lost packets (required when ``loss_pct`` > 0).
    """
    narrow = resample(_int16(band_limit(np.asarray(x, dtype=np.float64), rate)), rate, LINE_RATE)
    decoded = ulaw_decode(ulaw_encode(narrow)).copy()
    size = LINE_RATE * PACKET_MS // 1000
    packets = -(-len(decoded) // size)
    lost: tuple[int, ...] = ()
    if loss_pct > 0:
        if rng is None:
            raise ValueError("telephone_line needs an rng when loss_pct > 0")
        lost = lost_packets(packets, loss_pct, rng)
        for i in lost:
            decoded[i * size : (i + 1) * size] = 0
    wide = resample(decoded, LINE_RATE, rate).astype(np.float64)
    out = np.zeros(len(x))
    out[: min(len(x), len(wide))] = wide[: len(x)]
    return LineResult(_int16(band_limit(out, rate)), packets, lost)
