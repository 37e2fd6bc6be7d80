"""Agent voice for the simulator: espeak-ng when installed, else a speech-shaped tone.

:func:`synthesize` is synchronous and may take ~100 ms per sentence (a subprocess); call
it off the event loop (``asyncio.to_thread``) or ahead of time. Results are cached
in-process by ``(text, rate, wpm)`` and the arrays returned are read-only.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading

import numpy as np
from numpy.typing import NDArray

from app.audio.resample import resample

ESPEAK_RATE = 22050
_cache: dict[tuple[str, int, int], NDArray[np.int16]] = {}
_lock = threading.Lock()


def espeak_available() -> bool:
    """Return True when the ``espeak-ng`` program is on PATH."""
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, rate: int = 24000, wpm: int = 175) -> NDArray[np.int16]:
    """Return ``text`` spoken as mono int16 samples at ``rate`` Hz.

    Uses ``espeak-ng --stdout -s WPM`` (no shell; the text is one argv element, preceded
    by ``--`` so it can never be read as an option). Without espeak-ng, or if it fails,
    returns :func:`tone_speech` of the same text. Empty text gives an empty array.
    """
    key = (text, rate, wpm)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    out = _espeak(text, rate, wpm) if text.strip() else np.zeros(0, dtype=np.int16)
    if out is None:
        out = tone_speech(text, rate, wpm)
    out.flags.writeable = False
    with _lock:
        _cache[key] = out
    return out


def _espeak(text: str, rate: int, wpm: int) -> NDArray[np.int16] | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    try:
        proc = subprocess.run(
            [exe, "--stdout", "-s", str(int(wpm)), "--", text],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    pcm = _wav_data(proc.stdout)
    if pcm is None or len(pcm) == 0:
        return None
    return resample(pcm, ESPEAK_RATE, rate) if rate != ESPEAK_RATE else pcm


def _wav_data(b: bytes) -> NDArray[np.int16] | None:
    """Extract the PCM16 data of a RIFF WAV (espeak-ng streams it with a bogus size)."""
    if len(b) < 12 or b[:4] != b"RIFF" or b[8:12] != b"WAVE":
        return None
    i = 12
    while i + 8 <= len(b):
        cid, size = b[i : i + 4], struct.unpack("<I", b[i + 4 : i + 8])[0]
        if cid == b"data":
            body = b[i + 8 :]
            body = body[: len(body) // 2 * 2]
            return np.frombuffer(body, dtype="<i2").astype(np.int16)
        i += 8 + size + (size & 1)
    return None


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
