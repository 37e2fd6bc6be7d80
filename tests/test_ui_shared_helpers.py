"""The small helpers the UI models and views share: rows of a table model, windows kept
while open, hover tooltips and marker lines on plots, the session list's columns."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, QPointF, Qt
from PySide6.QtWidgets import QToolTip, QWidget

from app.store.index import LIST_KEYS
from tests.conftest_qt import FakeController  # noqa: F401  (sets QT_QPA_PLATFORM first)
from ui.history import COLUMNS, SessionsModel
from ui.models.table import RowsModel, SlowRowsModel, row_at
from ui.views.labels import banner_label, plain_label
from ui.views.plot_helpers import place_line, show_plot_tooltip
from ui.windows import close_windows, keep_window

DISPLAY = int(Qt.ItemDataRole.DisplayRole)
SLOW = int(Qt.ItemDataRole.UserRole) + 99
TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)


class Squares(RowsModel[int]):
    """Two columns: the number and its square; only the display role is answered."""

    columns = ("n", "n²")
    roles = frozenset((DISPLAY,))

    def set_numbers(self, numbers: list[int]) -> None:
        self.beginResetModel()
        self._rows = list(numbers)
        self.endResetModel()

    def cell(self, record: int, row: int, col: int, role: int) -> Any:
        return str(record if col == 0 else record * record)


def test_rows_model_renders_cells_of_its_records(qtbot) -> None:
    model = Squares()
    model.set_numbers([2, 3])
    assert (model.rowCount(), model.columnCount()) == (2, 2)
    assert model.index(1, 1).data() == "9"
    assert model.headerData(1, Qt.Orientation.Horizontal) == "n²"
    assert model.data(model.index(0, 0), TOOLTIP) is None  # a role it does not answer
    assert model.data(QModelIndex()) is None


def test_clear_drops_the_rows_and_what_the_model_keeps_beside_them(qtbot) -> None:
    class Indexed(Squares):
        def __init__(self) -> None:
            super().__init__()
            self.by_value: dict[int, int] = {}

        def _forget(self) -> None:
            self.by_value.clear()

    model = Indexed()
    model.set_numbers([4, 5])
    model.by_value = {4: 0, 5: 1}
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(model.rowCount()))
    model.clear()
    assert resets == [0] and model.rowCount() == 0 and model.by_value == {}


def test_row_at_refuses_invalid_and_stale_indexes(qtbot) -> None:
    model = Squares()
    model.set_numbers([5, 6, 7])
    assert row_at([5, 6, 7], model.index(2, 0)) == 7
    assert row_at([5, 6, 7], QModelIndex()) is None
    stale = model.index(2, 0)
    assert row_at([5, 6], stale) is None  # the rows shrank under a held index


def test_cells_changed_covers_every_row_of_the_columns_asked(qtbot) -> None:
    model = Squares()
    seen: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda a, b, _roles=None: seen.append((a.row(), a.column(), b.row(), b.column()))
    )
    model.cells_changed()
    assert seen == []  # no rows: nothing to say
    model.set_numbers([1, 2, 3])
    model.cells_changed()
    model.cells_changed(1, 1)
    assert seen == [(0, 0, 2, 1), (0, 1, 2, 1)]


class Waits(SlowRowsModel[tuple[str, float | None]]):
    """One column: a named wait in ms (``None``: not measured)."""

    columns = ("wait",)
    slow_role = SLOW

    def set_waits(self, waits: list[tuple[str, float | None]]) -> None:
        self.beginResetModel()
        self._rows = list(waits)
        self.endResetModel()

    def row_ms(self, record: tuple[str, float | None]) -> float | None:
        return record[1]

    def cell(self, record: tuple[str, float | None], row: int, col: int, role: int) -> Any:
        return f"{record[0]}{' slow' if self.is_slow(row) else ''}"


def test_slow_rows_are_reflagged_when_the_threshold_moves(qtbot) -> None:
    model = Waits(slow_ms=100)
    model.set_waits([("a", 50.0), ("b", 150.0), ("c", None)])
    assert model.slow_ms == 100.0
    assert [model.is_slow(i) for i in range(3)] == [False, True, False]
    changed: list[int] = []
    thresholds: list[float] = []
    model.dataChanged.connect(lambda a, b, _roles=None: changed.append(b.row()))
    model.slowThresholdChanged.connect(thresholds.append)
    model.set_slow_ms(40)
    assert changed == [2] and thresholds == [40.0]
    assert [model.index(i, 0).data() for i in range(3)] == ["a slow", "b slow", "c"]
    assert [model.data(model.index(i, 0), SLOW) for i in range(3)] == [True, True, False]


def test_kept_window_leaves_the_list_when_closed(qtbot) -> None:
    windows: list[QWidget] = []
    first, second = QWidget(), QWidget()
    keep_window(windows, first)
    keep_window(windows, second)
    assert windows == [first, second]
    assert first.testAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    first.show()
    first.close()
    qtbot.waitUntil(lambda: windows == [second], timeout=5000)
    second.show()
    close_windows(windows)
    qtbot.waitUntil(lambda: windows == [], timeout=5000)


def test_place_line_shows_hides_and_moves_a_marker(qtbot) -> None:
    line = pg.InfiniteLine(pos=0, angle=90)
    line.hide()
    place_line(line, 2.5)
    assert line.isVisible() and line.value() == 2.5
    place_line(line, None)
    assert not line.isVisible()
    place_line(line, 4.0)
    assert line.isVisible() and line.value() == 4.0


def test_plot_tooltip_shows_the_text_at_the_point_and_hides_off_the_plot(qtbot) -> None:
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(400, 300)
    plot.show()
    qtbot.waitExposed(plot)
    plot.getPlotItem().setRange(xRange=(0, 10), yRange=(0, 10), padding=0)
    asked: list[tuple[float, float]] = []

    def text_at(x: float, y: float) -> str:
        asked.append((x, y))
        return "here" if x > 5 else ""

    vb = plot.getPlotItem().getViewBox()
    inside = vb.mapViewToScene(QPointF(7.0, 5.0))
    show_plot_tooltip(plot, inside, text_at)
    assert len(asked) == 1 and abs(asked[0][0] - 7.0) < 0.2
    assert QToolTip.text() == "here"
    show_plot_tooltip(plot, vb.mapViewToScene(QPointF(2.0, 5.0)), text_at)
    assert len(asked) == 2
    qtbot.waitUntil(lambda: not QToolTip.isVisible(), timeout=5000)
    outside = vb.sceneBoundingRect().bottomRight() + QPointF(50.0, 50.0)
    show_plot_tooltip(plot, outside, text_at)
    assert len(asked) == 2  # off the plot: not asked at all


def test_session_list_columns_follow_the_index_list_keys(qtbot) -> None:
    row = {k: f"<{k}>" for k in LIST_KEYS}
    row.update(p50_v2v_ms=812.0, p95_v2v_ms=None, started_at="2026-12-03T10:00:00+00:00")
    model = SessionsModel()
    model.set_rows([row])
    assert len(COLUMNS) == len(LIST_KEYS) == model.columnCount()
    for col, key in enumerate(LIST_KEYS):
        shown = model.index(0, col).data()
        if key in ("id", "provider", "model", "profile", "status", "errors", "turns"):
            assert shown == f"<{key}>", key
    assert model.index(0, LIST_KEYS.index("p50_v2v_ms")).data() == "812 ms"
    assert model.index(0, LIST_KEYS.index("p95_v2v_ms")).data() == "—"


def test_plain_labels_show_untrusted_text_literally(qtbot) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    hint = plain_label("<b>x</b>", parent, "hint")
    assert hint.parent() is parent and hint.objectName() == "hint"
    assert hint.textFormat() == Qt.TextFormat.PlainText and hint.wordWrap()
    assert hint.text() == "<b>x</b>"
    banner = banner_label(parent)
    assert banner.objectName() == "banner" and banner.textFormat() == Qt.TextFormat.PlainText
    assert banner.isHidden() and banner.text() == ""
