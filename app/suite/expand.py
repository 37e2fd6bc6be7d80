"""Expand a suite into cases: conversation x matrix cell x repeat (pure).

A case is one call. Its id names every axis as written:
``weather/es-MX/babble@10/g711#1`` (speed and level are added when the matrix has them).
Each turn's text is the ``say`` entry for the case's language (exact tag, then the
primary subtag, see :func:`app.suite.load.say_text`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from app.probes.render import Probe
from app.suite.load import say_text
from app.suite.model import Conversation, Suite, SuiteTurn


@dataclass(frozen=True, slots=True)
class CaseTurn:
    """One caller turn of a case: the probe to play and what is expected of the answer."""

    index: int  # 1-based
    probe: Probe
    spec: SuiteTurn

    @property
    def text(self) -> str:
        """The probe's text: the reference for what the agent should have heard."""
        return self.probe.text


@dataclass(frozen=True, slots=True)
class Case:
    """One call of a suite run."""

    index: int
    conversation: Conversation
    language: str
    accent: str | None
    noise: str
    line: str
    speed: str | None
    level: str | None
    repeat: int
    turns: tuple[CaseTurn, ...]

    @property
    def conditions(self) -> tuple[str, ...]:
        """The condition names as written (speed, level, noise, line; absent ones left out)."""
        return tuple(c for c in (self.speed, self.level, self.noise, self.line) if c)

    @property
    def condition(self) -> str:
        """The non-language axes as one label: ``babble@10 g711``."""
        return " ".join(self.conditions)

    @property
    def language_label(self) -> str:
        """``en-GB`` or ``en-GB/scottish``."""
        return self.language if self.accent is None else f"{self.language}/{self.accent}"

    @property
    def id(self) -> str:
        """``conversation/language/condition.../line#repeat``."""
        parts = [self.conversation.id, self.language_label, *self.conditions]
        return "/".join(parts) + f"#{self.repeat}"


def expand(suite: Suite) -> list[Case]:
    """Every case of ``suite``, in a stable order (conversation, language, accent, noise,
    line, speed, level, repeat)."""
    m = suite.matrix
    out: list[Case] = []
    for conv in suite.conversations:
        for cell in m.language:
            accents = (cell.accent,) if cell.accent else m.accent
            for accent, noise, line, speed, level in itertools.product(
                accents, m.noise, m.line, m.speed, m.level
            ):
                turns = tuple(
                    CaseTurn(
                        i + 1,
                        Probe(
                            text=say_text(t.say, cell.tag) or "",
                            language=cell.tag,
                            accent=accent,
                            voice=t.voice,
                            file=t.file,
                        ),
                        t,
                    )
                    for i, t in enumerate(conv.turns)
                )
                for r in range(1, suite.repeat + 1):
                    out.append(
                        Case(len(out), conv, cell.tag, accent, noise, line, speed, level, r, turns)
                    )
    return out
