"""The coverage view: what was tested (language × accent, × scenario, × condition...) and
how it went, over every stored call (manual and suite alike).

The figures are :func:`app.store.coverage.coverage` (and :func:`~app.store.coverage.compare`
for two agent versions) over the data folder's index, after the stored suite runs are read
in (:func:`app.store.verdicts.ingest_suite_runs`), exactly as ``voiceprobe coverage
--json`` computes them; this module only lays them out. Cells are coloured by pass rate
with the reports' scale (:func:`app.report.svg.rate_colour`). A cell opens its calls
below the matrix; double-click one to open it read-only (the history's session viewer).

Run as a module it makes the README's screenshot and its opening-time figure::

    python -m ui.views.coverage --sessions 10000 [--screenshot FILE.png] [--size WxH]

(a synthetic store made by ``app.bench.coverage``'s generator in a temporary folder).

One module on purpose (over 500 lines): the matrix model, its filters and the comparison
of two versions are one view whose parts read each other's state.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.errors import VoiceprobeError
from app.report.export import export_coverage_report
from app.report.svg import rate_colour
from app.store.coverage import (
    _EXPR,
    CoverageQuery,
    _where,
    check_days,
    compare,
    coverage,
)
from app.store.index import SessionIndex
from app.store.verdicts import ingest_suite_runs
from app.store.writer import INDEX_FILE
from app.textsafe import printable
from ui.models.common import USER_ROLE
from ui.models.table import FixedColumnsModel
from ui.report_export import export_report
from ui.windows import close_windows, keep_window

#: The row dimension and what the columns can be switched to.
ROW_DIMENSION = "language"
COLUMN_CHOICES = ("accent", "scenario", "condition", "tester", "agent_version", "provider",
                  "model", "noise", "line")  # fmt: skip
#: The cell's figures (a dict from :func:`coverage`) under this role.
CELL_ROLE = USER_ROLE + 40
#: Most calls listed for one cell.
MAX_CALLS = 500
ANY = "(any)"


def dimension_text(value: str) -> str:
    """A dimension value as shown: ``-`` for a session without that tag (plain text)."""
    return printable(value) if value else "-"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}%"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def cell_text(f: Mapping[str, Any]) -> str:
    """Three short lines: pass rate and counts; mean WER and reply-language match; v2v
    p50/p95."""
    wer = "—" if f.get("mean_wer") is None else f"{f['mean_wer']:.2f}"
    return (
        f"{_pct(f.get('pass_rate'))} pass · {f['passed']}/{f['judged']} turns"
        f" · {f['calls']} calls\n"
        f"WER {wer} · lang {_pct(f.get('reply_language_match'))}\n"
        f"v2v {_ms(f.get('v2v_p50_ms'))} / {_ms(f.get('v2v_p95_ms'))} ms"
    )


def cell_tooltip(f: Mapping[str, Any]) -> str:
    """Every figure of a cell, one per line."""
    return "\n".join(
        f"{k}: {'—' if f.get(k) is None else f[k]}"
        for k in ("calls", "turns", "judged", "passed", "pass_rate", "mean_wer",
                  "reply_language_match", "v2v_p50_ms", "v2v_p95_ms", "cost_per_call_usd")
    )  # fmt: skip


class CoverageMatrixModel(FixedColumnsModel):
    """A grid over :func:`coverage`'s result for two dimensions: one row per value of the
    first, one column per value of the second, plus an "all" column (the row's
    language figures when rows are languages). Main thread only; plain text."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.result: dict[str, Any] = {"by": [ROW_DIMENSION, "accent"], "cells": []}
        self._rows: list[str] = []
        self._cols: list[str] = []
        self._cells: dict[tuple[str, str], dict[str, Any]] = {}

    def set_result(self, result: dict[str, Any]) -> None:
        """Show ``result`` (``coverage(...)`` with two dimensions)."""
        self.beginResetModel()
        self.result = result
        self._cells = {}
        for cell in result["cells"]:
            a, b = (str(v) for v in cell["key"].values())
            self._cells[(a, b)] = cell
        self._rows = sorted({a for a, _ in self._cells})
        self._cols = sorted({b for _, b in self._cells})
        self.endResetModel()

    def row_total(self) -> int:
        return len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._cols)

    def headerData(  # noqa: N802 - Qt override
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return dimension_text(self._cols[section]) if section < len(self._cols) else None
        return dimension_text(self._rows[section]) if section < len(self._rows) else None

    def key(self, row: int, col: int) -> tuple[str, str]:
        """The two dimension values of a cell."""
        return self._rows[row], self._cols[col]

    def cell(self, row: int, col: int) -> dict[str, Any] | None:
        """The figures of a cell, or ``None`` (no call there)."""
        if not (0 <= row < len(self._rows) and 0 <= col < len(self._cols)):
            return None
        return self._cells.get(self.key(row, col))

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        cell = self.cell(index.row(), index.column()) if index.isValid() else None
        if cell is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(cell)
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(QColor(rate_colour(cell.get("pass_rate"))))
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor("#202124"))
        if role == Qt.ItemDataRole.ToolTipRole:
            return cell_tooltip(cell)
        if role == CELL_ROLE:
            return cell
        return None


