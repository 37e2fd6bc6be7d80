"""``--baseline``: an injected latency regression and a pass-rate drop fail the run with a
table of deltas; a run compared with itself passes."""

from __future__ import annotations

import json
from pathlib import Path

from app.suite.baseline import compare
from tests.suite_helpers import SIM_TIMING, run_cli, run_json

SUITE = """\
name: gate
seed: 3
lead_ms: 200
idle_ms: 400
conversations:
  - id: weather
    turns:
      - say: {{en: "What is the weather in Paris today", es: "Qué tiempo hace en París hoy"}}
        simulate:
          reply: {{en: "It is sunny in Paris today.", es: "Hace sol en París hoy."}}
        expect:
          heard: {{max_wer: 0.2}}
matrix:
  language: [en-US, es-ES]
simulator:
  timing: {timing}
  rules: {rules}
"""

SLOWER_EN_WORSE_ES = """
    - when: {language: en}
      first_audio_ms: 1500
    - when: {language: es}
      word_errors: 4"""


def test_baseline_gate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    base_file = tmp_path / "base.yaml"
    base_file.write_text(SUITE.format(timing=SIM_TIMING, rules="[]"), encoding="utf-8")
    first = run_cli(["suite", "run", str(base_file), "--parallel", "2", "--json"], home)
    assert first.returncode == 0, first.stderr
    base = run_json(first)
    saved = tmp_path / "base.json"
    saved.write_text(first.stdout, encoding="utf-8")

    # A run compared with itself: every delta 0, nothing regresses.
    rows = compare(base, base, 10.0)
    assert rows and not any(r["regression"] for r in rows)
    assert {r["delta_pct"] for r in rows if r["delta_pct"] is not None} == {0.0}

    # The same suite again, gated on the stored run (by id): passes.
    again = run_cli(
        ["suite", "run", str(base_file), "--parallel", "2", "--baseline", base["run_id"],
         "--max-regression", "60"],
        home,
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "baseline comparison" in again.stdout and "REGRESSION" not in again.stdout

    # Slower English, worse hearing in Spanish: both regress against the --json file.
    worse_file = tmp_path / "worse.yaml"
    worse_file.write_text(
        SUITE.format(timing=SIM_TIMING, rules=SLOWER_EN_WORSE_ES), encoding="utf-8"
    )
    worse = run_cli(
        ["suite", "run", str(worse_file), "--parallel", "2", "--json", "--baseline", str(saved)],
        home,
    )
    assert worse.returncode == 1, worse.stderr
    run = run_json(worse)
    gate = run["summary"]["baseline"]
    assert gate["regressed"] and gate["max_regression_pct"] == 10.0
    flagged = {(r["language"], r["figure"]) for r in gate["rows"] if r["regression"]}
    assert ("en-US", "v2v_p95_ms") in flagged
    assert ("es-ES", "pass_rate") in flagged
    en_v2v = next(
        r for r in gate["rows"] if r["language"] == "en-US" and r["figure"] == "v2v_p95_ms"
    )
    assert en_v2v["current"] - en_v2v["baseline"] > 1000  # the injected 1.35 s
    assert "REGRESSION" in worse.stderr  # the delta table (stdout holds only the JSON)
    stored = json.loads((home / "suite-runs" / f"{run['run_id']}.json").read_text())
    assert stored["summary"]["baseline"]["regressed"] is True
