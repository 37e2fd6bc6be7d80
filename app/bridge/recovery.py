"""What the bridge needs to carry a call across provider sessions.

A call may outlive its provider session: the socket drops, OpenAI ends a session at its
limit (``session_expired``, no warning), Gemini sends ``goAway`` before it closes, or the
bridge rolls over on purpose before a limit. The bridge then opens a new session and:

* restores the conversation: Gemini from its resumption handle; OpenAI (which has no
  handle) by replaying every finished turn as conversation items (:func:`build_history`);
* applies one rule to caller audio captured while no session was open: **if the caller's
  latest utterance has not been answered, the whole utterance (from 300 ms before its
  local VAD start) is sent again to the new session; otherwise the audio captured during
  the gap is not sent** (it is silence or speech the old session already answered). The
  recording keeps everything either way, and the gap is a ``reconnect`` span on the turn.
"""

from __future__ import annotations

import random
from collections import deque

from app.metrics.timeline import Timeline, Turn
from app.providers.base import HistoryItem

RESEND_PADDING_SAMPLES = 16000 * 300 // 1000  # 300 ms at the VAD rate


class Backoff:
    """Exponential backoff with full jitter: attempt n waits a random time in
    ``[base·2ⁿ⁻¹/2, base·2ⁿ⁻¹]``, capped."""

    def __init__(self, base_ms: float, cap_ms: float, rng: random.Random | None = None) -> None:
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self.rng = rng or random.Random()
        self.attempt = 0

    def next_s(self) -> float:
        """Seconds to wait before the next attempt."""
        self.attempt += 1
        top = min(self.cap_ms, self.base_ms * 2 ** (self.attempt - 1))
        return self.rng.uniform(top / 2, top) / 1000.0


class AudioHistory:
    """The last few seconds of caller audio as sent to the provider, indexed by the local
    VAD's sample position (16 kHz) of each frame's first sample."""

    def __init__(self, max_frames: int) -> None:
        self._frames: deque[tuple[int, bytes]] = deque(maxlen=max_frames)

    def append(self, vad_pos: int, pcm: bytes) -> None:
        """Keep one frame (PCM16 at the provider's input rate)."""
        self._frames.append((vad_pos, pcm))

    def since(self, vad_pos: int) -> list[tuple[int, bytes]]:
        """Frames whose first sample is at or after ``vad_pos`` (minus one frame, so the
        frame holding ``vad_pos`` is included)."""
        out = [f for f in self._frames if f[0] >= vad_pos]
        older = [f for f in self._frames if f[0] < vad_pos]
        if older:
            out.insert(0, older[-1])
        return out


def turn_unanswered(turn: Turn | None) -> bool:
    """True when the caller spoke in ``turn`` and no agent audio or tool call answered it
    yet (so the utterance must reach the new session again)."""
    if turn is None or turn.local_start is None:
        return False
    if turn.tools:
        return False
    return all(r.first_audio is None for r in turn.responses.values())


def needs_response(turn: Turn | None) -> bool:
    """True when a tool result of ``turn`` was sent but its follow-up never started
    playing: the new session must be asked to answer."""
    if turn is None or not turn.tools or turn.last_tool_sent is None:
        return False
    if any(t.sent is None for t in turn.tools.values()):
        return False  # a result is still on its way: sending it will ask for the answer
    return not any(r.after_tool and r.first_audio is not None for r in turn.responses.values())


def build_history(timeline: Timeline, skip_current: bool) -> list[HistoryItem]:
    """The conversation so far as items to replay, oldest first.

    Args:
        timeline: the call's turns.
        skip_current: leave out the newest turn's caller words (its audio is sent again).
    """
    items: list[HistoryItem] = []
    for turn in timeline.turns:
        current = turn is timeline.current
        user = " ".join(turn.user_text[i] for i in turn.user_items if turn.user_text.get(i))
        if user.strip() and not (current and skip_current):
            items.append(HistoryItem("user", user.strip()))
        for tool in turn.tools.values():
            items.append(
                HistoryItem(
                    "tool_call", call_id=tool.call_id, name=tool.name, arguments=tool.arguments
                )
            )
            if tool.sent is not None:
                items.append(
                    HistoryItem("tool_result", tool.output, call_id=tool.call_id, name=tool.name)
                )
        said = " ".join(t for t in turn.agent_text.values() if t).strip()
        if said:
            items.append(HistoryItem("assistant", said))
    return items
