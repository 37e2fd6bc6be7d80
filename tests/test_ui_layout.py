"""A window that fits and tells (issue 12, items 4 and 7): nothing is cut off from
1024×768 up, and every bar, lane, meter and button explains itself; the Call menu shows
its shortcuts. Built from models (the scripted demo call), no core and no devices."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QFontInfo
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QApplication,
    QCheckBox,
    QComboBox,
    QLabel,
    QPushButton,
    QScrollArea,
    QWidget,
)

from tests.conftest_qt import FakeController
from ui.app import build_main_window
from ui.demo import demo_events
from ui.main_window import MainWindow
from ui.views.elided_label import ElidedLabel


def _visible_point(a: float, b: float, above: list[tuple[float, float]]) -> float | None:
    """The middle of the widest part of [a, b] that no interval in ``above`` covers."""
    cuts = sorted({a, b, *(x for lo, hi in above for x in (lo, hi) if a < x < b)})
    free = [(lo, hi) for lo, hi in zip(cuts, cuts[1:], strict=False)
            if not any(c <= lo and hi <= d for c, d in above)]  # fmt: skip
    if not free:
        return None
    lo, hi = max(free, key=lambda p: p[1] - p[0])
    return (lo + hi) / 2


def _window(qtbot, w: int, h: int) -> MainWindow:
    win = build_main_window(FakeController(), devices=lambda: [], settings=False)
    qtbot.addWidget(win)
    for ev in demo_events():
        win.vm.apply(ev)
    win.vm.flush()
    win.resize(w, h)
    win.show()
    qtbot.waitExposed(win)
    for _ in range(5):
        QApplication.processEvents()
    return win


def _in_viewport(w: QWidget) -> bool:
    """Inside a scroll area's scrolled content (allowed to extend past the viewport)."""
    p = w.parentWidget()
    while p is not None:
        if isinstance(p, QAbstractScrollArea) and p.viewport().isAncestorOf(w):
            return True
        p = p.parentWidget()
    return False


def _cut_off(win: QWidget) -> list[str]:
    bad = []
    frame = win.rect()
    for w in win.findChildren(QWidget):
        if not w.isVisibleTo(win) or w.isWindow() or _in_viewport(w):
            continue
        r = QRect(w.mapTo(win, QPoint(0, 0)), w.size())
        name = f"{type(w).__name__}({w.objectName() or getattr(w, 'text', lambda: '')()!r})"
        if not frame.contains(r):
            bad.append(f"{name} at {r.getRect()} outside {frame.getRect()}")
            continue
        parent = w.parentWidget()
        if parent is not None and parent is not win:
            pr = QRect(parent.mapTo(win, QPoint(0, 0)), parent.size())
            if not pr.contains(r):
                bad.append(f"{name} at {r.getRect()} outside its parent {pr.getRect()}")
                continue
        squeezable = isinstance(w, ElidedLabel) or (
            isinstance(w, QLabel) and (w.wordWrap() or not w.text())  # wraps, or a swatch
        )
        if isinstance(w, (QLabel, QAbstractButton, QComboBox)) and not squeezable:
            need = w.minimumSizeHint()
            if w.width() < need.width() or w.height() < need.height():
                bad.append(f"{name} {w.width()}×{w.height()} smaller than {need.toTuple()}")
    return bad


def test_nothing_is_cut_off_at_1024x768(qtbot) -> None:
    win = _window(qtbot, 1024, 768)
    assert (win.width(), win.height()) == (1024, 768)
    assert _cut_off(win) == []
    # The side panel does not scroll; the tool table shows its Result column.
    for area in win.side.findChildren(QScrollArea):
        if area.isVisibleTo(win):
            assert not area.verticalScrollBar().isVisible(), "the side panel scrolls"
    win.tabs.setCurrentWidget(win.tools_view)
    QApplication.processEvents()
    table = win.tools_view
    last = table.model().columnCount() - 1
    assert table.columnViewportPosition(last) + 40 <= table.viewport().width()
    # Every legend entry (the reconnect span's too) is on screen.
    win.tabs.setCurrentWidget(win.waterfall)
    QApplication.processEvents()
    assert "reconnect" in win.waterfall.legend_items
    for entry in win.waterfall.legend_items.values():
        r = QRect(entry.mapTo(win, QPoint(0, 0)), entry.size())
        assert entry.isVisibleTo(win) and win.rect().contains(r)


def test_a_long_status_does_not_widen_the_side_panel(qtbot) -> None:
    win = _window(qtbot, 1024, 768)
    before = win.side.width()
    win._connection_changed("reconnecting", "connection lost (" + "x" * 300 + "), attempt 3 of 6")
    QApplication.processEvents()
    assert win.side.width() == before
    assert "attempt 3 of 6" in win.state_label.toolTip()
    assert _cut_off(win) == []


