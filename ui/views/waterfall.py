"""The latency waterfall: one row per turn, its spans as coloured segments.

All rows share one millisecond axis whose zero is the turn's end of caller speech
(``user_speech.end_ns``, else the start of ``voice_to_voice``), so the eye can compare
where the time went turn by turn. Each row carries its voice-to-voice figure; clicking a
row shows its spans, tool calls and transcript in a plain-text detail panel.

Each row has two strips: who was speaking (caller, agent, a reconnect gap) on top, the
waiting time (end of turn, response start, time to first audio, tools, playback) below,
and the voice-to-voice line under them. Spans never overlap within a strip, every colour
is opaque, so every bar has exactly its legend colour (one palette:
``app/metrics/presentation.py``). Hovering a bar shows its name, its two events and its
value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QShowEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QSplitter,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.metrics.presentation import (
    HEADLINE,
    SPAN_STYLES,
    caller_text,
    span_key,
    span_style,
    turn_number,
)
from app.metrics.records import TurnRecord
from ui.models.common import ms_text
from ui.models.turns import TurnsModel
from ui.theme import SLOW_COLOR, mono_font, span_color, span_label
from ui.views.flow_layout import FlowLayout

#: The legend, in order: every span kind of the palette (``tool:<name>`` spans join
#: "tool call", ``reconnect#<n>`` "reconnect"). A new span kind is one line in
#: ``app.metrics.presentation.SPAN_STYLES``.
SEGMENTS = tuple(s.key for s in SPAN_STYLES if s.lane != "headline")
#: Vertical placement in a row (row centre at 0, y grows downwards): (centre, height).
STRIPS = {"speech": (-0.2, 0.16), "latency": (0.06, 0.3), "headline": (0.3, 0.07)}
MAX_VISIBLE_ROWS = 12
#: Which spans each provider kind can show (the legend's tooltip; README "Spans").
SPANS_BY_PROVIDER = (
    "Spans by provider kind:\n"
    "• openai: all but barge-in reaction (server VAD, response events, truncate)\n"
    "• gemini: no response start (no speech_stopped); barge-in reaction on 'interrupted'\n"
    "• twilio-ws: caller speech, end of turn (end of caller speech → first agent media), "
    "playback, agent speech, voice→voice, barge-in reaction (caller speech → 'clear'); "
    "no response start, time to first audio or tool spans (the protocol has none)"
)
_BRUSHES: dict[str, QBrush] = {}


def _span_brush(name: str) -> QBrush:
    """The (cached) opaque brush of span ``name`` (its legend colour)."""
    key = span_key(name)
    brush = _BRUSHES.get(key)
    if brush is None:
        brush = _BRUSHES[key] = pg.mkBrush(QColor(span_color(key)))
    return brush


def span_tooltip(turn: TurnRecord, name: str) -> str:
    """The tooltip of one bar: the span's name, its two events and its value."""
    span = turn.spans.get(name)
    style = span_style(name)
    lines = [f"{span_label(name)}: {ms_text(turn.span_ms(name))}"]
    first = (span.start_event if span else "") or style.events[0]
    second = (span.end_event if span else "") or style.events[1]
    if first or second:
        lines.append(f"from {first or '?'} to {second or '?'}")
    meaning = style.meaning
    if meaning:
        lines.append(meaning)
    lines.append(f"turn {turn_number(turn)} · span {name}")
    return "\n".join(lines)


def _headline_brush(slow: bool) -> QBrush:
    key = "#slow" if slow else "#v2v"
    brush = _BRUSHES.get(key)
    if brush is None:
        brush = _BRUSHES[key] = pg.mkBrush(SLOW_COLOR if slow else "#202124")
    return brush


@dataclass(frozen=True, slots=True)
class RowLayout:
    """What one waterfall row shows (exposed for tests and reports).

    Attributes:
        row: model row.
        number: 1-based turn number.
        origin_ns: the row's zero (caller speech end).
        segments: span name → (x0_ms, width_ms) relative to the origin, longest first
            (the drawing order: a later bar lies on top).
        headline_ms: voice-to-voice, if measured.
        label: the plain text drawn beside the row.
        slow: the turn exceeds the slow threshold.
    """

    row: int
    number: int
    origin_ns: int | None
    segments: dict[str, tuple[float, float]]
    headline_ms: float | None
    label: str
    slow: bool


def turn_origin(turn: TurnRecord) -> int | None:
    """The zero of a turn's row: end of caller speech, else voice-to-voice start."""
    for name, end in (("user_speech", True), (HEADLINE, False), ("end_of_turn_delay", False)):
        span = turn.spans.get(name)
        stamp = None if span is None else span.end_ns if end else span.start_ns
        if stamp is not None:
            return stamp
    starts = [s.start_ns for s in turn.spans.values() if s.start_ns is not None]
    return min(starts) if starts else None


