"""The agent-audio playout queue: per-item accounting and barge-in cuts.

Agent audio arrives in chunks tagged with the provider's item id (OpenAI) or a turn id
(Gemini). :class:`PlayoutBuffer` plays them in push order, tells the caller which item's
samples landed where in each pulled block (so the bridge can stamp "first sample
played"), and on barge-in drops everything at once and reports how much of each item was
actually played (the figure ``conversation.item.truncate`` needs as ``audio_end_ms``).

Synchronous and pure; one owner thread (the bridge's) calls every method.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class PlayedSegment:
    """Where one item's samples sit in a pulled block.

    Attributes:
        item_id: the item the samples belong to.
        offset: index in the block of the item's first sample.
        count: number of consecutive samples of the item from ``offset``.
        first: True if these include the item's very first played sample.
    """

    item_id: str
    offset: int
    count: int
    first: bool


class _Chunk:
    __slots__ = ("item_id", "pcm", "pos")

    def __init__(self, item_id: str, pcm: NDArray[np.int16]) -> None:
        self.item_id = item_id
        self.pcm = pcm
        self.pos = 0


class PlayoutBuffer:
    """FIFO of agent audio chunks with per-item played/received counts.

    Args:
        rate: sample rate of the audio (for :meth:`played_ms`).
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._queue: deque[_Chunk] = deque()
        self._queued = 0
        self._played: dict[str, int] = {}
        self._received: dict[str, int] = {}
        self._discarded: set[str] = set()

    @property
    def queued_samples(self) -> int:
        """Samples waiting to be played."""
        return self._queued

    @property
    def current_item(self) -> str | None:
        """The item whose sample will be played next (None when the queue is empty)."""
        return self._queue[0].item_id if self._queue else None

    def played_samples(self, item_id: str) -> int:
        """Samples of ``item_id`` handed out by :meth:`pull` so far (0 if unknown)."""
        return self._played.get(item_id, 0)

    def played_ms(self, item_id: str) -> int:
        """:meth:`played_samples` in whole milliseconds (rounded down)."""
        return self.played_samples(item_id) * 1000 // self.rate

    def received_samples(self, item_id: str) -> int:
        """Samples of ``item_id`` accepted by :meth:`push` (ignored pushes not counted)."""
        return self._received.get(item_id, 0)

    def is_discarded(self, item_id: str) -> bool:
        """True if the item was cut or discarded (its later pushes are ignored)."""
        return item_id in self._discarded

    def push(self, item_id: str, pcm: NDArray[np.int16]) -> None:
        """Queue a chunk of an item's audio; ignored if the item was discarded.

        The array is kept, not copied: the caller must not modify it afterwards.
        """
        if item_id in self._discarded or len(pcm) == 0:
            return
        self._queue.append(_Chunk(item_id, np.asarray(pcm, dtype=np.int16)))
        self._queued += len(pcm)
        self._received[item_id] = self._received.get(item_id, 0) + len(pcm)
        self._played.setdefault(item_id, 0)

    def pull(self, n: int) -> tuple[NDArray[np.int16], list[PlayedSegment]]:
        """Take the next ``n`` samples to play.

        Returns:
            Exactly ``n`` samples (zero-padded when the queue runs short) and, in block
            order, one segment per run of consecutive samples of one item.
        """
        out = np.zeros(n, dtype=np.int16)
        segments: list[PlayedSegment] = []
        filled = 0
        while filled < n and self._queue:
            chunk = self._queue[0]
            take = min(n - filled, len(chunk.pcm) - chunk.pos)
            out[filled : filled + take] = chunk.pcm[chunk.pos : chunk.pos + take]
            chunk.pos += take
            if chunk.pos == len(chunk.pcm):
                self._queue.popleft()
            item = chunk.item_id
            before = self._played[item]
            self._played[item] = before + take
            last = segments[-1] if segments else None
            if last is not None and last.item_id == item and last.offset + last.count == filled:
                segments[-1] = PlayedSegment(item, last.offset, last.count + take, last.first)
            else:
                segments.append(PlayedSegment(item, filled, take, before == 0))
            filled += take
        self._queued -= filled
        return out, segments

    def cut(self) -> list[tuple[str, int]]:
        """Barge-in: drop all queued audio at once.

        Every item that had queued audio dropped becomes discarded.

        Returns:
            ``(item_id, played_samples)`` for each such item, in queue order.
        """
        dropped: list[tuple[str, int]] = []
        seen: set[str] = set()
        for chunk in self._queue:
            if chunk.item_id not in seen:
                seen.add(chunk.item_id)
                dropped.append((chunk.item_id, self._played[chunk.item_id]))
        self._queue.clear()
        self._queued = 0
        self._discarded |= seen
        return dropped

    def discard(self, item_id: str) -> None:
        """Drop the queued audio of one item and ignore its later pushes."""
        self._discarded.add(item_id)
        kept = deque(c for c in self._queue if c.item_id != item_id)
        self._queued = sum(len(c.pcm) - c.pos for c in kept)
        self._queue = kept
