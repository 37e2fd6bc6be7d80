"""Active-speech level: which parts of a signal are speech, their RMS level, and mixing
noise at a signal-to-noise ratio measured on them.

Definitions (pure functions, mono signals, any rate):

- The signal is cut into :data:`FRAME_MS` frames (a trailing partial frame is ignored).
- A frame is *active* when its RMS level is at most :data:`ACTIVE_RANGE_DB` below the
  loudest frame and above :data:`FLOOR_DBFS`. Pauses and the silence espeak-ng leaves
  around a sentence are therefore not counted.
- The *active level* is the RMS, in dBFS, over the active frames together
  (full-scale square wave = 0 dBFS, as in :func:`app.audio.pcm.rms_dbfs`).
- The *SNR* of speech ``s`` plus noise ``n`` is ``10 log10(P_s / P_n)`` where both mean
  powers are taken over the samples of the active frames of ``s`` alone.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import round_to_int16
from app.errors import ConfigError

FRAME_MS = 20
ACTIVE_RANGE_DB = 35.0
FLOOR_DBFS = -70.0
_FULL = 32768.0


def _frames(x: NDArray[np.floating] | NDArray[np.int16], rate: int) -> NDArray[np.float64]:
    w = rate * FRAME_MS // 1000
    n = len(x) // w
    return np.asarray(x[: n * w], dtype=np.float64).reshape(n, w)


def active_mask(x: NDArray[np.int16], rate: int) -> NDArray[np.bool_]:
    """Return a per-sample mask of the active frames of ``x`` (False past the last whole
    frame)."""
    frames = _frames(x, rate)
    mask = np.zeros(len(x), dtype=bool)
    if len(frames) == 0:
        return mask
    power = np.mean(frames**2, axis=1)
    db = 10 * np.log10(np.maximum(power, 1e-20) / _FULL**2)
    active = db >= max(float(db.max()) - ACTIVE_RANGE_DB, FLOOR_DBFS)
    mask[: frames.size] = np.repeat(active, frames.shape[1])
    return mask


def _active_power(x: NDArray[np.int16], rate: int) -> tuple[float, NDArray[np.bool_]]:
    mask = active_mask(x, rate)
    if not mask.any():
        raise ConfigError("the probe has no active speech (silent or shorter than 20 ms)")
    sel = np.asarray(x, dtype=np.float64)[mask]
    return float(np.mean(sel**2)), mask


def active_level_dbfs(x: NDArray[np.int16], rate: int) -> float:
    """Return the active-speech RMS level of ``x`` in dBFS.

    Raises:
        ConfigError: ``x`` has no active frame (silent or shorter than one frame).
    """
    power, _ = _active_power(x, rate)
    return 10 * float(np.log10(power / _FULL**2))


def set_active_level(x: NDArray[np.int16], rate: int, dbfs: float) -> NDArray[np.int16]:
    """Return ``x`` scaled so that its active level is ``dbfs`` (samples past full scale
    are clipped, which only happens for targets within a few dB of 0 dBFS).

    Raises:
        ConfigError: ``x`` has no active frame.
    """
    gain = 10 ** ((dbfs - active_level_dbfs(x, rate)) / 20)
    return round_to_int16(np.asarray(x, dtype=np.float64) * gain)


def mix_at_snr(
    speech: NDArray[np.int16], noise: NDArray[np.float64], rate: int, snr_db: float
) -> NDArray[np.int16]:
    """Return ``speech`` plus ``noise`` scaled to give ``snr_db`` on the active speech.

    ``noise`` must have the length of ``speech``; the sum is rounded and clipped to int16.

    Raises:
        ConfigError: ``speech`` has no active frame, or ``noise`` is silent over it.
    """
    p_s, mask = _active_power(speech, rate)
    p_n = float(np.mean(np.asarray(noise, dtype=np.float64)[mask] ** 2))
    if p_n <= 0.0:
        raise ConfigError("the noise is silent where the probe speaks")
    gain = np.sqrt(p_s / (p_n * 10 ** (snr_db / 10)))
    return round_to_int16(np.asarray(speech, dtype=np.float64) + gain * noise)
