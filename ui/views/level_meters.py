"""Caller and agent level meters (values pushed by :class:`ui.levels.LevelPump`)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

MIN_DB = -60.0


class MeterBar(QWidget):
    """A horizontal dBFS bar (−60…0 dB) with a decaying peak marker."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = MIN_DB
        self.peak = MIN_DB
        self.setMinimumHeight(12)

    def sizeHint(self) -> QSize:
        return QSize(160, 14)

    def set_db(self, db: float) -> None:
        self.db = max(MIN_DB, min(0.0, db))
        self.peak = max(self.db, self.peak - 0.6)
        self.update()

    def _x(self, db: float, width: float) -> float:
        return width * (db - MIN_DB) / -MIN_DB

    def paintEvent(self, _event: object) -> None:
        p = QPainter(self)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QColor("#dadce0"))
        p.setBrush(QColor("#f1f3f4"))
        p.drawRoundedRect(r, 3, 3)
        grad = QLinearGradient(r.left(), 0, r.right(), 0)
        grad.setColorAt(0.0, QColor("#34a853"))
        grad.setColorAt(0.75, QColor("#34a853"))
        grad.setColorAt(0.88, QColor("#fbbc04"))
        grad.setColorAt(1.0, QColor("#ea4335"))
        fill = QRectF(r.left(), r.top(), self._x(self.db, r.width()), r.height())
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(grad)
        p.drawRoundedRect(fill, 3, 3)
        px = r.left() + self._x(self.peak, r.width())
        p.setPen(QColor("#3c4043"))
        p.drawLine(int(px), int(r.top()) + 1, int(px), int(r.bottom()) - 1)
        p.end()


class LevelMeters(QWidget):
    """Two labelled meters. :meth:`set_levels` is a slot for ``LevelPump.sampled``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.caller = MeterBar(self)
        self.agent = MeterBar(self)
        self.caller_text = QLabel("—", self)
        self.agent_text = QLabel("—", self)
        for row, (name, bar, text) in enumerate(
            (("Caller", self.caller, self.caller_text), ("Agent", self.agent, self.agent_text))
        ):
            label = QLabel(name, self)
            tip = (
                f"{name} level: loudness of the last 20 ms of {name.lower()} audio, "
                "−60…0 dBFS, with a decaying peak mark"
            )
            for w in (label, bar, text):
                w.setToolTip(tip)
            text.setTextFormat(Qt.TextFormat.PlainText)
            text.setMinimumWidth(68)
            text.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            grid.addWidget(label, row, 0)
            grid.addWidget(bar, row, 1)
            grid.addWidget(text, row, 2)
        grid.setColumnStretch(1, 1)

    def set_levels(self, _t_ns: int, caller_db: float, agent_db: float) -> None:
        for bar, text, db in (
            (self.caller, self.caller_text, caller_db),
            (self.agent, self.agent_text, agent_db),
        ):
            bar.set_db(db)
            text.setText("silent" if db <= MIN_DB else f"{db:.0f} dBFS")
