"""File → Quit quits: it closes the history and session windows and ends the process's
event loop, and the composition root stops the core (issue 12, item 8)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication

from app.events import TurnCompleted
from app.metrics.records import TurnRecord
from app.store.writer import SessionWriter
from ui.history import HistoryWindow
from ui.main_window import MainWindow


def _store_one_session(home: Path) -> None:
    turn = {"index": 0, "user_transcript": "Hi", "agent_transcript": "Hello", "spans": {}}
    w = SessionWriter(home, "20261203-120000-abcd", {"provider": "sim", "model": "m"})
    w.append_event(TurnCompleted(t_ns=1, turn=TurnRecord.from_dict(turn)))
    w.write_turns([turn])
    w.finish("complete", {})


def test_quit_closes_every_window_and_stops_every_thread(qapp, tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("VOICEPROBE_HOME", str(home))
    _store_one_session(home)
    before = set(threading.enumerate())
    seen: dict[str, object] = {}

    def drive() -> None:
        win = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
        win.history_action.trigger()
        history = next(w for w in QApplication.topLevelWidgets() if isinstance(w, HistoryWindow))
        viewer = history.open_row(0)
        seen["opened"] = [w.windowTitle() for w in (win, history, viewer) if w.isVisible()]
        quit_action = next(a for a in win.findChildren(QAction) if a.text() == "&Quit")
        quit_action.trigger()

    forced: list[bool] = []
    QTimer.singleShot(300, drive)
    watchdog = QTimer()
    watchdog.setSingleShot(True)
    watchdog.timeout.connect(lambda: (forced.append(True), QApplication.quit()))
    watchdog.start(20_000)
    from ui.entry import main

    code = main(["gui"])
    watchdog.stop()
    assert len(seen["opened"]) == 3, seen  # the main window, the history, a session
    assert not forced, "Quit did not end the event loop"
    assert code == 0
    left = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
    assert left == [], [w.windowTitle() for w in left]
    threads = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert threads == [], threads
    # No stale quit request is left behind: the next event loop runs normally.
    loop = QEventLoop()
    QTimer.singleShot(100, loop.quit)
    started = time.monotonic()
    loop.exec()
    assert time.monotonic() - started >= 0.09
