"""A WAV file as the caller: a paced real-time source and a virtual sink.

The source releases 20 ms frames on the clock, as a microphone would, but stamps each
frame with its *nominal* capture end time (``t0 + (k+1) * 20 ms``) rather than the time
it was read, so figures computed from a file call do not depend on scheduling jitter.
The sink keeps everything written to it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import FRAME_MS
from app.audio.port import CallerFrame, CallerPort
from app.audio.resample import resample
from app.audio.wavio import read_wav

_FRAME_NS = FRAME_MS * 1_000_000


class WavFilePort(CallerPort):
    """Plays ``pcm`` as caller audio in real time and records agent audio.

    Frames are released in lockstep with the clock: :meth:`read` at ``now_ns`` returns
    every frame ``k`` whose nominal end ``t0_ns + (k+1)*20 ms`` is not after ``now_ns``.
    The last partial frame is zero-padded; after it the port keeps returning silence and
    :attr:`exhausted` is True. Agent audio written after a frame read is taken to start
    playing at that frame's ``t_ns`` (the frame captured over ``[T-20 ms, T]`` is followed
    by agent audio from ``T``).

    Runs on the bridge's thread; no devices, no threads.

    Args:
        pcm: caller audio, int16 mono at ``rate``.
        rate: sample rate of frames in and out.
    """

    def __init__(self, pcm: NDArray[np.int16], rate: int = 16000) -> None:
        if rate <= 0:
            raise ValueError(f"invalid sample rate {rate}")
        self.rate = rate
        self._pcm = np.asarray(pcm, dtype=np.int16).copy()
        self._n_frames = -(-len(self._pcm) // self.frame_samples)
        self._t0_ns: int | None = None
        self._next = 0  # index of the next frame to release
        self._last_t_ns: int | None = None
        self._sink_end_ns: int | None = None
        self._played: list[NDArray[np.int16]] = []
        self._stopped = False

    @classmethod
    def from_wav(cls, path: str | Path, rate: int = 16000) -> WavFilePort:
        """Load a WAV file (any common format, mixed to mono) and convert it to ``rate``.

        Raises:
            AudioFormatError: the file cannot be read (see ``read_wav``).
            ConfigError: the file's rate cannot be converted to ``rate``.
        """
        pcm, file_rate = read_wav(path)
        return cls(resample(pcm, file_rate, rate), rate)

    @property
    def duration_ns(self) -> int:
        """Length of the caller audio, in nanoseconds."""
        return len(self._pcm) * 1_000_000_000 // self.rate

    @property
    def exhausted(self) -> bool:
        """True once every frame holding file audio has been returned by :meth:`read`."""
        return self._next >= self._n_frames

    def start(self, t0_ns: int) -> None:
        """Anchor frame 0 so that it ends at ``t0_ns + 20 ms``."""
        self._t0_ns = t0_ns
        self._next = 0
        self._last_t_ns = None
        self._sink_end_ns = None
        self._stopped = False

    def next_due_ns(self) -> int | None:
        """Nominal end time of the next frame :meth:`read` will release (None before
        :meth:`start` and after :meth:`stop`); the port never runs out of frames.
        """
        if self._t0_ns is None or self._stopped:
            return None
        return self._t0_ns + (self._next + 1) * _FRAME_NS

    def read(self, now_ns: int) -> list[CallerFrame]:
        """Return the frames whose nominal end time is at or before ``now_ns``.

        Returns an empty list before :meth:`start` and after :meth:`stop`.
        """
        if self._t0_ns is None or self._stopped:
            return []
        due = (now_ns - self._t0_ns) // _FRAME_NS
        frames: list[CallerFrame] = []
        n = self.frame_samples
        while self._next < due:
            k = self._next
            pcm = np.zeros(n, dtype=np.int16)
            chunk = self._pcm[k * n : (k + 1) * n]
            pcm[: len(chunk)] = chunk
            t_ns = self._t0_ns + (k + 1) * _FRAME_NS
            frames.append(CallerFrame(pcm, t_ns))
            self._last_t_ns = t_ns
            self._next += 1
        return frames

    def write(self, pcm: NDArray[np.int16], now_ns: int) -> int:
        """Record agent audio; return the clock time its first sample plays.

        That is the ``t_ns`` of the last frame read, or the end of the previous write if
        later (so several writes per frame queue up back to back); ``t0_ns`` (or
        ``now_ns`` before :meth:`start`) if no frame was read yet.
        """
        base = self._last_t_ns
        if base is None:
            base = self._t0_ns if self._t0_ns is not None else now_ns
        start = base if self._sink_end_ns is None else max(base, self._sink_end_ns)
        pcm = np.array(pcm, dtype=np.int16, copy=True)
        self._played.append(pcm)
        self._sink_end_ns = start + len(pcm) * 1_000_000_000 // self.rate
        return start

    def played(self) -> NDArray[np.int16]:
        """Everything written to the sink so far, concatenated."""
        if not self._played:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._played)

    def stop(self) -> None:
        """Stop releasing frames; idempotent. The sink record is kept."""
        self._stopped = True
