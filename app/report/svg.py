"""Inline SVG charts for the HTML reports (pure functions returning markup).

Every label passes through :func:`app.report.page.esc`; colours come from
:mod:`app.metrics.presentation`, so a span has the same colour as in the desktop app.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.metrics.presentation import span_colour, span_label
from app.metrics.records import TurnRecord
from app.metrics.timeline import SPAN_ORDER
from app.report.page import esc

LABEL_W = 150
MS_W = 70
ROW_H = 16


def waterfall_svg(turn: TurnRecord, scale_ms: float, width: int = 720) -> str:
    """One turn's spans as horizontal bars on a shared time axis (``scale_ms`` wide),
    anchored at caller speech end (``voice_to_voice`` start, else ``end_of_turn_delay``'s,
    else the earliest span). Empty when the turn has no stamped span."""
    starts = {k: s.start_ns for k, s in turn.spans.items() if s.start_ns is not None}
    if not starts:
        return ""
    anchor = starts.get("voice_to_voice", starts.get("end_of_turn_delay", min(starts.values())))
    origin = min(0.0, min((t - anchor) / 1e6 for t in starts.values()))
    span_ms = max(scale_ms - origin, 1.0)
    track = width - LABEL_W - MS_W
    names = [n for n in SPAN_ORDER if n in starts]
    names += sorted(n for n in starts if n not in SPAN_ORDER)
    rows = []
    for i, name in enumerate(names):
        s = turn.spans[name]
        ms = float(s.ms)
        x = LABEL_W + ((starts[name] - anchor) / 1e6 - origin) / span_ms * track
        w = max(1.0, ms / span_ms * track)
        w = min(w, LABEL_W + track - x) if x < LABEL_W + track else 1.0
        y = i * ROW_H
        ends = f"from {s.start_event or '?'} to {s.end_event or '?'}"
        title = f"{span_label(name)}: {ms:.0f} ms, {ends}"
        rows.append(
            f"<g><title>{esc(title)}</title>"
            f'<text x="0" y="{y + 12}" class="lbl">{esc(span_label(name))}</text>'
            f'<rect x="{LABEL_W}" y="{y + 3}" width="{track}" height="10" fill="#f3f3f3"/>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="10" '
            f'fill="{span_colour(name)}"/>'
            f'<text x="{width - 4}" y="{y + 12}" text-anchor="end" class="ms">{ms:.0f} ms'
            "</text></g>"
        )
    height = len(names) * ROW_H + 4
    return (
        f'<svg class="waterfall" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="spans of the turn">{"".join(rows)}</svg>'
    )


def bar_chart_svg(
    bars: Sequence[tuple[str, float | None]],
    unit: str,
    colour: str,
    title: str,
    width: int = 720,
    height: int = 160,
) -> str:
    """A vertical bar chart of ``bars`` (label, value; ``None`` drawn as a gap), the
    largest value labelled; empty when there is no value."""
    known = [v for _, v in bars if v is not None]
    if not known:
        return ""
    top = max(known) * 1.15 or 1.0
    plot_h = height - 34
    slot = (width - 40) / max(1, len(bars))
    items = []
    for i, (label, value) in enumerate(bars):
        x = 40 + i * slot
        if value is not None:
            h = value / top * plot_h
            items.append(
                f"<g><title>{esc(label)}: {value:.0f} {esc(unit)}</title>"
                f'<rect x="{x + slot * 0.15:.1f}" y="{14 + plot_h - h:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{colour}"/>'
                f'<text x="{x + slot / 2:.1f}" y="{12 + plot_h - h:.1f}" text-anchor="middle" '
                f'class="ms">{value:.0f}</text></g>'
            )
        if len(bars) <= 40:
            items.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                f'class="lbl">{esc(label[:12])}</text>'
            )
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">'
        f'<text x="0" y="10" class="lbl">{esc(unit)}</text>'
        f'<line x1="38" y1="{14 + plot_h}" x2="{width}" y2="{14 + plot_h}" stroke="#999"/>'
        f"{''.join(items)}</svg>"
    )


def rate_colour(rate: float | None) -> str:
    """Background of a pass rate: red (0 %) through amber to green (100 %); grey when
    nothing was judged."""
    if rate is None:
        return "#eeeeee"
    r = max(0.0, min(100.0, rate)) / 100.0
    # Pale tints so the cell's text stays readable in print.
    red, green = (int(255 - 60 * r), int(200 + 40 * r))
    return f"#{red:02x}{green:02x}{int(200 - 20 * r):02x}"
