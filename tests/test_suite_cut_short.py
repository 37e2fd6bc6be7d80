"""Suite runs cut short. SIGTERM mid-case: the case's finished turns are scored from its
session's real turns, the turn that never finished is not judged (no check, no automatic
verdict, not in WER or pass figures), and the interrupted case stays out of the run's
aggregates. ``kill -9``: the stored run, still ``running``, is found and closed out
``crashed`` with how many planned cases ran, and ``suite show`` does not pass it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.events import (
    ResponseFinished,
    ResponseStarted,
    ToolCallFinished,
    ToolCallRequested,
    TurnCompleted,
)
from app.metrics.records import TurnRecord
from app.suite.caller import ConversationPort, TurnWindow
from app.suite.checks import judged_turns, match_turns
from app.suite.expand import expand
from app.suite.load import load_suite
from app.suite.runs import run_alive, run_process
from app.suite.summary import summarize_run
from tests.conftest import TIME_SCALE
from tests.suite_helpers import SIM_TIMING, THANKS_REPLY, THANKS_SAY, run_cli, start_cli

# In Spanish, turn 2's answer starts 30 s after its probe: it cannot finish before the
# signal. English cases run straight through.
SUITE = f"""\
name: cut-short
lead_ms: 200
idle_ms: 400
conversations:
  - id: thanks
    turns:
      - say: {THANKS_SAY}
        expect: {{heard: {{max_wer: 0.3}}, says: ["welcome|nada"]}}
        simulate: {{reply: {THANKS_REPLY}}}
      - say: {THANKS_SAY}
        timeout_ms: 40000
        expect: {{heard: {{max_wer: 0.3}}, says: ["welcome|nada"]}}
        simulate: {{reply: {THANKS_REPLY}}}
matrix:
  language: [LANGUAGES]
simulator:
  timing: {SIM_TIMING}
  rules:
    - when: {{language: es, turn: 2}}
      first_audio_ms: 30000