def layout_row(turn: TurnRecord, row: int, slow: bool) -> RowLayout:
    """Compute the segments and label of one row from its turn record."""
    origin = turn_origin(turn)
    segments: dict[str, tuple[float, float]] = {}
    for name, span in turn.spans.items():
        if name == HEADLINE or origin is None or span.start_ns is None:
            continue
        start, end = span.start_ns, span.end_ns
        width = span.ms if end is None else (end - start) / 1e6
        segments[name] = ((start - origin) / 1e6, max(0.0, width))
    # Longest first: bars are drawn in this order, so a shorter bar is never hidden under
    # a longer one of its strip (after a tool call, ttfb lies inside tool_followup).
    segments = dict(sorted(segments.items(), key=lambda kv: -kv[1][1]))
    headline = turn.span_ms(HEADLINE)
    label = ms_text(headline) if headline is not None else "no v2v"
    if slow:
        label += "  ⚠ slow"
    if turn.interrupted:
        label += "  ✂ barge-in"
    return RowLayout(row, turn_number(turn, row), origin, segments, headline, label, slow)


def detail_text(turn: TurnRecord, row: int, slow_ms: float, scripted: bool = False) -> str:
    """The plain-text detail of one turn (spans, tool calls, transcript, events used);
    ``scripted`` marks the caller's words as the simulator's script."""
    lay = layout_row(turn, row, (turn.span_ms(HEADLINE) or 0) > slow_ms)
    lines = [
        f"Turn {lay.number} — voice→voice {ms_text(lay.headline_ms)}"
        + (" (slow)" if lay.slow else "")
    ]
    if turn.interrupted:
        lines.append("The caller barged in on this turn.")
    lines += [
        "",
        f"Caller: {caller_text(turn.user_transcript, scripted) or '—'}",
        f"Agent:  {turn.agent_transcript or '—'}",
    ]
    lines += ["", "Spans (ms from end of caller speech):"]
    spans = turn.spans
    for name in sorted(spans, key=lambda n: spans[n].start_ns or 0):
        span = spans[name]
        seg = lay.segments.get(name)
        if seg is None and lay.origin_ns is not None and span.start_ns is not None:
            seg = ((span.start_ns - lay.origin_ns) / 1e6, span.ms)
        where = f"{seg[0]:+9,.0f} → {seg[0] + seg[1]:+9,.0f}" if seg else " " * 21
        lines.append(f"  {span_label(name):<22} {where}  {ms_text(span.ms):>10}")
    if turn.tool_calls:
        lines += ["", "Tool calls:"]
        for c in turn.tool_calls:
            outcome = f"{c.status or '?'} in {ms_text(c.ms)}"
            lines.append(f"  {c.name or '?'}({c.arguments}) → {outcome}")
    if turn.events_used:
        lines += ["", "Events used:", *(f"  {u}" for u in turn.events_used)]
    return "\n".join(lines)


