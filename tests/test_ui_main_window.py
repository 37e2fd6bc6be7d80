"""The main window driven by a fake controller replaying a scripted call."""

from __future__ import annotations

from PySide6.QtCore import Qt  # noqa: E402

from app.bridge.request import CallRequest  # noqa: E402
from app.errors import AudioDeviceError  # noqa: E402
from app.profile import Profile  # noqa: E402
from tests.conftest_qt import FakeController  # noqa: E402
from ui.app import build_main_window, save_screenshot  # noqa: E402
from ui.demo import demo_events  # noqa: E402

DISPLAY = Qt.ItemDataRole.DisplayRole


class Dev:
    def __init__(self, name, ins, outs):
        self.name, self.host_api = name, "ALSA"
        self.max_input_channels, self.max_output_channels = ins, outs


def test_scripted_call_fills_the_window(qtbot, tmp_path):
    events = demo_events()
    ctl = FakeController(events)
    win = build_main_window(ctl, devices=lambda: [Dev("pulse", 32, 32), Dev("hdmi", 0, 2)])
    qtbot.addWidget(win)
    win.show()
    assert [win.input_device.itemText(i) for i in range(win.input_device.count())] == [
        "System default",
        "pulse (ALSA)",
    ]
    assert win.output_device.count() == 3
    win.input_device.setCurrentIndex(1)
    win.half_duplex.setChecked(True)
    qtbot.mouseClick(win.call_button, Qt.MouseButton.LeftButton)
    name, request = ctl.calls[0]
    assert name == "start_call" and isinstance(request, CallRequest)
    assert isinstance(request.profile, Profile) and request.profile.name == "default"
    assert request.input_device == "pulse" and request.output_device is None
    assert request.half_duplex is True and request.mute is False
    assert win.call_button.text() == "Hang up"
    ctl.thread.join(timeout=5)
    qtbot.waitUntil(lambda: win.vm.events.event_count == len(events), timeout=5000)
    # Transcript, tool row, 4 waterfall rows, event count.
    rows = [win.vm.transcript.index(i).data(DISPLAY) for i in range(win.vm.transcript.rowCount())]
    assert any("Agent: It's 21 degrees and sunny in Lisbon right now." in r for r in rows)
    assert any("[interrupted" in r for r in rows)
    assert win.tools_view.model().rowCount() == 1
    assert len(win.waterfall.row_layouts()) == 4
    assert win.events_label.text() == f"{len(events)} events"
    assert "4 turns" in win.latency_label.text()
    # The scripted call ends with CallEnded: the window is back to idle.
    assert win.call_button.text() == "Call" and not win.in_call
    assert win.state_label.text() == "Closed — hangup"
    assert not win.pump.running
    win.waterfall.select_turn(1)
    assert save_screenshot(win, str(tmp_path / "main.png")).stat().st_size > 20_000
    win.close()


def test_controls_reach_the_controller(qtbot):
    ctl = FakeController([])
    win = build_main_window(ctl, devices=lambda: [])
    qtbot.addWidget(win)
    win.toggle_call()
    win.mute.setChecked(True)
    win.push_to_talk.setChecked(True)
    assert win.talk_button.isEnabled()
    qtbot.mousePress(win.talk_button, Qt.MouseButton.LeftButton)
    qtbot.mouseRelease(win.talk_button, Qt.MouseButton.LeftButton)
    win.toggle_call()
    assert [c for c in ctl.calls if c[0] != "start_call"] == [
        ("set_mute", True),
        ("ptt", True),
        ("ptt", False),
        ("hangup", None),
    ]
    assert win.pump.running  # until CallEnded arrives
    win.close()
    assert not win.pump.running


