"""Audio played into a live call as the caller: mixed into every caller frame.

The bridge owns one :class:`CallerMix` per call (``Bridge.caller_mix``): it takes each
caller frame's share with :meth:`CallerMix.take` and adds it (:func:`mix`) before
anything else sees the frame, so whatever port the call uses (a microphone, a SIP call, a
WAV file) the provider, the local VAD and the recording's left channel all get the
caller's own audio with the clip added, at the port's rate. The probe pad
(:mod:`app.probes.pad`) plays probes through it.

Threads: :meth:`CallerMix.play` and :meth:`CallerMix.plays` may be called from any thread
(the UI's); :meth:`CallerMix.take` runs on the bridge's loop thread only. The hand-over
is a ``deque`` (``append``/``popleft`` are atomic), so neither side takes a lock.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.resample import resample


@dataclass(slots=True)
class MixedClip:
    """One clip played into the call.

    Attributes:
        pcm: int16 mono samples at the call port's rate.
        meta: what the clip is (a probe's ``name``, ``text``, ``language``…), kept as given.
        start_ns: clock time of the clip's first sample in the caller stream (the capture
            start of the frame it began in plus its offset); ``None`` until it starts.
        done: every sample has been mixed.
    """

    pcm: NDArray[np.int16]
    meta: dict[str, Any] = field(default_factory=dict)
    start_ns: int | None = None
    done: bool = False


class CallerMix:
    """Mixes clips into the caller stream, one after another (a clip played while another
    plays waits for it).

    Args:
        rate: the call port's sample rate.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._queue: collections.deque[MixedClip] = collections.deque()
        self._played: list[MixedClip] = []
        self._current: MixedClip | None = None
        self._pos = 0

    def play(
        self, pcm: NDArray[np.int16], rate: int, meta: Mapping[str, Any] | None = None
    ) -> MixedClip:
        """Queue ``pcm`` (int16 mono at ``rate``) to be mixed into the next caller frames
        (any thread; converts the rate on the calling thread).

        Returns:
            The clip; its ``start_ns`` is set once its first sample is mixed.
        """
        x = np.asarray(pcm, dtype=np.int16)
        if rate != self.rate:
            x = resample(x, rate, self.rate)
        clip = MixedClip(np.ascontiguousarray(x), dict(meta or {}))
        self._queue.append(clip)
        return clip

    @property
    def busy(self) -> bool:
        """True while a clip plays or waits to play."""
        return self._current is not None or bool(self._queue)

    def plays(self) -> list[MixedClip]:
        """The clips that have started, in order (any thread: a copy)."""
        return list(self._played)

    def take(self, n: int, start_ns: int) -> NDArray[np.int16] | None:
        """The next ``n`` samples of the playing clips for a caller frame whose first
        sample was captured at ``start_ns`` (silence where none plays), or ``None`` when
        nothing plays (loop thread only)."""
        if self._current is None and not self._queue:
            return None
        out = np.zeros(n, dtype=np.int16)
        at = 0
        while at < n:
            if self._current is None:
                if not self._queue:
                    break
                self._current = self._queue.popleft()
                self._pos = 0
                self._current.start_ns = start_ns + at * 1_000_000_000 // self.rate
                self._played.append(self._current)
            clip = self._current
            k = min(n - at, len(clip.pcm) - self._pos)
            out[at : at + k] = clip.pcm[self._pos : self._pos + k]
            at += k
            self._pos += k
            if self._pos >= len(clip.pcm):
                clip.done = True
                self._current = None
        return out


def mix(pcm: NDArray[np.int16], clip: NDArray[np.int16] | None) -> NDArray[np.int16]:
    """``pcm`` with ``clip`` (same length) added, saturated to int16; ``pcm`` itself when
    ``clip`` is ``None``."""
    if clip is None:
        return pcm
    out = pcm.astype(np.int32) + clip
    mixed: NDArray[np.int16] = np.clip(out, -32768, 32767).astype(np.int16)
    return mixed
