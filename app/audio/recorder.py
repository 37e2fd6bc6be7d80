"""The session recording: a stereo PCM16 WAV, caller left and agent right, aligned on the
clock to the sample.

Each channel is placed on one timeline that starts at ``t0_ns``: sample ``k`` of the file
is at clock time ``t0_ns + k / rate``. Synchronous; one owner thread (the bridge's) calls
every method. Samples go to the file (unbuffered, so what the OS accepted is known to the
byte) once both channels cover :data:`BATCH_MS` of them: one write per five 20 ms frames
rather than one per frame (the bridge's per-frame cost), so a crash loses at most that
much audio; :meth:`StereoRecorder.flush` and ``close`` write whatever is covered.

A disk that refuses a write (full, I/O error, size limit) ends the recording, not the
program: the file is cut back to the last whole frame, its header is made to match, and
:attr:`StereoRecorder.error` says what happened. The owner decides what that means for
the call (the bridge ends it).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import FRAME_MS
from app.audio.wavio import wav_header
from app.private_files import open_private

#: Audio both channels cover before it is written (one write per this many ms).
BATCH_MS = 100
#: The session folder's mono file of the microphone before processing (mic mode).
MIC_RAW_WAV = "mic_raw.wav"


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
        """Remove and return the first ``n`` pending samples (fewer if fewer are pending)."""
        if not self.chunks:
            return np.zeros(0, dtype=np.int16)
        joined = np.concatenate(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        head, rest = joined[:n], joined[n:]
        self.chunks = [rest] if len(rest) else []
        self.pending -= len(head)
        return head


class StereoRecorder:
    """Writes ``audio.wav``: left = caller, right = agent, PCM16 at ``rate``.

    The first write of a channel anchors it at ``round((start_ns - t0_ns) * rate / 1e9)``
    (zeros before). Samples stamped before ``t0_ns`` are dropped, from every write: a
    Twilio stream's caller frames that arrived before the session began used to be
    appended one after another from sample 0, and the whole recording ran that much (about
    100 ms) behind its events. Later writes follow on
    contiguously, unless their ``start_ns`` maps more than one 20 ms frame past the
    channel's cursor, in which case the gap is filled with zeros (a sink that paused).
    Frames are written to disk once both channels cover :data:`BATCH_MS` of them; the WAV
    sizes are rewritten at least once per second of audio and on :meth:`flush` (which
    writes every covered frame first), so after a flush the file is a valid WAV, and
    after a crash ``repair_wav_header`` makes it whole.

    When the disk refuses a write, recording stops for good: the file keeps every whole
    frame the OS accepted, with a header that says so; :attr:`error` holds one line naming
    the file and the reason; later :meth:`left`/:meth:`right` calls do nothing, and no
    method raises because of it.

    With ``channels=1`` it writes a mono file of the left channel alone (``mic_raw.wav``,
    the microphone before processing) under the same rules.

    Args:
        path: the file to create (truncated if it exists).
        rate: sample rate of both channels.
        t0_ns: clock time of sample 0.
        channels: 2 (caller, agent) or 1 (:meth:`left` only).

    Raises:
        OSError: the file cannot be created.
    """

    def __init__(self, path: str | Path, rate: int, t0_ns: int, channels: int = 2) -> None:
        if channels not in (1, 2):
            raise ValueError(f"a recording has 1 or 2 channels, not {channels}")
        self.path = Path(path)
        self.rate = rate
        self.t0_ns = t0_ns
        self.channels = channels
        self._frame_bytes = 2 * channels
        self._tracks = tuple(_Track() for _ in range(channels))
        self._frames_on_disk = 0
        self._frames_at_header = 0
        self._gap = rate * FRAME_MS // 1000
        self._batch = max(1, rate * BATCH_MS // 1000)
        self._fh = open_private(self.path, "wb")  # 0600; closed by close()
        # Every write goes to the descriptor itself, so the file object never holds bytes
        # the OS has not taken, and a failed write leaves a known length behind.
        self._fd = self._fh.fileno()
        self._file_bytes = 0  # bytes the OS accepted, header included
        self._closed = False
        #: Why recording stopped early (a write the disk refused), else ``None``.
        self.error: str | None = None
        self._append(wav_header(channels, rate, 0))

    @property
    def left_samples(self) -> int:
        """Timeline length of the caller channel (including leading and gap zeros)."""
        return self._tracks[0].cursor

    @property
    def right_samples(self) -> int:
        """Timeline length of the agent channel (including leading and gap zeros)."""
        return self._tracks[-1].cursor

    @property
    def frames_on_disk(self) -> int:
        """Stereo frames written to the file so far."""
        return self._frames_on_disk

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def left(self, pcm: NDArray[np.int16], start_ns: int) -> None:
        """Record caller audio whose first sample was captured at ``start_ns``."""
        self._add(0, pcm, start_ns)

    def right(self, pcm: NDArray[np.int16], start_ns: int) -> None:
        """Record agent audio whose first sample was played at ``start_ns``."""
        if self.channels == 1:
            raise ValueError(f"{self.path}: a mono recording has no agent channel")
        self._add(1, pcm, start_ns)

    def _position(self, t_ns: int) -> int:
        return round((t_ns - self.t0_ns) * self.rate / 1e9)

    def _add(self, channel: int, pcm: NDArray[np.int16], start_ns: int) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: recorder is closed")
        if self.error is not None:
            return  # recording stopped at a write error
        track = self._tracks[channel]
        pcm = np.array(pcm, dtype=np.int16, copy=True)
        pos = self._position(start_ns)
        if pos < 0:  # before sample 0: dropped, from every write (not the first alone)
            pcm = pcm[-pos:]
            pos = 0
            if not len(pcm):
                return
        if not track.anchored:
            track.anchored = True
            track.append(np.zeros(pos - track.cursor, dtype=np.int16))
        elif pos > track.cursor + self._gap:
            track.append(np.zeros(pos - track.cursor, dtype=np.int16))
        track.append(pcm)
        self._commit()

    def _commit(self, force: bool = False) -> None:
        """Write the samples both channels cover: at least a batch of them, or, with
        ``force``, all."""
        tracks = self._tracks
        if not all(t.anchored for t in tracks):
            return
        n = min(t.pending for t in tracks)
        if n <= 0 or (n < self._batch and not force):
            return
        self._write_frames([t.take(n) for t in tracks])

    def _write_frames(self, columns: list[NDArray[np.int16]]) -> None:
        k = len(columns)
        frames = np.empty(k * len(columns[0]), dtype="<i2")
        for i, column in enumerate(columns):
            frames[i::k] = column
        if not self._append(memoryview(frames.data).cast("B")):
            return
        self._frames_on_disk += len(columns[0])
        if self._frames_on_disk - self._frames_at_header >= self.rate:
            self._write_header()

    def _append(self, data: bytes | memoryview) -> bool:
        """Write ``data`` at the end of the file; False if the disk refused (recording
        has then stopped, see :meth:`_stop_at`)."""
        if self.error is not None:
            return False
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                self._file_bytes += written
                view = view[written:]
        except OSError as exc:
            self._stop_at(exc)
            return False
        return True

    def _put_header(self, frames: int) -> None:
        """Write the header for ``frames`` frames over the first bytes of the file."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        try:
            os.write(self._fd, wav_header(self.channels, self.rate, frames * self._frame_bytes))
        finally:
            os.lseek(self._fd, 0, os.SEEK_END)

    def _write_header(self) -> None:
        if self.error is not None:
            return
        try:
            self._put_header(self._frames_on_disk)
        except OSError as exc:
            self._stop_at(exc)
            return
        self._frames_at_header = self._frames_on_disk

    def _stop_at(self, exc: OSError) -> None:
        """The disk refused a write: keep the whole frames the OS accepted, make the
        header say so, and stop recording. Overwriting the header needs no new space, so
        this works on a full disk; if even that fails, ``repair_wav_header`` can fix the
        sizes later."""
        self.error = f"cannot write {self.path} ({exc.strerror or exc})"
        fb = self._frame_bytes
        header = len(wav_header(self.channels, self.rate, 0))
        frames = max(0, self._file_bytes - header) // fb
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, header + frames * fb if self._file_bytes >= header else 0)
            self._file_bytes = header + frames * fb
            self._put_header(frames)
        self._frames_on_disk = self._frames_at_header = frames

    def flush(self) -> None:
        """Write every sample both channels cover and rewrite the WAV sizes (no fsync)."""
        if self._closed:
            return
        self._commit(force=True)
        self._write_header()

    def close(self) -> None:
        """Pad the shorter channel with zeros to the longer one, finalise and close.

        Idempotent. Never raises for a write the disk refuses (see :attr:`error`).
        """
        if self._closed:
            return
        end = max(t.cursor for t in self._tracks)
        for track in self._tracks:
            track.anchored = True
            track.append(np.zeros(end - track.cursor, dtype=np.int16))
        self._commit(force=True)
        self._write_header()
        self._closed = True
        with contextlib.suppress(OSError):
            self._fh.close()

    def give_back(self, n_bytes: int) -> int:
        """After :meth:`close`: drop whole frames from the end of the file until at least
        ``n_bytes`` are freed, and fix the header (on a full disk this makes room for the
        session's last metadata). Returns the frames dropped (0 if the file cannot be
        changed)."""
        if not self._closed:
            raise ValueError(f"{self.path}: give_back() needs a closed recorder")
        fb = self._frame_bytes
        drop = min(self._frames_on_disk, math.ceil(n_bytes / fb))
        if drop <= 0:
            return 0
        keep = self._frames_on_disk - drop
        header = wav_header(self.channels, self.rate, keep * fb)
        try:
            os.truncate(self.path, len(header) + keep * fb)
            with open(self.path, "r+b") as fh:
                fh.write(header)
        except OSError:
            return 0
        self._frames_on_disk = self._frames_at_header = keep
        return drop
