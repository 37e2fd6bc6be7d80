"""What the call commands print: progress lines on stderr, the turn table, the cost line
and a call's summary.

Everything printed here may hold text from outside (server messages, transcripts, file
names): it goes through :func:`app.textsafe.printable` (or :func:`json_text`), so a line
stays one inert line on a terminal. The summary is printed the same way for a headless
``call``, a ``call --mic`` and each ``sip answer|dial`` call; a SIP call's summary adds its
RTP quality and the bridge's delay.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

from app.textsafe import json_text, printable, safe_text


def progress_printer() -> Callable[[Any], None]:
    """An event subscriber that prints a call's progress on stderr (the call starting,
    connection changes, each finished turn, errors and warnings); runs on the bridge's
    thread."""
    from app.events import CallStarted, ConnectionState, Notice, ProviderErrorEvent, TurnCompleted

    def show(ev: Any) -> None:
        p = printable  # everything here may hold server text (details, messages)
        if isinstance(ev, CallStarted):
            print(f"call {ev.session_id} → {p(ev.provider)} ({p(ev.model)})", file=sys.stderr)
        elif isinstance(ev, ConnectionState):
            print(f"  connection: {p(ev.state)} {p(ev.detail)}".rstrip(), file=sys.stderr)
        elif isinstance(ev, TurnCompleted):
            v2v = ev.turn.spans.get("voice_to_voice")
            fig = f"{v2v.ms:.0f} ms" if v2v else "-"
            print(f"  turn {ev.turn.index + 1} done, voice_to_voice {fig}", file=sys.stderr)
        elif isinstance(ev, ProviderErrorEvent):
            print(f"  provider error {p(ev.code)}: {p(ev.message)}", file=sys.stderr)
        elif isinstance(ev, Notice) and ev.level != "info":
            print(f"  {p(ev.level)}: {p(ev.message)}", file=sys.stderr)

    return show


TABLE_SPANS = (
    ("eot", "end_of_turn_delay"),
    ("resp", "response_start"),
    ("ttfb", "ttfb"),
    ("tools", None),
    ("follow", "tool_followup"),
    ("play", "playback_latency"),
    ("v2v", "voice_to_voice"),
)


def _clip(text: object, width: int) -> str:
    """Untrusted ``text`` as one inert line of at most ``width`` characters."""
    text = printable(" ".join(safe_text(text).split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def print_turn_table(turns: list[dict[str, Any]], out: TextIO, scripted: bool = False) -> None:
    """One row per turn with the span figures in ms (``-`` where a span does not apply).

    ``turns`` are turn records (``index`` required; the other keys may be missing, as in
    a checked ``turns.json``); transcripts are printed as inert text. Turns are numbered
    from 1 (``index`` + 1), as everywhere a person reads them. ``scripted`` marks the
    caller's words as the simulator's script (``[scripted]``).
    """
    from app.metrics.presentation import caller_text, turn_number

    # The cost column appears once turns are priced (sessions recorded before have none).
    priced = any("cost_usd" in t for t in turns)
    head = f"{'#':>2}  {'caller':<28} {'agent':<28} " + " ".join(f"{h:>7}" for h, _ in TABLE_SPANS)
    print(head + (f" {'cost':>8}" if priced else ""), file=out)
    print(
        f"{'':>2}  {'':<28} {'':<28} "
        + " ".join(f"{'ms':>7}" for _ in TABLE_SPANS)
        + (f" {'$':>8}" if priced else ""),
        file=out,
    )
    for turn in turns:
        spans = turn.get("spans", {})
        cells = []
        for _, span in TABLE_SPANS:
            if span is None:
                ms = sum(
                    v["ms"]
                    for k, v in spans.items()
                    if k.startswith("tool:") and v.get("ms") is not None
                )
                cells.append(f"{ms:7.0f}" if turn.get("tool_calls") else f"{'-':>7}")
            elif span in spans:
                cells.append(f"{spans[span]['ms']:7.0f}")
            else:
                cells.append(f"{'-':>7}")
        if priced:
            cost = turn.get("cost_usd")
            known = isinstance(cost, int | float) and not isinstance(cost, bool)
            cells.append(f"{cost:8.4f}" if known else f"{'-':>8}")
        agent = ("[cut] " if turn.get("interrupted") else "") + turn.get("agent_transcript", "")
        user = caller_text(str(turn.get("user_transcript", "")), scripted)
        print(
            f"{turn_number(turn)!s:>2}  {_clip(user, 28):<28} "
            f"{_clip(agent, 28):<28} " + " ".join(cells),
            file=out,
        )


def cost_line(summary: dict[str, Any]) -> str:
    """The call's cost as one inert line: the figure and the price it used, or why it
    is unknown."""
    usage = summary.get("usage")
    if not usage:
        return "cost: unknown (the provider reported no token usage)"
    tokens = f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out tokens"
    cost, price = summary.get("cost_usd"), usage.get("price")
    if isinstance(cost, int | float) and price:
        where = printable(price.get("source") or price.get("table"))
        return (
            f"cost: ${cost:.4f} ({tokens}; {printable(price.get('model'))} at "
            f"{where}, {printable(price.get('retrieved') or 'undated')})"
        )
    why = str(usage.get("notice") or "no price").removeprefix("cost unknown: ")
    return f"cost: unknown ({tokens}; {printable(why)})"


def print_summary(summary: dict[str, Any], as_json: bool, out: TextIO | None = None) -> None:
    """Print one call's summary (the ``--json`` object of :func:`app.bridge.session.run_call`).

    With ``as_json``, the summary as one line of JSON; else the turn table, the
    voice-to-voice figures, a SIP call's quality and bridge delay (when the summary has
    them), the cost and the session folder. The call's errors go to stderr either way,
    so that stdout holds only the JSON. Flushed, so that a reader sees each call of a
    command that places several as it ends.

    Args:
        summary: the call's summary.
        as_json: print the JSON line instead of the table.
        out: where to print (default: stdout).
    """
    out = out if out is not None else sys.stdout
    if as_json:
        print(json_text(summary), file=out)
    else:
        from app.metrics.presentation import transcripts_scripted

        scripted = transcripts_scripted(summary.get("provider"))
        print_turn_table(summary["turns"], out, scripted=scripted)
        v2v = summary["voice_to_voice"]
        if v2v["count"]:
            print(
                f"voice_to_voice (LocalSpeechStopped → PlaybackStarted): "
                f"p50 {v2v['p50_ms']:.0f} ms, p95 {v2v['p95_ms']:.0f} ms over {v2v['count']} "
                "turns",
                file=out,
            )
        for line in _sip_lines(summary):
            print(line, file=out)
        print(cost_line(summary), file=out)
        print(f"session {summary['session_id']}: {printable(summary['session_dir'])}", file=out)
    out.flush()
    if not as_json:
        for note in _end_notes(summary):
            print(f"note: {note}", file=sys.stderr)
    for err in summary["errors"]:  # on stderr with --json too: stdout holds only the JSON
        code, message = printable(err.get("code")), printable(err.get("message"))
        fix = f" ({printable(err['fix'])})" if err.get("fix") else ""
        print(f"error: {code}: {message}{fix}", file=sys.stderr)


def _end_notes(summary: dict[str, Any]) -> list[str]:
    """What the table alone does not say: a call cut off by its time limit, and a call
    in which no caller speech was heard (an empty table is otherwise all there is)."""
    notes = []
    if summary.get("reason") == "max_duration":
        notes.append("the call ended at its time limit (--max-seconds)")
    if summary.get("ok") and not summary.get("turns"):
        notes.append(
            "no caller speech was detected, so there are no turns: check that the input "
            "holds speech and is loud enough"
        )
    return notes


def _sip_lines(summary: dict[str, Any]) -> list[str]:
    """A SIP call's RTP quality and the delay the bridge adds each way (none for other
    calls)."""
    lines = []
    q = summary.get("call_quality") or {}
    if q.get("codec"):
        rtt = f"{q['rtt_ms']:.0f} ms" if q.get("rtt_ms") is not None else "-"
        dtmf = f", DTMF {printable(q['dtmf'])}" if q.get("dtmf") else ""
        lines.append(
            f"call quality: {printable(q['codec'])}, jitter {q['jitter_ms']:.1f} ms, "
            f"loss {q['loss_pct']:.1f} %, rtt {rtt}, MOS {q['mos']:.2f}{dtmf}"
        )
    if "sip_bridge_delay" in summary:
        d = summary.get("sip_bridge_delay") or {}

        def fig(name: str) -> str:
            f = d.get(name) or {}
            if not f.get("count"):
                return "-"
            return f"p50 {f['p50_ms']:.1f} / p95 {f['p95_ms']:.1f} ms"

        lines.append(
            f"bridge delay: SIP in → provider {fig('sip_in_to_provider')}; "
            f"provider → SIP out {fig('provider_to_sip_out')}"
        )
    return lines
