"""Bad suite input: one line naming file, line and field, exit 2, no call placed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.cli import main

GOOD = """\
name: bad-input
conversations:
  - id: hello
    turns:
      - say: {en: "Hello there", es: "Hola amigo"}
        expect:
          v2v_ms: {max: 1500}
matrix:
  language: [en-AU, es-MX]
  noise: [clean]
"""

U = "conversations[0].turns[0]"
CASES = [
    # (replace this, with that, expected line, expected field, words in the problem)
    ("name: bad-input\n", "name: bad-input\n  oops: [\n", 2, None, "not valid YAML"),
    ("        expect:\n", "        expect:\n          sayz: [x]\n", 7,
     f"{U}.expect.sayz", "unknown key"),
    ("v2v_ms: {max: 1500}", "v2v_ms: {max: fast}", 7,
     f"{U}.expect.v2v_ms.max", "expected a number"),
    ("language: [en-AU, es-MX]", "language: [en-AU, qq-ZZ]", 9,
     "matrix.language[1]", "unknown language code"),
    ("noise: [clean]", "noise: [clean]\nvoices: {en-AU: en-nosuchvoice}", 9,
     "matrix.language[0]", "no espeak-ng voice"),
    ("      - say:", "      - file: missing.wav\n        say:", 5, f"{U}.file", "not found"),
    ("noise: [clean]", "noise: [clean, g711]", 10, "matrix.noise[1]", "line condition"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "line", "field", "problem"), CASES)
def test_bad_suite_is_one_line_exit_2(
    tmp_path: Path,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    old: str,
    new: str,
    line: int,
    field: str | None,
    problem: str,
) -> None:
    assert old in GOOD
    suite = tmp_path / "suite.yaml"
    suite.write_text(GOOD.replace(old, new, 1), encoding="utf-8")
    code = main(["suite", "run", str(suite)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    where = f"{suite}:{line}: " + (f"{field}: " if field else "")
    assert lines[0].startswith(f"voiceprobe: error: {where}"), lines[0]
    assert problem in lines[0]
    assert not (home / "sessions").exists() or not any((home / "sessions").iterdir())


def test_good_suite_validates(tmp_path: Path) -> None:
    from app.suite.expand import expand
    from app.suite.load import load_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text(GOOD, encoding="utf-8")
    cases = expand(load_suite(suite))
    assert [c.id for c in cases] == ["hello/en-AU/clean/wideband#1", "hello/es-MX/clean/wideband#1"]
    assert [c.turns[0].text for c in cases] == ["Hello there", "Hola amigo"]


def test_missing_suite_file_and_bad_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["suite", "run", str(tmp_path / "nope.yaml")]) == 2
    assert "suite file not found" in capsys.readouterr().err
    suite = tmp_path / "suite.yaml"
    suite.write_text(GOOD, encoding="utf-8")
    assert main(["suite", "run", str(suite), "--parallel", "0"]) == 2
    assert main(["suite", "run", str(suite), "--tag", "novalue"]) == 2
    assert main(["suite", "run", str(suite), "--baseline", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(re.match(r"voiceprobe(: error)?", e) for e in err)