"""

WAIT_S = 60 * TIME_SCALE


def _start(tmp_path: Path, languages: str) -> tuple[subprocess.Popen[str], Path]:
    home = tmp_path / "home"
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.replace("LANGUAGES", languages), encoding="utf-8")
    proc = start_cli(
        ["suite", "run", str(suite), "--provider", "sim", "--parallel", "1", "--json"], home
    )
    return proc, home


def _wait_for(what: str, found: Any, proc: subprocess.Popen[str]) -> Any:
    """Poll the store (a condition on files, never a fixed sleep) until ``found()``."""
    deadline = time.monotonic() + WAIT_S
    while not (value := found()):
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def _session_with_turns(home: Path, index: int) -> Path | None:
    """The ``index``-th session (by id) once its ``turns.json`` holds a completed turn
    (the file is first written when the bridge completes a turn)."""
    folders = sorted((home / "sessions").glob("*/session.json"))
    if len(folders) <= index:
        return None
    turns = folders[index].parent / "turns.json"
    try:
        return folders[index].parent if json.loads(turns.read_text()) else None
    except (OSError, ValueError):
        return None


def test_sigterm_scores_finished_turns_only(tmp_path: Path) -> None:
    proc, home = _start(tmp_path, "es-ES")
    try:
        folder = _wait_for("turn 1 to complete", lambda: _session_with_turns(home, 0), proc)
        proc.send_signal(signal.SIGTERM)  # turn 1 answered; turn 2's answer is 30 s away
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    run = json.loads(out)
    [case] = run["cases"]
    assert case["status"] == "interrupted" and not case["passed"]
    assert case["session_id"] == folder.name
    # Turn 1 is scored from the session's real turn; turn 2 is not judged at all.
    [turn] = case["turns"]
    assert turn["turn"] == 1 and turn["heard"] == "Muchas gracias" and turn["wer"] == 0
    assert "nada" in turn["said"].lower()
    assert case["unjudged_turns"] == [2]
    assert {(c["turn"], c["name"], c["passed"]) for c in case["checks"]} == {
        (1, "heard", True),
        (1, "says", True),
    }
    assert case["wer"] == 0
    # The interrupted case is kept out of every aggregate.
    s = run["summary"]
    assert s["cases"] == 0 and s["pass_rate"] is None and s["mean_wer"] is None
    assert s["interrupted_cases"] == 1 and s["ran"] == 1 and s["planned"] == 1
    assert s["table"] == [] and s["by_language"] == {}
    assert "interrupted: 1 of 1 planned cases ran, 1 stopped mid-call" in err
    assert "WER 1.00" not in err
    # The session got an automatic verdict for turn 1 only, and coverage counts one judged
    # turn with WER 0.
    verdicts = run_cli(["sessions", "verdicts", folder.name, "--json"], home, timeout=60)
    assert verdicts.returncode == 0, verdicts.stderr
    assert [(v["turn"], v["verdict"]) for v in json.loads(verdicts.stdout)] == [(1, "pass")]
    coverage = run_cli(["coverage", "--json"], home, timeout=60)
    total = json.loads(coverage.stdout)["total"]
    assert total["judged"] == 1 and total["passed"] == 1 and total["mean_wer"] == 0


def test_kill_9_run_is_closed_out_crashed(tmp_path: Path) -> None:
    proc, home = _start(tmp_path, "en-GB, es-ES")
    try:
        # Case 1 has finished and case 2's call is under way (its turn 1 completed).
        _wait_for("case 2 to be under way", lambda: _session_with_turns(home, 1), proc)
        [stored] = list((home / "suite-runs").glob("*.json"))
        listed = run_cli(["suite", "list", "--json"], home, timeout=60)
        assert json.loads(listed.stdout)[0]["status"] == "running"  # alive: left alone
        before = json.loads(stored.read_text())
        assert before["process"]["pid"] == proc.pid and len(before["cases"]) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rid = stored.stem
    listed = run_cli(["suite", "list"], home, timeout=60)
    assert listed.returncode == 0
    [row] = [line for line in listed.stdout.splitlines() if line.startswith(rid)]
    assert row.split()[2:5] == ["crashed", "1/2", "1"], row
    shown = run_cli(["suite", "show", rid], home, timeout=60)
    assert shown.returncode == 1, shown.stdout
    assert "suite cut-short, crashed" in shown.stdout
    assert "crashed (its process died): 1 of 2 planned cases ran" in shown.stdout
    second = sorted((home / "sessions").glob("*/session.json"))[1].parent.name
    cut = "thanks/es-ES/clean/wideband#1"
    assert f"{cut}: in progress when the run's process died (session {second})" in shown.stdout
    # Written back, nothing lost: the finished case as it was, the unfinished session named.
    after = json.loads(stored.read_text())
    assert after["status"] == "crashed" and after["cases"] == before["cases"]
    assert after["summary"]["crashed"] is True and after["summary"]["planned"] == 2
    assert after["unfinished_sessions"] == [{"session_id": second, "case": cut}]
    as_json = run_cli(["suite", "show", rid, "--json"], home, timeout=60)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["status"] == "crashed"
    # The session the kill cut is recovered by the sessions' own recovery.
    sessions = run_cli(["sessions", "list"], home, timeout=60)
    assert sessions.returncode == 0 and "incomplete" in sessions.stdout


def test_run_alive_checks_the_recorded_process() -> None:
    me = run_process()
    assert run_alive({"process": me})
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = dict(me, pid=int(gone.stdout), proc_start=None)
    assert not run_alive({"process": dead})
    assert not run_alive({})  # written before runs recorded their process
    assert run_alive({"process": dict(dead, host=me["host"] + "-elsewhere")})  # can't tell


def _turn(index: int, start_ns: int, user: str) -> dict[str, Any]:
    span = {"start_ns": start_ns, "end_ns": start_ns + 10**9, "ms": 1000.0}
    return {"index": index, "user_transcript": user, "agent_transcript": "De nada.",
            "spans": {"user_speech": span}}  # fmt: skip


def test_finished_turns(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE.replace("LANGUAGES", "es-ES"), encoding="utf-8")
    [case] = expand(load_suite(str(path)))
    s = 10**9
    turns = [_turn(0, s, "Muchas gracias"), _turn(1, 6 * s, "Muchas")]
    first = TurnWindow(1, s, 2 * s, 5 * s)  # the caller moved on
    # Turn 2 played, its answer not over: not finished, judged only if the call completed.
    results = match_turns(case, turns, [first, TurnWindow(2, 5 * s, 7 * s)])
    assert [r.finished for r in results] == [True, False]
    assert [r.index for r in judged_turns(results, completed=False)] == [1]
    assert [r.index for r in judged_turns(results, completed=True)] == [1, 2]
    # Its answer was over (the caller's quiet wait had begun): finished.
    results = match_turns(case, turns, [first, TurnWindow(2, 5 * s, 7 * s, over_ns=9 * s)])
    assert [r.finished for r in results] == [True, True]
    assert [(r.index, r.heard) for r in judged_turns(results, completed=False)] == [
        (1, "Muchas gracias"),
        (2, "Muchas"),
    ]


def test_interrupted_cases_stay_out_of_the_figures() -> None:
    done = {"language": "en-GB", "condition": "clean", "status": "passed", "passed": True,
            "wer": 0.0, "reply_language_match": True, "turns": [{"v2v_ms": 900.0}]}  # fmt: skip
    cut = {"language": "es-ES", "condition": "clean", "status": "interrupted", "passed": False,
           "wer": 1.0, "reply_language_match": False, "turns": [{"v2v_ms": 5000.0}]}  # fmt: skip
    s = summarize_run([done, cut], 4, True, 10.0)
    assert s["cases"] == 1 and s["passed"] == 1 and s["pass_rate"] == 100.0
    assert s["mean_wer"] == 0.0 and s["v2v_p95_ms"] == 900.0
    assert s["ran"] == 2 and s["interrupted_cases"] == 1 and s["planned"] == 4
    assert [r["language"] for r in s["table"]] == ["en-GB"] and "es-ES" not in s["by_language"]
    crashed = summarize_run([done], 4, False, 10.0, crashed=True)
    assert crashed["crashed"] is True and crashed["ran"] == 1


def test_port_marks_the_answer_over_only_when_heard_to_its_end() -> None:
    """Pure: the caller port, fed bridge events and asked for frames by hand."""
    ms = 1_000_000
    probe = np.full(1600, 1000, dtype=np.int16)  # 100 ms
    port = ConversationPort([probe, probe], 16000, timeouts_ms=[5000, 5000], idle_ms=600,
                            lead_ms=0)  # fmt: skip
    port.start(0)
    port.read(200 * ms)  # probe 1 played, waiting
    port.observe(ResponseStarted(t_ns=210 * ms, response_id="r1"))
    port.observe(ResponseFinished(t_ns=300 * ms, response_id="r1"))
    port.observe(ToolCallRequested(t_ns=300 * ms, call_id="c1", name="f", arguments="{}"))
    port.read(400 * ms)
    port.observe(ToolCallFinished(t_ns=420 * ms, call_id="c1", name="f", arguments="{}",
                                  status="ok", output="{}", ms=1.0))  # fmt: skip
    port.read(500 * ms)  # nothing open, but the follow-up has not been heard yet
    assert port.turn_windows[0].over_ns is None
    port.observe(ResponseStarted(t_ns=520 * ms, response_id="r2"))
    port.observe(ResponseFinished(t_ns=600 * ms, response_id="r2"))
    port.observe(TurnCompleted(t_ns=640 * ms, turn=TurnRecord(index=0)))
    port.read(700 * ms)
    [window] = port.turn_windows
    assert window.over_ns is not None and window.next_ns is None  # over; quiet wait running
    port.read(1400 * ms)  # idle_ms later the caller moves on to probe 2
    first, second = port.turn_windows
    assert first.next_ns is not None and second.over_ns is None
    port.observe(ResponseStarted(t_ns=1500 * ms, response_id="r3"))
    port.read(1600 * ms)
    port.stop()  # the call is closing: the timeline completes every open turn
    port.observe(ResponseFinished(t_ns=1610 * ms, response_id="r3"))
    port.observe(TurnCompleted(t_ns=1620 * ms, turn=TurnRecord(index=1)))
    port.read(2000 * ms)
    assert port.turn_windows[1].over_ns is None