def test_fits_at_1280x720_and_4k(qtbot) -> None:
    for size in ((1280, 720), (3840, 2160)):
        win = _window(qtbot, *size)
        assert _cut_off(win) == [], size
        win.close()


def test_presentation_mode_fits_at_1024x768(qtbot) -> None:
    win = _window(qtbot, 1024, 768)
    before = QFontInfo(win.call_button.font()).pointSizeF()
    win.presentation_action.trigger()
    QApplication.processEvents()
    assert win.presenting and win.presentation.isVisible()
    assert win.size().toTuple() == (1024, 768)  # the window did not grow
    assert win.presentation.figure.text() == "905 ms"  # the last turn's voice→voice
    assert "p50" in win.presentation.stats.text() and "p95" in win.presentation.stats.text()
    assert QFontInfo(win.call_button.font()).pointSizeF() > before * 1.3  # larger type
    assert QFontInfo(win.presentation.figure.font()).pointSizeF() > 40
    assert _cut_off(win) == []


def test_every_bar_lane_meter_and_button_has_a_tooltip(qtbot) -> None:
    win = _window(qtbot, 1280, 800)
    wf = win.waterfall
    rows = wf.row_layouts()
    assert rows
    for lay in rows:
        turn = win.vm.turns.turn(lay.row)
        segs = list(lay.segments.items())
        for i, (name, (x0, w)) in enumerate(segs):
            from app.metrics.presentation import span_style
            from ui.views.waterfall import STRIPS

            lane = span_style(name).lane
            centre, _h = STRIPS[lane]
            # Hover where this bar shows: not under a bar drawn after it in its strip.
            above = [(a, a + b) for n, (a, b) in segs[i + 1 :] if span_style(n).lane == lane]
            x = _visible_point(x0, x0 + max(w, 0.5), above)
            assert x is not None, (name, "hidden under", above)
            text = wf.tooltip_at(x, lay.row + centre)
            span = turn.spans[name]
            events = (span.start_event, span.end_event)
            events = events if all(events) else span_style(name).events
            assert f"from {events[0]} to {events[1]}" in text, (name, text)
            assert "ms" in text
    for lane in ("local", "server", "agent", "level"):
        assert win.vad_view.lane_tooltip(lane), lane
    assert win.meters.caller.toolTip() and win.meters.agent.toolTip()
    buttons = [b for b in win.findChildren(QAbstractButton) if b.isVisibleTo(win)]
    buttons = [b for b in buttons if isinstance(b, (QPushButton, QCheckBox))]
    assert buttons
    assert [b.text() for b in buttons if not b.toolTip()] == []


def test_shortcuts_are_shown_in_the_menus(qtbot) -> None:
    win = _window(qtbot, 1024, 768)
    menus = {m.title().replace("&", ""): m for m in (a.menu() for a in win.menuBar().actions())}
    shown = {a.text().replace("&", "").split("\t")[0]: a for a in menus["Call"].actions()}
    assert shown["Call"].shortcut().toString() == "Ctrl+Return"
    assert shown["Hang up"].shortcut().toString() == "Ctrl+Shift+Return"
    assert shown["Mute mic"].shortcut().toString() == "Ctrl+M"
    assert shown["Push to talk"].shortcut().toString() == "Ctrl+T"
    assert shown["Hold to talk"].text().endswith("\tF9 (hold)")
    assert menus["View"].actions()[0].shortcut().toString() == "F11"


HIDPI_SCRIPT = """
import sys
from PySide6.QtWidgets import QApplication
from ui.app import build_main_window, ensure_app
from ui.demo import demo_events
from tests.conftest_qt import FakeController
from tests.test_ui_layout import _cut_off
app = ensure_app()
win = build_main_window(FakeController(), devices=lambda: [], settings=False)
for ev in demo_events():
    win.vm.apply(ev)
win.vm.flush()
win.resize(1024, 768)
win.show()
for _ in range(5):
    app.processEvents()
assert win.devicePixelRatioF() == 2.0, win.devicePixelRatioF()
assert win.size().toTuple() == (1024, 768), win.size()
bad = _cut_off(win)
print("\\n".join(bad))
sys.exit(1 if bad else 0)
"""


def test_fits_at_1024x768_on_a_high_dpi_screen(tmp_path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = dict(os.environ, QT_SCALE_FACTOR="2", QT_QPA_PLATFORM="offscreen")
    env["VOICEPROBE_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, "-c", HIDPI_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
