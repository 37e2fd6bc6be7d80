"""Desktop settings applied to the main window (ui.app.SettingsBinding) and saved on close."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from app import events as E
from tests.conftest_qt import FakeController
from ui.app import build_main_window, settings_data_root
from ui.settings_store import DISCLOSURE_LINE, Settings, load_settings, save_settings

OPENAI_URL = "ws://127.0.0.1:9/v1/realtime"
GEMINI_URL = "wss://127.0.0.1:9/gemini"


class Dev:
    def __init__(self, name, ins, outs):
        self.name, self.host_api = name, "ALSA"
        self.max_input_channels, self.max_output_channels = ins, outs


class DataController(FakeController):
    data_root = None


DEVICES = [Dev("pulse", 2, 2), Dev("usb-headset", 1, 2)]


def _window(qtbot, settings, path, ctl=None):
    ctl = ctl or DataController([])
    win = build_main_window(ctl, devices=lambda: DEVICES, settings=settings, settings_path=path)
    qtbot.addWidget(win)
    return win, ctl


def test_settings_restore_devices_threshold_urls_and_recording(qtbot, tmp_path):
    s = Settings(
        input_device="usb-headset",
        output_device="pulse",
        slow_turn_ms=900,
        openai_url=OPENAI_URL,
        gemini_url=GEMINI_URL,
        recording=False,
        data_dir=str(tmp_path / "data"),
    )
    win, ctl = _window(qtbot, s, tmp_path / "s.json")
    assert win.input_device.currentData() == "usb-headset"
    assert win.output_device.currentData() == "pulse"
    assert win.vm.turns.slow_ms == 900.0 and win.waterfall.threshold.value() == 900
    assert ctl.data_root == tmp_path / "data"
    request = win.call_request()
    assert request.url == OPENAI_URL and request.record is False  # default profile: openai
    win.profile_editor.provider.setCurrentText("gemini")
    assert win.call_request().url == GEMINI_URL


def test_no_url_option_without_an_override_and_missing_device_stays_default(qtbot, tmp_path):
    win, ctl = _window(qtbot, Settings(input_device="gone"), tmp_path / "s.json")
    assert win.input_device.currentData() is None
    assert win.call_request().url is None and win.call_request().record is True
    assert ctl.data_root is None


def test_close_saves_window_state_over_dialog_edits(qtbot, tmp_path):
    path = tmp_path / "s.json"
    win, _ = _window(qtbot, Settings(openai_url=OPENAI_URL), path)
    win.show()
    win.output_device.setCurrentIndex(win.output_device.findData("usb-headset"))
    win.waterfall.threshold.setValue(1500)
    # the settings dialog saved a data folder meanwhile: closing must keep it
    save_settings(Settings(openai_url=OPENAI_URL, data_dir="/srv/vp"), path)
    win.close()
    saved = load_settings(path)
    assert saved.output_device == "usb-headset" and saved.input_device == ""
    assert saved.slow_turn_ms == 1500 and saved.profile == "default"
    assert saved.data_dir == "/srv/vp" and saved.openai_url == OPENAI_URL


def _start(qtbot, win, ctl):
    win.show()
    win.toggle_call()
    ctl.thread.join(5)
    qtbot.waitUntil(lambda: win.vm.events.event_count == len(ctl.script), timeout=5000)
    QCoreApplication.processEvents()


def test_recording_notice_shown_at_call_start(qtbot, tmp_path):
    script = [E.CallStarted(t_ns=1, session_id="s", provider="sim", model="m")]
    ctl = DataController(script)
    win, _ = _window(qtbot, Settings(recording=True), tmp_path / "s.json", ctl)
    _start(qtbot, win, ctl)
    assert win.banner.isVisible() and win.banner.text() == DISCLOSURE_LINE
    # an error takes the banner back with its own style
    win.vm.apply(E.Notice(t_ns=2, level="error", message="boom"))
    win.vm.flush()
    assert win.banner.text() == "boom" and win.banner.styleSheet() == ""


def test_no_notice_when_not_recording_or_disclosure_off(qtbot, tmp_path):
    for s in (Settings(recording=False), Settings(recording=True, recording_disclosure=False)):
        ctl = DataController([E.CallStarted(t_ns=1, session_id="s", provider="sim", model="m")])
        win, _ = _window(qtbot, s, tmp_path / "s.json", ctl)
        _start(qtbot, win, ctl)
        assert not win.banner.isVisible()


def test_settings_data_root_reads_the_settings_file(home):
    assert settings_data_root() is None
    save_settings(Settings(data_dir="~/vp-data"))
    root = settings_data_root()
    assert root is not None and root.name == "vp-data" and "~" not in str(root)
