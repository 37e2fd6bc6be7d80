"""One response of the simulated agent: its plan and its per-run state.

:class:`RunPlan` is what the script decides (which turn, what to say, with which timing);
:class:`ResponseRun` is the mutable state of one response while the runner
(:mod:`app.sim.engine`) plays it, including the typed per-dialect fields a dialect keeps
while rendering it.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.resample import StreamResampler
from app.sim.scenario import Timing, ToolCall

#: Rate the agent's audio is synthesised and paced at (OpenAI's only PCM rate).
OUT_RATE = 24000

EMPTY_AUDIO: NDArray[np.int16] = np.zeros(0, dtype=np.int16)


def new_id(prefix: str) -> str:
    """Return a fresh id like the service's (``item_``, ``resp_``, ``call_`` ...)."""
    return f"{prefix}_{secrets.token_hex(10)}"


def word_deltas(text: str) -> list[str]:
    """Split a reply into transcript deltas: one word each, a space after all but the last."""
    words = text.split()
    return [w + " " for w in words[:-1]] + words[-1:]


@dataclass(frozen=True, slots=True)
class RunPlan:
    """A response the script decided on (no audio yet, no ids).

    Attributes:
        turn: the scripted turn it answers (0 for the greeting).
        kind: ``turn``, ``followup``, ``greeting``, ``manual`` or ``default``.
        text: what the agent says ("" for nothing).
        timing: the turn's timing.
        first_audio_ms: delay of the first audio after ``response.created``; None takes
            the timing's.
        tool: the tool call the response makes after speaking, if any.
    """

    turn: int
    kind: str
    text: str
    timing: Timing
    first_audio_ms: float | None = None
    tool: ToolCall | None = None


@dataclass(eq=False, slots=True)
class ResponseRun:
    """One response the engine is producing (mutable; owned by its task)."""

    response_id: str
    turn: int
    kind: str  # turn | followup | greeting | manual | default
    text: str
    audio: NDArray[np.int16]
    timing: Timing
    first_audio_ms: float
    tool: ToolCall | None = None
    call_id: str = ""
    message_item_id: str = ""
    fc_item_id: str = ""
    prev_item_id: str | None = None
    sent_samples: int = 0
    transcript_sent: str = ""
    status: str = "in_progress"
    reason: str | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    created: bool = False
    task: asyncio.Task[None] | None = None
    #: ``response.created`` is in the ground truth (logged once).
    created_logged: bool = False
    #: OpenAI: the output codec of the audio part and its resampler (G.711 only).
    out_codec: str = "pcm"
    out_resampler: StreamResampler | None = None
    #: OpenAI: the output items closed so far (for ``response.done``).
    output_items: list[dict[str, Any]] = field(default_factory=list)
    #: Gemini: transcript words due but not yet sent.
    pending_words: list[str] = field(default_factory=list)

    @property
    def sent_ms(self) -> float:
        """Agent audio sent so far, in milliseconds."""
        return self.sent_samples * 1000.0 / OUT_RATE

    @property
    def total_ms(self) -> float:
        """Length of the whole reply audio, in milliseconds."""
        return len(self.audio) * 1000.0 / OUT_RATE
