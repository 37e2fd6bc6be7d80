"""The shared shape of voiceprobe's read-only table models (fixed columns, plain text)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

_NO_PARENT = QModelIndex()


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
