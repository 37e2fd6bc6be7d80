"""The speech lanes: local VAD, server VAD and agent playout, and the caller's level,
drawn with pyqtgraph.

Live, the lanes show the last ~30 s before now. A finished or stored call is shown whole,
in seconds into the call, with an optional playhead (the history viewer moves it while the
recording plays). Hovering a lane says what it shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ui.models.vad_lane import VadLaneModel
from ui.theme import LANE_COLORS
from ui.views.plot_helpers import place_line, show_plot_tooltip

#: y position of each lane (top to bottom with an inverted axis).
LANE_Y = {"local": 0.0, "server": 1.0, "agent": 2.0, "level": 3.0}
LANE_NAMES = {
    "local": "local VAD",
    "server": "server VAD",
    "agent": "agent audio",
    "level": "caller level",
}
#: What each lane shows (its tooltip).
LANE_TIPS = {
    "local": "local VAD: caller speech found by voiceprobe's own VAD on the caller audio "
    "(LocalSpeechStarted → LocalSpeechStopped)",
    "server": "server VAD: speech the provider's VAD found (ServerSpeechStarted → "
    "ServerSpeechStopped)",
    "agent": "agent audio: the agent's reply playing at the speaker (PlaybackStarted → "
    "PlaybackStopped)",
    "level": "caller level: the caller's loudness, −60…0 dBFS (live calls)",
}
LEVEL_TOP, LEVEL_BOTTOM = 2.55, 3.45
MIN_DB = -60.0
REFRESH_MS = 33


class VadLaneView(QWidget):
    """Redraws the lanes at ~30 Hz while live, or once per model change when frozen.

    While live it redraws on each level sample the model records (the level pump's tick),
    so that the lanes and the level meters repaint together, once per tick; its own timer
    only takes over when no sample came for two periods.

    ``now_ns`` gives "now" on the core's clock while live (``time.monotonic_ns``); a
    frozen view (:meth:`set_live` ``False``: a finished or stored call) shows the whole
    call in call time.
    """

    def __init__(
        self,
        model: VadLaneModel,
        parent: QWidget | None = None,
        now_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self._now_ns = now_ns
        self._live = False
        self._playhead_s: float | None = None
        self._x_range = (-model.window_s, 0.0)
        self._ranged = False
        self._drawn: dict[str, list[tuple[float, float]]] = {k: [] for k in LANE_Y}
        self.plot = pg.PlotWidget(self, background="w")
        self.plot.setMinimumHeight(110)
        item = self.plot.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.invertY(True)
        item.showGrid(x=True, y=False, alpha=0.15)
        item.setMouseEnabled(x=False, y=False)
        ticks = [(y, LANE_NAMES[lane]) for lane, y in LANE_Y.items()]
        item.getAxis("left").setTicks([ticks, []])
        item.getAxis("left").setWidth(78)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen("#80868b"))
            item.getAxis(axis).setTextPen(pg.mkPen("#3c4043"))
        self._lanes = {}
        for lane in ("local", "server", "agent"):
            bars = pg.BarGraphItem(
                x0=[], y=[], height=0.55, width=[], brush=LANE_COLORS[lane], pen=pg.mkPen(None)
            )
            item.addItem(bars)
            self._lanes[lane] = bars
        self._level = pg.PlotDataItem(pen=pg.mkPen(LANE_COLORS["level"], width=1.2))
        item.addItem(self._level)
        self._head = pg.InfiniteLine(
            pos=0, angle=90, pen=pg.mkPen(LANE_COLORS["playhead"], width=2)
        )
        self._head.hide()
        item.addItem(self._head)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.plot)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        model.changed.connect(self._model_changed)
        model.levelAdded.connect(self._level_added)
        self.plot.scene().sigMouseMoved.connect(self._hovered)
        self.refresh()

    # --- reading (tests, tooltips) ------------------------------------------------------

    @property
    def live(self) -> bool:
        return self._live

    def x_range(self) -> tuple[float, float]:
        """The x axis shown (seconds: before now while live, into the call when not)."""
        return self._x_range

    def drawn(self, lane: str) -> list[tuple[float, float]]:
        """The intervals of ``lane`` as drawn (x seconds)."""
        return list(self._drawn[lane])

    def axis_label(self) -> str:
        return "seconds before now" if self._live else "seconds into the call"

    def playhead(self) -> float | None:
        """Where the playhead is (seconds into the call), or ``None`` when hidden."""
        return self._playhead_s

    @staticmethod
    def lane_tooltip(lane: str) -> str:
        """What lane ``lane`` shows."""
        return LANE_TIPS[lane]

    def tooltip_at(self, x: float, y: float) -> str:
        """The tooltip at plot point (``x`` s, ``y``): the lane, and the interval there."""
        lane = min(LANE_Y, key=lambda k: abs(LANE_Y[k] - y))
        if abs(LANE_Y[lane] - y) > 0.6:
            return ""
        text = LANE_TIPS[lane]
        for a, b in self._drawn.get(lane, []):
            if a <= x <= b:
                text += f"\n{a:.1f} s → {b:.1f} s ({(b - a) * 1000:.0f} ms)"
                break
        return text

    # --- behaviour ----------------------------------------------------------------------

    def set_live(self, live: bool) -> None:
        """Live: follow the clock at ~30 Hz (the last ~30 s). Frozen: the whole call."""
        self._live = live
        if live:
            self._timer.start(REFRESH_MS)
        else:
            self._timer.stop()
        self.refresh()

    def set_playhead(self, seconds: float | None) -> None:
        """Show the playhead at ``seconds`` into the call (``None`` hides it)."""
        self._playhead_s = seconds
        place_line(self._head, seconds)

    def _level_added(self) -> None:
        if self._live:
            self._timer.start(2 * REFRESH_MS)  # restart the fallback
            self.refresh()

    def _model_changed(self) -> None:
        if not self._live:
            self.refresh()

    def current_now(self) -> int:
        if self._live or self.model.last_t_ns is None:
            return self._now_ns()
        return self.model.last_t_ns

    def refresh(self) -> None:
        if self._live:
            now = self.current_now()
            spans = {lane: self.model.window(lane, now) for lane in self._lanes}
            t, caller, _agent = self.model.levels(now)
            x_range = (-self.model.window_s, 0.0)
        else:
            spans = {lane: self.model.call_time(lane) for lane in self._lanes}
            zero = self.model.start_ns()
            t, caller = np.zeros(0), np.zeros(0)
            if zero is not None and self.model.last_t_ns is not None:
                t, caller, _agent = self.model.levels(self.model.last_t_ns)
                t = t + (self.model.last_t_ns - zero) / 1e9
            x_range = (0.0, max(self.model.duration_s(), 1.0))
        for lane, bars in self._lanes.items():
            ivs = spans[lane]
            self._drawn[lane] = ivs
            x0 = [a for a, _ in ivs]
            w = [max(b - a, 0.02) for a, b in ivs]
            bars.setOpts(x0=x0, width=w, y=[LANE_Y[lane]] * len(ivs), height=0.55)
        if len(t):
            frac = (np.clip(caller, MIN_DB, 0.0) - MIN_DB) / -MIN_DB
            self._level.setData(t, LEVEL_BOTTOM - frac * (LEVEL_BOTTOM - LEVEL_TOP))
        else:
            self._level.setData([], [])
        if x_range != self._x_range or not self._ranged:
            self._x_range, self._ranged = x_range, True
            item = self.plot.getPlotItem()
            item.setLabel("bottom", self.axis_label())
            item.setRange(xRange=x_range, yRange=(-0.5, 3.55), padding=0)

    def _hovered(self, pos: Any) -> None:
        show_plot_tooltip(self.plot, pos, self.tooltip_at)
