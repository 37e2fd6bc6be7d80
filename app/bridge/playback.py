"""Agent audio on its way to the sink: per-item resampling, playout, play-time stamps.

:class:`Playback` owns the :class:`~app.audio.playout.PlayoutBuffer` and knows, for each
agent item, when its first sample was played and when its last one will have been. It is
synchronous and runs on the bridge's loop thread; it reports through ``emit``
(:class:`~app.events.PlaybackStarted` / :class:`~app.events.PlaybackStopped`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.audio.pcm import SILENCE_DBFS, rms_dbfs
from app.audio.playout import PlayoutBuffer
from app.audio.port import CallerPort
from app.audio.resample import StreamResampler
from app.events import AgentAudio, Event, PlaybackStarted, PlaybackStopped


@dataclass(slots=True)
class _Item:
    """One agent item in playout."""

    item_id: str
    response_id: str
    resampler: StreamResampler
    started: bool = False
    stopped: bool = False
    end_play_ns: int = 0
    response_done: bool = False


class Playback:
    """Agent items from provider chunks to the port's sink.

    Args:
        port: the caller-side port whose sink plays the audio (its rate is the output's).
        emit: receives PlaybackStarted / PlaybackStopped (loop thread).
        recorder: the stereo recorder (right channel), or ``None``.
    """

    def __init__(self, port: CallerPort, emit: Callable[[Event], None], recorder: Any = None):
        self.port = port
        self.rate = port.rate
        self.buffer = PlayoutBuffer(port.rate)
        self._emit = emit
        self._recorder = recorder
        self._items: dict[str, _Item] = {}
        # Items started and not stopped, in start order (= the order of ``_items``: the
        # buffer plays items first in, first out): what each frame looks at, so a long
        # call's finished items cost nothing per frame.
        self._active: dict[str, _Item] = {}
        self._discarded: set[str] = set()
        #: When the sink went away (:meth:`sink_gone`), or ``None``.
        self.gone_ns: int | None = None
        #: Level (dBFS) of the last frame handed to the sink.
        self.level = SILENCE_DBFS
        #: Agent samples in the block being (or last) handed to the sink; 0 when it is
        #: silence because nothing is queued. Set before the port's write, so that a sink
        #: that sends only agent audio (a Twilio stream) can tell an agent's own digital
        #: silence, which is part of its reply, from no reply at all.
        self.block_agent_samples = 0

    @property
    def audible(self) -> bool:
        """True while agent audio is queued for the sink."""
        return self.buffer.current_item is not None

    @property
    def queued_samples(self) -> int:
        """Agent samples waiting for the sink."""
        return self.buffer.queued_samples

    def push(self, ev: AgentAudio) -> bool:
        """Queue a chunk (resampled to the sink's rate); False if its item was cut or the
        sink is gone."""
        if ev.item_id in self._discarded or self.gone_ns is not None:
            return False
        item = self._items.get(ev.item_id)
        if item is None:
            item = _Item(ev.item_id, ev.response_id, StreamResampler(ev.sample_rate, self.rate))
            self._items[ev.item_id] = item
        x = np.frombuffer(ev.pcm, dtype="<i2")
        # The resampler makes a new array; without it the buffer needs its own copy.
        x = item.resampler.process(x) if ev.sample_rate != self.rate else x.astype(np.int16)
        self.buffer.push(ev.item_id, x)
        return True

    def response_finished(self, response_id: str) -> None:
        """No more audio will come for the items of ``response_id``."""
        for item in self._items.values():
            if item.response_id == response_id:
                item.response_done = True

    def play_frame(self, now_ns: int, frame_t_ns: int | None = None) -> None:
        """Hand the next frame to the sink (silence when nothing is queued) and stamp the
        first and last samples of each item by the sink's play time.

        ``frame_t_ns`` is the stamp of the caller frame this block follows (the bridge's
        one block per caller frame); a paced sink places the block by it. The one stamp
        the sink returns feeds both the events and the recording, so ``PlaybackStarted``
        and the agent's samples in ``audio.wav`` agree by construction (docs/timing.md).
        """
        block, segments = self.buffer.pull(self.port.frame_samples)
        # Nothing pulled: the block is all zeros (no need to measure it).
        self.level = rms_dbfs(block) if segments else SILENCE_DBFS
        self.block_agent_samples = sum(seg.count for seg in segments)
        if frame_t_ns is None:
            play_t = self.port.write(block, now_ns)
        else:
            play_t = self.port.write_for_frame(block, now_ns, frame_t_ns)
        if self._recorder is not None:
            self._recorder.right(block, play_t)
        ns_per_sample = 1e9 / self.rate
        for seg in segments:
            item = self._items.get(seg.item_id)
            if item is None:
                continue
            if seg.first and not item.started:
                item.started = True
                self._active[item.item_id] = item
                self._emit(
                    PlaybackStarted(
                        t_ns=play_t + int(seg.offset * ns_per_sample),
                        item_id=seg.item_id,
                        response_id=item.response_id,
                    )
                )
            item.end_play_ns = play_t + int((seg.offset + seg.count) * ns_per_sample)
        for item in list(self._active.values()):
            if (
                item.response_done
                and self.buffer.played_samples(item.item_id)
                >= self.buffer.received_samples(item.item_id)
            ):
                self._stop(item, item.end_play_ns, interrupted=False)

    def playing_item(self) -> _Item | None:
        """The item being heard: queued now, or started and not finished (its queue may
        be empty for a moment while more audio is on the way)."""
        current = self.buffer.current_item
        if current is not None and current in self._items:
            return self._items[current]
        return next(iter(self._active.values()), None)

    def cut(self, t_ns: int) -> tuple[_Item, int] | None:
        """Barge-in: drop all queued audio now; later chunks of the cut items are
        ignored. Returns the item that was being heard and its played samples."""
        item = self.playing_item()
        if item is None:
            return None
        played = self.buffer.played_samples(item.item_id)
        self.port.flush_output()
        for dropped_id, _ in self.buffer.cut():
            self._discarded.add(dropped_id)
        self._discarded.add(item.item_id)
        self._cut_all(t_ns)
        return item, played

    def sink_gone(self, t_ns: int) -> None:
        """The sink went away at ``t_ns`` (a Twilio caller hung up; loop thread), or the
        call ended (the bridge calls it last: a reply still playing then was cut off by
        the hang-up, ``--max-seconds``, Ctrl-C or a SIP BYE): nothing is heard after it.
        Call it as soon as the sink is gone, before the bridge handles the caller frames
        that came before the end: the blocks :meth:`play_frame` still hands the sink for
        them are silence and report nothing.

        Every item being heard, or queued and not started, stops at ``t_ns`` as
        interrupted (its reply was cut off), its played samples counting only what
        played before ``t_ns`` (0 for one never heard); queued audio is dropped and later
        chunks are refused, so no event is stamped after ``t_ns``. The first call
        counts. An item whose last block was handed to the sink has stopped already
        (:meth:`play_frame`), as finished.
        """
        if self.gone_ns is not None:
            return
        self.gone_ns = t_ns
        waiting = [item_id for item_id, _ in self.buffer.cut()]
        self._discarded.update(waiting)
        for item in list(self._active.values()):
            unplayed = max(0, item.end_play_ns - t_ns) * self.rate // 1_000_000_000
            self._stop(item, t_ns, interrupted=True, unplayed=unplayed)
        for item_id in waiting:
            unheard = self._items.get(item_id)
            if unheard is not None and not unheard.started:
                self._stop(unheard, t_ns, interrupted=True)

    def _cut_all(self, t_ns: int) -> None:
        """End every item that started and has not stopped as cut at ``t_ns``."""
        for item in list(self._active.values()):
            self._stop(item, t_ns, interrupted=True)

    def _stop(self, item: _Item, t_ns: int, interrupted: bool, unplayed: int = 0) -> None:
        item.stopped = True
        self._active.pop(item.item_id, None)
        played = self.buffer.played_samples(item.item_id)
        self._emit(
            PlaybackStopped(
                t_ns=t_ns,
                item_id=item.item_id,
                played_samples=max(0, played - unplayed),
                sample_rate=self.rate,
                interrupted=interrupted,
            )
        )
