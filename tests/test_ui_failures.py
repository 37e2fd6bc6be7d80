"""Every failure says why, everywhere: the banner, the transcript, the stored session,
``voiceprobe sessions show`` and the HTML report (issue 12, item 1).

The 401 case is a real call: the core dials a loopback WebSocket server that refuses the
handshake with HTTP 401 and a reason in its body, as a provider does for a wrong key.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from websockets.asyncio.server import serve

from app.audio.deviceport import DevicePort
from app.audio.fileport import WavFilePort
from app.bridge.controller import CallController
from app.store.reader import load_session
from app.store.report import html_report
from tests.conftest import REPO
from ui.app import build_main_window
from ui.history import SessionViewer
from ui.settings_store import Settings

DISPLAY = Qt.ItemDataRole.DisplayRole
REASON = "invalid_api_key: Incorrect API key provided"
KEY = "sk-test-not-a-real-key-0123456789"


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """A loopback WebSocket server that answers every handshake with HTTP 401."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    url: list[str] = []
    stop: list[asyncio.Event] = []

    def refuse(connection, request):  # websockets' process_request hook
        return connection.respond(HTTPStatus.UNAUTHORIZED, REASON + "\n")

    async def main() -> None:
        stop.append(asyncio.Event())
        async with serve(lambda ws: ws.close(), "127.0.0.1", 0, process_request=refuse) as srv:
            port = srv.sockets[0].getsockname()[1]
            url.append(f"ws://127.0.0.1:{port}/v1/realtime")
            ready.set()
            await stop[0].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="refuser")
    thread.start()
    assert ready.wait(10)
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        loop.close()


def _rows(model) -> list[str]:
    return [model.index(i).data(DISPLAY) for i in range(model.rowCount())]


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"VOICEPROBE_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )


def test_http_401_shows_the_reason_and_the_fix_everywhere(
    qtbot,
    tmp_path: Path,
    monkeypatch,
    refusing_server: str,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    home = tmp_path / "home"
    silence = np.zeros(16000, dtype=np.int16)
    controller = CallController(data_root=home, port_factory=lambda _o: WavFilePort(silence))
    win = build_main_window(controller, devices=lambda: [], settings=Settings())
    qtbot.addWidget(win)
    win.confirm_key_host = lambda host: True  # the user trusts their own loopback server
    win.extra_options.update({"provider": "openai", "url": refusing_server})
    win.show()
    win.toggle_call()
    qtbot.waitUntil(lambda: not win.in_call and controller.last_summary is not None, timeout=30_000)
    banner = win.banner.text()
    assert win.banner.isVisible()
    assert "HTTP 401" in banner and REASON in banner, banner
    assert "What to do:" in banner and "check it in File → Settings" in banner, banner
    assert "Failed" in win.state_label.text() and "auth_failed" in win.state_label.text()
    rows = _rows(win.vm.transcript)
    assert any("call failed (auth_failed)" in r and REASON in r and "fix:" in r for r in rows)
    assert KEY not in banner and all(KEY not in r for r in rows)

    # Stored with the session: the event, and the error's message in session.json.
    session = Path(win.vm.session_dir)
    meta = json.loads((session / "session.json").read_text())
    errors = meta["summary"]["errors"]
    assert errors[0]["code"] == "auth_failed" and REASON in errors[0]["message"]
    assert errors[0]["fix"]
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    failed = [e for e in events if e["kind"] == "CallFailed"]
    assert len(failed) == 1 and failed[0]["code"] == "auth_failed"

    shown = _cli(home, "sessions", "show", session.name)
    assert shown.returncode == 0, shown.stderr
    assert "failed: auth_failed:" in shown.stdout and REASON in shown.stdout, shown.stdout
    assert "what to do: the server refused the key" in shown.stdout, shown.stdout
    assert KEY not in shown.stdout

    page = html_report(load_session(session))
    assert "Call failed" in page and REASON in page and "What to do:" in page

    # The history viewer replays the stored event into the same transcript.
    viewer = SessionViewer(load_session(session))
    qtbot.addWidget(viewer)
    assert any("call failed (auth_failed)" in r for r in _rows(viewer.vm.transcript))
    win.close()
    controller.shutdown()


def test_missing_key_asks_for_the_key(qtbot, tmp_path: Path, monkeypatch) -> None:
    for var in ("OPENAI_API_KEY",):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("app.secrets.keyring.get_password", lambda *_a: None)
    controller = CallController(data_root=tmp_path / "home")
    win = build_main_window(controller, devices=lambda: [], settings=Settings())
    qtbot.addWidget(win)
    win.extra_options.update({"provider": "openai"})
    win.toggle_call()
    qtbot.waitUntil(lambda: win.vm.failure is not None, timeout=10_000)
    qtbot.waitUntil(lambda: not win.in_call, timeout=10_000)
    assert "no openai API key" in win.banner.text()
    assert "set the key in File → Settings" in win.banner.text()
    assert win.vm.failure is not None and win.vm.failure[0] == "missing_key"
    win.close()
    controller.shutdown()


def test_no_audio_device_says_start_the_audio_server(qtbot, tmp_path: Path) -> None:
    controller = CallController(
        data_root=tmp_path / "home",
        port_factory=lambda _o: DevicePort(input_device="no-such-device-xyz"),
    )
    win = build_main_window(controller, devices=lambda: [], settings=Settings())
    qtbot.addWidget(win)
    win.extra_options.update({"provider": "sim"})
    win.toggle_call()
    qtbot.waitUntil(lambda: not win.in_call and win.vm.failure is not None, timeout=30_000)
    code, message, fix = win.vm.failure
    assert code == "audio_device" and "no-such-device-xyz" in message
    assert "start PulseAudio" in win.banner.text()
    win.close()
    controller.shutdown()


def test_refused_connection_asks_whether_the_url_is_right(
    qtbot, tmp_path: Path, monkeypatch
) -> None:
    import socket

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    silence = np.zeros(16000, dtype=np.int16)
    controller = CallController(
        data_root=tmp_path / "home", port_factory=lambda _o: WavFilePort(silence)
    )
    win = build_main_window(controller, devices=lambda: [], settings=Settings())
    qtbot.addWidget(win)
    win.confirm_key_host = lambda host: True
    win.extra_options.update({"provider": "openai", "url": f"ws://127.0.0.1:{port}/v1"})
    win.toggle_call()
    qtbot.waitUntil(lambda: not win.in_call and controller.last_summary is not None, timeout=30_000)
    assert win.vm.failure is not None and win.vm.failure[0] == "connect_failed"
    assert "connection refused" in win.banner.text()
    assert "is the URL right" in win.banner.text()
    win.close()
    controller.shutdown()
