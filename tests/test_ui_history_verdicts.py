"""Verdicts and tags on a past call, from History: a session stored by the real writer
under a fresh ``VOICEPROBE_HOME``, opened in :class:`ui.history.HistoryWindow`, judged and
re-tagged with the main window's panel; the CLI and the coverage matrix read the result."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.store.index import SessionIndex
from tests.conftest_qt import FakeController  # noqa: F401  (sets QT_QPA_PLATFORM first)
from tests.coverage_helpers import cli, make_session, suite_case, write_suite_run
from ui.history import HistoryWindow, SessionViewer
from ui.views.verdicts import FAIL_KEY, PASS_KEY

SID = "20261201-100000-0a0a"
DISPLAY = Qt.ItemDataRole.DisplayRole


def _open(qtbot: Any, home: Path) -> tuple[HistoryWindow, SessionViewer]:
    history = HistoryWindow(SessionIndex(home / "sessions.db"), home / "sessions")
    qtbot.addWidget(history)
    ids = [history.model.row(r)["id"] for r in range(history.model.rowCount())]
    viewer = history.open_row(ids.index(SID))
    assert viewer is not None
    qtbot.addWidget(viewer)
    return history, viewer


def _snapshot(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def _cell(home: Path, language: str) -> dict[str, Any]:
    cov = cli(home, "coverage", "--json")
    assert cov.returncode == 0, cov.stderr
    (cell,) = [c for c in json.loads(cov.stdout)["cells"] if c["key"]["language"] == language]
    return cell


def test_a_past_call_is_judged_and_retagged_from_history(qtbot, home: Path) -> None:
    folder = make_session(
        home, SID, [("namaste", "namaste", 700.0), ("mausam", "dhoop", 800.0),
                    ("dhanyavaad", "swagat", 900.0)],
        tags=["language=hi-IN", "accent=tamil", "noise=cafe"],
    )  # fmt: skip
    # A suite passed turn 2: the manual verdict given below overrides it, both are kept.
    checks = [{"turn": 2, "name": "heard", "passed": True, "message": ""}]
    write_suite_run(home, "run1", [suite_case(SID, "hi-IN", [], checks)])
    assert _cell(home, "hi-IN")["passed"] == 1  # the suite's verdict counts for now

    _, viewer = _open(qtbot, home)
    panel = viewer.verdicts
    m = panel.model
    assert m.rowCount() == 3
    assert panel.tags.fields["language"].text() == "hi-IN"
    assert panel.tags.fields["accent"].text() == "tamil"
    assert panel.tags.other.text() == "noise=cafe"
    assert m.index(1, 3).data(DISPLAY) == "✓ pass"  # the suite's, shown before any manual
    assert panel.pass_action in viewer.actions() and panel.fail_action in viewer.actions()

    # Turn 2 fails: misheard, with a note that looks like markup (stays plain text).
    panel.table.selectRow(1)
    panel.reason.setCurrentIndex(panel.reason.findData("misheard"))
    panel.note.setText("<b>x</b>")
    with qtbot.waitSignal(panel.verdictStored, timeout=5000):
        panel.fail_button.click()
    assert m.index(1, 2).data(DISPLAY) == "✗ fail"
    assert m.index(1, 3).data(DISPLAY) == "(✓ pass)"  # overridden, still shown
    assert m.index(1, 4).data(DISPLAY) == "misheard"
    assert m.index(1, 5).data(DISPLAY) == "<b>x</b>"
    assert m.counting(2)["source"] == "manual"
    assert panel.message.textFormat() == Qt.TextFormat.PlainText

    # The shortcut marks the selected turn (not the last one) in a past call.
    panel.table.selectRow(0)
    panel.reason.setCurrentIndex(0)
    panel.note.clear()
    viewer.activateWindow()
    qtbot.waitUntil(viewer.isActiveWindow, timeout=5000)
    viewer.transcript_view.setFocus()
    qtbot.waitUntil(viewer.transcript_view.hasFocus, timeout=5000)
    assert PASS_KEY == "Ctrl+Shift+P" and FAIL_KEY == "Ctrl+Shift+F"
    ctrl_shift = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    with qtbot.waitSignal(panel.verdictStored, timeout=5000):
        qtbot.keyClick(viewer.transcript_view, Qt.Key.Key_P, ctrl_shift)
    assert m.index(0, 2).data(DISPLAY) == "✓ pass" and m.manual(3) is None

    # A tag changed: saved to the session a moment after the typing stops.
    with qtbot.waitSignal(panel.tagsStored, timeout=5000) as stored:
        panel.tags.fields["language"].setText("ta-IN")
    assert stored.args == [SID, ["language=ta-IN", "accent=tamil", "noise=cafe"]]
    assert "saved to session" in panel.message.text()
    # An edit still waiting when the viewer closes is saved then.
    panel.tags.fields["tester"].setText("priya")
    viewer.close()
    QApplication.processEvents()

    stored_verdicts = json.loads((folder / "verdicts.json").read_text())
    assert [(v["turn"], v["verdict"], v["reason"], v["note"]) for v in stored_verdicts] == [
        (1, "pass", None, ""), (2, "fail", "misheard", "<b>x</b>")]  # fmt: skip
    rows = {(v["turn"], v["source"]): v["verdict"]
            for v in SessionIndex(home / "sessions.db").verdicts(SID)}  # fmt: skip
    assert rows == {(1, "manual"): "pass", (2, "auto"): "pass", (2, "manual"): "fail"}
    shown = cli(home, "sessions", "show", SID, "--json")
    assert shown.returncode == 0, shown.stderr
    tags = json.loads(shown.stdout)["meta"]["tags"]
    assert sorted(tags) == ["accent=tamil", "language=ta-IN", "noise=cafe", "tester=priya"]
    # The coverage matrix counts the manual verdicts under the new tag.
    cell = _cell(home, "ta-IN")
    assert (cell["calls"], cell["judged"], cell["passed"]) == (1, 2, 1)
    assert cell["key"]["accent"] == "tamil"


def test_bad_input_in_a_past_call_is_one_plain_line_and_changes_nothing(qtbot, home: Path) -> None:
    make_session(home, SID, [("hi", "hello", 700.0), ("bye", "ciao", 800.0)],
                 tags=["accent=scouse", "language=en-GB"])  # fmt: skip
    before = _snapshot(home)
    _, viewer = _open(qtbot, home)
    panel = viewer.verdicts
    QApplication.processEvents()
    assert _snapshot(home) == before  # opening (tags shown in another order) writes nothing

    # No turn selected: a past call's turn is chosen, never guessed.
    assert not panel.table.selectionModel().selectedRows()
    panel.fail_button.click()
    assert "Select" in panel.message.text() and panel.model.manual(2) is None
    for args, says in (
        ((3, "fail", None, None), "has no turn 3"),
        ((1, "fail", "bored", None), "unknown reason"),
        ((1, "pass", None, "x" * 5000), "at most"),
    ):
        assert not panel.mark(*args)
        text = panel.message.text()
        assert says in text and len(text.splitlines()) == 1, text

    # An empty tag key: said in the panel, never saved (not even when the viewer closes).
    panel.tags.other.setText("=<i>x</i>")
    text = panel.message.text()
    assert "empty key" in text and len(text.splitlines()) == 1, text
    assert panel.message.textFormat() == Qt.TextFormat.PlainText
    assert not panel.store_tags()
    assert "Tags not saved" in panel.message.text()
    viewer.close()
    QApplication.processEvents()
    assert _snapshot(home) == before


def test_a_tag_edit_waiting_when_the_call_stops_is_saved_to_it(qtbot, home: Path) -> None:
    from ui.models.turns import TurnsModel
    from ui.views.verdicts import VerdictPanel

    folder = make_session(home, SID, [("hi", "hello", 700.0)], tags=["language=en-GB"])
    panel = VerdictPanel(TurnsModel(), lambda: home)
    qtbot.addWidget(panel)
    panel.tags.fields["language"].setText("en-GB")
    panel.call_tags()  # what the call started with
    panel.set_session(SID, folder)
    panel.set_live(True)
    panel.tags.fields["accent"].setText("geordie")  # saved a moment later, unless ...
    with qtbot.waitSignal(panel.tagsStored, timeout=5000):
        panel.set_live(False)  # ... the call stops first: saved then
    assert json.loads((folder / "session.json").read_text())["tags"] == [
        "language=en-GB", "accent=geordie"]  # fmt: skip
    assert "this call" in panel.message.text()
