"""The conversation list: plain-text rows from :class:`ui.models.TranscriptModel`."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from ui.models.transcript import TranscriptModel

#: How much narrower than a row its text is measured (px).
WRAP_SLACK_PX = 12


class _SizeCachingDelegate(QStyledItemDelegate):
    """The default delegate, with each row's size remembered until the row changes.

    A list of word-wrapped rows of different heights lays out every row again whenever a
    row is added; without the cache that asks the model for ~8 roles of every row and
    measures every text each time, which grows with the call.
    """

    def __init__(self, model: TranscriptModel, parent: QWidget) -> None:
        super().__init__(parent)
        self._model = model
        # (row, width) → (row version, size); the list asks at a couple of widths (with
        # and without its scroll bar, laying out and painting).
        self._sizes: dict[tuple[int, int], tuple[int, QSize]] = {}
        for sig in (model.modelReset, model.layoutChanged, model.rowsRemoved):
            sig.connect(self._sizes.clear)

    def sizeHint(  # noqa: N802 - Qt override
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        key = (index.row(), option.rect.width())
        version = self._model.row_version(key[0])
        hit = self._sizes.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        # Measured a little narrower than the row: Qt wraps the painted text in a rect a
        # few pixels narrower than the one it measures with, and a row measured too short
        # is painted with its last line elided ("…").
        narrower = QStyleOptionViewItem(option)
        narrower.rect.setWidth(max(1, option.rect.width() - WRAP_SLACK_PX))
        size = super().sizeHint(narrower, index)
        size.setWidth(option.rect.width() if option.rect.width() > 0 else size.width())
        self._sizes[key] = (version, size)
        return size


class TranscriptView(QListView):
    """Shows the transcript, word-wrapped, following the newest row while at the bottom.

    The default item delegate paints ``DisplayRole`` as plain text, so transcripts are
    never interpreted as markup.
    """

    def __init__(self, model: TranscriptModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setItemDelegate(_SizeCachingDelegate(model, self))
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
