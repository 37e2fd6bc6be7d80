"""The simulator's script state machine: synchronous, pure, fed events with timestamps.

:class:`Script` decides what the simulated agent does when the caller speaks: it owns the
listening side (:class:`app.sim.audio_input.AudioInput`), the position in the scenario and
the per-utterance bookkeeping (which item the speech belongs to, a commit that swallows the
speech end, a manual turn waiting for ``response.create``). Each input returns a list of
actions for the runner (:class:`app.sim.engine.Conversation`) to carry out in order:

====================  =========================================================
input                 actions
====================  =========================================================
:meth:`feed_audio`    per VAD edge: :class:`SpeechStarted` (+ :class:`Interrupt`
                      when barge-in is on), or :class:`SpeechStopped` then
                      :class:`Commit`
:meth:`edge`          the same, for an edge the client marked (Gemini activity)
:meth:`commit`        :class:`Commit` (manual), or nothing when too little audio
:meth:`clear`         nothing (the buffered audio is dropped)
====================  =========================================================

No I/O, no sleeps, no clock reads: times come in on the events (arrival stamps, edge
times) and go out on the actions. Runs on the server's loop thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.clock import MONOTONIC, Clock
from app.sim.audio_input import AudioInput, InputConfig, SpeechEdge
from app.sim.response import RunPlan, new_id
from app.sim.scenario import Scenario, Timing, Turn

if TYPE_CHECKING:
    from app.sim.faults import FaultPlan
    from app.sim.response import ResponseRun

#: Least uncommitted audio a manual commit accepts (the service's 100 ms rule).
MIN_COMMIT_S = 0.1


@dataclass(slots=True)
class SimState:
    """State shared by all connections of one server: where the script has got to.

    A reconnecting client continues at the next turn (when the scenario's
    ``continue_on_reconnect`` is true). Only touched from the server's loop thread.

    Attributes:
        next_turn: the turn the next committed utterance takes.
        connections: connections served so far.
        greeted: the greeting was spoken (once per server).
        delivered: turns whose answer reached the client (first audio or the tool call
            sent). A turn taken on a connection that closed before answering it is taken
            again by the next connection (the client re-sends the unanswered utterance).
        awaiting_tool: tool calls sent and not yet answered, by call id: a client may
            answer one on its next connection (after replaying the call into the session).
        faults: the fault plan; event faults fire once per server, so a reconnecting
            client that sends the same utterance again is not dropped again there.
        handles: session-resumption handles issued so far (Gemini), each with the
            connection's next turn when it was issued.
    """

    next_turn: int = 1
    connections: int = 0
    greeted: bool = False
    delivered: set[int] = field(default_factory=set)
    awaiting_tool: dict[str, ResponseRun] = field(default_factory=dict)
    faults: FaultPlan | None = None
    handles: dict[str, int] = field(default_factory=dict)

    def connection_closed(self) -> None:
        """Roll the script back over the last turn if its answer never went out."""
        taken = self.next_turn - 1
        if taken >= 1 and taken not in self.delivered:
            self.next_turn = taken


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Tell the client its speech started (``audio_start_ms`` includes the prefix)."""

    turn: int
    item_id: str
    audio_start_ms: int
    edge: SpeechEdge


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Barge-in: cancel the response in progress, if there is one."""

    reason: str = "turn_detected"


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """Tell the client its speech stopped (``audio_end_ms`` includes the hangover)."""

    turn: int
    item_id: str
    audio_end_ms: int
    edge: SpeechEdge
    hangover_ms: int


@dataclass(frozen=True, slots=True)
class Commit:
    """Commit the caller's audio as a user item of ``turn``.

    Attributes:
        turn: the scripted turn the utterance took.
        item_id: the user item.
        audio_ms: caller audio in the item.
        manual: the client committed (no VAD speech end).
        at_ns: the anchor of the response delay for a manual commit (the request's
            time); None for a VAD commit, whose anchor is the stamp the preceding
            :class:`SpeechStopped` was sent at.
        respond: the response to start ``timing.response_delay_ms`` after the anchor;
            None when the client asks for it later (``response.create``) or the script
            has nothing to say.
    """

    turn: int
    item_id: str
    audio_ms: float
    manual: bool
    at_ns: int | None
    respond: RunPlan | None


Action = SpeechStarted | Interrupt | SpeechStopped | Commit


class Script:
    """One connection's script position and listening side (see the module docstring).

    Args:
        scenario: the script.
        shared: the server-wide state (the turn position across reconnects).
        clock: handed to the audio input (its only use of time; see
            :meth:`app.sim.audio_input.AudioInput.clock_of`).
    """

    def __init__(self, scenario: Scenario, shared: SimState, clock: Clock = MONOTONIC) -> None:
        self.scenario = scenario
        self.shared = shared
        self.cfg = InputConfig()
        #: The connection's own turn position (without ``continue_on_reconnect``).
        self.local_turn = 1
        self.audio = AudioInput(self.cfg.codec, self.hangover_for(self.peek_turn()), clock)
        #: A manual turn waiting for the client's ``response.create``.
        self.pending_turn: tuple[int, str] | None = None
        self._speech_item: str | None = None
        self._suppress_end = False

    # --- script position ---------------------------------------------------------------

    def peek_turn(self) -> int:
        """The 1-based turn the next committed utterance will take."""
        return self.shared.next_turn if self.scenario.continue_on_reconnect else self.local_turn

    def take_turn(self) -> int:
        """Consume and return the next turn number (and set the next turn's endpointing)."""
        n = self.peek_turn()
        if self.scenario.continue_on_reconnect:
            self.shared.next_turn += 1
        else:
            self.local_turn += 1
        self.audio.set_hangover(self.hangover_for(self.peek_turn()))
        return n

    def turn_spec(self, n: int) -> Turn | None:
        """The scripted turn ``n`` (1-based), or None beyond the script."""
        return self.scenario.turns[n - 1] if 1 <= n <= len(self.scenario.turns) else None

    def timing_for(self, n: int) -> Timing:
        """The timing of turn ``n`` (the scenario's beyond the script)."""
        t = self.turn_spec(n)
        return t.timing if t is not None else self.scenario.timing

    def hears_for(self, n: int) -> str:
        """What the agent hears in turn ``n`` (its input transcript)."""
        t = self.turn_spec(n)
        return t.hears if t is not None else ""

    def hangover_for(self, n: int) -> int:
        """The endpointing silence of turn ``n`` (the turn's, else the client's)."""
        ep = self.timing_for(n).endpointing_ms
        return ep if ep is not None else self.cfg.silence_ms

    def configure(self, cfg: InputConfig) -> None:
        """Apply the client's input settings (from its session update)."""
        self.cfg = cfg
        self.audio.set_codec(cfg.codec)
        self.audio.set_hangover(self.hangover_for(self.peek_turn()))

    def plan_turn(self, turn: int, kind: str) -> RunPlan | None:
        """The response answering ``turn``; None when a scripted turn has nothing to say.

        Beyond the script the scenario's ``default_reply`` answers (or silence, except for
        a ``turn`` response, which then does not happen at all).
        """
        spec = self.turn_spec(turn)
        timing = self.timing_for(turn)
        if spec is None:
            if self.scenario.default_reply is None:
                return None if kind == "turn" else RunPlan(turn, "default", "", timing)
            return RunPlan(turn, "default", self.scenario.default_reply, timing)
        return RunPlan(turn, kind, spec.reply, timing, tool=spec.tool_call)

    # --- inputs ------------------------------------------------------------------------

    def feed_audio(self, payload: bytes, t_recv_ns: int) -> list[Action]:
        """Take one chunk of client audio received at ``t_recv_ns``."""
        edges = self.audio.feed(payload, t_recv_ns)
        if not self.cfg.vad:
            return []
        out: list[Action] = []
        for e in edges:
            out += self.edge(e)
        return out

    def edge(self, e: SpeechEdge) -> list[Action]:
        """A speech edge (from the VAD, or marked by the client)."""
        return self._speech_start(e) if e.speaking else self._speech_end(e)

    def _speech_start(self, e: SpeechEdge) -> list[Action]:
        self._suppress_end = False
        item_id = new_id("item")
        self._speech_item = item_id
        start_ms = max(0, int(round(e.ms - self.cfg.prefix_ms)))
        out: list[Action] = [SpeechStarted(self.peek_turn(), item_id, start_ms, e)]
        if self.cfg.interrupt_response:
            out.append(Interrupt("turn_detected"))
        return out

    def _speech_end(self, e: SpeechEdge) -> list[Action]:
        if self._suppress_end:
            self._suppress_end = False
            self._speech_item = None
            return []
        item_id = self._speech_item or new_id("item")
        self._speech_item = None
        hangover = self.audio.hangover_ms
        turn = self.take_turn()
        end_ms = int(round(e.ms + hangover))
        return [SpeechStopped(turn, item_id, end_ms, e, hangover),
                self._commit(turn, item_id, manual=False, at_ns=None)]

    def commit(self, t_ns: int) -> list[Action]:
        """The client committed the input buffer at ``t_ns``; [] if it was too small."""
        if self.audio.uncommitted_s < MIN_COMMIT_S:
            return []
        item_id = self._speech_item or new_id("item")
        if self.audio.speaking:
            self._suppress_end = True
        self._speech_item = None
        turn = self.take_turn()
        return [self._commit(turn, item_id, manual=True, at_ns=t_ns)]

    def clear(self) -> None:
        """The client cleared the input buffer."""
        self.audio.uncommitted_s = 0.0
        if self.audio.speaking:
            self._suppress_end = True
        self._speech_item = None

    def _commit(self, turn: int, item_id: str, manual: bool, at_ns: int | None) -> Commit:
        audio_ms = self.audio.uncommitted_s * 1000.0
        self.audio.uncommitted_s = 0.0
        respond: RunPlan | None = None
        if manual or not self.cfg.create_response:
            self.pending_turn = (turn, item_id)
        else:
            respond = self.plan_turn(turn, "turn")
        return Commit(turn, item_id, audio_ms, manual, at_ns, respond)
