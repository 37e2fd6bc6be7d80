"""The simulator is named as such (issue 12, item 2): with no key the window picks the
Simulator and says it answers from a script; a URL set in Settings is never dropped for
it; the simulator's caller transcripts are marked as scripted in the window, the history,
``sessions show`` and the report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PySide6.QtCore import Qt

from app.audio.fileport import WavFilePort
from app.bridge.controller import CallController
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from app.store.reader import load_session
from app.store.report import html_report
from tests.conftest import REPO
from ui.app import build_main_window
from ui.history import SessionsModel, SessionViewer
from ui.settings_store import Settings

DISPLAY = Qt.ItemDataRole.DisplayRole


@pytest.fixture
def no_keys(monkeypatch):
    for var in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("app.secrets.keyring.get_password", lambda *_a: None)


def test_no_key_start_shows_the_simulator_and_marks_scripted_words(
    qtbot, tmp_path: Path, no_keys
) -> None:
    scenario = tmp_path / "one.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {"name": "one", "turns": [{"hears": "Hola, me oyes?", "reply": "Yes, I hear you."}]}
        )
    )
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(scenario)), wav)
    home = tmp_path / "home"
    controller = CallController(data_root=home, port_factory=lambda _o: WavFilePort.from_wav(wav))
    win = build_main_window(controller, devices=lambda: [], settings=Settings())
    qtbot.addWidget(win)
    win.show()
    assert win.provider.currentText() == "Simulator"
    assert win.provider_hint.isVisible()
    assert "No API key is set, so the simulator answers from a script" in win.provider_hint.text()
    assert win.call_request().provider == "sim"
    win.scenario.addItem("one", str(scenario))
    win.scenario.setCurrentIndex(win.scenario.findData(str(scenario)))
    win.toggle_call()
    qtbot.waitUntil(lambda: not win.in_call and controller.last_summary is not None, timeout=60_000)
    rows = [win.vm.transcript.index(i).data(DISPLAY) for i in range(win.vm.transcript.rowCount())]
    assert any("Caller: [scripted] Hola, me oyes?" in r for r in rows), rows
    assert win.vm.turns.index(0, 1).data(DISPLAY).startswith("[scripted] ")
    assert "Simulator" in win.session_label.text()

    session = Path(controller.last_summary["session_dir"])
    record = load_session(session)
    viewer = SessionViewer(record)
    qtbot.addWidget(viewer)
    shown = [
        viewer.vm.transcript.index(i).data(DISPLAY) for i in range(viewer.vm.transcript.rowCount())
    ]
    assert any("[scripted] Hola" in r for r in shown), shown
    listing = SessionsModel()
    listing.set_rows([{"id": session.name, "provider": "sim"}])
    assert listing.index(0, 2).data(DISPLAY) == "Simulator (scripted)"
    html = html_report(record)
    assert "[scripted] Hola, me oyes?" in html
    # Round trips to 0.1 ms (a loopback one is under 1 ms), never a raw float.
    assert re.search(r"network round trip</th><td>p50 \d+\.\d ms · p95 \d+\.\d ms", html), html
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "sessions", "show", session.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"VOICEPROBE_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "[scripted] Hola" in out.stdout and " 1  " in out.stdout, out.stdout
    win.close()
    controller.shutdown()


def test_a_settings_url_is_never_silently_dropped(qtbot, no_keys) -> None:
    from tests.conftest_qt import FakeController

    controller = FakeController()
    url = "wss://proxy.example.test/v1/realtime"
    win = build_main_window(controller, devices=lambda: [], settings=Settings(openai_url=url))
    qtbot.addWidget(win)
    assert win.provider.currentData() == "openai"  # not the simulator behind its back
    request = win.call_request()
    assert request.provider == "openai" and request.url == url
    assert "No OpenAI Realtime key is set: set it in File → Settings" in win.provider_hint.text()
    win.set_provider("sim")  # chosen by the user: the hint says the URL is not used
    assert "URL set in Settings is not used by the simulator" in win.provider_hint.text()
    win.close()
