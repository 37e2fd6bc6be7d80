"""A probe's clean speech at :data:`~app.probes.cache.PROBE_RATE`: synthesised with
espeak-ng (cached by content hash) or read from the user's own recording.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.resample import resample
from app.audio.wavio import read_wav
from app.probes.cache import PROBE_RATE, cached_audio, content_key
from app.probes.espeak import ESPEAK_RATE, espeak_pcm
from app.probes.voices import VoiceChoice


def speech_key(text: str, choice: VoiceChoice) -> str:
    """Return the cache key of ``text`` spoken with ``choice`` (no conditions)."""
    return content_key(
        {
            "kind": "speech",
            "text": text,
            "voice": choice.voice,
            "wpm": choice.wpm,
            "pitch": choice.pitch,
        }
    )


def speak(text: str, choice: VoiceChoice, cache_dir: Path) -> tuple[Path, NDArray[np.int16]]:
    """Return ``(path, samples)`` of ``text`` spoken with ``choice``, mono int16 at 16 kHz.

    espeak-ng runs only when ``cache_dir`` has no file for :func:`speech_key`. The 22.05 kHz
    output is converted with :func:`app.audio.resample.resample` (time-aligned). The
    array is read-only.

    Raises:
        ConfigError: espeak-ng is missing or fails, or the text is empty or holds a NUL.
        StoreError: the cache cannot be written.
    """

    def make() -> NDArray[np.int16]:
        pcm = espeak_pcm(text, voice=choice.voice, wpm=choice.wpm, pitch=choice.pitch)
        return resample(pcm, ESPEAK_RATE, PROBE_RATE)

    return cached_audio(speech_key(text, choice), make, cache_dir)


def load_recording(path: Path) -> NDArray[np.int16]:
    """Read any WAV :mod:`app.audio.wavio` accepts as mono int16 at 16 kHz.

    Channels are averaged; other rates are converted with
    :func:`app.audio.resample.resample`.

    Raises:
        AudioFormatError: the file is missing or not a usable WAV (names the file).
        ConfigError: a sample rate the resampler cannot convert.
    """
    pcm, rate = read_wav(path)
    return resample(pcm, rate, PROBE_RATE) if rate != PROBE_RATE else pcm
