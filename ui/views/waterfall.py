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

The cost of a frame does not grow with the call: each row's layout is computed once (again
only when its turn or its slow flag changes), and only the rows on screen (one more either
side) have bars, labels and ticks in the plot, redrawn when the rows shown change. At
1,000 turns a frame (a scroll, a hover, a new turn) costs what it costs at 100
(``python -m ui.bench waterfall``).

:data:`MAX_VISIBLE_ROWS` rows are on screen; the mouse wheel over the plot (or the left
axis) scrolls through the turns, as does the scroll bar beside it (PageUp/PageDown/Home/End
when it has the focus); Ctrl+wheel, or the wheel over the time axis, zooms the time axis.
Like a terminal, the view follows new turns while the newest row is on screen and stays
put once the user has scrolled back; selecting a turn scrolls it into view.

One module on purpose (over 500 lines): the row layout cache, the on-screen row window
and the scrolling share one visible-rows state that must change together.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QSignalBlocker,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsItem,
    QGraphicsSceneWheelEvent,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QScrollBar,
    QSpinBox,
    QSplitter,
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
from ui.views.plot_helpers import show_plot_tooltip

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


class _RowsViewBox(pg.ViewBox):  # type: ignore[misc]  # pyqtgraph is untyped
    """The plot's view box: the wheel scrolls the rows, Ctrl+wheel zooms the time axis.

    A vertical wheel over the plot or the row axis calls ``scroll_rows(k)`` (``k`` rows,
    negative: back towards turn 1), the system's lines per notch, fractions of a notch
    (touchpads) carried over to the next event. Ctrl+wheel, a horizontal wheel or the
    wheel over the time axis zooms the time axis as pyqtgraph does. Main thread only.
    """

    def __init__(self, scroll_rows: Callable[[int], None]) -> None:
        super().__init__()
        self._scroll_rows = scroll_rows
        self._wheel_rest = 0.0

    def wheelEvent(  # noqa: N802 - Qt override
        self, ev: QGraphicsSceneWheelEvent, axis: int | None = None
    ) -> None:
        ctrl = bool(ev.modifiers() & Qt.KeyboardModifier.ControlModifier)
        if axis == 0 or ctrl or ev.orientation() == Qt.Orientation.Horizontal:
            super().wheelEvent(ev, axis=0)
            return
        self._wheel_rest -= ev.delta() / 120 * QApplication.wheelScrollLines()
        rows = int(self._wheel_rest)  # towards zero: the remainder waits for more
        self._wheel_rest -= rows
        ev.accept()
        if rows:
            self._scroll_rows(rows)


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
        #: The turn each row was laid out from, and how far right (ms) it reaches.
        self._row_turns: list[TurnRecord] = []
        self._reach: list[float] = []
        #: Rows to lay out again at the next refresh: (first, last), last inclusive.
        self._dirty: tuple[int, float] | None = None
        #: The rows drawn now (first, last), ``None`` when they must be drawn again.
        self._window: tuple[int, int] | None = None
        self._right = 400.0 * 1.12
        #: Label items, reused: row ``r`` is drawn by ``_labels[r % len(_labels)]``;
        #: ``_label_shown`` is what each draws now (row, text, colour, x).
        self._labels: list[pg.TextItem] = []
        self._label_shown: list[tuple[int, str, str, float] | None] = []

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

        self.plot = pg.PlotWidget(self, background="w", viewBox=_RowsViewBox(self._scroll_by))
        self.plot.setMinimumHeight(120)
        #: The rows on screen: its value is the first (top) row, its maximum the first of
        #: the newest rows; at the maximum new turns are followed.
        self.scroll_bar = QScrollBar(Qt.Orientation.Vertical, self)
        self.scroll_bar.setRange(0, 0)
        self.scroll_bar.setPageStep(MAX_VISIBLE_ROWS)
        self.scroll_bar.setToolTip(
            "Scroll through the turns (also the mouse wheel over the plot; "
            "Ctrl+wheel zooms the time axis). At the bottom, new turns are followed."
        )
        self.scroll_bar.valueChanged.connect(self._show_rows)
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
        # The bottom axis draws the grid over the whole plot: kept as a pixmap, it is not
        # replayed on every repaint (half of a repaint's cost), only when x or the size
        # changes.
        item.getAxis("bottom").setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
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
        vb.sigYRangeChanged.connect(self._y_range_changed)
        # The plot's transform follows its range and size at once, not at the start of
        # the next paint: a change made while painting schedules a second paint.
        vb.sigRangeChanged.connect(self._update_matrix)
        vb.sigResized.connect(self._update_matrix)
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

        plot_row = QWidget(self)
        beside = QHBoxLayout(plot_row)
        beside.setContentsMargins(0, 0, 0, 0)
        beside.setSpacing(0)
        beside.addWidget(self.plot, 1)
        beside.addWidget(self.scroll_bar)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(plot_row)
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
        model.rowsInserted.connect(self._rows_moved)
        model.rowsRemoved.connect(self._rows_moved)
        model.modelReset.connect(self.refresh)
        model.dataChanged.connect(self._rows_changed)
        model.summaryChanged.connect(self._summary_changed)
        self.refresh()

    # --- reading (tests) ----------------------------------------------------------------

    def row_layouts(self) -> list[RowLayout]:
        """What each row currently shows (brought up to date first)."""
        self._refresh_if_stale()
        return list(self._rows)

    def label_texts(self) -> list[str]:
        """The plain text of the figure label of each row drawn (the rows on screen, and
        one more either side where there is one), in row order; brought up to date first.
        """
        self._refresh_if_stale()
        drawn = sorted(
            (shown[0], label.textItem.toPlainText())
            for label, shown in zip(self._labels, self._label_shown, strict=True)
            if shown is not None
        )
        return [text for _, text in drawn]

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        self._refresh_if_stale()
        super().showEvent(event)

    def _schedule_refresh(self, *_args: Any) -> None:
        self._stale = True
        if self.isVisible() and not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _refresh_if_stale(self) -> None:
        if self._stale:
            self._update()

    def _mark_dirty(self, first: int, last: float = math.inf) -> None:
        """Rows ``first``..``last`` must be laid out again (``inf``: to the end)."""
        if self._dirty is not None:
            first, last = min(first, self._dirty[0]), max(last, self._dirty[1])
        self._dirty = (first, last)
        self._schedule_refresh()

    def _rows_moved(self, _parent: QModelIndex, first: int, _last: int) -> None:
        self._mark_dirty(first)  # rows inserted or removed: every later row moved

    def _rows_changed(
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
        _roles: Any = None,
    ) -> None:
        self._mark_dirty(top_left.row(), bottom_right.row())

    def _y_range_changed(self, *_args: Any) -> None:
        # The scroll bar follows the rows shown, whoever moved them.
        (_, _), (y0, _) = self.plot.getPlotItem().getViewBox().viewRange()
        if math.isfinite(y0):
            with QSignalBlocker(self.scroll_bar):
                self.scroll_bar.setValue(round(y0 + 0.6))
        self._draw_window()

    def _update_matrix(self, *_args: Any) -> None:
        self.plot.getPlotItem().getViewBox().updateMatrix()

    # --- behaviour ----------------------------------------------------------------------

    def _scroll_by(self, rows: int) -> None:
        """Move the rows shown by ``rows`` (negative: back towards turn 1)."""
        self._refresh_if_stale()
        self.scroll_bar.setValue(self.scroll_bar.value() + rows)

    def _show_rows(self, top: int) -> None:
        """Show :data:`MAX_VISIBLE_ROWS` rows from model row ``top`` (fewer rows fill the
        plot with at least three rows' height)."""
        n = len(self._rows)
        self.plot.getPlotItem().getViewBox().setYRange(
            top - 0.6, max(min(n, top + MAX_VISIBLE_ROWS), top + 3) - 0.4, padding=0
        )

    def scroll_to_turn(self, row: int) -> None:
        """Scroll the least that brings model row ``row`` on screen (none if it is)."""
        self._refresh_if_stale()
        top = self.scroll_bar.value()
        if row < top:
            self.scroll_bar.setValue(row)
        elif row >= top + MAX_VISIBLE_ROWS:
            self.scroll_bar.setValue(row - MAX_VISIBLE_ROWS + 1)

    def select_turn(self, row: int) -> None:
        """Show the detail of model row ``row``, highlight it and scroll it into view."""
        if not 0 <= row < self.model.rowCount():
            return
        self.scroll_to_turn(row)
        self.selected = row
        self.detail.setPlainText(
            detail_text(self.model.turn(row), row, self.model.slow_ms, self.model.scripted)
        )
        self._highlight.setRegion((row - 0.5, row + 0.5))
        self._highlight.show()
        self.turnSelected.emit(row)

    def _summary_changed(self) -> None:
        # The summary line is set by the refresh this schedules: once per event-loop
        # pass, not once per turn (it reads every turn).
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
        show_plot_tooltip(self.plot, pos, self.tooltip_at)

    def _clicked(self, event: Any) -> None:
        self._refresh_if_stale()
        vb = self.plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        y = vb.mapSceneToView(event.scenePos()).y()
        self.select_turn(int(round(y)))

    def refresh(self, *_args: Any) -> None:
        """Redraw every row from the model now (a row whose turn and slow flag did not
        change keeps its layout)."""
        self._dirty = (0, math.inf)
        self._update()

    def _lay_out(self, row: int) -> None:
        """Compute row ``row``'s layout, unless its turn and slow flag are unchanged."""
        turn, slow = self.model.turn(row), self.model.is_slow(row)
        if row < len(self._rows):
            old = self._rows[row]
            if self._row_turns[row] is turn and old.slow == slow and old.row == row:
                return
        lay = layout_row(turn, row, slow)
        reach = max(
            (x0 + w for name, (x0, w) in lay.segments.items()
             if span_style(name).lane == "latency"),
            default=0.0,
        )  # fmt: skip
        if lay.headline_ms is not None:
            reach = max(reach, lay.headline_ms)
        if row < len(self._rows):
            self._rows[row], self._row_turns[row], self._reach[row] = lay, turn, reach
        else:
            self._rows.append(lay)
            self._row_turns.append(turn)
            self._reach.append(reach)

    def _update(self) -> None:
        """Lay out the rows marked dirty, draw the rows on screen: the newest if they
        were shown (new turns are followed), else the same rows as before."""
        self._stale = False
        self._refresh_timer.stop()
        n = self.model.rowCount()
        for rows in (self._rows, self._row_turns, self._reach):
            del rows[n:]
        first, last = self._dirty if self._dirty is not None else (n, n)
        self._dirty = None
        stop = n if last == math.inf else min(n, int(last) + 1)
        for row in range(min(first, len(self._rows)), stop):
            self._lay_out(row)
        for row in range(len(self._rows), n):
            self._lay_out(row)
        right = max(400.0, max(self._reach, default=0.0)) * 1.12
        self._right = right
        self._window = None  # drawn again below (or by the range change)
        bar = self.scroll_bar
        with QSignalBlocker(bar):
            follow = bar.value() >= bar.maximum()
            bar.setMaximum(max(0, n - MAX_VISIBLE_ROWS))
            if follow:
                bar.setValue(bar.maximum())
        top = bar.value()
        self.plot.getPlotItem().getViewBox().setRange(
            xRange=(-300.0, right * 1.4),
            yRange=(top - 0.6, max(min(n, top + MAX_VISIBLE_ROWS), top + 3) - 0.4),
            padding=0,
        )
        self._draw_window()
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

    def _draw_window(self) -> None:
        """Give the plot the bars, labels and ticks of the rows on screen (and one more
        either side), unless those rows are drawn already."""
        n = len(self._rows)
        (_, _), (y0, y1) = self.plot.getPlotItem().getViewBox().viewRange()
        # A row's cell is (row - 0.5, row + 0.5): every row whose cell meets the range.
        first = max(0, math.floor(y0 - 0.5) + 1) if math.isfinite(y0) else 0
        last = min(n - 1, math.ceil(y1 + 0.5) - 1) if math.isfinite(y1) else n - 1
        if (first, last) == self._window:
            return
        self._window = (first, last)
        rows = self._rows[first : last + 1]
        x0s, ys, ws, hs, brushes = [], [], [], [], []
        hx, hy, hw, hbrushes = [], [], [], []
        head_y, head_h = STRIPS["headline"]
        for lay in rows:
            for name, (x0, w) in lay.segments.items():
                centre, height = STRIPS.get(span_style(name).lane, STRIPS["latency"])
                x0s.append(x0)
                ys.append(lay.row + centre)
                hs.append(height)
                ws.append(max(w, 0.5))
                brushes.append(_span_brush(name))
            if lay.headline_ms is not None:
                hx.append(0.0)
                hy.append(lay.row + head_y)
                hw.append(lay.headline_ms)
                hbrushes.append(_headline_brush(lay.slow))
        self._bars.setOpts(x0=x0s, y=ys, width=ws, height=hs, brushes=brushes)
        self._v2v.setOpts(x0=hx, y=hy, width=hw, height=head_h, brushes=hbrushes)
        self._draw_labels(rows)
        ticks = [(lay.row, f"Turn {lay.number}") for lay in rows]
        self.plot.getPlotItem().getAxis("left").setTicks([ticks, []])

    def _draw_labels(self, rows: list[RowLayout]) -> None:
        """Each row's figure beside its voice-to-voice bar; other label items hidden.

        Labels are pooled and a row keeps its item while it stays drawn, so scrolling
        sets only the rows that came on screen (adding/removing graphics items on every
        refresh is slow, and under PySide6 6.12.0 each add/remove cycle leaks a
        reference to True).
        """
        item = self.plot.getPlotItem()
        while len(self._labels) < len(rows):
            label = pg.TextItem(anchor=(0, 0.5))
            label.setVisible(False)
            item.addItem(label)
            self._labels.append(label)
            self._label_shown.append(None)
        size = len(self._labels)
        wanted: dict[int, RowLayout] = {lay.row % size: lay for lay in rows}
        head_y = STRIPS["headline"][0]
        for slot, label in enumerate(self._labels):
            lay = wanted.get(slot)
            if lay is None:
                if self._label_shown[slot] is not None:
                    label.setVisible(False)
                    self._label_shown[slot] = None
                continue
            end = lay.headline_ms if lay.headline_ms is not None else 0.0
            colour = SLOW_COLOR if lay.slow else "#202124"
            shown = (lay.row, lay.label, colour, end + self._right * 0.01)
            if shown == self._label_shown[slot]:
                continue
            old = self._label_shown[slot]
            if old is None or old[2] != colour:
                label.setColor(colour)
            if old is None or old[1] != lay.label:
                label.setText(lay.label)  # TextItem.setText is plain text (no markup)
            label.setPos(shown[3], lay.row + head_y)
            label.setVisible(True)
            self._label_shown[slot] = shown
