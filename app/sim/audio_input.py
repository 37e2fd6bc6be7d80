"""The simulator's listening side: caller audio in, speech edges out, on audio time.

:class:`AudioInput` decodes the client's audio, resamples it to 16 kHz and runs
:class:`app.audio.vad.VadTracker` over it in whole 10 ms frames. Speech edges are counted in
samples of the audio the client sent, never in wall time; each is mapped to the clock
through the arrival stamps of the chunks: the clock time of input sample ``q`` of a chunk
covering ``[a, b)`` received at ``t_recv`` is ``t_recv - (b - q)/rate``.

Synchronous and pure apart from the injected :class:`app.clock.Clock` (read only when an
audio position must be mapped before any audio arrived). Runs on the server's loop thread.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from app.audio.g711 import alaw_decode, ulaw_decode
from app.audio.pcm import bytes_to_int16
from app.audio.resample import StreamResampler
from app.audio.vad import VadTracker
from app.clock import MONOTONIC, Clock

#: Rate the VAD runs at.
VAD_RATE = 16000
_VAD_FRAME = VAD_RATE // 100  # 10 ms frames


def codec_rate(codec: str) -> int:
    """Sample rate of an input codec name (see :class:`InputConfig`)."""
    return {"pcm": 24000, "pcm16": 16000}.get(codec, 8000)


@dataclass(slots=True)
class InputConfig:
    """The client's input-audio settings, as far as the simulator cares."""

    codec: str = "pcm"  # "pcm" (24 kHz PCM16), "pcm16" (16 kHz PCM16), "pcmu"/"pcma" (8 kHz)
    vad: bool = True
    silence_ms: int = 500
    prefix_ms: int = 300
    create_response: bool = True
    interrupt_response: bool = True

    @property
    def rate(self) -> int:
        """Sample rate of the client's input audio."""
        return codec_rate(self.codec)


@dataclass(frozen=True, slots=True)
class SpeechEdge:
    """A VAD edge in audio time and on the clock.

    Attributes:
        speaking: True for a start, False for an end.
        sample: 16 kHz samples since the first audio of the connection.
        t_ns: the clock time of that sample (monotonic ns).
    """

    speaking: bool
    sample: int
    t_ns: int

    @property
    def ms(self) -> float:
        """Audio time of the edge in milliseconds since the first audio."""
        return self.sample * 1000.0 / VAD_RATE


class AudioInput:
    """Caller audio: decode, resample to 16 kHz, VAD in whole 10 ms frames, clock map.

    Args:
        codec: the input codec name (see :class:`InputConfig`).
        hangover_ms: endpointing silence before a speech end.
        clock: read only by :meth:`clock_of` before any audio arrived.
    """

    def __init__(self, codec: str = "pcm", hangover_ms: int = 500,
                 clock: Clock = MONOTONIC) -> None:
        self.codec = codec
        self.fed16 = 0  # 16 kHz samples handed to the VAD (whole frames)
        self.in_s = 0.0  # input audio seconds received
        self.uncommitted_s = 0.0
        self._clock = clock
        self._rest = np.zeros(0, dtype=np.int16)
        self._rs = StreamResampler(self.rate, VAD_RATE)
        self._hangover = hangover_ms
        self._vad = self._make_vad(hangover_ms)
        self._vad_base = 0
        self._chunks: deque[tuple[float, float, int]] = deque(maxlen=5000)

    @property
    def rate(self) -> int:
        """Sample rate of the input codec."""
        return codec_rate(self.codec)

    @property
    def hangover_ms(self) -> int:
        """The endpointing hangover in force."""
        return self._hangover

    @property
    def speaking(self) -> bool:
        """True between a speech start and its end."""
        return self._vad.speaking

    @staticmethod
    def _make_vad(hangover_ms: int) -> VadTracker:
        return VadTracker(rate=VAD_RATE, frame_ms=10, aggressiveness=2, start_ms=30,
                          hangover_ms=hangover_ms, min_rms_dbfs=-50.0)

    def set_codec(self, codec: str) -> None:
        """Switch the input format (a new resampler; audio time carries on)."""
        if codec != self.codec:
            self.codec = codec
            self._rs = StreamResampler(self.rate, VAD_RATE)

    def set_hangover(self, ms: int) -> None:
        """Use a new endpointing hangover from the next utterance on.

        The VAD is rebuilt only between utterances (never while speaking), at a frame
        boundary, so audio time stays continuous.
        """
        if ms == self._hangover or self._vad.speaking:
            return
        self._hangover = ms
        self._vad = self._make_vad(ms)
        self._vad_base = self.fed16

    def feed(self, payload: bytes, t_recv_ns: int) -> list[SpeechEdge]:
        """Take one chunk of client audio (wire bytes) received at ``t_recv_ns``."""
        if self.codec == "pcmu":
            x = ulaw_decode(payload)
        elif self.codec == "pcma":
            x = alaw_decode(payload)
        else:
            x = bytes_to_int16(payload)
        if len(x) == 0:
            return []
        dur = len(x) / self.rate
        self._chunks.append((self.in_s, self.in_s + dur, t_recv_ns))
        self.in_s += dur
        self.uncommitted_s += dur
        y = self._rs.process(x)
        if len(self._rest):
            y = np.concatenate([self._rest, y])
        n = len(y) // _VAD_FRAME * _VAD_FRAME
        self._rest = y[n:].copy()
        if n == 0:
            return []
        edges = self._vad.feed(y[:n])
        self.fed16 += n
        return [self._edge(e.speaking, self._vad_base + e.sample) for e in edges]

    def _edge(self, speaking: bool, sample16: int) -> SpeechEdge:
        delay_s = self._rs.delay_ms / 1000  # 0 when the input is already at 16 kHz
        return SpeechEdge(speaking, sample16, self.clock_of(sample16 / VAD_RATE - delay_s))

    def clock_of(self, sec: float) -> int:
        """Map an input audio position (seconds since the first audio) to the clock."""
        if not self._chunks:
            return self._clock.now_ns()
        for a, b, t in reversed(self._chunks):
            if a <= sec:
                return t - int(round((b - sec) * 1e9))
        a, b, t = self._chunks[0]
        return t - int(round((b - sec) * 1e9))
