"""The session recording: a stereo PCM16 WAV, caller left and agent right, aligned on the
clock to the sample.

Each channel is placed on one timeline that starts at ``t0_ns``: sample ``k`` of the file
is at clock time ``t0_ns + k / rate``. Synchronous; one owner thread (the bridge's) calls
every method. Disk writes are plain buffered file writes, done when both channels have
audio for a stretch of time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import FRAME_MS
from app.audio.wavio import wav_header


class _Track:
    """One channel: its cursor on the timeline and the samples not yet on disk."""

    __slots__ = ("anchored", "chunks", "cursor", "pending")

    def __init__(self) -> None:
        self.anchored = False
        self.cursor = 0  # timeline position one past the last sample received
        self.chunks: list[NDArray[np.int16]] = []  # samples from the disk position on
        self.pending = 0  # total samples in chunks

    def append(self, pcm: NDArray[np.int16]) -> None:
        if len(pcm):
            self.chunks.append(pcm)
            self.pending += len(pcm)
            self.cursor += len(pcm)

    def take(self, n: int) -> NDArray[np.int16]:
        """Remove and return the first ``n`` pending samples."""
        joined = np.concatenate(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        head, rest = joined[:n], joined[n:]
        self.chunks = [rest] if len(rest) else []
        self.pending -= n
        return head


class StereoRecorder:
    """Writes ``audio.wav``: left = caller, right = agent, PCM16 at ``rate``.

    The first write of a channel anchors it at ``round((start_ns - t0_ns) * rate / 1e9)``
    (zeros before; samples before ``t0_ns`` are dropped). Later writes follow on
    contiguously, unless their ``start_ns`` maps more than one 20 ms frame past the
    channel's cursor, in which case the gap is filled with zeros (a sink that paused).
    Frames are written to disk as soon as both channels cover them; the WAV sizes are
    rewritten at least once per second of audio and on :meth:`flush`, so after a flush
    the file is a valid WAV, and after a crash ``repair_wav_header`` makes it whole.

    Args:
        path: the file to create (truncated if it exists).
        rate: sample rate of both channels.
        t0_ns: clock time of sample 0.

    Raises:
        OSError: the file cannot be created or written.
    """

    def __init__(self, path: str | Path, rate: int, t0_ns: int) -> None:
        self.path = Path(path)
        self.rate = rate
        self.t0_ns = t0_ns
        self._tracks = (_Track(), _Track())
        self._frames_on_disk = 0
        self._frames_at_header = 0
        self._gap = rate * FRAME_MS // 1000
        self._fh = open(self.path, "wb")  # closed by close()
        self._fh.write(wav_header(2, rate, 0))
        self._closed = False

    @property
    def left_samples(self) -> int:
        """Timeline length of the caller channel (including leading and gap zeros)."""
        return self._tracks[0].cursor

    @property
    def right_samples(self) -> int:
        """Timeline length of the agent channel (including leading and gap zeros)."""
        return self._tracks[1].cursor

    @property
    def frames_on_disk(self) -> int:
        """Stereo frames written to the file so far."""
        return self._frames_on_disk

    def left(self, pcm: NDArray[np.int16], start_ns: int) -> None:
        """Record caller audio whose first sample was captured at ``start_ns``."""
        self._add(0, pcm, start_ns)

    def right(self, pcm: NDArray[np.int16], start_ns: int) -> None:
        """Record agent audio whose first sample was played at ``start_ns``."""
        self._add(1, pcm, start_ns)

    def _position(self, t_ns: int) -> int:
        return round((t_ns - self.t0_ns) * self.rate / 1e9)

    def _add(self, channel: int, pcm: NDArray[np.int16], start_ns: int) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: recorder is closed")
        track = self._tracks[channel]
        pcm = np.array(pcm, dtype=np.int16, copy=True)
        pos = self._position(start_ns)
        if not track.anchored:
            track.anchored = True
            if pos < 0:
                pcm = pcm[-pos:]
                pos = 0
            track.append(np.zeros(pos - track.cursor, dtype=np.int16))
        elif pos > track.cursor + self._gap:
            track.append(np.zeros(pos - track.cursor, dtype=np.int16))
        track.append(pcm)
        self._commit()

    def _commit(self) -> None:
        left, right = self._tracks
        if not (left.anchored and right.anchored):
            return
        n = min(left.cursor, right.cursor) - self._frames_on_disk
        if n <= 0:
            return
        self._write_frames(left.take(n), right.take(n))

    def _write_frames(self, left: NDArray[np.int16], right: NDArray[np.int16]) -> None:
        frames = np.empty((len(left), 2), dtype="<i2")
        frames[:, 0] = left
        frames[:, 1] = right
        self._fh.write(frames.tobytes())
        self._frames_on_disk += len(left)
        if self._frames_on_disk - self._frames_at_header >= self.rate:
            self._write_header()

    def _write_header(self) -> None:
        self._fh.seek(0)
        self._fh.write(wav_header(2, self.rate, self._frames_on_disk * 4))
        self._fh.seek(0, 2)
        self._frames_at_header = self._frames_on_disk

    def flush(self) -> None:
        """Rewrite the WAV sizes and push buffered bytes to the OS (no fsync)."""
        if self._closed:
            return
        self._write_header()
        self._fh.flush()

    def close(self) -> None:
        """Pad the shorter channel with zeros to the longer one, finalise and close.

        Idempotent.
        """
        if self._closed:
            return
        end = max(t.cursor for t in self._tracks)
        for track in self._tracks:
            track.anchored = True
            track.append(np.zeros(end - track.cursor, dtype=np.int16))
        self._commit()
        self._write_header()
        self._fh.close()
        self._closed = True
