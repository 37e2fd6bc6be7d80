"""Bad input from the command line: exit code 2 and ONE line on stderr, never a traceback.

Each case runs the real CLI in a subprocess (docs/architecture.md#command-line-contract):
a missing or wrong WAV, a broken profile or scenario, a missing key, a misused flag, an
unknown command. A call to an endpoint nobody listens on is a failed call instead: exit 1 with a
clear error line.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.audio.wavio import wav_header, write_wav
from tests.conftest import REPO

KEY_VARS = ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")


def run_cli(home: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env.update(
        VOICEPROBE_HOME=str(home),
        # No keyring backend whatever the machine has: keys come from the env or nowhere.
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
        **env_extra,
    )
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """Good and bad input files for the cases below."""
    d = tmp_path / "in"
    d.mkdir()
    good = d / "good.wav"
    t = np.arange(16000) / 16000
    write_wav(good, (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16), 16000)
    (d / "text.wav").write_text("this is not audio\n")
    adpcm_fmt = struct.pack("<HHIIHH", 0x0002, 1, 16000, 8000, 256, 4) + b"\x02\x00\xf4\x01"
    adpcm = (
        b"RIFF" + struct.pack("<I", 4 + 8 + len(adpcm_fmt) + 8 + 256) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(adpcm_fmt)) + adpcm_fmt
        + b"data" + struct.pack("<I", 256) + bytes(256)
    )  # fmt: skip
    (d / "adpcm.wav").write_bytes(adpcm)
    (d / "empty.wav").write_bytes(wav_header(1, 16000, 0))
    (d / "zero.wav").write_bytes(b"")
    (d / "bad-yaml.yaml").write_text("name: [unclosed\n  voice: x\n")
    (d / "unknown-field.yaml").write_text("name: p\nvoise: marin\n")
    (d / "wrong-type.yaml").write_text("name: p\nturn_detection:\n  threshold: loud\n")
    (d / "bad-scenario.yaml").write_text("turns:\n  - reply: no hears here\n")
    return {p.stem: p for p in d.iterdir()}


def _call(inputs: dict[str, Path], *extra: str, wav: str = "good") -> list[str]:
    return ["call", "--input", str(inputs[wav]), *extra]


# (id, argv builder, words the one stderr line must contain, extra env)
CASES = [
    (
        "missing-wav",
        lambda i: ["call", "--input", str(i["good"].with_name("nope.wav"))],
        ["nope.wav", "not found"],
        {},
    ),
    ("text-as-wav", lambda i: _call(i, wav="text"), ["text.wav", "not a WAV"], {}),
    ("adpcm-wav", lambda i: _call(i, wav="adpcm"), ["adpcm.wav", "ADPCM"], {}),
    ("empty-wav", lambda i: _call(i, wav="empty"), ["empty.wav", "no audio"], {}),
    ("zero-byte-wav", lambda i: _call(i, wav="zero"), ["zero.wav", "not a WAV"], {}),
    (
        "profile-bad-yaml",
        lambda i: _call(i, "--profile", str(i["bad-yaml"])),
        ["bad-yaml.yaml", "YAML"],
        {},
    ),
    (
        "profile-unknown-field",
        lambda i: _call(i, "--profile", str(i["unknown-field"])),
        ["unknown-field.yaml", "voise", "unknown field"],
        {},
    ),
    (
        "profile-wrong-type",
        lambda i: _call(i, "--profile", str(i["wrong-type"])),
        ["wrong-type.yaml", "turn_detection.threshold"],
        {},
    ),
    (
        "profile-missing-name",
        lambda i: _call(i, "--profile", "no_such_profile"),
        ["no profile named", "no_such_profile"],
        {},
    ),
    (
        "profile-missing-file",
        lambda i: _call(i, "--profile", "/nonexistent/p.yaml"),
        ["/nonexistent/p.yaml", "not found"],
        {},
    ),
    (
        "scenario-malformed",
        lambda i: _call(i, "--scenario", str(i["bad-scenario"])),
        ["bad-scenario.yaml", "turns[0].hears"],
        {},
    ),
    (
        "scenario-missing",
        lambda i: _call(i, "--scenario", "/nonexistent/s.yaml"),
        ["/nonexistent/s.yaml", "not found"],
        {},
    ),
    ("openai-no-key", lambda i: _call(i, "--provider", "openai"), ["openai", "OPENAI_API_KEY"], {}),
    ("gemini-no-key", lambda i: _call(i, "--provider", "gemini"), ["gemini", "GEMINI_API_KEY"], {}),
    (
        "scenario-with-real-provider",
        lambda i: _call(i, "--provider", "openai", "--scenario", str(i["bad-scenario"])),
        ["--scenario", "sim"],
        {"OPENAI_API_KEY": "sk-test-not-used-0000"},
    ),
    ("unknown-provider", lambda i: _call(i, "--provider", "skype"), ["skype"], {}),
    ("url-with-sim", lambda i: _call(i, "--url", "ws://127.0.0.1:1/v1"), ["--url"], {}),
    ("sim-port-too-big", lambda i: ["sim", "--port", "70000"], ["--port", "70000"], {}),
    ("sim-port-negative", lambda i: ["sim", "--port", "-1"], ["--port"], {}),
    ("sim-port-not-number", lambda i: ["sim", "--port", "http"], ["--port", "http"], {}),
    (
        "sim-bad-scenario",
        lambda i: ["sim", "--scenario", str(i["bad-scenario"])],
        ["bad-scenario.yaml", "hears"],
        {},
    ),
    ("unknown-subcommand", lambda i: ["frobnicate"], ["frobnicate"], {}),
    ("call-without-input", lambda i: ["call"], ["--input"], {}),
    ("sessions-show-unknown", lambda i: ["sessions", "show", "nope"], ["nope"], {}),
    # A limit past SQLite's integers was a traceback; a negative one listed everything.
    ("sessions-list-huge-limit", lambda i: ["sessions", "list", "--limit", "9" * 20],
     ["--limit", "9" * 20], {}),  # fmt: skip
    ("sessions-list-negative-limit", lambda i: ["sessions", "list", "--limit", "-5"],
     ["--limit", "-5"], {}),  # fmt: skip
    ("suite-list-zero-limit", lambda i: ["suite", "list", "--limit", "0"], ["--limit"], {}),
    # A nan limit never fires (it was taken).
    ("suite-run-nan-seconds", lambda i: ["suite", "run", "s.yaml", "--max-seconds", "nan"],
     ["--max-seconds", "nan"], {}),  # fmt: skip
]


@pytest.mark.parametrize(
    ("argv", "words", "env"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_2_with_one_line(
    home: Path,
    inputs: dict[str, Path],
    argv: Callable[[dict[str, Path]], list[str]],
    words: list[str],
    env: dict[str, str],
) -> None:
    proc = run_cli(home, *argv(inputs), **env)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_sim_port_in_use(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli(home, "sim", "--port", str(port))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_unreachable_url_is_a_failed_call(
    home: Path, inputs: dict[str, Path], provider: str
) -> None:
    port = _closed_port()
    proc = run_cli(
        home,
        *_call(inputs, "--provider", provider, "--url", f"ws://127.0.0.1:{port}/v1"),
        OPENAI_API_KEY="sk-test-unreachable-0000",
        GEMINI_API_KEY="gm-test-unreachable-0000",
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert f"127.0.0.1:{port}" in errors[0] and "connection refused" in errors[0], errors[0]
