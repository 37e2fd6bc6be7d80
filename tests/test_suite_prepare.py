"""Preparing a suite grows with its distinct audio, not with its cases: each probe is
rendered once per (probe, conditions) and shared by every case that plays it, each
simulator scenario is built once per cell and named per case, and one line says what is
being prepared before the work starts."""

from __future__ import annotations

from pathlib import Path

from app.bridge.providers import plan_provider
from app.profile import load_profile
from app.suite.expand import expand
from app.suite.load import load_suite
from app.suite.runner import RunSettings, SuiteRunner
from tests.suite_helpers import THANKS_REPLY, THANKS_SAY

SUITE = f"""\
name: shared
repeat: 3
conversations:
  - id: a
    turns:
      - say: {THANKS_SAY}
        simulate: {{reply: {THANKS_REPLY}}}
      - say: {{en: "Goodbye", es: "Adiós"}}
        simulate: {{reply: {THANKS_REPLY}}}
  - id: b
    turns:
      - say: {THANKS_SAY}
matrix:
  language: [en-GB, es-ES]
  noise: [clean, white@20]
"""


def test_prepare_shares_audio_and_scenarios(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE, encoding="utf-8")
    suite = load_suite(str(path))
    cases = expand(suite)
    assert len(cases) == 2 * 2 * 2 * 3  # conversations x languages x noise x repeat
    plan, profile = plan_provider("sim", load_profile(suite.profile), None, None)
    runner = SuiteRunner(
        suite, cases, profile, plan,
        RunSettings(2, tmp_path / "home", cache_dir=tmp_path / "cache"), "run",
    )  # fmt: skip
    lines: list[str] = []
    prepared = runner.prepare(notify=lines.append)
    # Distinct audio: 2 languages x 2 noise x 2 texts ("thanks" shared by a and b).
    assert lines == ["preparing 24 case(s): 8 distinct probe(s) and 8 simulator scenario(s)"]
    samples = {id(p.samples) for item in prepared for p in item.probes}
    assert len(samples) == 8
    by_id = {item.case.id: item for item in prepared}
    first, again = by_id["a/es-ES/white@20/wideband#1"], by_id["a/es-ES/white@20/wideband#3"]
    assert first.probes is again.probes  # repeats play the very same audio
    thanks_b = by_id["b/es-ES/white@20/wideband#2"].probes[0]
    assert thanks_b is first.probes[0]  # a line two conversations share is rendered once
    assert first.probes[0].samples is not by_id["a/es-ES/clean/wideband#1"].probes[0].samples
    # Each case's scenario carries its own name over the shared turns.
    assert first.scenario is not None and again.scenario is not None
    assert first.scenario.name == first.case.id and again.scenario.name == again.case.id
    assert first.scenario.turns is again.scenario.turns
    assert [t.hears for t in first.scenario.turns] == ["Muchas gracias", "Adiós"]
