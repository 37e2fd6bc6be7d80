"""Short audio clips cut from a session's stereo recording, for reports (``data:`` URIs).

A clip is the turn's time window (its earliest span start to its latest span end, from
``PAD_S`` before), capped at ``MAX_CLIP_S``, mixed to mono (caller + agent, so one player
tells both sides) and written as a PCM16 WAV at the recording's rate: at 16 kHz a clip
is at most 256 KB (about 340 KB as base64).
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from app.audio.wavio import read_wav_channels, wav_header
from app.errors import VoiceprobeError
from app.metrics.records import TurnRecord

MAX_CLIP_S = 8.0
PAD_S = 0.3


def turn_window_s(turn: TurnRecord, t0_ns: int) -> tuple[float, float] | None:
    """The turn's ``(start, end)`` in seconds from the recording's first sample
    (``t0_ns``), or ``None`` when its spans carry no stamps."""
    stamps = [
        (s.start_ns, s.end_ns or s.start_ns) for s in turn.spans.values() if s.start_ns is not None
    ]
    if not stamps:
        return None
    start = min(a for a, _ in stamps)
    end = max(b for _, b in stamps)
    return (start - t0_ns) / 1e9, (end - t0_ns) / 1e9


def clip_data_uri(audio: Path, start_s: float, end_s: float) -> str | None:
    """A ``data:audio/wav;base64,...`` clip of ``audio`` from ``start_s - PAD_S`` to
    ``end_s`` (at most :data:`MAX_CLIP_S`), or ``None`` when the recording cannot be read
    or the window holds no sample."""
    try:
        pcm, rate = read_wav_channels(audio)
    except (VoiceprobeError, OSError):
        return None
    first = max(0, int((start_s - PAD_S) * rate))
    last = min(len(pcm), int(end_s * rate), first + int(MAX_CLIP_S * rate))
    if last <= first:
        return None
    part = pcm[first:last]
    mono = part.astype(np.int32).sum(axis=1) if part.ndim == 2 else part.astype(np.int32)
    data = np.clip(mono, -32768, 32767).astype("<i2").tobytes()
    blob = wav_header(1, rate, len(data)) + data
    return "data:audio/wav;base64," + base64.b64encode(blob).decode("ascii")
