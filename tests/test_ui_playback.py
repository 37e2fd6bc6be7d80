"""History you can work in: a stored call's recording played from a clicked turn through a
real sound device (the PulseAudio null sink of ``tests/pulse.py`` as the default output),
with the playhead taken from the output stream's clock."""

from __future__ import annotations

import time
from pathlib import Path

from app.store.reader import load_session
from tests.conftest import TIME_SCALE
from tests.coverage_helpers import make_session
from ui.history import SessionViewer
from ui.views.playback import turn_start_s

SID = "20261203-200000-play"


def _viewer(qtbot, tmp_path: Path) -> SessionViewer:
    folder = make_session(
        tmp_path / "home",
        SID,
        [("one", "first answer", 700.0), ("two", "second", 800.0), ("three", "third", 900.0)],
    )
    viewer = SessionViewer(load_session(folder))
    qtbot.addWidget(viewer)
    viewer.show()
    return viewer


def test_clicking_turn_2_plays_from_its_start_and_the_playhead_follows(
    qtbot, tmp_path: Path, pulse_server
) -> None:
    viewer = _viewer(qtbot, tmp_path)
    t0 = viewer.record.meta["audio_t0_ns"]
    start = turn_start_s(viewer.vm.turns.turn(1), t0)
    assert start is not None and abs(start - 4.0) < 1e-9  # turn 2's caller speech, 4 s in

    viewer.waterfall.select_turn(1)  # what a click on turn 2's row does
    assert viewer.player.playing
    assert abs(viewer.player.position_s - start) <= 0.020  # seeked to its first sample
    assert viewer.audio_note.text().startswith("playing")

    # The playhead advances with what the device plays, and is never ahead of it.
    qtbot.waitUntil(lambda: viewer.player.position_s > start + 0.3, timeout=10_000)
    p1, w1 = viewer.player.position_s, time.monotonic()
    qtbot.waitUntil(lambda: viewer.player.position_s > p1 + 0.5, timeout=10_000)
    p2, w2 = viewer.player.position_s, time.monotonic()
    assert p2 <= viewer.player.handed_s
    assert abs((p2 - p1) - (w2 - w1)) < 0.15 * TIME_SCALE  # the stream clock, not a guess
    qtbot.waitUntil(lambda: (viewer.vad_view.playhead() or 0.0) > start + 0.8, timeout=10_000)
    # ... and through the waterfall: the line sits on turn 2's row.
    qtbot.waitUntil(lambda: viewer.heard_turn == 1, timeout=5_000)
    assert viewer.turn_head.isVisible() and viewer.turn_head.value() == 1
    viewer.stop_button.click()
    assert not viewer.player.playing


def test_a_turn_without_a_recording_does_not_play(qtbot, tmp_path: Path) -> None:
    folder = make_session(tmp_path / "home", SID, [("one", "a", 700.0)], audio=False)
    viewer = SessionViewer(load_session(folder))
    qtbot.addWidget(viewer)
    assert viewer.play_from_turn(0) is False and not viewer.player.playing
    assert viewer.play_from_turn(5) is False


def test_compare_two_calls_side_by_side_shows_the_deltas(qtbot, tmp_path: Path) -> None:
    from app.store.index import SessionIndex
    from app.store.writer import INDEX_FILE
    from ui.history import HistoryWindow

    home = tmp_path / "home"
    make_session(home, "20261203-100000-aaaa", [("one", "a", 700.0), ("two", "b", 900.0)],
                 started_at="2026-12-03T10:00:00+00:00")  # fmt: skip
    make_session(home, "20261203-110000-bbbb", [("one", "a", 650.0), ("two", "b", 1200.0)],
                 started_at="2026-12-03T11:00:00+00:00")  # fmt: skip
    history = HistoryWindow(SessionIndex(home / INDEX_FILE), home / "sessions")
    qtbot.addWidget(history)
    ids = [history.model.row(r)["id"] for r in range(history.model.rowCount())]
    a, b = ids.index("20261203-100000-aaaa"), ids.index("20261203-110000-bbbb")
    history.compare_button.click()  # nothing selected: one line, no window
    assert "two" in history.error.text()
    window = history.compare_rows(a, b)
    assert window is not None
    qtbot.addWidget(window)
    cells = {
        window.model.index(r, 0).data(): [window.model.index(r, c).data() for c in (1, 2, 3)]
        for r in range(window.model.rowCount())
    }
    assert cells["turns"] == ["2", "2", "+0"]
    assert cells["voice-to-voice turn 1 (ms)"] == ["700", "650", "-50"]
    assert cells["voice-to-voice turn 2 (ms)"] == ["900", "1200", "+300"]
    assert cells["voice-to-voice p50 (ms)"] == ["800", "925", "+125"]
    assert [vm.turns.rowCount() for vm in window.vms] == [2, 2]  # both waterfalls filled
