"""Colours and the application style sheet (one place, so views stay consistent)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

#: Span colours of the latency waterfall (DESIGN.md, "Clock and the turn timeline").
SPAN_COLORS: dict[str, str] = {
    "user_speech": "#9aa0a6",
    "end_of_turn_delay": "#f9ab00",
    "response_start": "#e8710a",
    "ttfb": "#d93025",
    "tool": "#9334e6",
    "tool_followup": "#c58af9",
    "playback_latency": "#1a73e8",
    "agent_speech": "#34a853",
    "voice_to_voice": "#202124",
}
#: Human names of the spans (legend, detail panel).
SPAN_LABELS: dict[str, str] = {
    "user_speech": "caller speech",
    "end_of_turn_delay": "end of turn",
    "response_start": "response start",
    "ttfb": "time to first audio",
    "tool": "tool call",
    "tool_followup": "tool follow-up",
    "playback_latency": "playback",
    "agent_speech": "agent speech",
    "voice_to_voice": "voice→voice",
}
LANE_COLORS = {"local": "#1a73e8", "server": "#f9ab00", "agent": "#34a853", "level": "#5f6368"}
SLOW_COLOR = "#b45309"
ERROR_COLOR = "#b71c1c"


def span_color(name: str) -> QColor:
    """Colour of span ``name`` (``tool:<name>`` spans share the tool colour)."""
    key = "tool" if name.startswith("tool:") else name
    return QColor(SPAN_COLORS.get(key, "#80868b"))


def span_label(name: str) -> str:
    """Readable label of span ``name``."""
    if name.startswith("tool:"):
        return f"tool {name[5:]}"
    return SPAN_LABELS.get(name, name)


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
