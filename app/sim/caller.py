"""Caller tracks for a scenario: the WAV a scripted caller speaks into a call.

:func:`caller_track` speaks each turn's ``hears`` line (espeak-ng, or a speech-shaped
tone) and leaves room for the agent's reply before the next line, except after the turns
named in ``barge_in``, where the next line starts while the agent is still speaking.
The result lists where each utterance starts and ends (samples), so tests know the true
edges of the caller's speech.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.wavio import write_wav
from app.sim.scenario import Scenario
from app.sim.tts import synthesize

LEAD_MS = 800
MARGIN_MS = 1500
TOOL_ALLOWANCE_MS = 1000


@dataclass(frozen=True, slots=True)
class Utterance:
    """One caller line in the track: text and sample range ``[start, end)``."""

    text: str
    start: int
    end: int


def _ms(n: int, rate: int) -> float:
    return n * 1000.0 / rate


def caller_track(
    scenario: Scenario,
    rate: int = 16000,
    barge_in: dict[int, int] | None = None,
    endpointing_ms: int = 500,
) -> tuple[NDArray[np.int16], list[Utterance]]:
    """Build the caller's audio for ``scenario``.

    Args:
        scenario: the simulator script (its ``hears`` lines are spoken).
        rate: output sample rate.
        barge_in: turn index → ms after the agent's first audio at which the next line
            starts (so the caller talks over that reply).
        endpointing_ms: the server's silence duration, to predict when the agent answers.

    Returns:
        The mono PCM16 track and its utterances.
    """
    barge_in = barge_in or {}
    pieces: list[NDArray[np.int16]] = [np.zeros(rate * LEAD_MS // 1000, dtype=np.int16)]
    pos = len(pieces[0])
    utterances: list[Utterance] = []
    for index, turn in enumerate(scenario.turns):
        speech = synthesize(turn.hears, rate=rate, wpm=scenario.voice_rate)
        utterances.append(Utterance(turn.hears, pos, pos + len(speech)))
        pieces.append(speech)
        pos += len(speech)
        timing = turn.timing
        first_audio_after = (
            (timing.endpointing_ms or endpointing_ms)
            + timing.response_delay_ms
            + timing.first_audio_ms
        )
        if index in barge_in:
            gap_ms = first_audio_after + barge_in[index]
        else:
            reply_ms = _ms(len(synthesize(turn.reply, rate=rate, wpm=scenario.voice_rate)), rate)
            if turn.tool_call is not None:
                after = synthesize(turn.tool_call.after_result, rate=rate, wpm=scenario.voice_rate)
                reply_ms += TOOL_ALLOWANCE_MS + _ms(len(after), rate)
            gap_ms = first_audio_after + reply_ms + MARGIN_MS
        gap = np.zeros(int(rate * gap_ms / 1000), dtype=np.int16)
        pieces.append(gap)
        pos += len(gap)
    return np.concatenate(pieces), utterances


def write_caller_wav(
    scenario: Scenario, path: Path, rate: int = 16000, barge_in: dict[int, int] | None = None
) -> list[Utterance]:
    """Write :func:`caller_track` to ``path`` (mono PCM16) and return its utterances."""
    pcm, utterances = caller_track(scenario, rate, barge_in)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, pcm, rate)
    return utterances
