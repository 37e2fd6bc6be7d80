"""The stored run while a suite runs: each finished case is added in place, so the
record-keeping of a case costs the same however many came before it, and after every case
the file is a complete run that any reader can use; a run whose process died is closed
out ``crashed`` from it (a case cut mid-write left out), and files of the earlier layout
still read. No call is placed: the runner's cases return synthetic results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.errors import StoreError
from app.eventloop import run as run_loop
from app.suite.runs import RunFile, list_runs, load_run, run_process, run_text
from app.textsafe import json_text
from tests.suite_helpers import bytes_written, synthetic_runner

RID = "20261204-120000-abcd"


def _dead_process() -> dict[str, Any]:
    """The identity of a process that has exited (on this host)."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return dict(run_process(), pid=int(gone.stdout), proc_start=None)


def _case(index: int, language: str = "en-GB", passed: bool = True) -> dict[str, Any]:
    return {"index": index, "id": f"c/{language}/clean/wideband#{index + 1}",
            "language": language, "accent": None, "condition": "clean wideband",
            "session_id": f"s{index}", "passed": passed,
            "status": "passed" if passed else "failed", "checks": [], "wer": 0.0,
            "turns": [{"turn": 1, "v2v_ms": 800.0 + index,
                       "said": "línea\nuno\u2028dos"}]}  # fmt: skip


def _run(process: dict[str, Any], cases: list[dict[str, Any]], planned: int) -> dict[str, Any]:
    return {"run_id": RID, "suite": "s", "cases": cases,
            "summary": {"planned": planned, "ran": 0}, "status": "running",
            "started": "2026-12-04T12:00:00+00:00", "finished": None, "suite_path": "s.yaml",
            "provider": "sim", "tags": [], "process": process}  # fmt: skip


@pytest.mark.skipif(not Path("/proc/self/io").is_file(), reason="needs /proc/self/io")
def test_a_case_costs_its_own_bytes_not_the_runs(tmp_path: Path) -> None:
    """300 cases: the run writes about twice its final file (each case once as it ends,
    then the whole run once), where rewriting the file after every case wrote ~150 times
    it (and grew with the square of the cases)."""
    runner, items = synthetic_runner(tmp_path, "en-GB, es-ES, fr-FR", 100)
    assert len(items) == 300
    before = bytes_written()
    run_loop(runner.run(items))
    written = bytes_written() - before
    stored = tmp_path / "home" / "suite-runs" / f"{RID}.json"
    size = stored.stat().st_size
    assert written < 2.5 * size, (written, size)
    run = json.loads(stored.read_text(encoding="utf-8"))
    assert run["status"] == "complete" and run["summary"]["ran"] == 300
    assert [c["index"] for c in run["cases"]] == list(range(300))


def test_every_case_is_added_in_place(tmp_path: Path) -> None:
    """One call at a time: as case k+1 ends, the stored file is the same file (never
    replaced), a complete run object listing the k cases before it, and the bytes of
    those k cases are unchanged."""
    seen: list[tuple[int, int, bytes]] = []

    def on_case(result: dict[str, Any]) -> None:
        path = tmp_path / "home" / "suite-runs" / f"{RID}.json"
        data = path.read_bytes()
        run = json.loads(data)
        assert run["status"] == "running" and run["summary"]["planned"] == 24
        assert [c["index"] for c in run["cases"]] == list(range(result["index"]))
        seen.append((path.stat().st_ino, len(run["cases"]), data[: data.rindex(b"\n]}")]))

    runner, items = synthetic_runner(tmp_path, "en-GB, es-ES", 12, parallel=1, on_case=on_case)
    run_loop(runner.run(items))
    assert [n for _, n, _ in seen] == list(range(24))
    assert len({ino for ino, _, _ in seen}) == 1  # written in place, not replaced
    for (_, _, prefix), (_, _, later) in zip(seen, seen[1:], strict=False):
        assert later.startswith(prefix)


