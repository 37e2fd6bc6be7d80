"""A self-contained HTML report of one session (``voiceprobe sessions export --html``).

Every piece of untrusted text (transcripts, tool arguments and results, error messages,
profile fields) goes through :func:`html.escape`; the report has no script.
"""

from __future__ import annotations

import html
from typing import Any

from app.metrics.timeline import SPAN_ORDER, summarize
from app.store.reader import SessionRecord

COLOURS = {
    "user_speech": "#8fb3d9",
    "end_of_turn_delay": "#f2b134",
    "response_start": "#ef8a62",
    "ttfb": "#d6604d",
    "tool_followup": "#b2abd2",
    "playback_latency": "#7fbf7b",
    "agent_speech": "#1b7837",
    "voice_to_voice": "#542788",
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _bar(turn: dict[str, Any], scale_ms: float) -> str:
    spans = turn.get("spans", {})
    anchor = spans.get("voice_to_voice", spans.get("end_of_turn_delay", {})).get("start_ns")
    if anchor is None:
        return ""
    rows = []
    names = [n for n in SPAN_ORDER if n in spans] + sorted(
        n for n in spans if n.startswith("tool:")
    )
    for name in names:
        s = spans[name]
        left = max(0.0, (s["start_ns"] - anchor) / 1e6) / scale_ms * 100
        width = max(0.3, s["ms"] / scale_ms * 100)
        colour = COLOURS.get(name, "#999")
        rows.append(
            f'<div class="row"><span class="lbl">{_e(name)}</span><span class="track">'
            f'<span class="seg" style="left:{left:.2f}%;width:{min(width, 100 - left):.2f}%;'
            f'background:{colour}"></span></span><span class="ms">{s["ms"]:.0f} ms</span></div>'
        )
    return "".join(rows)


def html_report(record: SessionRecord) -> str:
    """Render ``record`` as one HTML page (escaped, no scripts)."""
    meta = record.meta
    turns = record.turns
    v2v = summarize(turns)
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
        "text-align:right;font-family:monospace}</style></head><body>",
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
    for turn in turns:
        flag = " (barge-in)" if turn.get("interrupted") else ""
        parts.append(f"<h2>Turn {_e(turn.get('index'))}{_e(flag)}</h2>")
        parts.append(f"<p><b>Caller:</b> {_e(turn.get('user_transcript'))}</p>")
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
    parts.append("</body></html>")
    return "\n".join(parts)
