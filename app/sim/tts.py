"""Agent voice for the simulator: espeak-ng when installed, else a speech-shaped tone.

:func:`synthesize` is synchronous and may take ~100 ms per sentence (a subprocess); call
it off the event loop (``asyncio.to_thread``) or ahead of time. Results are cached
in-process by ``(text, rate, wpm, voice)`` and the arrays returned are read-only.
"""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import NDArray

from app.audio.resample import resample
from app.errors import VoiceprobeError
from app.probes.espeak import ESPEAK_RATE, WPM_RANGE, espeak_pcm, espeak_program
from app.textsafe import safe_text

_cache: dict[tuple[str, int, int, str], NDArray[np.int16]] = {}
_lock = threading.Lock()


def espeak_available() -> bool:
    """Return True when the ``espeak-ng`` program is on PATH."""
    return espeak_program() is not None


def synthesize(
    text: str, rate: int = 24000, wpm: int = 175, voice: str = "en"
) -> NDArray[np.int16]:
    """Return ``text`` spoken as mono int16 samples at ``rate`` Hz.

    Uses :func:`app.probes.espeak.espeak_pcm` (no shell; the text is one argv element,
    preceded by ``--`` so it can never be read as an option) with ``voice`` (an espeak-ng
    voice name; the default ``en`` is espeak-ng's own default voice) and ``wpm`` clamped
    to espeak-ng's range. Without espeak-ng, or if it fails (an unknown voice included),
    returns :func:`tone_speech` of the same text. Empty text gives an empty array.
    """
    key = (text, rate, wpm, voice)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    out = _espeak(text, rate, wpm, voice) if text.strip() else np.zeros(0, dtype=np.int16)
    if out is None:
        out = tone_speech(text, rate, wpm)
    out.flags.writeable = False
    with _lock:
        _cache[key] = out
    return out


def _espeak(text: str, rate: int, wpm: int, voice: str) -> NDArray[np.int16] | None:
    if espeak_program() is None:
        return None
    # An argument cannot hold NUL or a lone surrogate (scenarios refuse NUL already).
    spoken = safe_text(text).replace("\0", " ")
    try:
        pcm = espeak_pcm(spoken, voice=voice, wpm=min(max(int(wpm), WPM_RANGE[0]), WPM_RANGE[1]))
    except VoiceprobeError:
        return None
    if len(pcm) == 0:
        return None
    return resample(pcm, ESPEAK_RATE, rate) if rate != ESPEAK_RATE else pcm


def tone_speech(text: str, rate: int = 24000, wpm: int = 175) -> NDArray[np.int16]:
    """Return a deterministic speech-like tone lasting as long as ``text`` would be spoken.

    About 62 ms per character at 175 words per minute (scaled by ``wpm``): a 140 Hz
    harmonic series under a 4 Hz syllable envelope, loud enough for any VAD.
    """
    n = int(round(len(text) * 0.062 * 175.0 / max(wpm, 1) * rate))
    if n <= 0:
        return np.zeros(0, dtype=np.int16)
    t = np.arange(n) / rate
    f0 = 140.0 * (1.0 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t - np.pi / 2)
    y = 0.25 * voice * env / 1.5
    return np.clip(np.rint(y * 32767), -32768, 32767).astype(np.int16)
