"""A self-contained HTML report of one session (``voiceprobe sessions export --html``).

Every piece of untrusted text (transcripts, tool arguments and results, error messages,
profile fields) goes through :func:`app.textsafe.printable` (control and bidi characters
made visible, lone surrogates replaced) and then :func:`html.escape`; the report has no
script, and its Content Security Policy (:mod:`app.report.page`) forbids scripts and every
fetch. The waterfall and the chart are inline SVG; verdicts (manual and automatic) are
shown per turn, and the summary gives the call quality and cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.metrics.presentation import (
    SCRIPTED_MARK,
    SCRIPTED_NOTE,
    SPAN_STYLES,
    caller_text,
    span_colour,
    transcripts_scripted,
    turn_number,
)
from app.metrics.timeline import summarize
from app.report.page import CSP_META, PRINT_CSS, esc
from app.report.svg import bar_chart_svg, waterfall_svg
from app.store.reader import SessionRecord, session_failures, session_turns


def _e(value: Any) -> str:
    r"""Untrusted ``value`` as HTML text (:func:`app.report.page.esc`)."""
    return esc(value)


def _verdicts_html(verdicts: Sequence[Mapping[str, Any]]) -> str:
    """A turn's verdicts: the one that counts first (manual over automatic), the other
    struck through."""
    if not verdicts:
        return ""
    ordered = sorted(verdicts, key=lambda v: v.get("source") != "manual")
    out = []
    for i, v in enumerate(ordered):
        verdict = "pass" if v.get("verdict") == "pass" else "fail"
        cls = f"v {verdict}" + (" over" if i else "")
        who = v.get("who") or ""
        detail = " · ".join(str(x) for x in (v.get("reason"), v.get("note"), who, v.get("at")) if x)
        out.append(
            f'<p><span class="{cls}">{"✓" if verdict == "pass" else "✗"} {verdict}</span>'
            f"{_e(v.get('source'))}: {_e(detail)}</p>"
        )
    return "".join(out)


def _rtt_ms(value: Any) -> str:
    """A round trip in ms to 0.1 ms (a loopback or LAN round trip is under 1 ms)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.1f}"
    return _e(value)


def _quality_rows(meta: Mapping[str, Any]) -> list[str]:
    """Tags, call quality (network round trip, errors, dropped events) and cost rows."""
    rows = []
    tags = meta.get("tags") or []
    if tags:
        rows.append(f"<tr><th>tags</th><td>{_e(', '.join(map(str, tags)))}</td></tr>")
    raw = meta.get("summary")
    summary: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    rtt = summary.get("network_rtt")
    if isinstance(rtt, Mapping) and rtt.get("count"):
        rows.append(
            f"<tr><th>network round trip</th><td>p50 {_rtt_ms(rtt.get('p50_ms'))} ms · p95 "
            f"{_rtt_ms(rtt.get('p95_ms'))} ms over {_e(rtt.get('count'))} pings</td></tr>"
        )
    errors = summary.get("errors")
    count = len(errors) if isinstance(errors, list) else errors
    quality = f"{_e(count or 0)} errors"
    if summary.get("events_dropped"):
        quality += f" · {_e(summary['events_dropped'])} events dropped"
    if meta.get("skipped_lines"):
        quality += f" · {_e(meta['skipped_lines'])} unreadable event lines"
    rows.append(f"<tr><th>call quality</th><td>{quality}</td></tr>")
    cost = summary.get("cost_usd")
    known = isinstance(cost, int | float) and not isinstance(cost, bool)
    rows.append(
        f"<tr><th>cost</th><td>{'$' + format(cost, '.4f') if known else 'unknown'}</td></tr>"
    )
    return rows


def _legend() -> str:
    """Every span of the palette, with its colour and what it measures."""
    items = "".join(
        f'<li><span class="sw" style="background:{s.colour}"></span>{_e(s.label)} — '
        f"{_e(s.meaning)}</li>"
        for s in SPAN_STYLES
    )
    return f'<h2>Legend</h2><ul class="legend">{items}</ul>'


