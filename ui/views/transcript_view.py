"""The conversation list: plain-text rows from :class:`ui.models.TranscriptModel`."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from ui.models.transcript import TranscriptModel


class TranscriptView(QListView):
    """Shows the transcript, word-wrapped, following the newest row while at the bottom.

    The default item delegate paints ``DisplayRole`` as plain text, so transcripts are
    never interpreted as markup.
    """

    def __init__(self, model: TranscriptModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setWordWrap(True)
        self.setUniformItemSizes(False)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.setSpacing(3)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setAlternatingRowColors(False)
        model.rowsInserted.connect(self._follow)

    def _follow(self, _parent: QModelIndex, _first: int, _last: int) -> None:
        bar = self.verticalScrollBar()
        if bar.value() >= bar.maximum() - 4:
            self.scrollToBottom()
