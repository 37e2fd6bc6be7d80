"""Smoke tests of the UI benchmarks (``python -m ui.bench``): they run, count every event,
and report their fields. No assertion on this machine's speed (the waterfall's frame
bound is in ``tests/test_ui_waterfall_scale.py``).
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


def _bench(tmp_path: Path, *argv: str) -> tuple[int, dict, str]:
    """Run ``python -m ui.bench *argv --json`` and, again, without ``--json``."""
    runs = []
    for extra in (["--json"], []):
        proc = subprocess.run(
            [sys.executable, "-m", "ui.bench", *argv, *extra],
            cwd=REPO,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert proc.returncode in (0, 1), proc.stderr  # 1 = targets missed on this machine
        assert "Traceback" not in proc.stderr, proc.stderr
        runs.append(proc)
    return runs[0].returncode, json.loads(runs[0].stdout.strip()), runs[1].stdout


def _shape(fig: dict, count: int | None = None) -> None:
    assert set(fig) == {"p50", "p95", "max", "count"}
    if count is not None:
        assert fig["count"] == count
    assert fig["count"] > 0
    # a generous sanity bound: a frame or a press is never a minute
    assert 0 <= fig["p50"] <= fig["p95"] <= fig["max"] < 60_000, fig


def test_waterfall_bench_reports_frames_per_checkpoint(tmp_path):
    rc, report, text = _bench(tmp_path, "waterfall", "--turns", "120", "--seconds", "0.2")
    assert report["bench"] == "ui-waterfall" and report["platform"] == "offscreen"
    assert report["unsettled"] == 0
    assert [c["turns"] for c in report["checkpoints"]] == [100, 120]
    for c in report["checkpoints"]:
        _shape(c["frame_ms"])
        _shape(c["frame_cpu_ms"], c["frame_ms"]["count"])
        _shape(c["paint_ms"])
        # every kind of user action ran, and new turns arrived live
        actions = c["by_action_ms"]
        assert set(actions) == {"scroll", "hover", "zoom", "resize", "turn"}
        assert sum(a["count"] for a in actions.values()) == c["frame_ms"]["count"]
        for fig in actions.values():
            _shape(fig)
        assert c["turns_at_end"] == c["turns"] + actions["turn"]["count"]
    assert len(report["load_average"]) == 3 and report["cpus"] >= 1
    p95 = report["checkpoints"][-1]["frame_ms"]["p95"]
    assert report["ok"] == (p95 < report["targets"]["frame_p95_ms"])
    assert rc == (0 if report["ok"] else 1)
    lines = text.splitlines()
    assert lines[0].startswith("waterfall frame time (ms), offscreen")
    assert [ln.split()[0] for ln in lines[2:4]] == ["100", "120"]
    assert lines[-1].startswith("target: p95 < 16 ms at 120 turns: ")


def test_verdict_shortcut_bench_paints_every_press(tmp_path):
    rc, report, text = _bench(tmp_path, "verdict-shortcut", "--presses", "6", "--turns", "3")
    assert report["bench"] == "ui-verdict-shortcut" and report["ready"] is True
    # every press was painted showing its mark, then stored
    assert report["painted"] == report["shown"] == report["stored"] == 6
    _shape(report["key_to_screen_ms"], 6)
    assert report["ok"] == (report["key_to_screen_ms"]["p95"] < report["target_ms"] == 50.0)
    assert rc == (0 if report["ok"] else 1)
    assert text.startswith("verdict shortcut, key press to mark painted: p50 ")
    assert "over 6 presses (6 shown, 6 stored; offscreen" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["events", "--rate", "0"],
        ["nope"],
        ["waterfall", "--turns", "0"],
        ["waterfall", "--seconds", "-1"],
        ["waterfall", "--turns", "many"],
        ["verdict-shortcut", "--presses", "0"],
    ],
)
def test_bad_bench_arguments_exit_2(argv, capsys):
    from ui import bench

    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: " in err.strip().splitlines()[-1]  # one line
