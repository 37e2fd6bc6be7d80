"""A self-contained HTML report of one session (``voiceprobe sessions export --html``).

Every piece of untrusted text (transcripts, tool arguments and results, error messages,
profile fields) goes through :func:`app.textsafe.printable` (control and bidi characters
made visible, lone surrogates replaced) and then :func:`html.escape`; the report has no
script.
"""

from __future__ import annotations

import html
from typing import Any

from app.metrics.presentation import (
    SCRIPTED_MARK,
    SCRIPTED_NOTE,
    SPAN_STYLES,
    caller_text,
    span_colour,
    span_label,
    transcripts_scripted,
    turn_number,
)
from app.metrics.timeline import SPAN_ORDER, summarize
from app.store.reader import SessionRecord, session_failures
from app.textsafe import printable


def _e(value: Any) -> str:
    r"""Untrusted ``value`` as HTML text: control and bidi characters shown as escapes
    (``\u202e``), lone surrogates as U+FFFD, then HTML-escaped.
    """
    return html.escape(printable(value, multiline=True), quote=True)


def _bar(turn: dict[str, Any], scale_ms: float) -> str:
    spans = turn.get("spans", {})
    anchor = spans.get("voice_to_voice", spans.get("end_of_turn_delay", {})).get("start_ns")
    if anchor is None:
        return ""
    rows = []
    names = [n for n in SPAN_ORDER if n in spans]
    names += sorted(n for n in spans if n not in names)
    for name in names:
        s = spans[name]
        if not isinstance(s, dict) or not isinstance(s.get("start_ns"), int):
            continue
        left = max(0.0, (s["start_ns"] - anchor) / 1e6) / scale_ms * 100
        width = max(0.3, s["ms"] / scale_ms * 100)
        title = f"{span_label(name)}: {s['ms']:.0f} ms, from {s.get('from')} to {s.get('to')}"
        rows.append(
            f'<div class="row" title="{_e(title)}"><span class="lbl">{_e(span_label(name))}'
            f'</span><span class="track"><span class="seg" style="left:{left:.2f}%;'
            f'width:{min(width, 100 - left):.2f}%;background:{span_colour(name)}"></span>'
            f'</span><span class="ms">{s["ms"]:.0f} ms</span></div>'
        )
    return "".join(rows)


def _legend() -> str:
    """Every span of the palette, with its colour and what it measures."""
    items = "".join(
        f'<li><span class="sw" style="background:{s.colour}"></span>{_e(s.label)} — '
        f"{_e(s.meaning)}</li>"
        for s in SPAN_STYLES
    )
    return f'<h2>Legend</h2><ul class="legend">{items}</ul>'


def html_report(record: SessionRecord) -> str:
    """Render ``record`` as one HTML page (escaped, no scripts)."""
    meta = record.meta
    turns = record.turns
    v2v = summarize([t for t in turns if "spans" in t])
    longest = 1000.0
    for t in turns:
        for s in t.get("spans", {}).values():
            longest = max(longest, float(s.get("ms") or 0))
    scale = min(longest * 1.2, 20000.0)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>voiceprobe session {_e(record.session_id)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "vertical-align:top}.row{display:flex;align-items:center;gap:8px;margin:2px 0}"
        ".lbl{width:150px;font-family:monospace}.track{position:relative;flex:1;height:12px;"
        "background:#f3f3f3}.seg{position:absolute;top:0;height:12px}.ms{width:80px;"
        "text-align:right;font-family:monospace}.legend{list-style:none;padding:0}"
        ".sw{display:inline-block;width:12px;height:12px;margin-right:6px;border-radius:2px}"
        ".fail{background:#fdecea;color:#b71c1c;border:1px solid #f5c2c0;padding:8px}"
        ".scripted{color:#8a5a00;font-size:90%}</style></head><body>",
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
    parts.append("</table>")
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
        flag = " (barge-in)" if turn.get("interrupted") else ""
        parts.append(f"<h2>Turn {turn_number(turn, row)}{_e(flag)}</h2>")
        user = caller_text(str(turn.get("user_transcript") or ""), scripted)
        parts.append(f"<p><b>Caller:</b> {_e(user)}</p>")
        parts.append(f"<p><b>Agent:</b> {_e(turn.get('agent_transcript'))}</p>")
        for call in turn.get("tool_calls", []):
            parts.append(
                f"<p><b>Tool</b> {_e(call.get('name'))}({_e(call.get('arguments'))}) → "
                f"{_e(call.get('status'))} in {_e(call.get('ms'))} ms</p>"
            )
        parts.append(_bar(turn, scale))
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
