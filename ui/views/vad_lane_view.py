"""The VAD lane: local VAD, server VAD and agent playout over the last ~30 s, and the
caller's level, drawn with pyqtgraph.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ui.models.vad_lane import VadLaneModel
from ui.theme import LANE_COLORS

#: y position of each lane (top to bottom with an inverted axis).
LANE_Y = {"local": 0.0, "server": 1.0, "agent": 2.0}
LEVEL_TOP, LEVEL_BOTTOM = 2.55, 3.45
MIN_DB = -60.0
REFRESH_MS = 33


class VadLaneView(QWidget):
    """Redraws the lanes at ~30 Hz while live, or once per model change when frozen.

    While live it redraws on each level sample the model records (the level pump's tick),
    so that the lanes and the level meters repaint together, once per tick; its own timer
    only takes over when no sample came for two periods.

    ``now_ns`` gives "now" on the core's clock while live (``time.monotonic_ns``); a
    stored session is frozen at its last event (:meth:`set_live` ``False``).
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
        self.plot = pg.PlotWidget(self, background="w")
        self.plot.setMinimumHeight(110)
        item = self.plot.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.invertY(True)
        item.showGrid(x=True, y=False, alpha=0.15)
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("bottom", "seconds before now")
        ticks = [
            (0.0, "local VAD"),
            (1.0, "server VAD"),
            (2.0, "agent audio"),
            (3.0, "caller level"),
        ]
        item.getAxis("left").setTicks([ticks, []])
        item.getAxis("left").setWidth(78)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen("#80868b"))
            item.getAxis(axis).setTextPen(pg.mkPen("#3c4043"))
        self._lanes = {}
        for lane in LANE_Y:
            bars = pg.BarGraphItem(
                x0=[], y=[], height=0.55, width=[], brush=LANE_COLORS[lane], pen=pg.mkPen(None)
            )
            item.addItem(bars)
            self._lanes[lane] = bars
        self._level = pg.PlotDataItem(pen=pg.mkPen(LANE_COLORS["level"], width=1.2))
        item.addItem(self._level)
        item.setRange(xRange=(-model.window_s, 0), yRange=(-0.5, 3.55), padding=0)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.plot)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        model.changed.connect(self._model_changed)
        model.levelAdded.connect(self._level_added)
        self.refresh()

    def set_live(self, live: bool) -> None:
        """Live: follow the clock at ~30 Hz. Frozen: show the window ending at the last
        event.
        """
        self._live = live
        if live:
            self._timer.start(REFRESH_MS)
        else:
            self._timer.stop()
            self.refresh()

    @property
    def live(self) -> bool:
        return self._live

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
        now = self.current_now()
        for lane, bars in self._lanes.items():
            ivs = self.model.window(lane, now)
            x0 = [a for a, _ in ivs]
            w = [max(b - a, 0.02) for a, b in ivs]
            bars.setOpts(x0=x0, width=w, y=[LANE_Y[lane]] * len(ivs), height=0.55)
        t, caller, _agent = self.model.levels(now)
        if len(t):
            frac = (np.clip(caller, MIN_DB, 0.0) - MIN_DB) / -MIN_DB
            self._level.setData(t, LEVEL_BOTTOM - frac * (LEVEL_BOTTOM - LEVEL_TOP))
        else:
            self._level.setData([], [])
