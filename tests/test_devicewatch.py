"""Devices that come and go: PulseAudio sinks loaded and unloaded while a watcher polls."""

from __future__ import annotations

import threading

import pytest

from app.audio.devicewatch import DeviceWatcher, device_names, find_pulse_device, pulse_devices

pytestmark = [pytest.mark.device]


def test_pulse_devices_lists_sinks_sources_and_defaults(pulse_server) -> None:
    devices = {(d.kind, d.name): d for d in pulse_devices()}
    assert devices[("sink", "vsink")].is_default and devices[("sink", "vsink")].rate == 48000
    assert devices[("source", "vmic.monitor")].is_default
    assert find_pulse_device("vmic", "sink") is not None
    assert find_pulse_device("vmic", "source") is None  # its source is vmic.monitor
    inputs, outputs = device_names()
    assert "vmic.monitor" in inputs and "vsink" in outputs
    assert any(name.endswith(": pulse") for name in outputs)  # PortAudio's own device


def test_watcher_reports_a_sink_that_appears_and_vanishes(pulse_server) -> None:
    changes: list[tuple[str, ...]] = []
    changed = threading.Event()

    def on_change(listing: tuple[str, ...]) -> None:
        changes.append(listing)
        changed.set()

    watcher = DeviceWatcher(on_change, interval_s=0.1)
    watcher.start()
    module = ""
    try:
        assert watcher.listed.wait(10), "no first listing"
        assert not changes
        module = (
            pulse_server.run(
                "pactl", "load-module", "module-null-sink", "sink_name=hotplug", "rate=44100"
            )
            .stdout.decode()
            .strip()
        )
        assert changed.wait(10), "the new sink was not reported"
        assert "out:hotplug" in changes[-1] and "in:hotplug.monitor" in changes[-1]
        changed.clear()
        pulse_server.run("pactl", "unload-module", module)
        module = ""
        assert changed.wait(10), "the removed sink was not reported"
        assert "out:hotplug" not in changes[-1]
    finally:
        watcher.stop()
        if module:
            pulse_server.run("pactl", "unload-module", module)


def test_the_window_device_pickers_follow_a_sink_plugged_in_and_out(pulse_server, qtbot) -> None:
    """The desktop's pickers list PulseAudio's devices and refresh as they come and go,
    keeping the chosen speaker."""
    from tests.conftest_qt import FakeController
    from ui.main_window import MainWindow

    win = MainWindow(FakeController([]))
    qtbot.addWidget(win)
    module = ""

    def outputs() -> list[str]:
        combo = win.output_device
        return [combo.itemData(i) for i in range(combo.count())]

    try:
        assert "vsink" in outputs() and "hotplug2" not in outputs()
        win.output_device.setCurrentIndex(win.output_device.findData("vsink"))
        win.watch_devices(interval_s=0.1)
        module = (
            pulse_server.run("pactl", "load-module", "module-null-sink", "sink_name=hotplug2")
            .stdout.decode()
            .strip()
        )
        qtbot.waitUntil(lambda: "hotplug2" in outputs(), timeout=10_000)
        assert "hotplug2.monitor" in [
            win.input_device.itemData(i) for i in range(win.input_device.count())
        ]
        assert win.output_device.currentData() == "vsink"
        pulse_server.run("pactl", "unload-module", module)
        module = ""
        qtbot.waitUntil(lambda: "hotplug2" not in outputs(), timeout=10_000)
    finally:
        win.close()
        if module:
            pulse_server.run("pactl", "unload-module", module)
