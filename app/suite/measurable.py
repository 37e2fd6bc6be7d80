"""Which of a suite's expectations a provider can measure at all.

``heard`` compares the provider's transcript of the caller with the probe text;
``reply_language``, ``says`` and ``not_says`` read the agent's transcript; ``tool`` reads
the tool calls; ``ttfb_ms`` starts at the provider's "response created". A provider
that reports none of these (a ``twilio-ws`` stream: audio,
marks and clears only, see docs/twilio.md) cannot check them, so the run refuses such a
suite before any call rather than fail every case with an empty transcript.
"""

from __future__ import annotations

from collections.abc import Callable

from app.errors import ConfigError
from app.suite.model import Suite, TurnExpect

#: Expectation (as written in the suite file) → whether ``expect`` uses it.
_NEEDS_PROVIDER_FACTS: dict[str, Callable[[TurnExpect], bool]] = {
    "heard": lambda e: e.max_wer is not None,
    "reply_language": lambda e: e.reply_language not in (None, False),
    "says": lambda e: bool(e.says),
    "not_says": lambda e: bool(e.not_says),
    "tool": lambda e: e.tool is not None,
    "ttfb_ms": lambda e: e.ttfb_ms is not None,  # response created → first audio
}


def provider_checks(expect: TurnExpect) -> list[str]:
    """The expectations of ``expect`` that need transcripts, tool calls or response
    events."""
    return [name for name, used in _NEEDS_PROVIDER_FACTS.items() if used(expect)]


def check_measurable(suite: Suite, provider: str, transcribing: bool) -> None:
    """Refuse a suite whose expectations ``provider`` cannot measure.

    Args:
        suite: the validated suite.
        provider: the provider as the user named it (for the message).
        transcribing: whether the provider reports transcripts and tool calls.

    Raises:
        ConfigError: naming the suite file, the first turn's line and every expectation
            that cannot be checked, and what can be.
    """
    if transcribing:
        return
    for conv in suite.conversations:
        for turn in conv.turns:
            names = provider_checks(turn.expect)
            if names:
                raise ConfigError(
                    f"line {turn.line}: {', '.join(names)} "
                    f"{'needs' if len(names) == 1 else 'need'} transcripts or response "
                    f"events, which --provider {provider} does not report (it carries "
                    "audio only); check v2v_ms and no_barge_in instead",
                    str(suite.path),
                    f"conversations.{conv.id}.turns",
                )
