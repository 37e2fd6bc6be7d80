"""The shared shape of voiceprobe's read-only item models (fixed columns, plain text).

:class:`FixedColumnsModel` is a flat table with a fixed header; :class:`RowsModel` adds a
list of row records, one per row, and renders each cell from its record;
:class:`SlowRowsModel` flags rows slower than a threshold that can change live;
:func:`row_at` finds the record of an index (list models use it too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

_NO_PARENT = QModelIndex()
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)

RowT = TypeVar("RowT")


def row_at(rows: Sequence[RowT], index: QModelIndex | QPersistentModelIndex) -> RowT | None:
    """The record of ``index``'s row in ``rows``; ``None`` for an invalid index or a row
    that is not (or no longer) in ``rows``."""
    row = index.row()
    if row < 0 or row >= len(rows) or not index.isValid():
        return None
    return rows[row]


class FixedColumnsModel(QAbstractTableModel):
    """A flat table whose header is :attr:`columns`; subclasses say how many rows they
    have (:meth:`row_total`) and render cells in ``data``."""

    columns: tuple[str, ...] = ()

    def row_total(self) -> int:
        """Number of rows."""
        raise NotImplementedError

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else self.row_total()

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _NO_PARENT) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section]
        return None


class RowsModel(FixedColumnsModel, Generic[RowT]):
    """Fixed columns over a list of records, one per row (``_rows``, never ``None``;
    only the subclass changes it, with the usual begin/end calls). Subclasses render one
    cell in :meth:`cell`. Main thread only.
    """

    #: The roles :meth:`cell` answers (``None``: every role). ``data`` runs for every role
    #: of every visible cell on each repaint, so a model with many rows names its roles and
    #: the others are refused before any lookup.
    roles: frozenset[int] | None = None

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[RowT] = []
        # Read once: a class attribute read through a Qt object costs ~0.2 µs, about a
        # third of what refusing an unserved role used to cost in all.
        self._roles = self.roles

    def row_total(self) -> int:
        return len(self._rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        roles = self._roles
        if roles is not None and role not in roles:
            return None
        record = row_at(self._rows, index)
        return None if record is None else self.cell(record, index.row(), index.column(), role)

    def clear(self) -> None:
        """Drop every row, and (:meth:`_forget`) what the subclass keeps beside them."""
        self.beginResetModel()
        self._rows.clear()
        self._forget()
        self.endResetModel()

    def _forget(self) -> None:
        """Drop what is kept beside the rows (an index by id, ...); :meth:`clear` calls it
        inside the model reset. Nothing by default."""

    def cell(self, record: RowT, row: int, col: int, role: int) -> Any:
        """What ``role`` of cell (``row``, ``col``) shows; ``record`` is that row's."""
        raise NotImplementedError

    def cells_changed(self, first_col: int = 0, last_col: int | None = None) -> None:
        """Say that columns ``first_col`` to ``last_col`` (the last column by default) of
        every row may show something new (nothing is emitted without rows)."""
        if self._rows:
            last = len(self.columns) - 1 if last_col is None else last_col
            self.dataChanged.emit(self.index(0, first_col), self.index(len(self._rows) - 1, last))


class SlowRowsModel(RowsModel[RowT]):
    """Rows whose duration (:meth:`row_ms`) exceeds :attr:`slow_ms` are *slow*; the
    threshold can change live (every row is re-flagged and :attr:`slowThresholdChanged`
    fires with the new value). A cell's :attr:`slow_role` says whether its row is slow.
    Main thread only.
    """

    slowThresholdChanged = Signal(float)  # noqa: N815
    #: The item-data role that answers :meth:`is_slow` for a cell's row (``None``: none).
    slow_role: int | None = None

    def __init__(self, parent: Any = None, slow_ms: float = 1000.0) -> None:
        super().__init__(parent)
        self._slow_ms = float(slow_ms)

    @property
    def slow_ms(self) -> float:
        """Threshold (ms) above which a row is flagged slow."""
        return self._slow_ms

    def set_slow_ms(self, ms: float) -> None:
        """Change the slow threshold and re-flag every row."""
        self._slow_ms = float(ms)
        self.cells_changed()
        self.slowThresholdChanged.emit(self._slow_ms)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if role == self.slow_role:
            return None if row_at(self._rows, index) is None else self.is_slow(index.row())
        return super().data(index, role)

    def row_ms(self, record: RowT) -> float | None:
        """The duration a row is judged by (``None``: never slow)."""
        raise NotImplementedError

    def is_slow(self, row: int) -> bool:
        ms = self.row_ms(self._rows[row])
        return ms is not None and ms > self._slow_ms
