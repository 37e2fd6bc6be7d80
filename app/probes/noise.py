"""Noise signals for the ``white``, ``pink``, ``babble`` and ``noise:FILE`` conditions.

Each generator returns float64 noise of exactly ``n`` samples at
:data:`~app.probes.cache.PROBE_RATE`, at an arbitrary level (the caller scales it to an
SNR with :func:`app.probes.levels.mix_at_snr`), determined by the numpy generator passed
in, so the same seed always gives the same noise.

- white: independent Gaussian samples (flat spectrum).
- pink: white noise shaped by ``1/sqrt(f)`` in the frequency domain (power falls 3 dB per
  octave); the DC bin is zeroed.
- babble: :data:`BABBLE_TALKERS` voices, other than the probe's own voice, each speaking a
  fixed neutral sentence (rendered with espeak-ng through the render cache), each brought
  to the same active-speech level, looped from a random start and summed, so several
  people talk at once at equal loudness.
- file: the user's WAV (any format :mod:`app.audio.wavio` reads, converted to 16 kHz
  mono), looped from a random start to cover the probe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.errors import ConfigError
from app.probes.cache import PROBE_RATE
from app.probes.levels import active_level_dbfs
from app.probes.speech import load_recording, speak
from app.probes.voices import VoiceChoice

#: How many talkers a babble mixes.
BABBLE_TALKERS = 4

#: The babble talker pool: (espeak-ng voice, words per minute, pitch, neutral sentence).
BABBLE_POOL: tuple[tuple[str, int, int, str], ...] = (
    (
        "en-us+m3",
        170,
        45,
        "The committee will meet again on Thursday to review the figures "
        "for the last quarter and agree on the budget.",
    ),
    (
        "en-gb+f2",
        165,
        60,
        "Please remember to bring the signed forms to the front desk "
        "before noon, and keep a copy for your own records.",
    ),
    (
        "es+m4",
        175,
        40,
        "El tren de la mañana salió con veinte minutos de retraso por la "
        "lluvia, pero llegó a tiempo para la reunión.",
    ),
    (
        "fr-fr+f4",
        170,
        55,
        "Nous avons reçu les documents hier soir et nous les lirons "
        "demain matin avant de prendre une décision.",
    ),
    (
        "de+m2",
        160,
        50,
        "Die Bibliothek bleibt während der Renovierung bis zum Ende des "
        "Monats geschlossen, die Ausleihe läuft weiter.",
    ),
    (
        "it+f1",
        175,
        65,
        "Il mercato del sabato apre presto e chiude subito dopo mezzogiorno, "
        "quindi conviene arrivare di buon'ora.",
    ),
)


def white(n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Return ``n`` samples of Gaussian white noise (unit variance)."""
    return rng.standard_normal(n)


def pink(n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Return ``n`` samples of pink (1/f power) noise, unit RMS."""
    if n == 0:
        return np.zeros(0)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    shape = np.zeros_like(f)
    shape[1:] = 1.0 / np.sqrt(f[1:])
    y = np.fft.irfft(spec * shape, n)
    rms = float(np.sqrt(np.mean(y**2)))
    return y / rms if rms > 0 else y


def _loop(x: NDArray[np.float64], n: int, start: int) -> NDArray[np.float64]:
    reps = -(-(n + start) // len(x))
    return np.tile(x, reps)[start : start + n]


def babble(
    n: int, rng: np.random.Generator, *, exclude_voice: str | None, cache_dir: Path
) -> NDArray[np.float64]:
    """Return ``n`` samples of babble from :data:`BABBLE_TALKERS` talkers of
    :data:`BABBLE_POOL` whose base voice differs from ``exclude_voice``'s.

    Raises:
        ConfigError: espeak-ng is missing or fails.
    """
    base = (exclude_voice or "").split("+")[0].lower()
    order = rng.permutation(len(BABBLE_POOL))
    talkers = [BABBLE_POOL[i] for i in order if BABBLE_POOL[i][0].split("+")[0] != base]
    mix = np.zeros(n)
    for voice, wpm, pitch, text in talkers[:BABBLE_TALKERS]:
        _, pcm = speak(text, VoiceChoice(voice, wpm, pitch), cache_dir)
        gain = 10 ** (-active_level_dbfs(pcm, PROBE_RATE) / 20)
        mix += _loop(pcm.astype(np.float64) * gain, n, int(rng.integers(len(pcm))))
    return mix


def from_file(path: Path, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Return ``n`` samples of the WAV at ``path`` (16 kHz mono), looped from a random
    start.

    Raises:
        AudioFormatError: the file is missing or not a usable WAV (names the file).
        ConfigError: the file is digital silence.
    """
    pcm = load_recording(path).astype(np.float64)
    if not np.any(pcm):
        raise ConfigError("noise file is silent", path=str(path))
    return _loop(pcm, n, int(rng.integers(len(pcm))))
