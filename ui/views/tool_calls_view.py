"""The tool-calls table over :class:`ui.models.ToolCallsModel`."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from ui.models.tool_calls import ToolCallsModel


class ToolCallsView(QTableView):
    """One row per tool call; arguments and results are plain text (tooltips hold the
    full text).
    """

    def __init__(self, model: ToolCallsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        # Time, tool, status and duration as wide as their text; arguments and result
        # share the rest, so the result column is on screen at any width.
        for col in range(4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        for col in (4, 5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch)
