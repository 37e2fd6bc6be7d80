"""A probe recorded during a call takes its text from the provider's caller transcript.

While a live call runs with the microphone as its caller, what the tester records on the
probe pad is also what the provider heard, so the provider's input transcription of that
speech is the recording's transcript. :class:`CallTranscripts` follows one call's events
(any thread may own it; it is not locked) and :meth:`CallTranscripts.match` says, for a
recording interval on the one clock, what text it takes:

- the turns it covers are those whose caller speech (the ``user_speech`` span of their
  :class:`~app.metrics.records.TurnRecord`: local VAD start to end) lies within the
  recording, with :data:`SLACK_NS` either side;
- their text is the provider's **final** caller transcript (``UserTranscript`` with
  ``final=True``) of each of the turn's items, joined in turn order; a turn the provider
  gave no item id uses the turn record's transcript once the call has ended;
- while a covered turn has no final transcript yet, or caller speech started in the
  recording and its turn is not complete, the answer is ``waiting``; at call end it is
  ``missing``;
- a turn whose caller speech only partly overlaps the recording is ``cut``: the
  transcript would name words the recording does not hold, so it is not used;
- a call whose caller transcripts are scripted (the built-in simulator reports its
  scenario's line, :func:`app.metrics.presentation.transcripts_scripted`) is
  ``scripted``: that text is not a transcription of the audio and is never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.events import (
    CallEnded,
    CallStarted,
    EventBase,
    LocalSpeechStarted,
    TurnCompleted,
    UserTranscript,
)
from app.metrics.presentation import transcripts_scripted, turn_number
from app.metrics.records import TurnRecord

#: A turn's caller speech may start or end this much outside the recording and still be
#: in it: the recorder's stamps are taken when its stream starts and stops, the VAD's at
#: 20 ms frame edges of another stream of the same microphone.
SLACK_NS = 300_000_000

Status = Literal["found", "waiting", "missing", "cut", "scripted"]

#: Why a recording stays pending, by status (shown in the pad and kept in the probe file).
REASONS: dict[str, str] = {
    "waiting": "waiting for the provider's transcript of this recording",
    "missing": "no provider transcript of this recording arrived: type its text",
    "cut": "the recording cuts caller speech short, so the provider's transcript does "
    "not match it: type its text",
    "scripted": "the simulator's caller transcript is its script, not a transcription "
    "of this recording: type its text",
}


@dataclass(frozen=True, slots=True)
class Heard:
    """What a recording's text is, as far as the call has told.

    Attributes:
        status: ``found`` (``text`` is the transcript), ``waiting`` (ask again after more
            events), ``missing``, ``cut`` or ``scripted`` (the text must be typed).
        text: the joined final transcript when ``found``, else empty.
        turns: the 1-based numbers of the turns the recording covers.
        reason: one line for the tester when not ``found`` (:data:`REASONS`).
    """

    status: Status
    text: str = ""
    turns: tuple[int, ...] = ()

    @property
    def reason(self) -> str:
        """Why the text is not there (empty when ``found``)."""
        return REASONS.get(self.status, "")


class CallTranscripts:
    """What one call's provider transcribed of the caller, and when the caller spoke.

    Feed it every event of the call (:meth:`feed`); a ``CallStarted`` starts over.

    Attributes:
        provider: the call's provider (``CallStarted.provider``), empty before a call.
        model: the call's model.
        scripted: the provider's caller transcripts are scripted, not heard.
        ended: the call has ended (no transcript can come any more).
    """

    def __init__(self) -> None:
        self.provider = ""
        self.model = ""
        self.scripted = False
        self.ended = False
        self._finals: dict[str, str] = {}
        self._turns: dict[int, TurnRecord] = {}
        self._speech_starts: list[int] = []

    def _start(self, provider: str, model: str) -> None:
        """A new call: forget the last one."""
        self.provider, self.model = provider, model
        self.scripted = transcripts_scripted(provider)
        self.ended = False
        self._finals, self._turns, self._speech_starts = {}, {}, []

    def feed(self, ev: EventBase) -> None:
        """Take one event of the call (events it does not use change nothing)."""
        if isinstance(ev, CallStarted):
            self._start(ev.provider, ev.model)
        elif isinstance(ev, UserTranscript) and ev.final:
            self._finals[ev.item_id] = ev.text
        elif isinstance(ev, TurnCompleted):
            self._turns[ev.turn.index] = ev.turn  # a re-sent turn replaces its own
        elif isinstance(ev, LocalSpeechStarted):
            self._speech_starts.append(ev.t_ns)
        elif isinstance(ev, CallEnded):
            self.ended = True

    def match(self, start_ns: int, end_ns: int) -> Heard:
        """The text of a recording from ``start_ns`` to ``end_ns`` (the one clock), from
        what has been fed so far (see the module docstring for the rules)."""
        if self.scripted:
            return Heard("scripted")
        lo, hi = start_ns - SLACK_NS, end_ns + SLACK_NS
        inside: list[TurnRecord] = []
        cut: list[int] = []
        covered: list[tuple[int, int | None]] = []
        for turn in sorted(self._turns.values(), key=lambda t: t.index):
            speech = turn.spans.get("user_speech")
            s = turn.start_ns
            e = speech.end_ns if speech is not None else None
            if s is None:
                continue
            covered.append((s, e))
            if s >= hi or (e is not None and e <= lo):
                continue  # not in the recording at all
            if s >= lo and e is not None and e <= hi:
                inside.append(turn)
            else:
                cut.append(turn_number(turn))
        numbers = tuple(turn_number(t) for t in inside)
        if cut:
            return Heard("cut", turns=tuple(sorted((*numbers, *cut))))
        pending_speech = any(
            lo <= t <= hi and not any(s <= t and (e is None or t <= e) for s, e in covered)
            for t in self._speech_starts
        )
        if pending_speech and not self.ended:
            return Heard("waiting", turns=numbers)
        if not inside:
            return Heard("missing" if self.ended else "waiting")
        texts: list[str] = []
        for turn in inside:
            text = self._final_text(turn)
            if text is None:
                return Heard("missing" if self.ended else "waiting", turns=numbers)
            texts.append(text)
        text = " ".join(t for t in texts if t).strip()
        if not text:
            return Heard("missing", turns=numbers)
        return Heard("found", text=text, turns=numbers)

    def _final_text(self, turn: TurnRecord) -> str | None:
        """The turn's final caller transcript, or None while one is still to come."""
        if not turn.user_item_ids:
            return turn.user_transcript if self.ended else None
        if any(i not in self._finals for i in turn.user_item_ids):
            return None
        return " ".join(self._finals[i].strip() for i in turn.user_item_ids)
