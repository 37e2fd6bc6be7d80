"""Bad suite input: one line naming file, line and field, exit 2, no call placed."""

from __future__ import annotations

import re
import struct
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


def _wav(tag: int = 1, channels: int = 1, rate: int = 16000, bits: int = 16,
         data: bytes = b"\x10\x00" * 1600) -> bytes:  # fmt: skip
    """A RIFF/WAVE file with the given fmt fields (a header may lie on purpose)."""
    align = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


BAD_WAVS = [
    # (what the file holds, words in the problem)
    (b"hello, I am a text file\n", "not a WAV file (no RIFF/WAVE header)"),
    (_wav(tag=2, bits=4), "unsupported WAV encoding: Microsoft ADPCM"),
    (_wav(bits=12), "unsupported 12-bit samples"),
    (_wav(data=b""), "WAV file has no audio"),
    (b"RIFF\x10\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "fmt chunk too short"),
    (b"", "not a WAV file"),
]


@pytest.mark.parametrize(("content", "problem"), BAD_WAVS)
def test_unusable_recording_is_one_line_exit_2(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str
) -> None:
    """A turn's ``file`` that is not a playable WAV is reported like every other bad value
    (file, line, field), at load time: nothing is prepared and no call placed."""
    (tmp_path / "rec.wav").write_bytes(content)
    suite = tmp_path / "suite.yaml"
    suite.write_text(GOOD.replace("      - say:", "      - file: rec.wav\n        say:", 1),
                     encoding="utf-8")  # fmt: skip
    code = main(["suite", "run", str(suite)])
    err = capsys.readouterr().err
    assert code == 2, err
    [line] = err.strip().splitlines()  # nothing prepared: no "preparing" line either
    wav = tmp_path / "rec.wav"
    assert line.startswith(
        f"voiceprobe: error: {suite}:5: {U}.file: file '{wav}' is not a usable recording: "
    ), line
    assert problem in line
    assert not (home / "sessions").exists() and not (home / "suite-runs").exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"not audio", "not a WAV file"), (_wav(data=b"\x00\x00" * 800), "digital silence")],
)
def test_unusable_noise_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str
) -> None:
    (tmp_path / "hum.wav").write_bytes(content)
    suite = tmp_path / "suite.yaml"
    suite.write_text(GOOD.replace("noise: [clean]", "noise: [clean, noise:hum.wav@10]"),
                     encoding="utf-8")  # fmt: skip
    assert main(["suite", "run", str(suite)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"voiceprobe: error: {suite}:10: matrix.noise[1]: file "), line
    assert "is not a usable noise file: " in line and problem in line


def test_recordings_of_every_accepted_format_load(tmp_path: Path) -> None:
    """8-bit, stereo, float, 8 kHz: the reader takes them, so the suite loads."""
    from app.suite.load import load_suite

    stereo8 = _wav(channels=2, bits=8, data=bytes([128, 160]) * 1600)
    float32 = _wav(tag=3, bits=32, data=struct.pack("<f", 0.25) * 1600)
    narrow = _wav(rate=8000)
    turns = ""
    for name, blob in (("a.wav", stereo8), ("b.wav", float32), ("c.wav", narrow)):
        (tmp_path / name).write_bytes(blob)
        turns += f'      - say: "Hello there"\n        file: {name}\n'
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: formats\nconversations:\n  - id: hello\n    turns:\n"
        + turns
        + "matrix:\n  language: [en-AU]\n",
        encoding="utf-8",
    )
    loaded = load_suite(suite)
    assert [t.file for t in loaded.conversations[0].turns] == [
        tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    ]  # fmt: skip
