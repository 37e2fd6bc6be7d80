"""Colours and the application style sheet (one place, so views stay consistent)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from app.metrics.presentation import (
    LANE_COLOURS,
    SLOW_COLOUR,
    span_colour,
    span_label,
)

__all__ = ["LANE_COLORS", "SLOW_COLOR", "span_color", "span_label", "apply_theme", "mono_font"]

# One palette for the app and the report (app/metrics/presentation.py).
LANE_COLORS = LANE_COLOURS
SLOW_COLOR = SLOW_COLOUR
ERROR_COLOR = "#b71c1c"


def span_color(name: str) -> QColor:
    """Colour of span ``name`` (``tool:<name>`` spans share the tool colour)."""
    return QColor(span_colour(name))


STYLE_SHEET = """
QMainWindow, QDialog { background: #f6f7f9; }
QGroupBox { font-weight: 600; border: 1px solid #dadce0; border-radius: 6px;
            margin-top: 14px; padding: 8px 6px 6px 6px; background: #ffffff; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #3c4043; }
QTabWidget::pane { border: 1px solid #dadce0; border-radius: 4px; background: #ffffff; }
QTabBar::tab { padding: 6px 14px; }
QTableView, QListView, QPlainTextEdit { background: #ffffff; border: 1px solid #dadce0;
            selection-background-color: #d2e3fc; selection-color: #202124; }
QHeaderView::section { background: #f1f3f4; border: none; border-right: 1px solid #dadce0;
            border-bottom: 1px solid #dadce0; padding: 4px 6px; font-weight: 600; }
QPushButton#callButton { background: #188038; color: white; font-weight: 600;
            border-radius: 6px; padding: 8px 18px; }
QPushButton#callButton[inCall="true"] { background: #d93025; }
QPushButton#callButton:disabled { background: #9aa0a6; }
QLabel#stateLabel { font-weight: 600; padding: 2px 8px; border-radius: 9px;
            background: #e8eaed; color: #3c4043; }
QLabel#banner { background: #fdecea; color: #b71c1c; border: 1px solid #f5c2c0;
            border-radius: 4px; padding: 6px 8px; }
QLabel#summaryLabel { font-weight: 600; color: #3c4043; }
QLabel#hint { color: #5f6368; }
"""


def apply_theme(app: QApplication) -> None:
    """Apply the style sheet to ``app`` (main thread)."""
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE_SHEET)


def mono_font() -> QFont:
    """The system fixed-width font (event log, raw messages)."""
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
