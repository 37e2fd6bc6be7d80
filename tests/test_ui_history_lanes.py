"""The history viewer shows a stored call whole (issue 12, item 6): the speech lanes span
the call's length in call time, a playhead follows the recording while it plays through a
real sound device (a PulseAudio null sink), and the "playing" label follows the player."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication

from app.audio.wavio import write_wav
from app.events import (
    CallEnded,
    CallStarted,
    LocalSpeechStarted,
    LocalSpeechStopped,
    PlaybackStarted,
    PlaybackStopped,
)
from app.store.reader import load_session
from app.store.writer import SessionWriter
from ui.history import SessionViewer

S = 1_000_000_000
T0 = 5_000 * S


def _session(home: Path, audio_s: float) -> Path:
    w = SessionWriter(home, "20261203-130000-lane", {"provider": "sim", "model": "m"})
    w.append_event(CallStarted(t_ns=T0, session_id=w.session_id, provider="sim", model="m"))
    for k, start in enumerate((2, 14, 40)):  # caller speech at 2 s, 14 s and 40 s
        w.append_event(LocalSpeechStarted(t_ns=T0 + start * S, sample=0))
        w.append_event(LocalSpeechStopped(t_ns=T0 + (start + 2) * S, sample=0))
        w.append_event(PlaybackStarted(t_ns=T0 + (start + 3) * S, item_id=f"a{k}"))
        w.append_event(
            PlaybackStopped(
                t_ns=T0 + (start + 5) * S, item_id=f"a{k}", played_samples=0, sample_rate=16000
            )
        )
    w.append_event(CallEnded(t_ns=T0 + 46 * S, session_id=w.session_id, reason="completed"))
    rate = 16000
    t = np.arange(int(audio_s * rate)) / rate
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    write_wav(w.audio_path, np.stack([tone, tone], axis=1), rate)
    w.finish("complete", {})
    return w.dir


def test_stored_call_lanes_span_the_whole_call(qtbot, tmp_path: Path) -> None:
    viewer = SessionViewer(load_session(_session(tmp_path / "home", 1.0)))
    qtbot.addWidget(viewer)
    lanes = viewer.vad_view
    assert not lanes.live
    x0, x1 = lanes.x_range()
    assert x0 <= 0.0 and x1 >= 46.0  # the whole call, in seconds into the call
    local = lanes.drawn("local")
    assert [round(a) for a, _ in local] == [2, 14, 40]  # none cut by a 30 s window
    assert "into the call" in lanes.axis_label()


def test_playhead_and_playing_label_follow_the_player(qtbot, tmp_path: Path, pulse_server) -> None:
    viewer = SessionViewer(load_session(_session(tmp_path / "home", 2.0)))
    qtbot.addWidget(viewer)
    viewer.show()
    viewer.play_button.click()
    assert viewer.audio_note.text().startswith("playing")
    qtbot.waitUntil(lambda: (viewer.vad_view.playhead() or 0.0) > 0.3, timeout=10_000)
    assert viewer.stop_button.isEnabled()
    # The recording ends on its own: the label and the buttons follow.
    qtbot.waitUntil(lambda: not viewer.player.playing, timeout=15_000)
    qtbot.waitUntil(lambda: not viewer.audio_note.text().startswith("playing"), timeout=5_000)
    assert "played" in viewer.audio_note.text()
    assert not viewer.stop_button.isEnabled() and viewer.play_button.isEnabled()
    assert viewer.vad_view.playhead() is None
    # Stopped by hand mid-way: the label says where.
    viewer.play_button.click()
    qtbot.waitUntil(lambda: (viewer.vad_view.playhead() or 0.0) > 0.2, timeout=10_000)
    viewer.stop_button.click()
    QApplication.processEvents()
    assert viewer.audio_note.text().startswith("stopped at")
    viewer.close()
