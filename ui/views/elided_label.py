"""A one-line label that never widens its layout: long text is elided, whole in a tooltip."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QStyle, QStyleOption, QWidget

from ui.models.common import plain_tip


class ElidedLabel(QLabel):
    """Plain text on one line, cut with "…" when the space is short (status bar, call
    state). :meth:`text` keeps the whole text; the tooltip shows it too, literally (see
    :func:`ui.models.common.plain_tip`: the text may be a server's)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        super().setText(text)
        self.setToolTip(plain_tip(text))

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(min(40, super().minimumSizeHint().width()), super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter = QPainter(self)
        opt = QStyleOption()
        opt.initFrom(self)
        # The style sheet's background and border (a state "pill", the status bar).
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, opt, painter, self)
        self.drawFrame(painter)
        self.style().drawItemText(
            painter,
            rect,
            int(self.alignment()),
            self.palette(),
            self.isEnabled(),
            text,
            self.foregroundRole(),
        )
        painter.end()

    def is_elided(self) -> bool:
        """Whether the whole text does not fit (tests, tooltips)."""
        return self.fontMetrics().horizontalAdvance(self.text()) > self.contentsRect().width()
