"""The coverage report (``voiceprobe report coverage --html``): one self-contained page
with the matrix, per-language figures and chart, and the worst turns with their audio.

Figures come from :mod:`app.store.coverage` (the index); only the worst turns' session
folders are read (their transcripts and a clip of their recording). Untrusted text is
escaped by :func:`app.report.page.esc`; the page carries no script and its policy allows
no fetch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import VoiceprobeError
from app.metrics.presentation import HEADLINE, span_colour, turn_number
from app.report.clips import clip_data_uri, turn_window_s
from app.report.page import CSP_META, PRINT_CSS, esc
from app.report.svg import bar_chart_svg, rate_colour
from app.report.text import fmt
from app.store.coverage import CoverageQuery, coverage, worst_turns
from app.store.index import SessionIndex

CSS = (
    "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "vertical-align:top;text-align:left}td.n{text-align:right;font-family:monospace}"
    ".cell b{font-size:15px}.cell small{display:block;color:#444;font-family:monospace}"
    ".lbl{font:11px monospace;fill:#333}.ms{font:10px monospace;fill:#333}"
    ".fail{color:#b71c1c;font-weight:bold}.pass{color:#1b5e20;font-weight:bold}"
    ".worst{border:1px solid #ddd;padding:8px;margin:8px 0}.meta{color:#555}"
)


def _figures_html(f: Mapping[str, Any]) -> str:
    return (
        f"<b>{esc(fmt(f['pass_rate'], '{:.0f}%'))}</b>"
        f"<small>{f['calls']} calls · {f['turns']} turns · judged {f['judged']}</small>"
        f"<small>WER {esc(fmt(f['mean_wer'], '{:.3f}'))} · lang "
        f"{esc(fmt(f['reply_language_match'], '{:.0f}%'))}</small>"
        f"<small>v2v {esc(fmt(f['v2v_p50_ms'], '{:.0f}'))}/"
        f"{esc(fmt(f['v2v_p95_ms'], '{:.0f}'))} ms</small>"
    )


def _matrix_html(result: Mapping[str, Any]) -> str:
    by = result["by"]
    cells = result["cells"]
    if not cells:
        return "<p>No session matches.</p>"
    if len(by) == 2:
        rows = sorted({c["key"][by[0]] for c in cells})
        cols = sorted({c["key"][by[1]] for c in cells})
        at = {(c["key"][by[0]], c["key"][by[1]]): c for c in cells}
        head = "".join(f"<th>{esc(c or '—')}</th>" for c in cols)
        out = [f"<table class='matrix'><tr><th>{esc(by[0])} \\ {esc(by[1])}</th>{head}</tr>"]
        for r in rows:
            out.append(f"<tr><th>{esc(r or '—')}</th>")
            for c in cols:
                cell = at.get((r, c))
                if cell is None:
                    out.append("<td></td>")
                else:
                    out.append(
                        f"<td class='cell' style='background:{rate_colour(cell['pass_rate'])}'>"
                        f"{_figures_html(cell)}</td>"
                    )
            out.append("</tr>")
        out.append("</table>")
        return "".join(out)
    head = "".join(f"<th>{esc(d)}</th>" for d in by)
    out = [f"<table class='matrix'><tr>{head}<th>figures</th></tr>"]
    for cell in cells:
        keys = "".join(f"<td>{esc(v or '—')}</td>" for v in cell["key"].values())
        out.append(
            f"<tr>{keys}<td class='cell' style='background:{rate_colour(cell['pass_rate'])}'>"
            f"{_figures_html(cell)}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def _languages_html(langs: Mapping[str, Mapping[str, Any]]) -> str:
    cols = (("calls", "calls", "{:d}"), ("turns", "turns", "{:d}"),
            ("pass", "pass_rate", "{:.1f}%"), ("WER", "mean_wer", "{:.3f}"),
            ("reply lang", "reply_language_match", "{:.1f}%"),
            ("v2v p50", "v2v_p50_ms", "{:.0f} ms"), ("v2v p95", "v2v_p95_ms", "{:.0f} ms"),
            ("cost/call", "cost_per_call_usd", "${:.4f}"))  # fmt: skip
    head = "".join(f"<th>{h}</th>" for h, _, _ in cols)
    out = [f"<table><tr><th>language</th>{head}</tr>"]
    for lang, f in langs.items():
        tds = "".join(f"<td class='n'>{esc(fmt(f[k], p))}</td>" for _, k, p in cols)
        out.append(f"<tr><th>{esc(lang or '—')}</th>{tds}</tr>")
    out.append("</table>")
    chart = bar_chart_svg(
        [(lang or "—", f["v2v_p95_ms"]) for lang, f in langs.items()],
        "v2v p95 (ms)",
        span_colour(HEADLINE),
        "voice_to_voice p95 by language",
    )
    return "".join(out) + chart


def _worst_html(sessions: Path, worst: list[dict[str, Any]]) -> str:
    from app.store.reader import load_session, session_turns

    if not worst:
        return "<p>No turn to show.</p>"
    out = []
    for w in worst:
        sid = str(w["session_id"])
        verdict = w.get("verdict")
        head = (
            f"<b>{esc(sid)}</b> turn {int(w['turn'])} · {esc(w['language'] or '—')}"
            f"{' / ' + esc(w['accent']) if w['accent'] else ''} · "
            + (
                f"<span class='{esc(verdict)}'>{esc(verdict)}</span> ({esc(w['source'])})"
                if verdict
                else "no verdict"
            )  # fmt: skip
            + f" · WER {esc(fmt(w['wer'], '{:.3f}'))} · v2v {esc(fmt(w['v2v_ms'], '{:.0f} ms'))}"
        )
        body = []
        if w.get("reason") or w.get("note"):
            why = f"{esc(w.get('reason') or '')} {esc(w.get('note') or '')}"
            body.append(f"<p class='meta'>{why}</p>")
        try:
            record = load_session(sessions / sid)
        except VoiceprobeError:
            record = None
        if record is not None:
            turn = next((t for r, t in enumerate(session_turns(record))
                         if turn_number(t, r) == int(w["turn"])), None)  # fmt: skip
            if turn is not None:
                body.append(f"<p><b>Caller:</b> {esc(turn.user_transcript)}</p>")
                body.append(f"<p><b>Agent:</b> {esc(turn.agent_transcript)}</p>")
                t0 = record.meta.get("audio_t0_ns")
                window = turn_window_s(turn, t0) if isinstance(t0, int) else None
                audio = record.audio_path
                uri = clip_data_uri(audio, *window) if audio and window else None
                if uri:
                    body.append(f"<audio controls preload='auto' src='{uri}'></audio>")
        out.append(f"<div class='worst'>{head}{''.join(body)}</div>")
    return "".join(out)


def coverage_report(index: SessionIndex, q: CoverageQuery, sessions: Path, worst: int = 5) -> str:
    """The coverage report page of ``q`` (see the module docstring); ``sessions`` is the
    folder of session folders, ``worst`` how many worst turns to show."""
    result = coverage(index, q)
    filters = ", ".join(f"{k} {v}" for k, v in result["filters"].items()) or "none"
    total = result["total"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        CSP_META,
        "<title>voiceprobe coverage</title>",
        f"<style>{CSS}{PRINT_CSS}</style></head><body>",
        "<h1>Coverage</h1>",
        f"<p class='meta'>Made {esc(datetime.now(UTC).isoformat(timespec='seconds'))} · "
        f"matrix {esc(' × '.join(result['by']))} · filters: {esc(filters)}</p>",
        f"<p>{total['calls']} calls, {total['turns']} turns, {total['judged']} judged, "
        f"pass rate {esc(fmt(total['pass_rate'], '{:.1f}%'))}, mean WER "
        f"{esc(fmt(total['mean_wer'], '{:.3f}'))}, reply language match "
        f"{esc(fmt(total['reply_language_match'], '{:.1f}%'))}, v2v p50/p95 "
        f"{esc(fmt(total['v2v_p50_ms'], '{:.0f}'))}/{esc(fmt(total['v2v_p95_ms'], '{:.0f}'))}"
        " ms</p>",
        "<h2>Matrix</h2>",
        "<p class='meta'>Each cell: pass rate of judged turns (a manual verdict overrides the"
        " suite's), calls and turns, mean WER, reply-language match, voice_to_voice p50/p95"
        " (caller speech end → first agent sample played).</p>",
        _matrix_html(result),
        "<h2>By language</h2>",
        _languages_html(result["languages"]),
        "<h2>Worst turns</h2>",
        "<p class='meta'>Failed verdicts first, then highest WER, then slowest. Each clip is"
        " the turn from its recording (caller and agent mixed), at most 8 s.</p>",
        _worst_html(sessions, worst_turns(index, q, worst) if worst else []),
        "</body></html>",
    ]
    return "\n".join(parts)
