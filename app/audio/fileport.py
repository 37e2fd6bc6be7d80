"""A WAV file as the caller: a paced real-time source and a virtual sink.

The source releases 20 ms frames on the clock, as a microphone would, but stamps each
frame with its *nominal* capture end time (``t0 + (k+1) * 20 ms``) rather than the time
it was read, so figures computed from a file call do not depend on scheduling jitter.

The sink is a virtual output device that plays continuously from ``t0 + 20 ms``: its
clock is the count of samples it has played, never the time a write happened, so a loop
that wakes late and handles a batch of frames at once cannot move it (docs/timing.md).
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
    :attr:`exhausted` is True.

    The sink's lockstep rule: sample ``s`` of the sink's output plays at
    ``t0_ns + 20 ms + s / rate``; frame ``k``'s slot starts at sample
    ``k * frame_samples``, i.e. at the frame's own stamp (the frame captured over
    ``[T-20 ms, T]`` is followed by agent audio from ``T``). A block written for a frame
    (:meth:`write_for_frame`, the bridge's way) starts at that frame's slot, or right after
    the audio already queued if that ends later; if the sink ran dry before the slot (it
    was idle), it played silence up to it. A block written with no frame named
    (:meth:`write`) queues right after the audio already queued. So a stamp depends only on
    the frame stamps named and the samples written before it, never on how the frames
    were grouped into :meth:`read` calls or when the loop ran.

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
        # Whole frames, the last zero-padded: read() hands out read-only views of it.
        self._frames = np.zeros(self._n_frames * self.frame_samples, dtype=np.int16)
        self._frames[: len(self._pcm)] = self._pcm
        self._frames.setflags(write=False)
        self._silence = np.zeros(self.frame_samples, dtype=np.int16)
        self._silence.setflags(write=False)
        self._t0_ns: int | None = None
        self._next = 0  # index of the next frame to release
        self._sink_samples = 0  # the sink's output so far, silence fills included
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
        """Anchor frame 0 so that it ends at ``t0_ns + 20 ms``, and the sink so that it
        starts playing then; the sink's record starts afresh.
        """
        self._t0_ns = t0_ns
        self._next = 0
        self._sink_samples = 0
        self._played = []
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

        Frames are read-only views (no copy per frame). Returns an empty list before
        :meth:`start` and after :meth:`stop`.
        """
        if self._t0_ns is None or self._stopped:
            return []
        due = (now_ns - self._t0_ns) // _FRAME_NS
        frames: list[CallerFrame] = []
        n = self.frame_samples
        while self._next < due:
            k = self._next
            pcm = self._frames[k * n : (k + 1) * n] if k < self._n_frames else self._silence
            frames.append(CallerFrame(pcm, self._t0_ns + (k + 1) * _FRAME_NS))
            self._next += 1
        return frames

    def write(self, pcm: NDArray[np.int16], now_ns: int) -> int:
        """Queue agent audio right after the audio already queued on the sink; return the
        clock time its first sample plays (``t0 + 20 ms + samples queued before / rate``).

        ``now_ns`` only serves before :meth:`start`, when the sink has no clock yet: the
        audio is kept and stamped ``now_ns``.
        """
        return self._queue(pcm, now_ns, None)

    def write_for_frame(self, pcm: NDArray[np.int16], now_ns: int, frame_t_ns: int) -> int:
        """Queue the agent audio that follows the frame stamped ``frame_t_ns``; return the
        clock time its first sample plays: the frame's stamp, or the end of the audio
        already queued if later (the class docstring's lockstep rule).

        Stamps are whole samples from ``t0 + 20 ms``, so the stereo recorder, which places
        the block at the returned stamp, puts it on exactly the samples the sink played
        (docs/timing.md).
        """
        return self._queue(pcm, now_ns, frame_t_ns)

    def _queue(self, pcm: NDArray[np.int16], now_ns: int, frame_t_ns: int | None) -> int:
        pcm = np.array(pcm, dtype=np.int16, copy=True)
        if self._t0_ns is None:
            self._played.append(pcm)
            return now_ns
        start = self._sink_samples
        if frame_t_ns is not None:
            # The frame's slot in sink samples, rounded up: never before the frame's stamp.
            slot = -(-(frame_t_ns - self._t0_ns - _FRAME_NS) * self.rate // 1_000_000_000)
            if slot > start:  # the sink ran dry before this frame's slot: it played silence
                self._played.append(np.zeros(slot - start, dtype=np.int16))
                start = slot
        self._played.append(pcm)
        self._sink_samples = start + len(pcm)
        return self._t0_ns + _FRAME_NS + start * 1_000_000_000 // self.rate

    def played(self) -> NDArray[np.int16]:
        """The sink's output since :meth:`start`: everything written, with the silence it
        played while idle, so sample ``s`` is the one played at ``t0 + 20 ms + s / rate``.
        """
        if not self._played:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._played)

    def stop(self) -> None:
        """Stop releasing frames; idempotent. The sink record is kept."""
        self._stopped = True
