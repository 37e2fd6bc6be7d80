"""How people see turns and spans: one numbering, one palette, one legend.

The desktop app (``ui/``), ``voiceprobe sessions show`` and the HTML report
(:mod:`app.store.report`) all take their turn numbers, span colours and span names from
here, so a figure looks and reads the same wherever it is shown.

Numbering: turns are numbered from 1 wherever a person reads them (:func:`turn_number`);
the ``index`` field of the JSON records (``--json``, ``turns.json``) stays 0-based.

Palette: every colour is opaque. The waterfall draws caller/agent speech in a strip of
its own above the latency spans, so no two spans ever overlap and every bar has exactly
its legend colour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.metrics.records import TurnRecord

#: The headline span (the figure shown for every turn).
HEADLINE = "voice_to_voice"


@dataclass(frozen=True, slots=True)
class SpanStyle:
    """How one span kind is drawn and named.

    Attributes:
        key: the span name, or the family key of ``tool:<name>`` (``tool``) and
            ``reconnect#<n>`` (``reconnect``) spans.
        label: the name people read (legend, detail panel, report).
        colour: ``#rrggbb``, opaque.
        lane: ``speech`` (who is talking), ``latency`` (waiting time), ``headline``.
        meaning: one line on what the span measures (tooltips, report legend).
        events: the two events it runs between (``app/metrics/timeline.py``), named when
            a record does not carry its own ``from``/``to``.
    """

    key: str
    label: str
    colour: str
    lane: str
    meaning: str
    events: tuple[str, str] = ("", "")


#: Every span kind, in legend order. A new span is one line here.
SPAN_STYLES: tuple[SpanStyle, ...] = (
    SpanStyle(
        "user_speech",
        "caller speech",
        "#5c85d6",
        "speech",
        "the caller was speaking",
        ("LocalSpeechStarted", "LocalSpeechStopped"),
    ),
    SpanStyle(
        "end_of_turn_delay",
        "end of turn",
        "#f9ab00",
        "latency",
        "the caller stopped → the server saw the end of the turn",
        ("LocalSpeechStopped", "ServerSpeechStopped"),
    ),
    SpanStyle(
        "response_start",
        "response start",
        "#e8710a",
        "latency",
        "end of turn seen → the response was created",
        ("ServerSpeechStopped", "ResponseStarted"),
    ),
    SpanStyle(
        "ttfb",
        "time to first audio",
        "#d93025",
        "latency",
        "response created → its first audio arrived",
        ("ResponseStarted", "AgentAudio"),
    ),
    SpanStyle(
        "tool",
        "tool call",
        "#9334e6",
        "latency",
        "the agent asked for a tool → its result was sent",
        ("ToolCallRequested", "ToolCallFinished"),
    ),
    SpanStyle(
        "tool_followup",
        "tool follow-up",
        "#c58af9",
        "latency",
        "tool result sent → the follow-up's first audio",
        ("ToolCallFinished", "AgentAudio"),
    ),
    SpanStyle(
        "playback_latency",
        "playback",
        "#12b5cb",
        "latency",
        "first audio arrived → its first sample played",
        ("AgentAudio", "PlaybackStarted"),
    ),
    SpanStyle(
        "agent_speech",
        "agent speech",
        "#34a853",
        "speech",
        "the agent's reply played",
        ("PlaybackStarted", "PlaybackStopped"),
    ),
    SpanStyle(
        "reconnect",
        "reconnect",
        "#795548",
        "speech",
        "the connection was lost → the call went on in a new session",
        ("ConnectionLost", "Reconnected"),
    ),
    SpanStyle(
        "barge_in_reaction",
        "barge-in reaction",
        "#00897b",
        "latency",
        "the caller barged in → the agent's audio stopped",
    ),
    SpanStyle(
        HEADLINE,
        "voice→voice",
        "#202124",
        "headline",
        "the caller stopped speaking → the agent's first sample played",
        ("LocalSpeechStopped", "PlaybackStarted"),
    ),
)
_BY_KEY = {s.key: s for s in SPAN_STYLES}
#: Colours of the speech-activity lanes: the caller's VAD and the agent's audio share
#: their speech spans' colours.
LANE_COLOURS: dict[str, str] = {
    "local": _BY_KEY["user_speech"].colour,
    "server": "#f9ab00",
    "agent": _BY_KEY["agent_speech"].colour,
    "level": "#5f6368",
    "playhead": "#d93025",
}
#: Colour of spans with no style of their own.
OTHER_COLOUR = "#80868b"
#: Colour of a slow turn's figure.
SLOW_COLOUR = "#b45309"


def span_key(name: str) -> str:
    """The style key of span ``name``: ``tool:get_weather`` → ``tool``,
    ``reconnect#2`` → ``reconnect``, else ``name``."""
    if name.startswith("tool:"):
        return "tool"
    return name.split("#", 1)[0]


def span_style(name: str) -> SpanStyle:
    """The style of span ``name`` (a grey latency style for unknown kinds)."""
    style = _BY_KEY.get(span_key(name))
    if style is not None:
        return style
    return SpanStyle(name, name, OTHER_COLOUR, "latency", "")


def span_colour(name: str) -> str:
    """Colour (``#rrggbb``) of span ``name``."""
    return span_style(name).colour


def span_label(name: str) -> str:
    """The name people read for span ``name`` (``tool get_weather`` for a tool span,
    ``reconnect 2`` for the second reconnect of a turn)."""
    if name.startswith("tool:"):
        return f"tool {name[5:]}"
    key = span_key(name)
    label = span_style(name).label
    return f"{label} {name.split('#', 1)[1]}" if key != name else label


def turn_number(turn: TurnRecord | Mapping[str, Any], row: int = 0) -> int:
    """The 1-based number of a turn (a record, or its JSON form) as people read it:
    ``index`` + 1 (``row`` + 1 when the JSON has no integer ``index``)."""
    idx = turn.get("index") if isinstance(turn, Mapping) else turn.index
    return idx + 1 if isinstance(idx, int) and not isinstance(idx, bool) else row + 1


#: The providers whose caller transcripts are scripted, not heard: the built-in simulator
#: reports its scenario's ``hears`` line as the caller's words, whatever was said.
SCRIPTED_PROVIDERS = frozenset({"sim"})
#: The mark put before a scripted caller transcript wherever it is shown or exported.
SCRIPTED_MARK = "[scripted]"
#: What the mark means (tooltips, report legend).
SCRIPTED_NOTE = (
    "scripted: the simulator reports its scenario's line as the caller's words; "
    "it did not transcribe what was said"
)


def transcripts_scripted(provider: object) -> bool:
    """Whether a session with this ``provider`` (``session.json`` / ``CallStarted``) has
    scripted caller transcripts."""
    return str(provider or "") in SCRIPTED_PROVIDERS


def caller_text(text: str, scripted: bool) -> str:
    """A caller transcript as people read it: marked when ``scripted`` (and not empty)."""
    return f"{SCRIPTED_MARK} {text}" if scripted and text else text
