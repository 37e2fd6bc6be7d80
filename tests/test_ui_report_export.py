"""Reports from the desktop: File → Export call/coverage report, the coverage window's and a
past call's Export button write the same self-contained HTML as ``voiceprobe report``; a
bad target is one plain-text line and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app import events as E
from app.metrics.records import TurnRecord
from app.store.reader import load_session
from tests.conftest_qt import main_window_with
from tests.coverage_helpers import make_session, turn_record
from ui.history import SessionViewer
from ui.views.coverage import CoverageWindow

SID = "20261201-100000-0b0b"
HOSTILE = "<script>alert(1)</script>"


def _events(folder: Path) -> list[Any]:
    out: list[Any] = [E.CallStarted(t_ns=1, session_id=folder.name, provider="openai",
                                    model="gpt-realtime", session_dir=str(folder))]  # fmt: skip
    rec = TurnRecord.from_dict(turn_record(0, HOSTILE, "hola", 800.0))
    return [*out, E.TurnCompleted(t_ns=2, turn=rec)]


def test_file_menu_exports_the_last_call_and_the_coverage(qtbot, home, tmp_path):
    folder = make_session(home, SID, [(HOSTILE, "hola", 800.0)], tags=["language=es-MX"])
    win, ctl = main_window_with(qtbot, _events(folder))
    out = tmp_path / "reports"
    out.mkdir()
    ok, message = win.export_call_report(out / "call.html")
    assert not ok and "no call yet" in message and not any(out.iterdir())
    assert win.banner.isVisible() and win.banner.textFormat().name == "PlainText"

    win.toggle_call()
    ctl.thread.join(timeout=5)
    qtbot.waitUntil(lambda: win.vm.session_dir == str(folder), timeout=5000)
    assert win.call_report_action in win.menuBar().actions()[0].menu().actions()
    ok, message = win.export_call_report(out / "call.html")
    assert ok and message == f"Report written to {out / 'call.html'}"
    page = (out / "call.html").read_text(encoding="utf-8")
    assert SID in page and HOSTILE not in page and "&lt;script&gt;" in page
    assert win.notice_label.text() == message

    ok, message = win.export_coverage_report(out / "coverage.html")
    assert ok, message
    page = (out / "coverage.html").read_text(encoding="utf-8")
    assert "<h1>Coverage</h1>" in page and "es-MX" in page

    before = sorted(p.name for p in out.iterdir())
    ok, message = win.export_call_report(tmp_path / "missing" / "call.html")
    assert not ok and message.startswith("Report not written:") and "does not exist" in message
    assert win.banner.text() == message
    ok, message = win.export_call_report(folder / "inside.html")  # the session's own folder
    assert not ok and "data folder" in message
    assert sorted(p.name for p in out.iterdir()) == before
    assert not (folder / "inside.html").exists()


def test_history_viewer_and_coverage_window_export_what_they_show(qtbot, home, tmp_path):
    folder = make_session(home, SID, [("hola", "hola", 800.0)], tags=["language=es-MX"])
    make_session(home, "20261201-110000-0c0c", [("hi", "hi", 900.0)],
                 tags=["language=en-GB", "agent_version=v7"])  # fmt: skip
    viewer = SessionViewer(load_session(folder))
    qtbot.addWidget(viewer)
    ok, message = viewer.export_report(tmp_path / "call.html")
    assert ok and viewer.report_note.text() == message
    assert SID in (tmp_path / "call.html").read_text(encoding="utf-8")
    ok, message = viewer.export_report(tmp_path / "no" / "call.html")
    assert not ok and viewer.report_note.text() == message

    window = CoverageWindow(home)
    qtbot.addWidget(window)
    window.version.setCurrentIndex(window.version.findData("v7"))
    ok, message = window.export_report(tmp_path / "coverage.html")
    assert ok, message
    page = (tmp_path / "coverage.html").read_text(encoding="utf-8")
    assert "agent_version v7" in page and "en-GB" in page and "es-MX" not in page
    window.since.setText("not a day")
    ok, message = window.export_report(tmp_path / "bad.html")
    assert not ok and message.startswith("Report not written:")
    assert window.message.text() == message and not (tmp_path / "bad.html").exists()
