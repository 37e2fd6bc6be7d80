"""A suite against the simulator: 6 languages (Hindi, Arabic and Mandarin among them), two
noise conditions and the telephone line. Each kind of expectation passes in one case and
fails in another by design (the suite's simulator rules), and the JSON, the JUnit XML
(parsed back with junitparser), the store and the exit code all say so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml

from tests.suite_helpers import (
    SIM_TIMING,
    THANKS_REPLY,
    THANKS_SAY,
    WEATHER_AFTER,
    WEATHER_SAY,
    case_checks,
    run_cli,
    run_json,
)

#: Twelve calls at once: run alone, so their load skews no other test's timing.
pytestmark = pytest.mark.serial

LONG_FR = (
    "Désolé, je ne sais pas, mais je peux vous raconter une très longue histoire sur la "
    "ville, ses musées, ses jardins, ses ponts et ses cafés pendant un bon moment."
)

SUITE = f"""\
name: coverage-e2e
seed: 7
lead_ms: 200
idle_ms: 500
conversations:
  - id: weather
    turns:
      - say: {WEATHER_SAY}
        timeout_ms: 5000
        simulate:
          tool_call: {{name: get_weather, arguments: {{city: Paris}}}}
          after_result: {WEATHER_AFTER}
        expect:
          heard: {{max_wer: 0.3}}
          reply_language: true
          says: ["Paris|París|पेरिस|باريس|巴黎"]
          not_says: ["désolé|sorry"]
          tool: {{name: get_weather, arguments: {{city: "^Paris$"}}, count: 1}}
          v2v_ms: {{max: 1500}}
          ttfb_ms: {{max: 1000}}
          no_barge_in: true
      - say: {THANKS_SAY}
        simulate:
          reply: {THANKS_REPLY}
matrix:
  language: [en-AU, es-MX, hi-IN, ar-EG, zh-CN, fr-FR]
  noise: [clean, white@20]
  line: [g711]
expect_call: {{v2v_p95_ms: {{max: 1500}}, errors: 0, completed: true}}
simulator:
  timing: {SIM_TIMING}
  rules:
    - when: {{language: hi}}
      word_errors: 3
    - when: {{language: ar}}
      reply_in: en
    - when: {{language: zh, turn: 1}}
      first_audio_ms: 1600
    - when: {{language: es, turn: 1}}
      skip_tool: true
      error: rate_limit_exceeded
    - when: {{language: fr, turn: 1}}
      reply: "{LONG_FR}"
"""

# Which check each language is designed to fail (every other check passes).
DESIGNED_FAILURES = {
    "en-AU": set(),
    "hi-IN": {"heard"},
    "ar-EG": {"reply_language"},
    "zh-CN": {"v2v_ms", "ttfb_ms", "v2v_p95_ms"},
    "es-MX": {"tool", "errors"},
    "fr-FR": {"says", "not_says", "no_barge_in", "tool"},
}


def test_suite_against_simulator(tmp_path: Path) -> None:
    suite = tmp_path / "coverage.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    junit = tmp_path / "junit.xml"
    home = tmp_path / "home"
    proc = run_cli(
        ["suite", "run", str(suite), "--parallel", "6", "--json", "--junit", str(junit),
         "--tag", "tester=ci"],
        home,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    run = run_json(proc)
    assert set(run) == {"run_id", "suite", "cases", "summary"}
    assert run["suite"] == "coverage-e2e"
    assert len(run["cases"]) == 12
    keys = {"id", "conversation", "language", "accent", "noise", "line", "repeat",
            "session_id", "passed", "checks", "wer", "reply_language", "v2v_p50_ms",
            "v2v_p95_ms", "cost_usd", "error"}  # fmt: skip
    for case in run["cases"]:
        assert keys <= set(case), case["id"]
        assert case["line"] == "g711" and case["noise"] in ("clean", "white@20")
        for check in case["checks"]:
            assert set(check) == {"turn", "name", "passed", "value", "limit", "message"}
        failed = {c["name"] for c in case["checks"] if not c["passed"]}
        assert failed == DESIGNED_FAILURES[case["language"]], (case["id"], case["checks"])
        assert case["passed"] == (not failed)
        assert case["error"] is None, case["error"]
    # Every kind of expectation passed somewhere and failed somewhere.
    kinds = {"heard", "reply_language", "says", "not_says", "tool", "v2v_ms", "ttfb_ms",
             "no_barge_in", "v2v_p95_ms", "errors"}  # fmt: skip
    for kind in kinds:
        outcomes = {c["passed"] for case in run["cases"] for c in case["checks"]
                    if c["name"] == kind}  # fmt: skip
        assert outcomes == {True, False}, kind
    # The figures behind the designed failures.
    hi = case_checks(run, "hi-IN")["heard"]
    assert all(c["turn"] == 1 and abs(c["value"] - 0.5) < 1e-9 for c in hi)  # 3 of 6 words
    ar = case_checks(run, "ar-EG")["reply_language"]
    assert all(c["value"] == "en" and c["limit"] == "ar" for c in ar)
    zh = case_checks(run, "zh-CN")["ttfb_ms"]
    assert all(c["value"] > 1000 for c in zh)
    assert all(c["turn"] is None for c in case_checks(run, "zh-CN")["v2v_p95_ms"])
    summary = run["summary"]
    assert summary["cases"] == 12 and summary["passed"] == 2
    assert summary["by_language"]["en-AU"]["pass_rate"] == 100.0
    assert summary["by_language"]["hi-IN"]["mean_wer"] > 0.2
    assert len(summary["table"]) == 12
    # JUnit: one testsuite per language, one testcase per case, a failure per failed check.
    xml = JUnitXml.fromfile(str(junit))
    suites = {s.name: s for s in xml}
    assert set(suites) == {f"coverage-e2e.{lang}" for lang in DESIGNED_FAILURES}
    for lang, designed in DESIGNED_FAILURES.items():
        ts = suites[f"coverage-e2e.{lang}"]
        cases = list(ts)
        assert len(cases) == 2
        for tc in cases:
            failures = [r for r in tc.result if isinstance(r, Failure)]
            assert {f.type for f in failures} == designed, tc.name
            assert not [r for r in tc.result if isinstance(r, Error)]
            for f in failures:
                assert f.type in f.message
    hi_failure = next(r for tc in suites["coverage-e2e.hi-IN"] for r in tc.result)
    assert "WER 0.50" in hi_failure.message
    # The store: the run, and every case's session tagged and closed.
    stored = json.loads((home / "suite-runs" / f"{run['run_id']}.json").read_text())
    assert stored["status"] == "complete" and len(stored["cases"]) == 12
    assert (home / "suite-runs" / f"{run['run_id']}.json").stat().st_mode & 0o777 == 0o600
    for case in run["cases"]:
        meta = json.loads((home / "sessions" / case["session_id"] / "session.json").read_text())
        tags = meta["tags"]
        assert f"language={case['language']}" in tags and f"line={case['line']}" in tags
        assert f"noise={case['noise']}" in tags and "suite=coverage-e2e" in tags
        assert "tester=ci" in tags and f"case={case['id']}" in tags
        assert meta["status"] == "complete"
    listed = run_cli(["suite", "list"], home, timeout=30)
    assert listed.returncode == 0 and run["run_id"] in listed.stdout
    shown = run_cli(["suite", "show", run["run_id"]], home, timeout=30)
    assert shown.returncode == 1 and "weather/hi-IN/clean/g711#1: turn 1 heard" in shown.stdout
