"""Local voice activity detection: a plain state machine over webrtcvad.

:class:`VadTracker` is fed caller audio of any length and returns speech start/end edges
stamped in samples of the stream it was fed, so the bridge can map them to the clock. It
is synchronous and pure apart from webrtcvad's C state; run it on the bridge thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import webrtcvad
from numpy.typing import NDArray

from app.audio.pcm import int16_to_bytes, rms_dbfs
from app.errors import ConfigError

#: Sample rates webrtcvad accepts.
VAD_RATES = (8000, 16000, 32000, 48000)

#: Frame lengths webrtcvad accepts, in milliseconds.
VAD_FRAME_MS = (10, 20, 30)
#: Edges are placed on this grid (ms) inside the frames around them, where the level
#: crosses :data:`EDGE_DBFS`, so two trackers fed the same speech on differently aligned
#: frames agree to a couple of milliseconds.
EDGE_WINDOW_MS = 2
EDGE_DBFS = -45.0


@dataclass(frozen=True, slots=True)
class VadEdge:
    """A change of speech state.

    Attributes:
        speaking: True for speech start, False for speech end.
        sample: stream position of the edge, in samples since the tracker's first sample.
            For a start, the first sample of the first voiced frame of the run that
            confirmed speech; for an end, one past the last sample of the last voiced
            frame.
    """

    speaking: bool
    sample: int


class VadTracker:
    """Speech start/end detection with a start delay and a hangover.

    Speech starts after ``start_ms`` of consecutive voiced frames and ends after
    ``hangover_ms`` of consecutive unvoiced frames; edges are stamped where the voiced run
    began or ended, not where the decision was taken. A frame is voiced when webrtcvad
    says so *and* its level is at least ``min_rms_dbfs`` (webrtcvad flags faint hiss and
    noise as speech).

    Args:
        rate: sample rate of the audio fed (8000, 16000, 32000 or 48000).
        frame_ms: webrtcvad frame length (10, 20 or 30).
        aggressiveness: webrtcvad mode 0 (least) .. 3 (most aggressive filtering).
        start_ms: voiced time needed to declare speech.
        hangover_ms: unvoiced time needed to declare the end of speech.
        min_rms_dbfs: frames below this level are unvoiced whatever webrtcvad says.

    Raises:
        ConfigError: an unsupported rate, frame length or aggressiveness.
    """

    def __init__(
        self,
        rate: int = 16000,
        frame_ms: int = 10,
        aggressiveness: int = 2,
        start_ms: int = 30,
        hangover_ms: int = 300,
        min_rms_dbfs: float = -50.0,
    ) -> None:
        if rate not in VAD_RATES:
            raise ConfigError(f"VAD sample rate must be one of {VAD_RATES}, not {rate}")
        if frame_ms not in VAD_FRAME_MS:
            raise ConfigError(f"VAD frame must be one of {VAD_FRAME_MS} ms, not {frame_ms}")
        if aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"VAD aggressiveness must be 0..3, not {aggressiveness}")
        self.rate = rate
        self.frame_ms = frame_ms
        self.min_rms_dbfs = min_rms_dbfs
        self._vad = webrtcvad.Vad(aggressiveness)
        self._frame = rate * frame_ms // 1000
        self._start_frames = max(1, -(-start_ms // frame_ms))
        self._hang_frames = max(1, -(-hangover_ms // frame_ms))
        self._pending = np.zeros(self._frame, dtype=np.int16)
        self._n_pending = 0
        self._position = 0  # samples fed
        self._framed = 0  # samples consumed into whole frames
        self._speaking = False
        self._run = 0  # consecutive voiced (while silent) or unvoiced (while speaking)
        self._run_start = 0
        self._last_voiced_end = 0
        # Copies of the frames around the edges, to place each edge to the millisecond.
        self._prev = np.zeros(self._frame, dtype=np.int16)
        self._run_pre = np.zeros(2 * self._frame, dtype=np.int16)
        self._tail = np.zeros(2 * self._frame, dtype=np.int16)
        self._tail_filled = 0
        self._win = max(1, rate * EDGE_WINDOW_MS // 1000)

    @property
    def speaking(self) -> bool:
        """True between a speech-start edge and the matching end edge."""
        return self._speaking

    @property
    def position(self) -> int:
        """Number of samples fed so far."""
        return self._position

    def feed(self, x: NDArray[np.int16]) -> list[VadEdge]:
        """Feed the next samples (any length) and return the edges they complete.

        A partial frame at the end is kept for the next call.
        """
        x = np.asarray(x, dtype=np.int16)
        self._position += len(x)
        edges: list[VadEdge] = []
        i = 0
        if self._n_pending:
            take = min(self._frame - self._n_pending, len(x))
            self._pending[self._n_pending : self._n_pending + take] = x[:take]
            self._n_pending += take
            i = take
            if self._n_pending < self._frame:
                return edges
            self._step(self._pending, edges)
            self._n_pending = 0
        while len(x) - i >= self._frame:
            self._step(x[i : i + self._frame], edges)
            i += self._frame
        rest = len(x) - i
        if rest:
            self._pending[:rest] = x[i:]
            self._n_pending = rest
        return edges

    def finish(self) -> list[VadEdge]:
        """Close the stream: an open speech segment ends at its last voiced frame.

        A trailing partial frame is ignored. The tracker then starts over (same config).
        """
        edges: list[VadEdge] = []
        if self._speaking:
            edges.append(VadEdge(False, self._last_voiced_end))
        self._speaking = False
        self._run = 0
        self._n_pending = 0
        self._framed = self._position
        return edges

    def _loud_windows(self, x: NDArray[np.int16]) -> NDArray[np.intp]:
        """Indices of the ``EDGE_WINDOW_MS`` windows of ``x`` at or above ``EDGE_DBFS``."""
        n = len(x) // self._win
        w = x[: n * self._win].astype(np.float64).reshape(n, self._win)
        level = 10 * np.log10(np.mean(w * w, axis=1) + 1e-12) - 20 * np.log10(32768.0)
        return np.nonzero(level >= EDGE_DBFS)[0]

    def _refined_start(self) -> int:
        """The start edge to the millisecond: the first loud window of the frame before the
        voiced run and the run's first frame (else the run's frame boundary)."""
        loud = self._loud_windows(self._run_pre)
        if not len(loud):
            return self._run_start
        return self._run_start - self._frame + int(loud[0]) * self._win

    def _refined_end(self) -> int:
        """The end edge to the millisecond: one past the last loud window of the last voiced
        frame and the frame after it (else the voiced frame boundary)."""
        loud = self._loud_windows(self._tail[: self._tail_filled])
        if not len(loud):
            return self._last_voiced_end
        return self._last_voiced_end - self._frame + (int(loud[-1]) + 1) * self._win

    def _step(self, frame: NDArray[np.int16], edges: list[VadEdge]) -> None:
        start = self._framed
        end = start + self._frame
        self._framed = end
        voiced = rms_dbfs(frame) >= self.min_rms_dbfs and self._vad.is_speech(
            int16_to_bytes(frame), self.rate
        )
        if voiced:
            self._tail[: self._frame] = frame
            self._tail_filled = self._frame
        elif self._tail_filled == self._frame:
            self._tail[self._frame :] = frame
            self._tail_filled = 2 * self._frame
        prev = self._prev.copy() if not self._speaking and voiced and self._run == 0 else None
        self._prev[:] = frame
        if not self._speaking:
            if not voiced:
                self._run = 0
                return
            if self._run == 0:
                self._run_start = start
                self._run_pre[: self._frame] = prev if prev is not None and start else 0
                self._run_pre[self._frame :] = frame
            self._run += 1
            self._last_voiced_end = end
            if self._run >= self._start_frames:
                self._speaking = True
                self._run = 0
                edges.append(VadEdge(True, max(0, self._refined_start())))
            return
        if voiced:
            self._run = 0
            self._last_voiced_end = end
            return
        self._run += 1
        if self._run >= self._hang_frames:
            self._speaking = False
            self._run = 0
            edges.append(VadEdge(False, self._refined_end()))


def speech_segments(x: NDArray[np.int16], rate: int, **kwargs: Any) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` sample ranges of speech in a whole signal.

    Args:
        x: int16 mono samples.
        rate: their sample rate (one of :data:`VAD_RATES`).
        **kwargs: passed to :class:`VadTracker`.
    """
    tracker = VadTracker(rate, **kwargs)
    edges = tracker.feed(x) + tracker.finish()
    segments: list[tuple[int, int]] = []
    start: int | None = None
    for edge in edges:
        if edge.speaking:
            start = edge.sample
        elif start is not None:
            segments.append((start, edge.sample))
            start = None
    return segments
