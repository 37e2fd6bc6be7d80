"""Shared audio fixtures for tests: speech synthesised with espeak-ng (installed by the
project's setup script), converted to 16 kHz mono int16."""

from __future__ import annotations

import functools
import struct
import subprocess

import numpy as np
from numpy.typing import NDArray

from app.audio.resample import resample


def _parse_espeak_wav(blob: bytes) -> tuple[NDArray[np.int16], int]:
    """Parse espeak-ng's ``--stdout`` WAV (PCM16 mono; its size fields are placeholders,
    so the data runs to the end of the stream)."""
    assert blob[:4] == b"RIFF" and blob[8:12] == b"WAVE", "espeak-ng did not output a WAV"
    pos, rate = 12, 0
    while pos + 8 <= len(blob):
        cid, size = blob[pos : pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", blob, body)
            assert (tag, channels, bits) == (1, 1, 16), (tag, channels, bits)
        elif cid == b"data":
            data = blob[body:]
            return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.int16), rate
        pos = body + size + (size & 1)
    raise AssertionError("no data chunk in espeak-ng output")


@functools.lru_cache(maxsize=64)
def _espeak(text: str, voice: str, speed: int) -> bytes:
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out.stdout


def espeak_pcm16k(text: str, voice: str = "en", speed: int = 160) -> NDArray[np.int16]:
    """Synthesise ``text`` with espeak-ng and return it as 16 kHz mono int16.

    espeak-ng writes 22050 Hz; the result is converted with ``app.audio.resample``
    (delay-compensated). Results are cached per (text, voice, speed); a fresh array is
    returned each time.
    """
    pcm, rate = _parse_espeak_wav(_espeak(text, voice, speed))
    return resample(pcm, rate, 16000)


def silence(seconds: float, rate: int = 16000) -> NDArray[np.int16]:
    """Return ``seconds`` of digital silence."""
    return np.zeros(round(seconds * rate), dtype=np.int16)


def energy_edges(
    x: NDArray[np.int16], rate: int = 16000, window_ms: int = 5, threshold_dbfs: float = -45.0
) -> tuple[int, int]:
    """Return (first, last+1) sample of the windows whose RMS is above ``threshold_dbfs``:
    the "true" edges of an utterance padded with silence."""
    w = rate * window_ms // 1000
    n = len(x) // w
    frames = x[: n * w].astype(np.float64).reshape(n, w)
    db = 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-12) / 32768.0**2)
    loud = np.flatnonzero(db > threshold_dbfs)
    assert len(loud), "no energy above threshold"
    return int(loud[0] * w), int((loud[-1] + 1) * w)
