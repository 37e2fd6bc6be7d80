"""Presentation mode's headline panel: the last turn's voice-to-voice, large, and the
call's p50/p95, readable from the back of a room. Bound to a :class:`TurnsModel`."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.metrics.presentation import HEADLINE, turn_number
from ui.models.common import ms_text
from ui.models.turns import TurnsModel

#: The panel's own style sheet: it wins over the window's larger type in presentation mode.
STYLE = """
PresentationPanel { background: #202124; border-radius: 8px; }
QLabel { color: #e8eaed; font-size: 14pt; }
QLabel#bigFigure { color: #ffffff; font-size: 54pt; font-weight: 700; }
QLabel#bigStats { color: #ffffff; font-size: 22pt; font-weight: 600; }
"""


class PresentationPanel(QWidget):
    """Last turn's voice→voice in large type, the call's p50/p95 beside it. Main thread."""

    def __init__(self, model: TurnsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("presentation")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setStyleSheet(STYLE)
        self.model = model
        self.figure = QLabel(self)
        self.figure.setObjectName("bigFigure")
        self.caption = QLabel(self)
        self.stats = QLabel(self)
        self.stats.setObjectName("bigStats")
        for w in (self.figure, self.caption, self.stats):
            w.setTextFormat(Qt.TextFormat.PlainText)
        self.setToolTip(
            "voice→voice: from the moment the caller stopped speaking to the first sample "
            "of the agent's reply played (LocalSpeechStopped → PlaybackStarted)"
        )
        left = QVBoxLayout()
        left.addWidget(self.figure)
        left.addWidget(self.caption)
        box = QHBoxLayout(self)
        box.setContentsMargins(18, 8, 18, 8)
        box.addLayout(left)
        box.addStretch(1)
        box.addWidget(self.stats, 0, Qt.AlignmentFlag.AlignVCenter)
        model.summaryChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Show the newest turn that has a voice→voice figure, and the call's p50/p95."""
        n = self.model.rowCount()
        last = next(
            (r for r in range(n - 1, -1, -1) if self.model.turn(r).span_ms(HEADLINE) is not None),
            None,
        )
        if last is None:
            self.figure.setText("— ms")
            self.caption.setText("voice→voice of the last turn (none yet)")
        else:
            turn = self.model.turn(last)
            self.figure.setText(ms_text(turn.span_ms(HEADLINE)))
            self.caption.setText(f"voice→voice, turn {turn_number(turn, last)}")
        values = self.model.headline_values()
        self.stats.setText(f"p50 {ms_text(self.model.p50())}   p95 {ms_text(self.model.p95())}")
        self.caption.setText(
            self.caption.text()
            + f" · p50/p95 over {len(values)} turn"
            + ("s" if len(values) != 1 else "")
        )
