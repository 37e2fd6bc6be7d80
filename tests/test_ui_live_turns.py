"""Live means live: a turn shows once its agent audio has played, not at hang-up
(issue 12, item 6), in a real call against the simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from app.audio.fileport import WavFilePort
from app.bridge.controller import CallController
from app.sim.caller import caller_track
from app.sim.scenario import load_scenario
from ui.app import build_main_window
from ui.settings_store import Settings


def test_last_turn_appears_before_hang_up(qtbot, tmp_path: Path) -> None:
    scenario = tmp_path / "two.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "name": "two",
                "turns": [
                    {"hears": "Hello there.", "reply": "Hello, how can I help?"},
                    {"hears": "That is all.", "reply": "Goodbye then."},
                ],
            }
        )
    )
    pcm, _ = caller_track(load_scenario(str(scenario)), 16000)
    # The caller stays on the line, silent, long after the last reply.
    pcm = np.concatenate((pcm, np.zeros(16000 * 30, dtype=np.int16)))
    controller = CallController(
        data_root=tmp_path / "home", port_factory=lambda _o: WavFilePort(pcm)
    )
    win = build_main_window(controller, devices=lambda: [], settings=Settings())
    qtbot.addWidget(win)
    win.extra_options.update({"provider": "sim", "scenario": str(scenario)})
    win.show()
    win.toggle_call()
    qtbot.waitUntil(lambda: win.vm.turns.rowCount() == 2, timeout=60_000)
    assert win.in_call and controller.in_call  # shown while the call goes on
    last = win.vm.turns.turn(1)
    assert last.agent_transcript == "Goodbye then."
    assert "agent_speech" in last.spans and "voice_to_voice" in last.spans
    assert win.latency_label.text().startswith("2 turns")
    win.toggle_call()  # hang up
    qtbot.waitUntil(lambda: not win.in_call, timeout=30_000)
    assert win.vm.turns.rowCount() == 2
    win.close()
    controller.shutdown()
