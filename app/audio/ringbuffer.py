"""A preallocated single-producer/single-consumer int16 ring buffer for audio callbacks.

Threading contract: exactly one writer thread calls :meth:`RingBuffer.write` and exactly
one reader thread calls :meth:`RingBuffer.read` / :meth:`RingBuffer.read_into`. Each side
only ever advances its own counter (``_written`` by the writer, ``_read`` by the reader),
and publishes it *after* copying the samples, with a single attribute store that is atomic
under the GIL. A side therefore never sees samples the other side has not finished
copying, and never loses samples, without any lock. :meth:`clear` and the counters'
consistency across both sides are only guaranteed when called from the reader thread
while no write is in progress, or when the stream is stopped.

A barge-in's cut crosses the threads the same way: the writer asks for it
(:meth:`RingBuffer.request_drop`, one store of its write position) and the reader
honours it at its next block (:meth:`RingBuffer.apply_drop`), so what the writer adds
after asking stays, and the reader's count of samples taken out (:attr:`consumed`) stays
exact whatever the writer does meanwhile.

:meth:`write` and :meth:`read_into` allocate no sample memory (in-place copies through
short-lived slice views only) and take no lock, so they are fit for PortAudio and pjsua2
media callbacks.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


class RingBuffer:
    """Fixed-capacity FIFO of int16 samples.

    Args:
        capacity: maximum number of samples held; allocated once.

    Attributes:
        overruns: samples dropped by :meth:`write` because the buffer was full.
    """

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ring buffer capacity must be positive, not {capacity}")
        self.capacity = capacity
        self._buf = np.zeros(capacity, dtype=np.int16)
        # Monotonic counters (Python ints never overflow); positions are taken modulo.
        self._written = 0  # advanced only by the writer
        self._read = 0  # advanced only by the reader
        self._drop_at = 0  # writer-owned: position of the newest drop request (only grows)
        self._dropped_at = 0  # reader-owned: the request last honoured
        self.overruns = 0  # writer-owned

    @property
    def available(self) -> int:
        """Samples ready to read (a lower bound when read from the writer thread)."""
        return self._written - self._read

    @property
    def written(self) -> int:
        """Samples written since the buffer was made (a position in the stream; any
        thread may read it)."""
        return self._written

    @property
    def consumed(self) -> int:
        """Samples taken out so far, read or dropped (the reader's position in the
        stream, in the writer's numbering)."""
        return self._read

    @property
    def kept(self) -> int:
        """Samples the reader will still read once a pending drop is honoured (writer
        side: :attr:`available` less what :meth:`request_drop` has asked to drop)."""
        return self._written - max(self._read, self._drop_at)

    @property
    def free(self) -> int:
        """Room for samples (a lower bound when read from the reader thread)."""
        return self.capacity - (self._written - self._read)

    def write(self, x: NDArray[np.int16]) -> int:
        """Append samples; writer thread only. Never blocks, never allocates.

        Returns:
            The number of samples accepted. When full, the excess is dropped and added
            to :attr:`overruns`.
        """
        written = self._written
        n = min(len(x), self.capacity - (written - self._read))
        if n < len(x):
            self.overruns += len(x) - n
        if n <= 0:
            return 0
        start = written % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = x[:first]
        if first < n:
            self._buf[: n - first] = x[first:n]
        self._written = written + n  # publish after the copy
        return n

    def read_into(self, out: NDArray[np.int16]) -> int:
        """Fill ``out`` from the buffer; reader thread only. Never blocks, never allocates.

        If fewer than ``len(out)`` samples are available the rest of ``out`` is zeroed
        (the caller counts short blocks itself, by the return value).

        Returns:
            The number of real samples copied.
        """
        read = self._read
        n = min(len(out), self._written - read)
        start = read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start : start + first]
        if first < n:
            out[first:n] = self._buf[: n - first]
        if n < len(out):
            out[n:] = 0
        self._read = read + n  # publish after the copy
        return n

    def read(self, n: int) -> NDArray[np.int16]:
        """Return up to ``n`` samples as a new array; reader thread only (allocates)."""
        n = max(0, min(n, self._written - self._read))
        out = np.empty(n, dtype=np.int16)
        self.read_into(out)
        return out

    def clear(self) -> None:
        """Drop every buffered sample (reader side; see the module's threading contract)."""
        self._read = self._written

    def request_drop(self) -> None:
        """Writer side: ask the reader to drop everything written so far, at its next
        :meth:`apply_drop`; samples written after this call stay. Never blocks."""
        self._drop_at = self._written

    def apply_drop(self) -> int | None:
        """Reader side: honour the newest :meth:`request_drop` not yet honoured.

        Returns:
            The stream position dropped up to (a :attr:`written` value), or None when no
            request is new since the last call.
        """
        at = self._drop_at
        if at == self._dropped_at:
            return None
        self._dropped_at = at
        self._read = max(self._read, at)
        return at
