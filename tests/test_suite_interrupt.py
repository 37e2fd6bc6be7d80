"""Ctrl-C during a suite run: no new case starts, the running one is closed out as
interrupted, the partial run is written (JSON, JUnit, store) and the exit code is 130."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from junitparser import Error, JUnitXml

from tests.suite_helpers import SIM_TIMING, THANKS_REPLY, THANKS_SAY, start_cli

SUITE = f"""\
name: stop-me
lead_ms: 200
idle_ms: 400
conversations:
  - id: thanks
    turns:
      - say: {THANKS_SAY}
        simulate: {{reply: {THANKS_REPLY}}}
      - say: {THANKS_SAY}
        simulate: {{reply: {THANKS_REPLY}}}
matrix:
  language: [en-GB, es-ES, fr-FR]
simulator:
  timing: {SIM_TIMING}
"""


def test_ctrl_c_writes_the_partial_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    junit = tmp_path / "junit.xml"
    proc = start_cli(
        ["suite", "run", str(suite), "--parallel", "1", "--json", "--junit", str(junit)], home
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # one line per finished case (stderr is not a terminal)
            seen.append(line)
            if line.startswith("[1/3]"):
                break
        assert seen and seen[-1].startswith("[1/3]"), seen
        # Wait (on the store, with a deadline) until the second case's call has begun.
        deadline = time.monotonic() + 30
        while len(list((home / "sessions").glob("*/session.json"))) < 2:
            assert time.monotonic() < deadline, "the second case never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # the second case is running now
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    run = json.loads(out)
    statuses = [c["status"] for c in run["cases"]]
    assert statuses[0] == "passed" and "interrupted" in statuses and len(statuses) <= 2
    assert run["summary"]["interrupted"] is True and run["summary"]["planned"] == 3
    stopped = next(c for c in run["cases"] if c["status"] == "interrupted")
    assert stopped["error"]["code"] == "interrupted" and not stopped["passed"]
    stored = json.loads((home / "suite-runs" / f"{run['run_id']}.json").read_text())
    assert stored["status"] == "interrupted" and len(stored["cases"]) == len(statuses)
    xml = JUnitXml.fromfile(str(junit))
    errors = [r for ts in xml for tc in ts for r in tc.result if isinstance(r, Error)]
    assert [e.type for e in errors] == ["interrupted"]
    for meta_path in (home / "sessions").glob("*/session.json"):
        meta = json.loads(meta_path.read_text())
        assert meta["status"] != "running", meta_path
