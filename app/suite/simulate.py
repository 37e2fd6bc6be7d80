"""Build the simulator's scenario for one case (``--provider sim``).

The simulator does no speech recognition, so the runner tells it what it will "hear":
each scenario turn's ``hears`` is the case's probe text, altered by the suite's
``simulator.rules`` (word errors, an explicit transcript). Its reply is the turn's
``simulate.reply`` text in the case's language (or the language a rule names), spoken by
the espeak-ng voice the probe library maps that language to; rules can also make it slow
(``first_audio_ms``) or answer without the tool call. The simulator's ground truth (its
own stamps and what it sent) stays its own: nothing here reads the bridge.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any

from app.errors import ConfigError
from app.probes.lang import primary_subtag
from app.probes.scoring import uses_cer
from app.probes.voices import voice_for
from app.sim.scenario import Fault, Scenario, Timing, ToolCall, Turn
from app.suite.expand import Case
from app.suite.load import say_text
from app.suite.model import SimRule, SimWhen, Suite

#: What a corrupted word (or character) is replaced by.
ERROR_TOKEN = "zzz"
#: The first message of a response, per simulator dialect (where an ``error`` rule fires).
_RESPONSE_START = {"openai": "response.created", "gemini": "serverContent.modelTurn"}


def _language_matches(key: str, language: str) -> bool:
    tag = language.lower()
    if key == tag:
        return True
    return "-" not in key and primary_subtag(key) == primary_subtag(language)


def _applies(when: SimWhen, case: Case, turn: int) -> bool:
    return (
        (when.language is None or _language_matches(when.language, case.language))
        and (when.accent is None or (case.accent or "").lower() == when.accent.lower())
        and (when.conversation is None or when.conversation == case.conversation.id)
        and (when.turn is None or when.turn == turn)
        and (when.noise is None or when.noise == case.noise)
        and (when.line is None or when.line == case.line)
    )


def _effect(rules: tuple[SimRule, ...], case: Case, turn: int) -> SimRule:
    """The rules that apply to this turn merged into one (later ones win field by field;
    ``skip_tool`` once set stays set); its ``when`` and ``line`` mean nothing."""
    eff = SimRule()
    for rule in rules:
        if not _applies(rule.when, case, turn):
            continue
        changes: dict[str, Any] = {
            name: getattr(rule, name)
            for name in ("hears", "reply_in", "reply", "first_audio_ms", "error")
            if getattr(rule, name) is not None
        }
        eff = dataclasses.replace(
            eff,
            word_errors=rule.word_errors or eff.word_errors,
            skip_tool=eff.skip_tool or rule.skip_tool,
            **changes,
        )
    return eff


def with_errors(text: str, count: int, language: str) -> str:
    """``text`` with its last ``count`` words (characters, for languages scored by CER)
    replaced by :data:`ERROR_TOKEN`: ``count`` substitutions against the original."""
    if count <= 0:
        return text
    if uses_cer(language):
        chars = list(text)
        done = 0
        for i in range(len(chars) - 1, -1, -1):
            if done == count:
                break
            if chars[i].isspace() or unicodedata.category(chars[i]).startswith("P"):
                continue
            chars[i] = "x"
            done += 1
        return "".join(chars)
    words = text.split()
    idx = [i for i, w in enumerate(words) if any(ch.isalnum() for ch in w)]
    for i in idx[-count:]:
        words[i] = ERROR_TOKEN
    return " ".join(words)


def case_scenario(suite: Suite, case: Case, dialect: str = "openai") -> Scenario:
    """The simulator scenario for ``case`` (see the module docstring); ``dialect`` is the
    simulator's wire dialect (it names the event an ``error`` rule fires before).

    Raises:
        ConfigError: no espeak-ng voice for a reply language.
    """
    sim = suite.simulator
    base = dataclasses.replace(Timing(), **dict(sim.timing))
    turns: list[Turn] = []
    for ct in case.turns:
        eff = _effect(sim.rules, case, ct.index)
        spec = ct.spec.simulate
        lang = eff.reply_in or case.language
        reply = eff.reply
        if reply is None:
            reply = (say_text(spec.reply, lang) or "") if spec else ""
        after = (say_text(spec.after_result, lang) or "") if spec else ""
        tool = None
        if eff.reply is not None:
            after = ""  # an explicit reply replaces the whole answer: no tool call
        elif spec is not None and spec.tool_name and not eff.skip_tool:
            args: dict[str, Any] = dict(spec.tool_arguments)
            tool = ToolCall(name=spec.tool_name, arguments=args, after_result=after)
        elif after:
            reply = f"{reply} {after}".strip()
        timing = base
        if eff.first_audio_ms is not None:
            timing = dataclasses.replace(base, first_audio_ms=eff.first_audio_ms)
        try:
            voice = voice_for(lang, None if eff.reply_in else case.accent, overrides=suite.voices)
        except ConfigError as exc:
            raise ConfigError(f"simulator reply voice: {exc}", str(suite.path)) from None
        hears = (
            eff.hears
            if eff.hears is not None
            else with_errors(ct.text, eff.word_errors, case.language)
        )
        faults: tuple[Fault, ...] = ()
        if eff.error is not None:
            at = _RESPONSE_START.get(dialect, "response.created")
            faults = (Fault(action="error", at=at, turn=ct.index, code=eff.error,
                            message="simulated error", error_type="server_error"),)  # fmt: skip
        turns.append(
            Turn(
                hears=hears, reply=reply, timing=timing, tool_call=tool, faults=faults, voice=voice
            )  # fmt: skip
        )
    return Scenario(
        name=case.id,
        voice_rate=sim.voice_rate,
        timing=base,
        turns=tuple(turns),
        path=str(suite.path),
    )