def test_run_file_text_is_one_json_object(tmp_path: Path) -> None:
    cases = [_case(0), _case(1, "es-ES", passed=False)]
    run = _run(run_process(), cases, 2)
    text = run_text(run)
    assert json.loads(text) == run
    assert run_text(dict(run, cases=[])).endswith('"cases": [\n]}\n')
    assert json.loads(run_text(dict(run, cases=[])))["cases"] == []
    # The first line holds every field but the cases; then one case per line.
    lines = text.splitlines()
    assert lines[0].endswith('"cases": [') and len(lines) == 4 and lines[-1] == "]}"
    # Added in place, case by case, the file reads the same as written in full.
    store = RunFile(tmp_path, RID)
    path = store.write(dict(run, cases=[]))
    for case in cases:
        store.add(case)
    assert path.read_text(encoding="utf-8") == text
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_failed_add_is_written_with_the_next(tmp_path: Path) -> None:
    store = RunFile(tmp_path, RID)
    path = store.write(_run(run_process(), [], 3))
    data = path.read_bytes()
    path.unlink()
    path.mkdir()  # cannot be opened for writing, not even by root
    with pytest.raises(StoreError, match="cannot write"):
        store.add(_case(0))
    path.rmdir()
    path.write_bytes(data)
    store.add(_case(1))
    assert [c["index"] for c in json.loads(path.read_text(encoding="utf-8"))["cases"]] == [0, 1]


def test_kill_9_mid_write_is_closed_out_crashed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A power cut mid-case leaves half a line: a dead run is closed out with every whole
    case, the cut one left out; ``suite list`` and ``suite show`` read it."""
    store = RunFile(home, RID)
    path = store.write(_run(_dead_process(), [], 5))
    for i in range(3):
        store.add(_case(i, passed=i != 1))
    data = path.read_bytes()
    cut = data[: data.rindex(b"\n]}")][:-20]  # case 3's line cut short, no closing ]}
    path.write_bytes(cut)
    with pytest.raises(ValueError):
        json.loads(cut)
    [listed] = list_runs(home)
    assert listed["status"] == "crashed"
    assert [c["index"] for c in listed["cases"]] == [0, 1]
    s = listed["summary"]
    assert (s["ran"], s["planned"], s["passed"], s["crashed"]) == (2, 5, 1, True)
    written = json.loads(path.read_text(encoding="utf-8"))  # written back whole
    assert written["status"] == "crashed" and written["cases"] == listed["cases"]
    assert main(["suite", "show", RID]) == 1
    out = capsys.readouterr().out
    assert "crashed (its process died): 2 of 5 planned cases ran" in out


def test_live_run_is_read_with_its_progress(home: Path) -> None:
    """A live run (finished out of order, one case being written as it is read) is shown
    with its cases in order and its summary brought up to date; it is not rewritten."""
    store = RunFile(home, RID)
    path = store.write(_run(run_process(), [], 4))
    for i in (2, 0):
        store.add(_case(i))
    complete = path.read_bytes()
    run = load_run(RID, home)
    assert run["status"] == "running" and [c["index"] for c in run["cases"]] == [0, 2]
    assert (run["summary"]["ran"], run["summary"]["planned"]) == (2, 4)
    path.write_bytes(complete[: complete.rindex(b"\n]}")] + b',\n{"index": 1, "id"')
    assert [c["index"] for c in load_run(RID, home)["cases"]] == [0, 2]
    assert path.read_bytes().endswith(b'{"index": 1, "id"')  # left as it was


def test_earlier_layout_still_reads(home: Path) -> None:
    """Runs written before the per-line layout (one indented object, rewritten after
    every case): a complete one reads as it is; a crashed one is closed out."""
    folder = home / "suite-runs"
    folder.mkdir(parents=True)
    done = dict(_run(run_process(), [_case(0), _case(1)], 2), status="complete",
                run_id="20261201-100000-0001")  # fmt: skip
    (folder / f"{done['run_id']}.json").write_text(json_text(done, indent=1) + "\n")
    dead = dict(_run(_dead_process(), [_case(0)], 3), run_id="20261201-100000-0002")
    (folder / f"{dead['run_id']}.json").write_text(json_text(dead, indent=1) + "\n")
    assert load_run(done["run_id"], home) == done
    assert main(["suite", "show", done["run_id"]]) == 0
    crashed = load_run(dead["run_id"], home)
    assert crashed["status"] == "crashed" and crashed["cases"] == dead["cases"]
    again = json.loads((folder / f"{dead['run_id']}.json").read_text(encoding="utf-8"))
    assert again["status"] == "crashed" and again["summary"]["ran"] == 1
