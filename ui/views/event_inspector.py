"""The event inspector: a filterable log and the selected event's fields as JSON."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.models.event_log import EventFilterProxy, EventLogModel
from ui.theme import mono_font


class EventInspector(QWidget):
    """Filter box, direction picker, log table and a plain-text detail pane."""

    def __init__(self, model: EventLogModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = EventFilterProxy(self)
        self.proxy.setSourceModel(model)

        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter by kind or text (e.g. Transcript, error, call_1)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter_changed)
        self.direction = QComboBox(self)
        for text, value in (("All", ""), ("In ←", "in"), ("Out →", "out"), ("Local", "local")):
            self.direction.addItem(text, value)
        self.direction.currentIndexChanged.connect(
            lambda _i: self._set_direction(self.direction.currentData())
        )
        self.count = QLabel(self)
        self.count.setObjectName("hint")
        self.count.setTextFormat(Qt.TextFormat.PlainText)
        self.count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.count.setFixedSize(0, 0)  # grown to fit by _update_count

        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setFont(mono_font())
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for col, width in enumerate((80, 44, 170)):
            self.table.setColumnWidth(col, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._selected)

        self.detail = QPlainTextEdit(self)
        self.detail.setReadOnly(True)
        self.detail.setFont(mono_font())
        self.detail.setPlaceholderText("Select an event to see its fields and raw message.")

        bar = QHBoxLayout()
        bar.addWidget(self.filter, 1)
        bar.addWidget(self.direction)
        bar.addWidget(self.count)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addLayout(bar)
        box.addWidget(split, 1)

        model.countChanged.connect(self._update_count)
        model.rowsInserted.connect(self._follow)
        model.modelReset.connect(self._update_count)
        self._update_count()

    def _filter_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _set_direction(self, value: str) -> None:
        self.proxy.set_direction(value or "")
        self._update_count()

    def _update_count(self, *_args: object) -> None:
        shown = self.proxy.rowCount()
        total = self.model.rowCount()
        text = f"{self.model.event_count:,} events"
        if shown != total:
            text += f" · {shown:,} of {total:,} rows shown"
        self.count.setText(text)
        # A fixed-size label does not ask its parent to re-lay out when its text changes
        # (a re-layout costs a second repaint of the whole inspector per update), so it is
        # fixed, and only ever grows.
        hint = self.count.sizeHint()
        if hint.width() > self.count.maximumWidth() or hint.height() > self.count.maximumHeight():
            self.count.setFixedSize(max(hint.width() + 24, self.count.width()), hint.height())

    def _follow(self, _parent: QModelIndex, _first: int, _last: int) -> None:
        bar = self.table.verticalScrollBar()
        if bar.value() >= bar.maximum() - 2:
            self.table.scrollToBottom()

    def _selected(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = selected.indexes()
        if not rows:
            return
        source = self.proxy.mapToSource(rows[0])
        self.detail.setPlainText(self.model.detail_text(source.row()))