#: The compare table's figures: (header, figure key, format).
COMPARE_FIGURES = (("pass %", "pass_rate", "{:.1f}"), ("WER", "mean_wer", "{:.3f}"),
                   ("lang %", "reply_language_match", "{:.1f}"),
                   ("v2v p50", "v2v_p50_ms", "{:.0f}"),
                   ("v2v p95", "v2v_p95_ms", "{:.0f}"))  # fmt: skip


class CompareModel(FixedColumnsModel):
    """Two agent versions side by side (:func:`compare`'s rows): per figure, A, B and the
    delta B - A. Main thread only; plain text."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.result: dict[str, Any] = {"by": [], "versions": ["", ""], "compare": []}
        self.columns = ()

    def set_result(self, result: dict[str, Any]) -> None:
        self.beginResetModel()
        self.result = result
        a, b = (printable(v) for v in result["versions"])
        self.columns = (*result["by"], *(f"{h} {s}" for h, _, _ in COMPARE_FIGURES
                                         for s in (a, b, "Δ")))  # fmt: skip
        self.endResetModel()

    def row_total(self) -> int:
        return len(self.result["compare"])

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        row = self.result["compare"][index.row()]
        dims = list(row["key"].values())
        col = index.column()
        if col < len(dims):
            return dimension_text(str(dims[col]))
        name, fmt = COMPARE_FIGURES[(col - len(dims)) // 3][1:]
        side = (col - len(dims)) % 3
        if side == 2:
            v = row["delta"][name]
            text = "—" if v is None else fmt.format(v)
            return text if v is None or text.startswith("-") else "+" + text
        fig = row["a" if side == 0 else "b"]
        v = fig.get(name) if fig else None
        return "—" if v is None else fmt.format(v)


CALL_COLUMNS = ("Started", "Session", "Provider", "Model", "Turns", "Judged", "Passed",
                "p95 v2v", "Status")  # fmt: skip


class CellCallsModel(FixedColumnsModel):
    """The calls of one cell, newest first (rows of :func:`cell_calls`)."""

    columns = CALL_COLUMNS

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def row_total(self) -> int:
        return len(self.rows)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or role != Qt.ItemDataRole.DisplayRole:
            return None
        r = self.rows[index.row()]
        key = ("started_at", "id", "provider", "model", "turns", "judged", "passed",
               "p95_v2v_ms", "status")[index.column()]  # fmt: skip
        v = r.get(key)
        if key == "p95_v2v_ms":
            return _ms(v) + " ms" if v is not None else "—"
        if key == "started_at" and isinstance(v, str):
            return v.replace("T", " ")[:19]
        return "" if v is None else printable(str(v))


def cell_calls(
    index: SessionIndex, q: CoverageQuery, key: Sequence[str], limit: int = MAX_CALLS
) -> list[dict[str, Any]]:
    """The sessions of the cell ``key`` (one value per dimension of ``q.by``) under ``q``'s
    filters, newest first: the same selection :func:`coverage` counts in that cell.

    Raises:
        ConfigError: a bad date or dimension in ``q``.
        StoreError: the index cannot be read.
    """
    # The matrix's own filter and dimension expressions, so a cell lists exactly the
    # sessions it counts.
    where, params = _where(q, q.agent_version)
    conds = [f"{_EXPR[d]} = ?" for d in q.by]
    where = (where + " AND " if where else " WHERE ") + " AND ".join(conds)
    names, rows = index.query(
        "SELECT s.id, s.started_at, s.provider, s.model, s.turns, s.judged, s.passed, "
        f"s.p95_v2v_ms, s.status FROM sessions s{where} "
        "ORDER BY s.started_at DESC, s.id DESC LIMIT ?",
        [*params, *key, max(0, int(limit))],
    )
    return [dict(zip(names, r, strict=True)) for r in rows]


def filter_values(index: SessionIndex, dimensions: Sequence[str]) -> dict[str, list[str]]:
    """The non-empty values each of ``dimensions`` has in the index, sorted (the filter
    pickers); one query.

    Raises:
        StoreError: the index cannot be read.
    """
    cols = ", ".join(_EXPR[d] for d in dimensions)
    _, rows = index.query(f"SELECT DISTINCT {cols} FROM sessions s")
    return {d: sorted({str(r[i]) for r in rows if r[i]}) for i, d in enumerate(dimensions)}


class CoverageWindow(QWidget):
    """The matrix of the data folder ``root`` with its filters, a cell's calls and the
    comparison of two agent versions. Main thread only.

    Raises:
        StoreError: the index cannot be opened (the caller says so).
    """

    def __init__(self, root: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("voiceprobe — coverage")
        self.resize(1180, 760)
        self.root = Path(root)
        self.index = SessionIndex(self.root / INDEX_FILE)
        ingest_suite_runs(self.root, self.index)  # automatic verdicts, as the CLI does
        self.viewers: list[QWidget] = []

        self.columns = QComboBox(self)
        for d in COLUMN_CHOICES:
            self.columns.addItem(d.replace("_", " "), d)
        self.columns.setToolTip("Rows are languages; choose what the columns are")
        self.since = QLineEdit(self)
        self.until = QLineEdit(self)
        for edit, what in ((self.since, "from"), (self.until, "to")):
            edit.setPlaceholderText("YYYY-MM-DD")
            edit.setClearButtonEnabled(True)
            edit.setToolTip(f"Sessions started {what} this day (inclusive, UTC)")
            edit.setMaximumWidth(120)
        self.version = QComboBox(self)
        self.provider = QComboBox(self)
        self.model_pick = QComboBox(self)
        values = filter_values(self.index, ("agent_version", "provider", "model"))
        for combo, dim in ((self.version, "agent_version"), (self.provider, "provider"),
                           (self.model_pick, "model")):  # fmt: skip
            combo.addItem(ANY, None)
            for v in values[dim]:
                combo.addItem(printable(v), v)
        self.compare_on = QCheckBox("Compare versions", self)
        self.version_a = QComboBox(self)
        self.version_b = QComboBox(self)
        versions = values["agent_version"]
        for combo in (self.version_a, self.version_b):
            for v in versions:
                combo.addItem(printable(v), v)
        if len(versions) > 1:
            self.version_b.setCurrentIndex(len(versions) - 1)
        self.message = QLabel(self)
        self.message.setObjectName("hint")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.hide()
        self.totals = QLabel(self)
        self.totals.setTextFormat(Qt.TextFormat.PlainText)

        self.matrix = CoverageMatrixModel(self)
        self.compare_model = CompareModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.matrix)
        self.table.setWordWrap(True)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setMinimumSectionSize(150)
        self.table.clicked.connect(lambda i: self.open_cell(i.row(), i.column()))
        self.calls = CellCallsModel(self)
        self.calls_view = QTableView(self)
        self.calls_view.setModel(self.calls)
        self.calls_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.calls_view.verticalHeader().setVisible(False)
        self.calls_view.setWordWrap(False)
        self.calls_view.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.calls_view.horizontalHeader().setStretchLastSection(True)
        self.calls_view.doubleClicked.connect(lambda i: self.open_call(i.row()))
        self.calls_view.setToolTip("Double-click a call to open it")
        self.calls_label = QLabel("Click a cell to list its calls", self)
        self.calls_label.setTextFormat(Qt.TextFormat.PlainText)

        bar = QHBoxLayout()
        for label, w in (("Columns", self.columns), ("From", self.since), ("To", self.until),
                         ("Agent version", self.version), ("Provider", self.provider),
                         ("Model", self.model_pick)):  # fmt: skip
            bar.addWidget(QLabel(label, self))
            bar.addWidget(w)
        bar.addStretch(1)
        cmp_bar = QHBoxLayout()
        cmp_bar.addWidget(self.compare_on)
        cmp_bar.addWidget(self.version_a)
        cmp_bar.addWidget(QLabel("vs", self))
        cmp_bar.addWidget(self.version_b)
        cmp_bar.addWidget(self.totals, 1)
        self.report_button = QPushButton("Export report…", self)
        self.report_button.setToolTip(
            "This matrix, its filters, per-language figures and the worst turns with their "
            "audio, as one HTML file (voiceprobe report coverage)"
        )
        self.report_button.clicked.connect(lambda: self.export_report())
        cmp_bar.addWidget(self.report_button)
        lower = QWidget(self)
        ll = QVBoxLayout(lower)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.calls_label)
        ll.addWidget(self.calls_view, 1)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(lower)
        split.setSizes([520, 200])
        box = QVBoxLayout(self)
        box.addLayout(bar)
        box.addLayout(cmp_bar)
        box.addWidget(self.message)
        box.addWidget(split, 1)

        self.columns.currentIndexChanged.connect(lambda _i: self.refresh())
        for combo in (self.version, self.provider, self.model_pick, self.version_a,
                      self.version_b):  # fmt: skip
            combo.currentIndexChanged.connect(lambda _i: self.refresh())
        for edit in (self.since, self.until):
            edit.editingFinished.connect(self.refresh)
        self.compare_on.toggled.connect(lambda _on: self.refresh())
        self.refresh()

    def query(self) -> CoverageQuery:
        """The query the controls describe.

        Raises:
            ConfigError: a date that is not one (one line).
        """
        since = self.since.text().strip() or None
        until = self.until.text().strip() or None
        check_days(since, until, ("From", "To"))
        return CoverageQuery(
            by=(ROW_DIMENSION, str(self.columns.currentData())),
            since=since,
            until=until,
            agent_version=self.version.currentData(),
            provider=self.provider.currentData(),
            model=self.model_pick.currentData(),
        )

    def refresh(self) -> None:
        """Recompute the matrix (or the comparison) from the index; a bad filter or an
        unreadable index is one plain-text line, and the table keeps what it showed."""
        try:
            q = self.query()
            if self.compare_on.isChecked():
                a, b = self.version_a.currentData(), self.version_b.currentData()
                if a is None or b is None:
                    self._say("No agent versions are tagged: nothing to compare")
                    return
                self.compare_model.set_result(compare(self.index, q, str(a), str(b)))
                self.table.setModel(self.compare_model)
                self.table.horizontalHeader().setSectionResizeMode(
                    QHeaderView.ResizeMode.ResizeToContents
                )
                self.totals.setText(f"{len(self.compare_model.result['compare'])} cells compared")
            else:
                result = coverage(self.index, q)
                self.matrix.set_result(result)
                self.table.setModel(self.matrix)
                self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
                t = result["total"]
                self.totals.setText(
                    f"All: {t['calls']:,} calls · {t['turns']:,} turns · "
                    f"{_pct(t['pass_rate'])} pass of {t['judged']:,} judged · v2v p50/p95 "
                    f"{_ms(t['v2v_p50_ms'])} / {_ms(t['v2v_p95_ms'])} ms"
                )
        except VoiceprobeError as exc:
            self._say(str(exc))
            return
        self._say("")

    def export_report(self, path: Path | None = None) -> tuple[bool, str]:
        """The coverage report of the filters shown (``path``: no dialog); the outcome is
        the plain-text line above the matrix. Returns ``(written, message)``."""
        try:
            q = self.query()
        except VoiceprobeError as exc:
            ok, message = False, f"Report not written: {exc}"
        else:
            ok, message = export_report(
                self, "Export coverage report", "coverage.html",
                lambda out: export_coverage_report(self.root, q, out), path,
            )  # fmt: skip
        self._say(message)
        return ok, message

    def _say(self, text: str) -> None:
        """One plain-text line above the matrix (hidden when empty)."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def open_cell(self, row: int, col: int) -> list[dict[str, Any]]:
        """List the calls of the matrix cell at ``row``/``col`` below it (also returned)."""
        if self.table.model() is not self.matrix or self.matrix.cell(row, col) is None:
            return []
        key = self.matrix.key(row, col)
        try:
            rows = cell_calls(self.index, self.query(), key)
        except VoiceprobeError as exc:
            self._say(str(exc))
            return []
        self.calls.set_rows(rows)
        self.table.setCurrentIndex(self.matrix.index(row, col))
        what = " × ".join(dimension_text(k) for k in key)
        more = f" (the newest {MAX_CALLS})" if len(rows) >= MAX_CALLS else ""
        self.calls_label.setText(f"{what}: {len(rows)} calls{more}")
        return rows

    def open_call(self, row: int) -> QWidget | None:
        """Open the listed call ``row`` read-only (the history's session viewer)."""
        from app.store.reader import load_session
        from ui.history import SessionViewer

        if not 0 <= row < len(self.calls.rows):
            return None
        sid = str(self.calls.rows[row]["id"])
        try:
            viewer = SessionViewer(load_session(self.root / "sessions" / sid))
        except VoiceprobeError as exc:
            self._say(str(exc))
            return None
        keep_window(self.viewers, viewer)
        viewer.show()
        return viewer

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Close the session viewers opened from here too."""
        close_windows(self.viewers)
        super().closeEvent(event)


def main(argv: list[str] | None = None) -> int:
    """``python -m ui.views.coverage``: open the view over a synthetic store (the bench's
    generator), print how long it took to show, optionally save a screenshot."""
    parser = argparse.ArgumentParser(prog="python -m ui.views.coverage")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--screenshot", metavar="FILE.png")
    parser.add_argument("--size", default="1280x800", metavar="WxH")
    args = parser.parse_args(argv)
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    w, _, h = args.size.partition("x")
    from app.bench.coverage import generate
    from ui.app import ensure_app, save_screenshot

    app = ensure_app()
    with tempfile.TemporaryDirectory(prefix="voiceprobe-coverage-") as home:
        generate(Path(home) / INDEX_FILE, args.sessions)
        t0 = time.perf_counter()
        window = CoverageWindow(Path(home))
        window.resize(int(w), int(h))
        window.show()
        app.processEvents()
        shown = time.perf_counter() - t0
        print(f"sessions={args.sessions} open_s={shown:.3f}")
        if args.screenshot:
            window.open_cell(0, 0)
            save_screenshot(window, args.screenshot)
            print(args.screenshot)
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
