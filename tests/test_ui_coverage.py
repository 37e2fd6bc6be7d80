"""The coverage view over a real store (session folders by the real writer, a stored
suite run, a manual verdict by the CLI): the same figures as ``voiceprobe coverage
--json``, coloured cells, a cell's calls, filters, two versions compared, 10,000 sessions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.bench.coverage import generate
from app.report.svg import rate_colour
from tests.conftest import TIME_SCALE
from tests.conftest_qt import FakeController
from tests.coverage_helpers import cli, suite_case, write_suite_run
from tests.coverage_helpers import make_session as _make_session
from ui.app import build_main_window
from ui.views.coverage import CoverageWindow

DISPLAY = Qt.ItemDataRole.DisplayRole
#: Opening the view over 10,000 sessions (the target is 1 s; a loaded test machine gets
#: twice that, scaled like every other timing of the suite).
OPEN_10K_S = 2.0 * TIME_SCALE


def make_session(home: Path, sid: str, turns: Any, **kw: Any) -> Path:
    """A stored call started on the day its id names."""
    day = f"{sid[:4]}-{sid[4:6]}-{sid[6:8]}T{sid[9:11]}:00:00+00:00"
    return _make_session(home, sid, turns, started_at=day, **kw)


def _store(home: Path) -> None:
    """Five calls: two languages, accents, scenarios, agent versions; a suite run judges
    two of them, a tester overrides one turn."""
    make_session(home, "20261201-100000-0001", [("hola", "hola", 800.0), ("sol", "sol", 1200.0)],
                 tags=["language=es-MX", "accent=norteño", "scenario=billing",
                       "agent_version=v6"], provider="openai")  # fmt: skip
    make_session(home, "20261202-100000-0002", [("hola", "hola", 700.0)],
                 tags=["language=es-MX", "accent=norteño", "scenario=booking",
                       "agent_version=v7", "noise=cafe"], provider="openai")  # fmt: skip
    make_session(home, "20261203-100000-0003", [("namaste", "namaste", 1500.0)],
                 tags=["language=hi-IN", "accent=tamil", "scenario=billing",
                       "agent_version=v7", "noise=street", "line=g711"],
                 provider="gemini", model="gemini-live")  # fmt: skip
    make_session(home, "20261203-110000-0004", [("hi", "hello", 650.0)],
                 tags=["language=hi-IN", "agent_version=v6"], provider="gemini",
                 model="gemini-live")  # fmt: skip
    make_session(home, "20261204-100000-0005", [("x", "<script>y</script>", 900.0)],
                 tags=["language=hi-IN", "accent=<b>bold</b>", "agent_version=v7"])  # fmt: skip
    checks = [{"turn": 1, "name": "heard", "passed": True, "message": ""},
              {"turn": 2, "name": "says", "passed": False, "message": "no 'sol'"}]  # fmt: skip
    turns = [{"turn": 1, "wer": 0.1, "reply_language": "es"},
             {"turn": 2, "wer": 0.3, "reply_language": "en"}]  # fmt: skip
    checks3 = [{"turn": 1, "name": "heard", "passed": False, "message": "misheard"}]
    write_suite_run(home, "run1", [
        suite_case("20261201-100000-0001", "es-MX", turns, checks),
        suite_case("20261203-100000-0003", "hi-IN", [{"turn": 1, "wer": 0.5,
                                                     "reply_language": "hi"}], checks3),
    ])  # fmt: skip
    proc = cli(home, "sessions", "verdict", "20261201-100000-0001", "--turn", "2", "pass")
    assert proc.returncode == 0, proc.stderr


def _cli_json(home: Path, *args: str) -> Any:
    proc = cli(home, "coverage", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _same(value: Any) -> Any:
    return json.loads(json.dumps(value))


def test_the_matrix_shows_the_same_figures_as_the_cli(qtbot, home):
    _store(home)
    win = CoverageWindow(home)
    qtbot.addWidget(win)
    win.show()
    assert _same(win.matrix.result) == _cli_json(home)
    m = win.matrix
    assert [m.headerData(i, Qt.Orientation.Vertical) for i in range(m.rowCount())] == [
        "es-MX", "hi-IN"]  # fmt: skip
    cols = [m.headerData(i, Qt.Orientation.Horizontal) for i in range(m.columnCount())]
    assert cols == ["-", "<b>bold</b>", "norteño", "tamil"]  # untrusted text, as text
    cell = m.cell(0, cols.index("norteño"))
    assert cell is not None and cell["calls"] == 2 and cell["passed"] == 2
    idx = m.index(0, cols.index("norteño"))
    text = idx.data(DISPLAY)
    assert "100% pass · 2/2 turns · 2 calls" in text and "v2v 800 / 1,160 ms" in text
    assert "WER 0.20 · lang 50%" in text
    assert idx.data(Qt.ItemDataRole.BackgroundRole).color().name() == rate_colour(100.0)
    fail = m.index(1, cols.index("tamil"))
    assert fail.data(Qt.ItemDataRole.BackgroundRole).color().name() == rate_colour(0.0)
    assert m.index(0, cols.index("tamil")).data(DISPLAY) is None  # nothing tested there

    # Switched to language x scenario, then x condition.
    win.columns.setCurrentIndex(win.columns.findData("scenario"))
    assert _same(win.matrix.result) == _cli_json(home, "--by", "language,scenario")
    win.columns.setCurrentIndex(win.columns.findData("condition"))
    assert _same(win.matrix.result) == _cli_json(home, "--by", "language,condition")
    assert "cafe/-" in [m.headerData(i, Qt.Orientation.Horizontal) for i in range(m.columnCount())]

    # Filters: agent version, provider, model, dates.
    win.columns.setCurrentIndex(win.columns.findData("accent"))
    win.version.setCurrentIndex(win.version.findData("v7"))
    assert _same(win.matrix.result) == _cli_json(home, "--agent-version", "v7")
    win.version.setCurrentIndex(0)
    win.provider.setCurrentIndex(win.provider.findData("gemini"))
    win.model_pick.setCurrentIndex(win.model_pick.findData("gemini-live"))
    assert _same(win.matrix.result) == _cli_json(
        home, "--provider", "gemini", "--model", "gemini-live"
    )
    win.provider.setCurrentIndex(0)
    win.model_pick.setCurrentIndex(0)
    win.since.setText("2026-12-02")
    win.until.setText("2026-12-03")
    win.refresh()
    assert _same(win.matrix.result) == _cli_json(home, "--since", "2026-12-02",
                                                 "--until", "2026-12-03")  # fmt: skip
    assert win.matrix.result["total"]["calls"] == 3


def test_two_agent_versions_side_by_side_with_deltas(qtbot, home):
    _store(home)
    win = CoverageWindow(home)
    qtbot.addWidget(win)
    win.version_a.setCurrentIndex(win.version_a.findData("v6"))
    win.version_b.setCurrentIndex(win.version_b.findData("v7"))
    win.compare_on.setChecked(True)
    assert win.table.model() is win.compare_model
    assert _same(win.compare_model.result) == _cli_json(home, "--compare", "v6", "v7")
    m = win.compare_model
    heads = [m.headerData(i, Qt.Orientation.Horizontal) for i in range(m.columnCount())]
    assert heads[:5] == ["language", "accent", "pass % v6", "pass % v7", "pass % Δ"]
    rows = {(m.index(r, 0).data(DISPLAY), m.index(r, 1).data(DISPLAY)): r
            for r in range(m.rowCount())}  # fmt: skip
    r = rows[("es-MX", "norteño")]
    # v6: 1 of 1 turn judged passed (the tester's override); v7: nothing judged.
    assert [m.index(r, c).data(DISPLAY) for c in (2, 3, 4)] == ["100.0", "—", "—"]
    p50 = heads.index("v2v p50 Δ")
    assert m.index(r, p50).data(DISPLAY) == "-300"  # 700 - 1000 ms
    win.compare_on.setChecked(False)
    assert win.table.model() is win.matrix


def test_a_cell_opens_its_calls_and_a_call_opens_read_only(qtbot, home):
    _store(home)
    win = CoverageWindow(home)
    qtbot.addWidget(win)
    win.show()
    cols = [win.matrix.headerData(i, Qt.Orientation.Horizontal)
            for i in range(win.matrix.columnCount())]  # fmt: skip
    rect = win.table.visualRect(win.matrix.index(0, cols.index("norteño")))
    qtbot.mouseClick(win.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert [r["id"] for r in win.calls.rows] == ["20261202-100000-0002", "20261201-100000-0001"]
    assert win.calls_label.text() == "es-MX × norteño: 2 calls"
    viewer = win.open_call(1)
    assert viewer is not None and viewer.record.session_id == "20261201-100000-0001"
    assert viewer.vm.turns.rowCount() == 2
    win.close()
    qtbot.waitUntil(lambda: not win.viewers, timeout=5000)


def test_bad_filters_are_one_plain_line_and_the_matrix_stays(qtbot, home):
    _store(home)
    win = CoverageWindow(home)
    qtbot.addWidget(win)
    before = _same(win.matrix.result)
    win.since.setText("2026-13-45")
    win.refresh()
    assert "From takes a date" in win.message.text()
    assert len(win.message.text().splitlines()) == 1
    assert win.message.textFormat() == Qt.TextFormat.PlainText
    assert _same(win.matrix.result) == before
    win.since.setText("")
    win.refresh()
    assert win.message.text() == ""


def test_the_file_menu_opens_the_view_of_the_windows_data_folder(qtbot, home):
    _store(home)
    win = build_main_window(FakeController(), devices=lambda: [], settings=False)
    qtbot.addWidget(win)
    win.show()
    assert win.coverage_action.shortcut().toString() == "Ctrl+Shift+C"
    win.coverage_action.trigger()
    (view,) = [w for w in win.windows if isinstance(w, CoverageWindow)]
    assert view.root == home and view.matrix.result["total"]["calls"] == 5
    win.close()
    QApplication.processEvents()
    assert not win.windows or not view.isVisible()


@pytest.mark.serial  # a wall-time bound: run alone
def test_it_opens_10000_sessions_quickly(qtbot, tmp_path):
    generate(tmp_path / "sessions.db", 10_000)
    t0 = time.perf_counter()
    win = CoverageWindow(tmp_path)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    QApplication.processEvents()
    took = time.perf_counter() - t0
    print(f"coverage view over 10,000 sessions: {took:.3f} s")
    assert win.matrix.result["total"]["calls"] == 10_000
    assert win.matrix.rowCount() == 12 and win.matrix.columnCount() == 4
    assert took < OPEN_10K_S