class WaterfallView(QWidget):
    """The waterfall plot, a p50/p95 summary, the slow-threshold spin box, a legend and a
    detail panel. Bound to a :class:`TurnsModel`; main thread only.
    """

    #: A row was selected (model row).
    turnSelected = Signal(int)  # noqa: N815

    def __init__(self, model: TurnsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.selected: int | None = None
        self._rows: list[RowLayout] = []
        self._labels: list[pg.TextItem] = []

        self.summary = QLabel(self)
        self.summary.setObjectName("summaryLabel")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        self.threshold = QSpinBox(self)
        self.threshold.setRange(100, 20_000)
        self.threshold.setSingleStep(100)
        self.threshold.setSuffix(" ms")
        self.threshold.setValue(int(model.slow_ms))
        self.threshold.setToolTip("Turns whose voice→voice exceeds this are flagged slow")
        self.threshold.valueChanged.connect(lambda v: model.set_slow_ms(float(v)))

        self.plot = pg.PlotWidget(self, background="w")
        self.plot.setMinimumHeight(160)
        item = self.plot.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.showGrid(x=True, y=False, alpha=0.15)
        item.invertY(True)
        item.setLabel("bottom", "ms after the caller stopped speaking")
        item.getAxis("left").setStyle(tickLength=0)
        item.getAxis("left").setWidth(58)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen("#80868b"))
            item.getAxis(axis).setTextPen(pg.mkPen("#3c4043"))
        vb = item.getViewBox()
        vb.setMouseEnabled(x=True, y=False)
        self._bars = pg.BarGraphItem(
            x0=[], y=[], height=0.5, width=[], pen=pg.mkPen(None), brushes=[]
        )
        self._v2v = pg.BarGraphItem(
            x0=[], y=[], height=0.07, width=[], pen=pg.mkPen(None), brushes=[]
        )
        self._highlight = pg.LinearRegionItem(
            orientation="horizontal",
            movable=False,
            brush=pg.mkBrush(210, 227, 252, 110),
            pen=pg.mkPen(None),
        )
        self._highlight.setZValue(-10)
        self._highlight.hide()
        zero = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#5f6368", style=Qt.PenStyle.DashLine))
        for it in (self._highlight, zero, self._bars, self._v2v):
            item.addItem(it)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.scene().sigMouseMoved.connect(self._hovered)

        self.detail = QPlainTextEdit(self)
        self.detail.setReadOnly(True)
        self.detail.setFont(mono_font())
        self.detail.setPlaceholderText("Click a turn to see its spans, tool calls and transcript.")

        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        slow_label = QLabel("Slow above", self)
        top.addWidget(slow_label)
        top.addWidget(self.threshold)

        self.legend = QWidget(self)
        legend = FlowLayout(self.legend, h_spacing=12, v_spacing=2)
        #: Legend entry widgets by span key (tests read them).
        self.legend_items: dict[str, QWidget] = {}
        for name in (*SEGMENTS, HEADLINE):
            style = span_style(name)
            entry = QWidget(self.legend)
            swatch = QLabel(entry)
            swatch.setFixedSize(12, 12 if name != HEADLINE else 3)
            swatch.setStyleSheet(f"background: {style.colour}; border-radius: 2px;")
            text = QLabel(style.label, entry)
            text.setObjectName("hint")
            pair = QHBoxLayout(entry)
            pair.setContentsMargins(0, 0, 0, 0)
            pair.setSpacing(4)
            pair.addWidget(swatch)
            pair.addWidget(text)
            entry.setToolTip(f"{style.label}: {style.meaning}")
            legend.addWidget(entry)
            self.legend_items[name] = entry
        self.legend.setToolTip(SPANS_BY_PROVIDER)

        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.plot)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        split.setSizes([400, 170])
        self.detail.setMinimumHeight(80)
        # Wrapped: the detail reads without a horizontal scroll bar at any width.
        self.detail.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.detail.setToolTip(
            "The selected turn: spans (ms from the end of caller speech), "
            "tool calls, transcript and the events used"
        )

        box = QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addLayout(top)
        box.addWidget(split, 1)
        box.addWidget(self.legend)

        # Model changes mark the plot stale; it is redrawn once per event-loop pass, and
        # only while the view is visible (showEvent catches up).
        self._stale = False
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self._refresh_if_stale)
        for sig in (model.rowsInserted, model.rowsRemoved, model.modelReset, model.dataChanged):
            sig.connect(self._schedule_refresh)
        model.summaryChanged.connect(self._summary_changed)
        self.refresh()

    # --- reading (tests) ----------------------------------------------------------------

    def row_layouts(self) -> list[RowLayout]:
        """What each row currently shows (brought up to date first)."""
        self._refresh_if_stale()
        return list(self._rows)

    def label_texts(self) -> list[str]:
        """The plain text of each row's figure label (brought up to date first)."""
        self._refresh_if_stale()
        return [t.textItem.toPlainText() for t in self._labels[: len(self._rows)]]

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        self._refresh_if_stale()
        super().showEvent(event)

    def _schedule_refresh(self, *_args: Any) -> None:
        self._stale = True
        if self.isVisible() and not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _refresh_if_stale(self) -> None:
        if self._stale:
            self.refresh()

    # --- behaviour ----------------------------------------------------------------------

    def select_turn(self, row: int) -> None:
        """Show the detail of model row ``row`` and highlight it."""
        if not 0 <= row < self.model.rowCount():
            return
        self.selected = row
        self.detail.setPlainText(
            detail_text(self.model.turn(row), row, self.model.slow_ms, self.model.scripted)
        )
        self._highlight.setRegion((row - 0.5, row + 0.5))
        self._highlight.show()
        self.turnSelected.emit(row)

    def _summary_changed(self) -> None:
        self.summary.setText(self.model.summary_text())
        if int(self.model.slow_ms) != self.threshold.value():
            self.threshold.setValue(int(self.model.slow_ms))
        self._schedule_refresh()

    def bar_at(self, x_ms: float, y: float) -> tuple[int, str] | None:
        """The bar under plot point (``x_ms``, ``y``): ``(row, span name)``, or ``None``."""
        self._refresh_if_stale()
        row = int(round(y))
        if not 0 <= row < len(self._rows):
            return None
        lay = self._rows[row]
        offset = y - row
        head_y, head_h = STRIPS["headline"]
        if lay.headline_ms is not None and abs(offset - head_y) <= max(head_h, 0.1) / 2:
            if 0.0 <= x_ms <= lay.headline_ms:
                return row, HEADLINE
        for name, (x0, w) in reversed(lay.segments.items()):  # the bar on top first
            centre, height = STRIPS.get(span_style(name).lane, STRIPS["latency"])
            if abs(offset - centre) <= height / 2 and x0 <= x_ms <= x0 + max(w, 0.5):
                return row, name
        return None

    def tooltip_at(self, x_ms: float, y: float) -> str:
        """The tooltip for plot point (``x_ms``, ``y``): the bar's, else the row's."""
        hit = self.bar_at(x_ms, y)
        if hit is not None:
            return span_tooltip(self.model.turn(hit[0]), hit[1])
        row = int(round(y))
        if 0 <= row < len(self._rows):
            lay = self._rows[row]
            return f"Turn {lay.number}: voice→voice {ms_text(lay.headline_ms)} — click for detail"
        return ""

    def _hovered(self, pos: Any) -> None:
        vb = self.plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        point = vb.mapSceneToView(pos)
        text = self.tooltip_at(point.x(), point.y())
        if text:
            view_pos = self.plot.mapFromScene(pos)
            QToolTip.showText(self.plot.mapToGlobal(view_pos), text, self.plot)
        else:
            QToolTip.hideText()

    def _clicked(self, event: Any) -> None:
        self._refresh_if_stale()
        vb = self.plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        y = vb.mapSceneToView(event.scenePos()).y()
        self.select_turn(int(round(y)))

    def refresh(self, *_args: Any) -> None:
        """Redraw every row from the model now."""
        self._stale = False
        self._refresh_timer.stop()
        item = self.plot.getPlotItem()
        n = self.model.rowCount()
        self._rows = [layout_row(self.model.turn(i), i, self.model.is_slow(i)) for i in range(n)]
        x0s, ys, ws, brushes = [], [], [], []
        hx, hy, hw, hbrushes = [], [], [], []
        right = 400.0
        left = -300.0
        hs: list[float] = []
        head_y, head_h = STRIPS["headline"]
        for lay in self._rows:
            for name, (x0, w) in lay.segments.items():
                lane = span_style(name).lane
                centre, height = STRIPS.get(lane, STRIPS["latency"])
                x0s.append(x0)
                ys.append(lay.row + centre)
                hs.append(height)
                ws.append(max(w, 0.5))
                brushes.append(_span_brush(name))
                if lane == "latency":
                    right = max(right, x0 + w)
            if lay.headline_ms is not None:
                hx.append(0.0)
                hy.append(lay.row + head_y)
                hw.append(lay.headline_ms)
                hbrushes.append(_headline_brush(lay.slow))
                right = max(right, lay.headline_ms)
        right *= 1.12
        # Labels are pooled: adding/removing graphics items on every refresh is slow (and
        # under PySide6 6.12.0 each add/remove cycle leaks a reference to True).
        while len(self._labels) < len(self._rows):
            label = pg.TextItem(anchor=(0, 0.5))
            item.addItem(label)
            self._labels.append(label)
        for i, label in enumerate(self._labels):
            if i >= len(self._rows):
                label.setVisible(False)
                continue
            lay = self._rows[i]
            end = lay.headline_ms if lay.headline_ms is not None else 0.0
            label.setColor(SLOW_COLOR if lay.slow else "#202124")
            label.setText(lay.label)  # TextItem.setText is plain text (no markup)
            label.setPos(end + right * 0.01, lay.row + head_y)
            label.setVisible(True)
        self._bars.setOpts(x0=x0s, y=ys, width=ws, height=hs, brushes=brushes)
        self._v2v.setOpts(x0=hx, y=hy, width=hw, height=head_h, brushes=hbrushes)
        ticks = [(lay.row, f"Turn {lay.number}") for lay in self._rows]
        item.getAxis("left").setTicks([ticks, []])
        first = max(0, n - MAX_VISIBLE_ROWS)
        item.getViewBox().setRange(
            xRange=(left, right * 1.4), yRange=(first - 0.6, max(n, first + 3) - 0.4), padding=0
        )
        self.summary.setText(self.model.summary_text())
        if self.selected is not None and self.selected < n:
            self.detail.setPlainText(
                detail_text(
                    self.model.turn(self.selected),
                    self.selected,
                    self.model.slow_ms,
                    self.model.scripted,
                )
            )
