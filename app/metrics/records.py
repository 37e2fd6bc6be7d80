"""The turn record: what the timeline says about one turn, as frozen typed values.

:class:`~app.metrics.timeline.Timeline` builds a :class:`TurnRecord` for every turn and
sends it in :class:`~app.events.TurnCompleted`; the CLI, the desktop models and the
reports read its fields. It becomes JSON only at the edges (``turns.json``,
``events.jsonl``, ``--json``) through :meth:`TurnRecord.to_dict`, and is read back with
:meth:`TurnRecord.from_dict`. The JSON shape is the contract of ``--json`` and
``turns.json``::

    {"index", "user_transcript", "agent_transcript", "interrupted",
     "spans": {"<name>": {"start_ns", "end_ns", "ms", "from", "to"}},
     "tool_calls": [{"call_id", "name", "arguments", "status", "ms"}],
     "response_ids", "user_item_ids", "server_audio_start_ms", "server_audio_end_ms",
     "usage", "events_used"}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.metrics.presentation import HEADLINE


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if isinstance(value, float) else value
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """One named span of a turn: from one event to another, on the one clock.

    Attributes:
        start_ns: stamp of the event it starts at (``None`` only in records read from a
            hand-edited file).
        end_ns: stamp of the event it ends at.
        ms: ``end_ns - start_ns`` in milliseconds, rounded to microseconds.
        start_event: kind of the event it starts at (JSON ``from``; empty if unknown).
        end_event: kind of the event it ends at (JSON ``to``; empty if unknown).
    """

    start_ns: int | None
    end_ns: int | None
    ms: float
    start_event: str = ""
    end_event: str = ""

    @classmethod
    def between(cls, start_ns: int, end_ns: int, start_event: str, end_event: str) -> Span:
        """The span from one stamp to another (``ms`` computed and rounded here)."""
        return cls(
            start_ns=start_ns,
            end_ns=end_ns,
            ms=round((end_ns - start_ns) / 1e6, 3),
            start_event=start_event,
            end_event=end_event,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON fields ``{start_ns, end_ns, ms, from, to}`` (``from``/``to`` only if known)."""
        out: dict[str, Any] = {"start_ns": self.start_ns, "end_ns": self.end_ns, "ms": self.ms}
        if self.start_event or self.end_event:
            out["from"] = self.start_event
            out["to"] = self.end_event
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Span:
        """Read a span back (a missing or non-numeric ``ms`` reads as 0; a record leaves
        such a span out)."""
        ms = _num_or_none(d.get("ms"))
        return cls(
            start_ns=_int_or_none(d.get("start_ns")),
            end_ns=_int_or_none(d.get("end_ns")),
            ms=0.0 if ms is None else ms,
            start_event=str(d.get("from") or ""),
            end_event=str(d.get("to") or ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallRecord:
    """One tool call of a turn.

    Attributes:
        call_id: the provider's call id.
        name: the tool's name.
        arguments: the JSON text the model produced.
        status: ``pending`` until the result is sent, then the runner's status (``ok``,
            ``error``, ``timeout``…).
        ms: requested → result sent, in milliseconds; ``None`` while pending.
    """

    call_id: str
    name: str
    arguments: str
    status: str
    ms: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON fields ``{call_id, name, arguments, status, ms}``."""
        return {
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
            "status": self.status,
            "ms": self.ms,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ToolCallRecord:
        """Read a tool call back (missing text fields read as empty; ``arguments`` that a
        hand edit made an object read as its JSON text)."""
        args = d.get("arguments")
        return cls(
            call_id=str(d.get("call_id") or ""),
            name=str(d.get("name") or ""),
            arguments=args if isinstance(args, str) else "" if args is None else _json(args),
            status=str(d.get("status") or ""),
            ms=_num_or_none(d.get("ms")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRecord:
    """Everything the timeline knows about one turn.

    Attributes:
        index: 0-based turn number in the call.
        user_transcript: what the caller said (provider transcript).
        agent_transcript: what the agent said.
        interrupted: the agent's answer was cut (barge-in, cancel, server interruption).
        spans: name → :class:`Span`, in the timeline's order.
        tool_calls: the turn's tool calls, in request order.
        response_ids: the provider responses of the turn.
        user_item_ids: the provider's ids of the caller's items.
        server_audio_start_ms, server_audio_end_ms: the server's own position of the
            caller's speech, beside our stamps.
        usage: the turn's token usage record (:func:`app.metrics.cost.usage_record`).
        events_used: the kinds of event the spans run between.
    """

    index: int
    user_transcript: str = ""
    agent_transcript: str = ""
    interrupted: bool = False
    spans: Mapping[str, Span] = field(default_factory=dict)
    tool_calls: tuple[ToolCallRecord, ...] = ()
    response_ids: tuple[str, ...] = ()
    user_item_ids: tuple[str, ...] = ()
    server_audio_start_ms: int | None = None
    server_audio_end_ms: int | None = None
    usage: Mapping[str, Any] | None = None
    events_used: tuple[str, ...] = ()

    def span_ms(self, name: str) -> float | None:
        """The figure of span ``name`` in ms, ``None`` if the turn does not have it."""
        span = self.spans.get(name)
        return None if span is None else span.ms

    @property
    def voice_to_voice_ms(self) -> float | None:
        """The headline figure (:data:`app.metrics.presentation.HEADLINE`), ``None`` if
        not measured."""
        return self.span_ms(HEADLINE)

    @property
    def start_ns(self) -> int | None:
        """When the turn began: the caller's speech start, else its earliest span start
        (``None`` if no span has one)."""
        speech = self.spans.get("user_speech")
        if speech is not None and speech.start_ns is not None:
            return speech.start_ns
        starts = [s.start_ns for s in self.spans.values() if s.start_ns is not None]
        return min(starts) if starts else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record (the ``turns`` entries of ``--json`` and ``turns.json``)."""
        return {
            "index": self.index,
            "user_transcript": self.user_transcript,
            "agent_transcript": self.agent_transcript,
            "interrupted": self.interrupted,
            "spans": {name: span.to_dict() for name, span in self.spans.items()},
            "tool_calls": [call.to_dict() for call in self.tool_calls],
            "response_ids": list(self.response_ids),
            "user_item_ids": list(self.user_item_ids),
            "server_audio_start_ms": self.server_audio_start_ms,
            "server_audio_end_ms": self.server_audio_end_ms,
            "usage": dict(self.usage) if self.usage is not None else None,
            "events_used": list(self.events_used),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TurnRecord:
        """Read a record back from its JSON form.

        Tolerant, because ``turns.json`` may come from an older writer or a hand edit
        (:func:`app.store.reader.check_turns` validates the types first): a missing key
        reads as its empty value, a span with no numeric ``ms`` is left out, and so are
        unknown keys (``cost_usd``…).
        """
        spans = d.get("spans")
        calls = d.get("tool_calls")
        usage = d.get("usage")
        index = _int_or_none(d.get("index"))
        return cls(
            index=0 if index is None else index,
            user_transcript=str(d.get("user_transcript") or ""),
            agent_transcript=str(d.get("agent_transcript") or ""),
            interrupted=bool(d.get("interrupted", False)),
            spans=(
                {
                    str(k): Span.from_dict(v)
                    for k, v in spans.items()
                    if isinstance(v, Mapping) and _num_or_none(v.get("ms")) is not None
                }
                if isinstance(spans, Mapping)
                else {}
            ),
            tool_calls=(
                tuple(ToolCallRecord.from_dict(c) for c in calls if isinstance(c, Mapping))
                if isinstance(calls, list | tuple)
                else ()
            ),
            response_ids=_strings(d.get("response_ids")),
            user_item_ids=_strings(d.get("user_item_ids")),
            server_audio_start_ms=_int_or_none(d.get("server_audio_start_ms")),
            server_audio_end_ms=_int_or_none(d.get("server_audio_end_ms")),
            usage=dict(usage) if isinstance(usage, Mapping) else None,
            events_used=_strings(d.get("events_used")),
        )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()
