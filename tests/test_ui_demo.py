"""A demo people can hear (issue 12, item 3): the caller's WAV and the agent both play on
the chosen speaker (measured on a PulseAudio null sink's monitor), the window shows the
real source and provider, and ``voiceprobe demo --screenshot`` keeps working."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from PySide6.QtGui import QImage

from app.bridge.controller import CallController
from tests.conftest import REPO
from ui.app import build_main_window
from ui.entry import demo_options
from ui.settings_store import Settings

pytestmark = [pytest.mark.device, pytest.mark.slow]


def _scenario(tmp_path: Path) -> Path:
    path = tmp_path / "short.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "short",
                "turns": [
                    {"hears": "Good morning, is anyone there?", "reply": "Yes, I am here."},
                    {"hears": "Thank you, goodbye.", "reply": "Goodbye, have a nice day."},
                ],
            }
        )
    )
    return path


def _segments(pcm: np.ndarray, rate: int = 16000, gap_ms: int = 500) -> list[tuple[int, int]]:
    """Loud stretches (start ms, length ms) separated by at least ``gap_ms`` of quiet."""
    block = rate // 100
    n = len(pcm) // block
    x = pcm[: n * block].astype(np.float64).reshape(n, block)
    loud = np.sqrt(np.mean(x * x, axis=1)) > 300
    out: list[tuple[int, int]] = []
    start = last = None
    for i, on in enumerate(loud):
        if not on:
            continue
        if start is None or (i - last) * 10 > gap_ms:
            if start is not None:
                out.append((start * 10, (last - start + 1) * 10))
            start = i
        last = i
    if start is not None:
        out.append((start * 10, (last - start + 1) * 10))
    return out


def test_demo_plays_both_sides_on_the_speaker(qtbot, tmp_path, pulse_server) -> None:
    from app.audio.devices import list_devices

    scenario = _scenario(tmp_path)
    controller = CallController(data_root=tmp_path / "home")
    win = build_main_window(controller, devices=list_devices, settings=Settings())
    qtbot.addWidget(win)
    win.output_device.setCurrentIndex(win.output_device.findData("pulse"))
    win.set_demo_starter(lambda: demo_options(win, str(scenario), speaker=True))
    rec = pulse_server.popen(
        "parec",
        "-d",
        "vsink.monitor",
        "--format=s16le",
        "--rate=16000",
        "--channels=1",
        "--latency-msec=20",
    )
    chunks: list[bytes] = []
    assert rec.stdout is not None
    reader = threading.Thread(
        target=lambda: chunks.extend(iter(lambda: rec.stdout.read(3200), b""))
    )
    reader.start()
    try:
        win.show()
        win.demo_action.trigger()
        qtbot.waitUntil(lambda: win.in_call, timeout=10_000)
        assert win.provider.currentText() == "Simulator"
        assert win.input_device.currentText() == "Caller WAV: short-demo.wav"
        qtbot.waitUntil(
            lambda: not win.in_call and controller.last_summary is not None, timeout=90_000
        )
    finally:
        rec.terminate()
        rec.wait(timeout=5)
        reader.join(timeout=5)
    summary = controller.last_summary
    assert summary is not None and summary["ok"], summary and summary["errors"]
    assert "Simulator" in win.session_label.text()
    heard = np.frombuffer(b"".join(chunks), dtype=np.int16)
    # The speaker played the caller, then the agent, turn by turn: four loud stretches
    # whose lengths are the caller's speech and the agent's reply in turn (neither side
    # alone could make that pattern).
    expected = []
    for turn in summary["turns"]:
        expected += [turn["spans"]["user_speech"]["ms"], turn["spans"]["agent_speech"]["ms"]]
    heard_ms = [length for _start, length in _segments(heard)]
    assert len(heard_ms) == len(expected), (heard_ms, expected)
    for got, want in zip(heard_ms, expected, strict=True):
        assert got == pytest.approx(want, rel=0.35), (heard_ms, expected)
    win.close()
    controller.shutdown()


def test_demo_screenshot_command_in_presentation_mode(tmp_path) -> None:
    out = tmp_path / "demo.png"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ui",
            "demo",
            "--scenario",
            str(_scenario(tmp_path)),
            "--screenshot",
            str(out),
            "--size",
            "1024x768",
            "--presentation",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={
            "VOICEPROBE_HOME": str(tmp_path / "home"),
            "PATH": "/usr/bin:/bin",
            "QT_QPA_PLATFORM": "offscreen",
        },
    )
    assert proc.returncode == 0, proc.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1024, 768)
    bad = subprocess.run(
        [sys.executable, "-m", "ui", "demo", "--screenshot", str(out), "--size", "huge"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"VOICEPROBE_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--size" in bad.stderr
