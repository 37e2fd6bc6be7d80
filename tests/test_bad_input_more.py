"""More bad input: alias bombs, oversize tool results, unwritable outputs, device files,
hand-edited session files, a closed stdout, NUL bytes and absurd sample rates.

Every case runs the real CLI in a subprocess (or the real component) and expects one
line on stderr and exit code 2 (0 for a reader that went away), never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from app.audio.resample import StreamResampler, resample
from app.audio.wavio import write_wav
from app.clock import MONOTONIC
from app.errors import ConfigError
from app.events import TurnCompleted
from app.metrics.records import TurnRecord
from app.profile import ToolImpl, ToolSpec
from app.store.writer import SessionWriter
from app.tools import ToolRunner
from app.tools.runner import MAX_RESULT_BYTES
from tests.conftest import REPO, TIME_SCALE

MEMORY_LIMIT = 1536 << 20  # a runaway read fails fast instead of eating the machine


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(home: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {
        "VOICEPROBE_HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
        preexec_fn=_limit_memory,
        **kw,  # type: ignore[arg-type]
    )


def assert_one_line(proc: subprocess.CompletedProcess[str], *words: str, code: int = 2) -> str:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    p = tmp_path / "good.wav"
    t = np.arange(16000) / 16000
    write_wav(p, (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16), 16000)
    return p


TINY_SCENARIO = 'name: tiny\nturns:\n  - hears: "Hi."\n    reply: "Hello."\n'


# --- item 5: alias bombs and oversize values ------------------------------------------------

_LEVELS = "abcdefghi"


def _bomb(indent: str) -> str:
    lines = [f'{indent}a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip(_LEVELS, _LEVELS[1:], strict=False):
        lines.append(f"{indent}{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.serial  # a CPU-time bound
def test_profile_alias_bomb_is_refused_quickly(home: Path, tmp_path: Path, wav: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(
        "name: bomb\ntools:\n  - name: t\n    impl:\n      type: mock\n      result:\n"
        + _bomb("        ")
    )
    t0 = time.monotonic()
    proc = run_cli(home, "call", "--input", str(wav), "--profile", str(bomb))
    elapsed = time.monotonic() - t0
    assert_one_line(proc, "bomb.yaml")
    assert elapsed < 2.0 * TIME_SCALE, elapsed
    assert not (home / "sessions").exists() or not any((home / "sessions").iterdir())


@pytest.mark.serial  # a CPU-time bound
def test_scenario_alias_bomb_is_refused_quickly(home: Path, tmp_path: Path, wav: Path) -> None:
    bomb = tmp_path / "sbomb.yaml"
    bomb.write_text(
        "turns:\n  - hears: hi\n    tool_call:\n      name: t\n      arguments:\n"
        + _bomb("        ")
    )
    t0 = time.monotonic()
    proc = run_cli(home, "call", "--input", str(wav), "--scenario", str(bomb))
    elapsed = time.monotonic() - t0
    assert_one_line(proc, "sbomb.yaml")
    assert elapsed < 2.0 * TIME_SCALE, elapsed


@pytest.mark.parametrize(
    ("flag", "text"),
    [("--scenario", TINY_SCENARIO + "name: other\n"),
     ("--profile", "name: p\nvoice: alloy\nvoice: echo\n")],
)
def test_a_key_given_twice_is_refused(
    home: Path, tmp_path: Path, wav: Path, flag: str, text: str
) -> None:
    """YAML would keep the second value without a word: one line naming the key and its
    line, exit 2, no call."""
    f = tmp_path / "twice.yaml"
    f.write_text(text)
    proc = run_cli(home, "call", "--input", str(wav), flag, str(f))
    line = assert_one_line(proc, "twice.yaml", "appears twice")
    assert "line 5" in line or "line 3" in line, line
    assert not list(home.glob("**/session.json"))


def test_overlong_instructions_are_refused(home: Path, tmp_path: Path, wav: Path) -> None:
    p = tmp_path / "long.yaml"
    p.write_text("name: long\ninstructions: " + "x" * 200_000 + "\n")
    proc = run_cli(home, "call", "--input", str(wav), "--profile", str(p))
    assert_one_line(proc, "long.yaml", "instructions")


def test_oversize_mock_result_is_an_error() -> None:
    tool = ToolSpec(name="big", impl=ToolImpl(type="mock", result={"blob": "x" * 200_000}))
    res = asyncio.run(ToolRunner((tool,), 5, MONOTONIC).run("c1", "big", "{}"))
    assert res.status == "error"
    assert len(res.output.encode()) < 1000
    assert "too large" in json.loads(res.output)["error"]


class _BigHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps({"blob": "y" * (MAX_RESULT_BYTES * 2)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def big_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _BigHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/big"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_oversize_http_result_is_an_error(big_server: str) -> None:
    tool = ToolSpec(name="crm", impl=ToolImpl(type="http", url=big_server, timeout_ms=5000))
    res = asyncio.run(ToolRunner((tool,), 5, MONOTONIC).run("c1", "crm", "{}"))
    assert res.status == "error", res.output[:200]
    assert len(res.output.encode()) < 1000


# --- item 11: one line instead of a traceback ------------------------------------------------


def test_sample_out_is_a_directory(home: Path, tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_SCENARIO)
    out = tmp_path / "adir"
    out.mkdir()
    proc = run_cli(home, "sample", "--scenario", str(tmp_path / "tiny.yaml"), "--out", str(out))
    assert_one_line(proc, str(out))


def test_sample_out_under_a_file(home: Path, tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_SCENARIO)
    blocker = tmp_path / "plain.txt"
    blocker.write_text("not a folder")
    out = blocker / "x.wav"
    proc = run_cli(home, "sample", "--scenario", str(tmp_path / "tiny.yaml"), "--out", str(out))
    assert_one_line(proc, "x.wav")


def test_sample_out_in_proc(home: Path, tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(TINY_SCENARIO)
    proc = run_cli(
        home, "sample", "--scenario", str(tmp_path / "tiny.yaml"), "--out", "/proc/x/y.wav"
    )
    assert_one_line(proc, "/proc/x/y.wav")


@pytest.mark.parametrize("command", ["call", "sim"])
@pytest.mark.parametrize("where", ["missing/t.jsonl", "."])
def test_truth_log_that_cannot_be_written(
    home: Path, tmp_path: Path, wav: Path, command: str, where: str
) -> None:
    """A truth path in a missing folder, or a folder: one line naming it, no session (and
    not blamed on the simulator's socket)."""
    truth = tmp_path / where
    args = ["--input", str(wav)] if command == "call" else ["--port", "0"]
    proc = run_cli(home, command, *args, "--truth", str(truth))
    assert_one_line(proc, "truth log")
    assert str(truth) in proc.stderr and "listen" not in proc.stderr
    assert not list(home.glob("**/session.json"))


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_call_input_is_a_device(home: Path, device: str) -> None:
    proc = run_cli(home, "call", "--input", device)
    assert_one_line(proc, device)


def test_call_input_is_a_fifo(home: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    proc = run_cli(home, "call", "--input", str(fifo))
    assert_one_line(proc, "pipe.wav")


@pytest.mark.parametrize("rate", [100, 199, 999, 400_000])
def test_call_input_with_an_absurd_rate(home: Path, tmp_path: Path, rate: int) -> None:
    p = tmp_path / f"r{rate}.wav"
    write_wav(p, (1000 * np.ones(max(rate // 2, 10))).astype(np.int16), rate)
    proc = run_cli(home, "call", "--input", str(p))
    assert_one_line(proc, p.name, f"{rate} Hz")


@pytest.mark.parametrize(("a", "b"), [(100, 16000), (16000, 150), (16000, 500_000)])
def test_resampler_refuses_absurd_rates(a: int, b: int) -> None:
    bad = a if not 1000 <= a <= 384_000 else b
    with pytest.raises(ConfigError, match=f"{bad} Hz"):
        StreamResampler(a, b)
    with pytest.raises(ConfigError, match=f"{bad} Hz"):
        resample(np.zeros(100, dtype=np.int16), a, b)


def _session(home: Path) -> tuple[str, Path]:
    turn = {
        "index": 0,
        "user_transcript": "hi",
        "agent_transcript": "hello",
        "interrupted": False,
        "spans": {"voice_to_voice": {"start_ns": 0, "end_ns": 10**9, "ms": 1000.0}},
        "tool_calls": [],
    }
    w = SessionWriter(home, "20261127-120000-beef", {"provider": "sim", "model": "m"})
    w.append_event(TurnCompleted(t_ns=1, turn=TurnRecord.from_dict(turn)))
    w.write_turns([turn])
    w.finish("complete")
    return w.session_id, w.dir


BAD_TURNS = {
    "invalid-json": '[{"index": 0,',
    "not-a-list": '{"turns": []}',
    "spans-a-list": '[{"index": 0, "spans": [1, 2], "tool_calls": []}]',
    "ms-a-string": '[{"index": 0, "spans": {"voice_to_voice": {"start_ns": 0, "ms": "fast"}}}]',
    "transcript-a-number": '[{"index": 0, "user_transcript": 5, "spans": {}}]',
    "tool-calls-junk": '[{"index": 0, "spans": {}, "tool_calls": [7]}]',
    "index-missing": '[{"spans": {}}]',
}


@pytest.mark.parametrize("content", BAD_TURNS.values(), ids=BAD_TURNS.keys())
def test_hand_edited_turns_json(home: Path, tmp_path: Path, content: str) -> None:
    sid, folder = _session(home)
    (folder / "turns.json").write_text(content)
    assert_one_line(run_cli(home, "sessions", "show", sid), "turns.json")
    assert_one_line(run_cli(home, "sessions", "show", sid, "--json"), "turns.json")
    out = tmp_path / "r.html"
    assert_one_line(run_cli(home, "sessions", "export", sid, "--html", str(out)), "turns.json")
    assert not out.exists()
    (home / "sessions.db").unlink()  # list rebuilds the index from the folders
    listed = run_cli(home, "sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stderr


def test_reader_gone_is_a_quiet_exit(home: Path) -> None:
    _session(home)
    r, w = os.pipe()
    os.close(r)  # nobody will ever read: every write gets EPIPE
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", "sessions", "list"],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=REPO,
            env={"VOICEPROBE_HOME": str(home), "PATH": "/usr/bin:/bin"},
        )
    finally:
        os.close(w)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_nul_in_scenario_text(home: Path, tmp_path: Path) -> None:
    p = tmp_path / "nul.yaml"
    p.write_text('turns:\n  - hears: "Hello\\0there"\n    reply: "ok"\n')
    assert_one_line(run_cli(home, "sample", "--scenario", str(p)), "nul.yaml", "turns[0].hears")
    q = tmp_path / "nul2.yaml"
    q.write_text('turns:\n  - hears: "Hello"\n    reply: "o\\0k"\n')
    assert_one_line(run_cli(home, "sim", "--scenario", str(q)), "nul2.yaml", "turns[0].reply")


def test_tts_survives_odd_text() -> None:
    from app.sim.tts import synthesize

    out = synthesize("a\0b\ud800c", rate=16000)
    assert out.dtype == np.int16


def _line_starts(proc: subprocess.CompletedProcess[str]) -> list[float]:
    """Start of each caller line, from ``sample``'s stderr (``  0.800–  2.464 s  text``)."""
    assert proc.returncode == 0, proc.stderr
    return [float(line.split("–")[0]) for line in proc.stderr.splitlines() if "–" in line]


def test_sample_barge_in_counts_turns_from_one(home: Path, tmp_path: Path) -> None:
    """TURN is numbered as every table numbers turns: ``1:200`` moves the line after turn
    1 (the second line) into the agent's first reply, and leaves the third alone."""
    plain = _line_starts(run_cli(home, "sample", "--out", str(tmp_path / "a.wav")))
    barged = _line_starts(
        run_cli(home, "sample", "--out", str(tmp_path / "b.wav"), "--barge-in", "1:200")
    )
    assert len(plain) == len(barged) == 4
    assert barged[1] < plain[1] - 1.0  # the second line now talks over the first reply
    assert barged[0] == plain[0]
    assert barged[2] - barged[1] == pytest.approx(plain[2] - plain[1], abs=0.01)


@pytest.mark.parametrize(("spec", "word"), [("0:100", "1-3"), ("4:100", "1-3"),
                                            ("1:99999999", "60000"), ("1", "TURN:MS")])
def test_sample_barge_in_out_of_range_is_one_line(
    home: Path, tmp_path: Path, spec: str, word: str
) -> None:
    proc = run_cli(home, "sample", "--out", str(tmp_path / "x.wav"), "--barge-in", spec)
    assert_one_line(proc, "--barge-in", word)
    assert not (tmp_path / "x.wav").exists()
