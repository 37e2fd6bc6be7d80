"""A case whose call fails (connection refused) is a failed case with its error in the
JSON and the JUnit XML, the run goes on, and call-level checks (completed, errors, an
unknown cost) fail with clear messages; cost checks on known figures pass or fail."""

from __future__ import annotations

import socket
from pathlib import Path

from junitparser import Error, Failure, JUnitXml

from app.suite.checks import call_checks
from app.suite.model import Bounds, CallExpect
from tests.suite_helpers import run_cli, run_json

SUITE = """\
name: refused
conversations:
  - id: hello
    turns:
      - say: {en: "Hello there", de: "Hallo zusammen"}
matrix:
  language: [en-GB, de-DE]
expect_call: {completed: true, errors: 0, cost_usd: {max: 0.05}}
"""


def test_connection_refused_is_a_failed_case(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    junit = tmp_path / "junit.xml"
    proc = run_cli(
        ["suite", "run", str(suite), "--provider", "openai", "--url", f"ws://127.0.0.1:{port}",
         "--json", "--junit", str(junit), "--parallel", "2"],
        tmp_path / "home",
        timeout=90,
        env={"OPENAI_API_KEY": "sk-test-not-a-real-key"},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "sk-test-not-a-real-key" not in proc.stdout + proc.stderr
    run = run_json(proc)
    assert len(run["cases"]) == 2  # the run went on after the first failure
    for case in run["cases"]:
        assert case["status"] == "error" and not case["passed"]
        assert case["error"]["code"] and case["error"]["message"]
        checks = {c["name"]: c for c in case["checks"]}
        assert checks["completed"]["passed"] is False
        assert checks["errors"]["passed"] is False and checks["errors"]["value"] >= 1
        assert checks["cost_usd"]["passed"] is False
        assert "cost unknown" in checks["cost_usd"]["message"]
    xml = JUnitXml.fromfile(str(junit))
    for ts in xml:
        for tc in ts:
            errors = [r for r in tc.result if isinstance(r, Error)]
            assert len(errors) == 1 and errors[0].type
            assert {r.type for r in tc.result if isinstance(r, Failure)} >= {"completed"}


def test_cost_check_on_known_and_unknown_cost() -> None:
    expect = CallExpect(cost_usd=Bounds(max=0.05))
    cheap = call_checks(expect, {"cost_usd": 0.0123, "ok": True, "errors": []}, [])
    dear = call_checks(expect, {"cost_usd": 0.09, "ok": True, "errors": []}, [])
    unknown = call_checks(expect, {"ok": True, "errors": []}, [])
    assert cheap[0]["passed"] and cheap[0]["value"] == 0.0123
    assert not dear[0]["passed"] and "outside <= 0.05" in dear[0]["message"]
    assert not unknown[0]["passed"] and unknown[0]["value"] is None
