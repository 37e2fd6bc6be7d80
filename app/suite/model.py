"""The suite model: what a validated suite file holds (frozen dataclasses, no I/O).

The YAML format and the scoring rules are written in ``docs/suites.md``; the loader
(:mod:`app.suite.load`) builds these records and is the only place that reads files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Bounds:
    """A figure's limits (``{max: N}`` / ``{min: N}``); None: no limit on that side."""

    min: float | None = None
    max: float | None = None

    def holds(self, value: float) -> bool:
        """True when ``value`` is within both limits."""
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        """``<= 1500``, ``>= 10``, ``10..1500``."""
        if self.min is not None and self.max is not None:
            return f"{self.min:g}..{self.max:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        return f">= {self.min:g}" if self.min is not None else "any"


@dataclass(frozen=True, slots=True)
class ToolExpectation:
    """``tool:``: calls of ``name`` whose arguments match ``arguments`` (text values are
    regular expressions searched in the argument's text, other values must be equal);
    ``count`` exact, or None for at least one."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    count: int | None = None


@dataclass(frozen=True, slots=True)
class TurnExpect:
    """The expectations of one turn (every one optional)."""

    max_wer: float | None = None
    reply_language: bool | str | None = None
    says: tuple[str, ...] = ()
    not_says: tuple[str, ...] = ()
    tool: ToolExpectation | None = None
    v2v_ms: Bounds | None = None
    ttfb_ms: Bounds | None = None
    no_barge_in: bool = False


@dataclass(frozen=True, slots=True)
class CallExpect:
    """``expect_call:``: expectations over the whole call."""

    v2v_p95_ms: Bounds | None = None
    cost_usd: Bounds | None = None
    errors: int | None = None
    completed: bool | None = None


@dataclass(frozen=True, slots=True)
class SimTurn:
    """A turn's ``simulate:``: what the simulated agent answers, per language.

    Texts are keyed by language (tag or primary subtag, matched like ``say``).
    """

    reply: Mapping[str, str] = field(default_factory=dict)
    tool_name: str | None = None
    tool_arguments: Mapping[str, Any] = field(default_factory=dict)
    after_result: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SuiteTurn:
    """One caller turn of a conversation.

    Attributes:
        say: language key (tag or primary subtag) -> text; key ``"*"`` when ``say`` was
            one text for every language.
        file: a recording to play instead of espeak-ng (``say`` is its transcript).
        voice: an espeak-ng voice that wins over the mapping.
        expect: the turn's expectations.
        timeout_ms: how long the caller waits after its line for the agent's reply to
            finish before it speaks the next line anyway.
        simulate: the simulator's answer (``--provider sim`` only).
        line: the line of the turn in the suite file.
    """

    say: Mapping[str, str]
    file: Path | None = None
    voice: str | None = None
    expect: TurnExpect = field(default_factory=TurnExpect)
    timeout_ms: int | None = None
    simulate: SimTurn | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Conversation:
    """A named list of caller turns."""

    id: str
    turns: tuple[SuiteTurn, ...]
    line: int = 0


@dataclass(frozen=True, slots=True)
class LanguageCell:
    """One ``language`` entry of the matrix: a tag with an optional accent label
    (``en-GB/scottish``)."""

    tag: str
    accent: str | None = None

    @property
    def label(self) -> str:
        """``en-GB`` or ``en-GB/scottish``."""
        return self.tag if self.accent is None else f"{self.tag}/{self.accent}"


@dataclass(frozen=True, slots=True)
class Matrix:
    """The matrix axes; every axis value is kept exactly as written."""

    language: tuple[LanguageCell, ...]
    accent: tuple[str | None, ...] = (None,)
    noise: tuple[str, ...] = ("clean",)
    line: tuple[str, ...] = ("wideband",)
    speed: tuple[str | None, ...] = (None,)
    level: tuple[str | None, ...] = (None,)


@dataclass(frozen=True, slots=True)
class SimWhen:
    """Which cases and turns a simulator rule applies to (every field optional)."""

    language: str | None = None
    accent: str | None = None
    conversation: str | None = None
    turn: int | None = None
    noise: str | None = None
    line: str | None = None


@dataclass(frozen=True, slots=True)
class SimRule:
    """A simulator behaviour for the cases and turns ``when`` selects.

    Attributes:
        when: the selector.
        word_errors: replace this many words (characters for languages scored by CER)
            of what the agent "hears", from the end of the probe text.
        hears: report this transcript instead (wins over ``word_errors``).
        reply_in: answer in this language (the turn's ``simulate.reply`` text of that
            language, spoken by that language's voice).
        reply: answer this text instead (the whole answer: no tool call).
        first_audio_ms: be this slow to start speaking.
        skip_tool: answer without calling the tool (the after-result text is spoken).
        error: send an ``error`` event with this code as the turn's response starts
            (the call goes on).
        line: the rule's line in the suite file.
    """

    when: SimWhen = field(default_factory=SimWhen)
    word_errors: int = 0
    hears: str | None = None
    reply_in: str | None = None
    reply: str | None = None
    first_audio_ms: float | None = None
    skip_tool: bool = False
    error: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class SimSettings:
    """The suite's ``simulator:`` section (used with ``--provider sim`` only).

    Attributes:
        timing: scenario timing keys (see ``app/sim/scenario.py``) for every turn.
        rules: behaviours by language/accent/turn, applied in order (later rules win
            field by field).
        voice_rate: espeak-ng words per minute of the simulated agent.
    """

    timing: Mapping[str, Any] = field(default_factory=dict)
    rules: tuple[SimRule, ...] = ()
    voice_rate: int = 175


@dataclass(frozen=True, slots=True)
class Suite:
    """A validated suite file."""

    name: str
    path: Path
    profile: str
    seed: int
    conversations: tuple[Conversation, ...]
    matrix: Matrix
    repeat: int = 1
    expect_call: CallExpect = field(default_factory=CallExpect)
    voices: Mapping[str, str] = field(default_factory=dict)
    simulator: SimSettings = field(default_factory=SimSettings)
    turn_timeout_ms: int = 20_000
    idle_ms: int = 600
    lead_ms: int = 300

    @property
    def base_dir(self) -> Path:
        """The suite's folder: relative paths in the suite are relative to it."""
        return self.path.parent
