"""The main window driving a real call: core + simulator, a WAV file as the caller."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.audio.fileport import WavFilePort
from app.bridge.controller import CallController
from app.bridge.providers import DEFAULT_SCENARIO
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from ui.app import build_main_window

DISPLAY = Qt.ItemDataRole.DisplayRole


@pytest.mark.slow
def test_main_window_runs_a_full_call_against_the_simulator(qtbot, tmp_path: Path) -> None:
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(DEFAULT_SCENARIO)), wav, barge_in={2: 1500})
    controller = CallController(
        data_root=tmp_path / "data", port_factory=lambda _o: WavFilePort.from_wav(wav)
    )
    win = build_main_window(controller, devices=lambda: [])
    qtbot.addWidget(win)
    win.extra_options = {"provider": "sim", "source": "test"}
    win.show()
    win.verdicts.tags.fields["language"].setText("en-GB")  # the tester's tags go with it
    win.verdicts.tags.other.setText("noise=cafe")
    qtbot.mouseClick(win.call_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: controller.last_summary is not None, timeout=120_000)
    qtbot.waitUntil(lambda: not win.in_call, timeout=10_000)
    summary = controller.last_summary
    assert summary is not None and summary["ok"]
    session = Path(summary["session_dir"])
    meta = json.loads((session / "session.json").read_text())
    assert {"language=en-GB", "noise=cafe"} <= set(meta["tags"])
    events = (session / "events.jsonl").read_text().splitlines()
    # Every event the core emitted reached the window (the store holds the same stream).
    qtbot.waitUntil(lambda: win.vm.events.event_count == len(events), timeout=10_000)
    assert win.events_label.text() == f"{len(events)} events"
    rows = [win.vm.transcript.index(i).data(DISPLAY) for i in range(win.vm.transcript.rowCount())]
    assert any("What's the weather in Paris?" in r for r in rows)
    assert any("sunny" in r for r in rows)
    assert any("interrupted" in r for r in rows)
    assert win.tools_view.model().rowCount() == 1
    tools = win.tools_view.model()
    cells = [str(tools.index(0, c).data(DISPLAY)) for c in range(tools.columnCount())]
    assert "get_weather" in cells and "ok" in cells
    # One waterfall row per turn with the core's figures.
    turns = json.loads((session / "turns.json").read_text())
    assert len(win.waterfall.row_layouts()) == len(turns) == 4
    model = win.vm.turns
    for row, turn in enumerate(turns):
        shown = model.turn(row)
        for name, span in turn["spans"].items():
            assert shown.span_ms(name) == pytest.approx(span["ms"]), (row, name)
    assert "4 turns" in win.latency_label.text()
    win.close()
    controller.shutdown()