def test_start_call_error_is_shown_in_the_banner(qtbot):
    ctl = FakeController(fail_with=AudioDeviceError("input device 'x' is busy", "x", "ALSA"))
    win = build_main_window(ctl, devices=lambda: [])
    qtbot.addWidget(win)
    win.show()
    win.toggle_call()
    assert win.banner.isVisible() and win.banner.text() == "input device 'x' is busy"
    assert win.banner.textFormat() == Qt.TextFormat.PlainText
    assert not win.in_call and win.call_button.text() == "Call"


def test_device_listing_failure_leaves_defaults(qtbot):
    def broken():
        raise AudioDeviceError("PortAudio is not available")

    win = build_main_window(FakeController([]), devices=broken)
    qtbot.addWidget(win)
    assert win.input_device.count() == 1 and win.input_device.currentData() is None


def test_profile_editor_round_trip(qtbot):
    win = build_main_window(FakeController([]), devices=lambda: [])
    qtbot.addWidget(win)
    ed = win.profile_editor
    assert ed.tools.item(0).text() == "get_weather  (mock)"
    ed.provider.setCurrentText("gemini")
    ed.vad.setCurrentIndex(ed.vad.findData("semantic_vad"))
    ed.eagerness.setCurrentText("high")
    ed.language.setText("fr")
    p = ed.profile()
    assert p.provider == "gemini" and p.model.startswith("gemini") and p.voice == "Puck"
    assert p.turn_detection.type == "semantic_vad" and p.turn_detection.eagerness == "high"
    assert p.transcription.language == "fr" and p.tools[0].name == "get_weather"
    assert not ed.load("/no/such/profile.yaml")
    assert ed.error.isVisibleTo(ed) and "file not found" in ed.error.text()


class KeyHostController(FakeController):
    """Asks for a confirmation of ``host`` until it is in ``confirmed_hosts``."""

    host = "proxy.corp"

    def key_host_to_confirm(self, request: CallRequest) -> str | None:
        return None if self.host in request.confirmed_hosts else self.host


def test_key_host_is_confirmed_before_the_call(qtbot):
    ctl = KeyHostController(demo_events())
    win = build_main_window(ctl, devices=lambda: [])
    qtbot.addWidget(win)
    asked: list[str] = []
    win.confirm_key_host = lambda host: asked.append(host) or False
    qtbot.mouseClick(win.call_button, Qt.MouseButton.LeftButton)
    assert asked == ["proxy.corp"] and ctl.calls == []
    assert win.banner.isVisibleTo(win)
    assert "not sent to proxy.corp" in win.banner.text()
    win.confirm_key_host = lambda host: asked.append(host) or True
    qtbot.mouseClick(win.call_button, Qt.MouseButton.LeftButton)
    name, request = ctl.calls[0]
    assert name == "start_call" and request.confirmed_hosts == ("proxy.corp",)
    ctl.thread.join(timeout=5)
    qtbot.waitUntil(lambda: not win.in_call, timeout=5000)
    # Asked once per run of the app: the next call goes straight through.
    qtbot.mouseClick(win.call_button, Qt.MouseButton.LeftButton)
    assert asked == ["proxy.corp", "proxy.corp"] and len(ctl.calls) == 2
    ctl.thread.join(timeout=5)
    qtbot.waitUntil(lambda: not win.in_call, timeout=5000)
    win.close()


def test_demo_overrides_the_request_once(qtbot):
    ctl = FakeController(demo_events())
    win = build_main_window(ctl, devices=lambda: [], settings=False)
    qtbot.addWidget(win)
    win.extra_options["record"] = False
    win.set_demo_starter(lambda: {"source": "caller.wav", "scenario": "s.yaml"})
    win.start_demo()
    name, request = ctl.calls[0]
    assert name == "start_call" and isinstance(request, CallRequest)
    assert (request.provider, request.scenario, request.source) == ("sim", "s.yaml", "caller.wav")
    assert request.record is False  # the window's own overrides still apply
    assert win.extra_options == {"record": False}  # the demo's are gone after it
    ctl.thread.join(timeout=5)
    qtbot.waitUntil(lambda: not win.in_call, timeout=5000)
    win.close()