def html_report(record: SessionRecord, verdicts: Sequence[Mapping[str, Any]] = ()) -> str:
    """Render ``record`` as one HTML page (escaped, no scripts); ``verdicts`` are the
    session's verdict rows (:meth:`app.store.index.SessionIndex.verdicts`)."""
    meta = record.meta
    turns = session_turns(record)
    by_turn: dict[int, list[Mapping[str, Any]]] = {}
    for v in verdicts:
        by_turn.setdefault(int(v["turn"]), []).append(v)
    v2v = summarize(turns)
    longest = max([1000.0, *(float(s.ms) for t in turns for s in t.spans.values())])
    scale = min(longest * 1.2, 20000.0)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>voiceprobe session {_e(record.session_id)}</title>",
        CSP_META,
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "vertical-align:top}.row{display:flex;align-items:center;gap:8px;margin:2px 0}"
        ".lbl{width:150px;font-family:monospace}.track{position:relative;flex:1;height:12px;"
        "background:#f3f3f3}.seg{position:absolute;top:0;height:12px}.ms{width:80px;"
        "text-align:right;font-family:monospace}.legend{list-style:none;padding:0}"
        ".sw{display:inline-block;width:12px;height:12px;margin-right:6px;border-radius:2px}"
        ".fail{background:#fdecea;color:#b71c1c;border:1px solid #f5c2c0;padding:8px}"
        ".scripted{color:#8a5a00;font-size:90%}.lbl{font:11px monospace;fill:#333}"
        ".ms{font:10px monospace;fill:#333}.v{padding:2px 6px;border-radius:3px;"
        "margin-right:6px}.v.pass{background:#e6f4ea;color:#1b5e20}.v.fail{background:"
        "#fdecea;color:#b71c1c}.v.over{text-decoration:line-through;opacity:.6}"
        f"{PRINT_CSS}</style></head><body>",
        f"<h1>Session {_e(record.session_id)}</h1>",
        "<table>",
    ]
    for key in ("status", "provider", "model", "profile_name", "started_at", "ended_at", "source"):
        parts.append(f"<tr><th>{_e(key)}</th><td>{_e(meta.get(key))}</td></tr>")
    if v2v["count"]:
        parts.append(
            f"<tr><th>voice_to_voice</th><td>p50 {v2v['p50_ms']:.0f} ms · p95 "
            f"{v2v['p95_ms']:.0f} ms over {v2v['count']} turns (LocalSpeechStopped → "
            "PlaybackStarted)</td></tr>"
        )
    parts.extend(_quality_rows(meta))
    parts.append("</table>")
    if sum(1 for t in turns if t.voice_to_voice_ms is not None) > 1:
        parts.append(
            bar_chart_svg(
                [(f"turn {turn_number(t, r)}", t.voice_to_voice_ms) for r, t in enumerate(turns)],
                "voice_to_voice (ms)",
                span_colour("voice_to_voice"),
                "voice_to_voice per turn",
            )
        )  # fmt: skip
    for fail in session_failures(record):
        parts.append(
            f'<p class="fail"><b>Call failed</b> ({_e(fail.get("code"))}): '
            f"{_e(fail.get('message'))}"
            + (f"<br><b>What to do:</b> {_e(fail['fix'])}" if fail.get("fix") else "")
            + "</p>"
        )
    scripted = transcripts_scripted(meta.get("provider"))
    if scripted:
        parts.append(f'<p class="scripted">{_e(SCRIPTED_MARK)} {_e(SCRIPTED_NOTE)}</p>')
    for row, turn in enumerate(turns):
        flag = " (barge-in)" if turn.interrupted else ""
        number = turn_number(turn, row)
        parts.append(f'<div class="turn"><h2>Turn {number}{_e(flag)}</h2>')
        parts.append(_verdicts_html(by_turn.get(number, [])))
        user = caller_text(turn.user_transcript, scripted)
        parts.append(f"<p><b>Caller:</b> {_e(user)}</p>")
        parts.append(f"<p><b>Agent:</b> {_e(turn.agent_transcript)}</p>")
        for call in turn.tool_calls:
            parts.append(
                f"<p><b>Tool</b> {_e(call.name)}({_e(call.arguments)}) → "
                f"{_e(call.status)} in {_e(call.ms)} ms</p>"
            )
        parts.append(waterfall_svg(turn, scale))
        parts.append("</div>")
    errors = [e for e in record.events if e.get("kind") == "ProviderErrorEvent"]
    if errors:
        parts.append("<h2>Errors</h2><ul>")
        for err in errors:
            parts.append(f"<li>{_e(err.get('code'))}: {_e(err.get('message'))}</li>")
        parts.append("</ul>")
    if turns:
        parts.append(_legend())
    parts.append("</body></html>")
    return "\n".join(parts)
