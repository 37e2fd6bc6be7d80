"""Smoke tests of the UI benchmarks (``python -m ui.bench``): they run, count every event,
and report their fields. No assertion on this machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

RATE = 200
SECONDS = 2
FIGURES = ("frame_ms", "paint_ms", "event_to_screen_ms", "transcript_to_screen_ms")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["VOICEPROBE_HOME"] = str(tmp_path / "home")
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.pop("DISPLAY", None)
    return env


def test_events_bench_counts_every_event_and_reports_figures(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ui.bench", "events"]
        + ["--rate", str(RATE), "--seconds", str(SECONDS)],
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1 = targets missed on this machine
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    total = RATE * SECONDS
    assert report["timed_out"] is False
    # every posted event went through the bus, into the log model and onto the screen
    assert report["posted"] == report["delivered"] == report["counted"] == total
    assert report["shown"] == total
    assert report["event_to_screen_ms"]["count"] == total
    # agent audio chunks are the bulk of a call's events
    assert report["agent_audio"] > total // 2
    for name in FIGURES:
        fig = report[name]
        assert fig["count"] > 0, name
        assert 0 <= fig["p50"] <= fig["p95"] <= fig["max"], (name, fig)
    # a repaint per event would be 400 here; batching keeps it well under one per event
    assert 0 < report["inspector_repaints"] < total
    assert report["ok"] == (
        report["frame_ms"]["p95"] < report["targets"]["frame_p95_ms"]
        and report["event_to_screen_ms"]["p95"] < report["targets"]["event_to_screen_p95_ms"]
    )
    assert report["rate"] == RATE and report["platform"] == "offscreen"


def test_gui_startup_hook_prints_time_to_first_paint(tmp_path):
    env = _env(tmp_path)
    env["VOICEPROBE_EXIT_AFTER_SHOWN"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "ui"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("shown_ms=")]
    assert len(lines) == 1, proc.stdout
    assert 0 < float(lines[0].split("=", 1)[1]) < 120_000


def test_startup_bench_reports_the_median(tmp_path, monkeypatch):
    from ui import bench

    monkeypatch.setenv("VOICEPROBE_HOME", str(tmp_path / "home"))
    report = bench.run_startup(runs=1, command=[sys.executable, "-m", "ui"])
    assert report["runs"] == 1 and report["errors"] == []
    assert report["median_shown_ms"] == report["shown_ms"][0] > 0
    assert report["exit_ms"][0] >= report["shown_ms"][0]


@pytest.mark.parametrize("argv", [["events", "--rate", "0"], ["nope"]])
def test_bad_arguments_exit_2(argv):
    from ui import bench

    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
