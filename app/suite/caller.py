"""The caller side of a suite case: plays one probe per turn and waits for the agent.

:class:`ConversationPort` is a :class:`~app.audio.fileport.WavFilePort` whose caller
audio is decided turn by turn instead of read from one file. It keeps the file port's
lockstep rules (frames stamped by their nominal capture end, sink samples placed by frame
stamps), and decides each frame's content when the frame is released:

1. ``lead_ms`` of silence, then turn 1's probe;
2. after a probe, silence until the agent's reply to it has finished: the agent has
   answered (a response started or agent audio reached the sink since the probe began),
   no response is open and no tool call is pending (from the bridge's events, fed to
   :meth:`ConversationPort.observe`), and the sink has been quiet for ``idle_ms``
   (measured from the later of the end of the last agent audio on the sink clock and the
   moment the last response or tool call ended) — or ``timeout_ms`` after the probe
   ended, whichever comes first;
3. then the next probe, and after the last turn the port is :attr:`exhausted` (the bridge
   ends the call after its tail).

It records, per turn, when its probe started and ended, when the agent's answer to it was
over (the bridge's timeline completed the turn, its audio played and any tool follow-up
included, with no response open and no tool call pending) and whether the wait timed
out, so the runner knows which timeline turns answer which probe and, for a call cut
short, which turns finished (:attr:`turn_windows`).
Runs on the bridge's loop thread, like every port; no threads, no devices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.audio.fileport import WavFilePort
from app.audio.pcm import FRAME_MS
from app.audio.port import CallerFrame
from app.events import (
    AgentAudio,
    EventBase,
    ResponseFinished,
    ResponseStarted,
    ToolCallCancelled,
    ToolCallFinished,
    ToolCallRequested,
    TurnCompleted,
)

_FRAME_NS = FRAME_MS * 1_000_000


@dataclass(slots=True)
class TurnWindow:
    """Where turn ``index`` (1-based) sits on the clock.

    Attributes:
        start_ns: capture start of the probe's first frame.
        end_ns: capture end of its last frame.
        next_ns: when the caller moved on (next probe or end of conversation); None while
            waiting.
        timed_out: the caller moved on because ``timeout_ms`` passed.
        over_ns: when the agent's answer was over, heard to its end (a ``TurnCompleted``
            with nothing open or pending); None if it never was.
    """

    index: int
    start_ns: int
    end_ns: int | None = None
    next_ns: int | None = None
    timed_out: bool = False
    over_ns: int | None = None


class ConversationPort(WavFilePort):
    """Plays ``probes`` (int16 mono at ``rate``) turn by turn; see the module docstring.

    Args:
        probes: one probe per turn.
        rate: sample rate of frames in and out.
        timeouts_ms: per turn, how long to wait after the probe for the reply to finish.
        idle_ms: quiet time after the reply that ends the wait.
        lead_ms: silence before the first probe.
    """

    def __init__(
        self,
        probes: list[NDArray[np.int16]],
        rate: int = 16000,
        *,
        timeouts_ms: list[int] | None = None,
        idle_ms: int = 600,
        lead_ms: int = 300,
    ) -> None:
        super().__init__(np.zeros(0, dtype=np.int16), rate)
        self._probes = [np.asarray(p, dtype=np.int16) for p in probes]
        self._timeouts_ns = [int(t) * 1_000_000 for t in (timeouts_ms or [20_000] * len(probes))]
        self._idle_ns = idle_ms * 1_000_000
        self._lead_ns = lead_ms * 1_000_000
        self._reset()

    def _reset(self) -> None:
        self._state = "lead" if self._probes else "done"
        self._turn = 0  # index into probes of the probe playing / awaited
        self._pos = 0
        self.windows: list[TurnWindow] = []
        self._open: set[str] = set()
        self._tools: set[str] = set()
        self._answered = False
        self._audio_end_ns = 0  # sink-clock end of the last agent audio written
        self._settled_ns = 0  # when the last open response / tool call ended
        self._released = 0

    # -- what the bridge sees ------------------------------------------------------------

    @property
    def turn_windows(self) -> list[TurnWindow]:
        """The turns played so far."""
        return list(self.windows)

    @property
    def audio_s(self) -> float:
        """Caller audio released so far, in seconds (the call's length in audio time)."""
        return self._released * FRAME_MS / 1000

    @property
    def exhausted(self) -> bool:
        """True once the last turn's wait is over."""
        return self._state == "done"

    def start(self, t0_ns: int) -> None:
        """Anchor the clock (see :meth:`WavFilePort.start`) and start from turn 1."""
        super().start(t0_ns)
        self._reset()

    def read(self, now_ns: int) -> list[CallerFrame]:
        """Return the frames due by ``now_ns``, deciding each one's content in order."""
        if self._t0_ns is None or self._stopped:
            return []
        due = (now_ns - self._t0_ns) // _FRAME_NS
        frames: list[CallerFrame] = []
        while self._next < due:
            t_ns = self._t0_ns + (self._next + 1) * _FRAME_NS
            frames.append(CallerFrame(self._frame(t_ns), t_ns))
            self._next += 1
            self._released += 1
        return frames

    def write_for_frame(self, pcm: NDArray[np.int16], now_ns: int, frame_t_ns: int) -> int:
        """Queue agent audio (see :meth:`WavFilePort.write_for_frame`) and note when the
        last non-silent agent block ends on the sink clock."""
        t = super().write_for_frame(pcm, now_ns, frame_t_ns)
        if len(pcm) and np.any(pcm):
            self._audio_end_ns = t + len(pcm) * 1_000_000_000 // self.rate
            if self._state != "lead":
                self._answered = True
        return t

    def observe(self, ev: EventBase) -> None:
        """Bridge event sink: track open responses and pending tool calls (loop thread)."""
        before = bool(self._open or self._tools)
        if isinstance(ev, ResponseStarted):
            self._open.add(ev.response_id)
            self._answered = self._answered or self._state != "lead"
        elif isinstance(ev, ResponseFinished):
            self._open.discard(ev.response_id)
        elif isinstance(ev, ToolCallRequested):
            self._tools.add(ev.call_id)
        elif isinstance(ev, ToolCallFinished):
            self._tools.discard(ev.call_id)
        elif isinstance(ev, TurnCompleted):
            self._heard(ev.t_ns)
        elif isinstance(ev, ToolCallCancelled):
            self._tools.difference_update(ev.call_ids)
        elif isinstance(ev, AgentAudio):
            self._answered = self._answered or self._state != "lead"
        if before and not (self._open or self._tools):
            self._settled_ns = max(self._settled_ns, ev.t_ns)

    # -- the turn machine ------------------------------------------------------------------

    def _heard(self, t_ns: int) -> None:
        """A timeline turn completed: the bridge completes the newest turn once its answer
        has played to the end, a tool's follow-up included. While the caller waits on an
        answered probe with nothing open, that marks the probe's answer over. Ignored once
        the port is stopped: the call's close-out completes every open turn."""
        if self._stopped or self._state != "wait" or not self.windows:
            return
        if self._answered and not self._open and not self._tools:
            window = self.windows[-1]
            window.over_ns = t_ns if window.over_ns is None else window.over_ns

    def _frame(self, t_ns: int) -> NDArray[np.int16]:
        n = self.frame_samples
        start_ns = t_ns - _FRAME_NS
        assert self._t0_ns is not None
        if self._state == "lead" and start_ns - self._t0_ns >= self._lead_ns:
            self._begin(start_ns)
        elif self._state == "wait":
            self._maybe_next(start_ns)
        if self._state != "speak":
            return np.zeros(n, dtype=np.int16)
        probe = self._probes[self._turn]
        out = np.zeros(n, dtype=np.int16)
        chunk = probe[self._pos : self._pos + n]
        out[: len(chunk)] = chunk
        self._pos += n
        if self._pos >= len(probe):
            self._state = "wait"
            self.windows[-1].end_ns = t_ns
        return out

    def _begin(self, start_ns: int) -> None:
        self._state = "speak"
        self._pos = 0
        self._answered = False
        self.windows.append(TurnWindow(self._turn + 1, start_ns))

    def _maybe_next(self, start_ns: int) -> None:
        window = self.windows[-1]
        assert window.end_ns is not None
        quiet_since = max(self._audio_end_ns, self._settled_ns, window.end_ns)
        finished = (
            self._answered
            and not self._open
            and not self._tools
            and start_ns - quiet_since >= self._idle_ns
        )
        timed_out = start_ns - window.end_ns >= self._timeouts_ns[self._turn]
        if not (finished or timed_out):
            return
        window.next_ns = start_ns
        window.timed_out = timed_out and not finished
        self._turn += 1
        if self._turn >= len(self._probes):
            self._state = "done"
        else:
            self._begin(start_ns)
