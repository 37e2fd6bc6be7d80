"""``voiceprobe sip answer | dial`` as a subprocess against real peers on loopback.

kamailio is the registrar (digest auth), baresip the far-end phone (playing a scripted
caller's speech through its ``aufile`` source and recording what it hears), and the
built-in simulator the agent, whose ground-truth log tells what it really heard and sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.conftest import REPO
from tests.sip_peers import (
    Kamailio,
    have,
    read_wav,
    registered,
    rms,
    run_baresip,
    run_kamailio,
    wait_until,
)

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(not have("kamailio", "baresip", "espeak-ng", "sox"),
                       reason="SIP peers not installed"),
]

PASSWORD = "cli-pw-4711"
ENTRY = (
    "import sys; from app.cli import main; from sip.cli import register; "
    "sys.exit(main(sys.argv[1:], extend=register))"
)
# The first demo turn and a short closing turn: a ~10 s call.
SCENARIO = """name: sip-two-turns
voice_rate: 175
turns:
  - hears: "Hello, can you hear me?"
    reply: "Yes, I can hear you clearly. How can I help?"
  - hears: "Thanks, goodbye."
    reply: "You're welcome. Goodbye!"
"""
ONE_TURN = """name: sip-one-turn
voice_rate: 175
turns:
  - hears: "Hello, can you hear me?"
    reply: "Yes, I can hear you clearly."
"""


def start_cli(tmp: Path, *args: str, password: str = PASSWORD) -> subprocess.Popen[str]:
    env = dict(os.environ, VOICEPROBE_HOME=str(tmp / "home"), VOICEPROBE_SIP_PASSWORD=password)
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"voiceprobe did not exit: {err[-3000:]}") from None
    assert proc.returncode != 134, f"pjsua2 aborted: {err[-3000:]}"
    return proc.returncode, out, err


def bursts(x: np.ndarray, rate: int, threshold: float = 300.0, gap_ms: int = 700) -> list[float]:
    """Durations (s) of the sound bursts in ``x``: 20 ms blocks above ``threshold``
    merged across silences shorter than ``gap_ms``."""
    n = rate // 50
    blocks = len(x) // n
    b = x[: blocks * n].astype(np.float64).reshape(blocks, n)
    loud = np.nonzero(np.sqrt((b * b).mean(axis=1)) > threshold)[0]
    out: list[float] = []
    if len(loud) == 0:
        return out
    start = prev = int(loud[0])
    for i in loud[1:]:
        if (i - prev) * 20 > gap_ms:
            out.append((prev - start + 1) * 0.02)
            start = int(i)
        prev = int(i)
    out.append((prev - start + 1) * 0.02)
    return out


@pytest.fixture(scope="module")
def registrar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with run_kamailio(tmp_path_factory.mktemp("kamailio"), PASSWORD) as k:
        yield k


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("scripts")
    files = {}
    for name, text in (("two", SCENARIO), ("one", ONE_TURN)):
        sc = d / f"{name}.yaml"
        sc.write_text(text)
        wav = d / f"{name}-caller8k.wav"
        write_caller_wav(load_scenario(str(sc)), wav, rate=8000)
        files[name], files[f"{name}-wav"] = sc, wav
    return files


def _truth(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _received(peer: Any) -> np.ndarray:
    wait_until(lambda: bool(peer.recordings("dec")), 5.0, "baresip recording")
    x, rate = read_wav(peer.recordings("dec")[-1])
    assert rate == 8000
    return x


def test_answer_registers_and_bridges_a_call_from_baresip(
    tmp_path: Path, registrar: Kamailio, scripts: dict[str, Path]
) -> None:
    truth_path = tmp_path / "truth.jsonl"
    proc = start_cli(
        tmp_path, "sip", "answer", "--uri", registrar.aor("vp"),
        "--registrar", f"sip:{registrar.domain}", "--calls", "1", "--provider", "sim",
        "--scenario", str(scripts["two"]), "--truth", str(truth_path), "--json",
        "--timeout", "20", "--out", str(tmp_path / "data"),
    )
    try:
        wait_until(lambda: proc.poll() is not None or registered(registrar, "vp"),
                   10.0, "voiceprobe registration")
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        with run_baresip(tmp_path / "bob", scripts["two-wav"], user="bob",
                         registrar=registrar) as bob:
            bob.dial(registrar.aor("vp"))
            bob.wait_event("CALL_ESTABLISHED", 10.0)
            bob.wait_event("CALL_CLOSED", 30.0)  # baresip hangs up when its WAV ends
            received = _received(bob)
        rc, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, err[-3000:]
    lines = out.splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    print(json.dumps({k: summary[k] for k in ("sip_bridge_delay", "cpu", "call_quality")}))
    # The same keys as `voiceprobe call --json`, plus the SIP figures.
    for key in ("session_id", "session_dir", "provider", "turns", "errors", "call_quality"):
        assert key in summary
    assert summary["ok"] and summary["errors"] == [] and summary["provider"] == "sim"
    assert summary["reason"] == "remote_hangup"
    turns = summary["turns"]
    assert [t["user_transcript"] for t in turns] == ["Hello, can you hear me?",
                                                     "Thanks, goodbye."]
    assert all(t["agent_transcript"] and "voice_to_voice" in t["spans"] for t in turns)
    q = summary["call_quality"]
    assert q["codec"] == "PCMU/8000" and q["mos"] > 3.5 and q["loss_pct"] < 1.0
    # The simulator heard each utterance once: a speech_started/stopped pair each.
    truth = _truth(truth_path)
    started = [r for r in truth if r["event"] == "speech_started"]
    stopped = [r for r in truth if r["event"] == "speech_stopped"]
    assert len(started) == len(stopped) == 2
    # baresip heard both replies, each about as long as the audio the simulator sent.
    sent_s = [r["ms"] / 1000 for r in truth if r["event"] == "audio_sent"]
    assert len(sent_s) == 2
    assert rms(received) > 300
    heard = bursts(received, 8000)
    assert len(heard) == 2, heard
    for got, want in zip(heard, sent_s, strict=True):
        assert got == pytest.approx(want, rel=0.25)
    # Bridge-added delay on the SIP path, both ways, from clock-thread stamps.
    delay = summary["sip_bridge_delay"]
    assert delay["sip_in_to_provider"]["count"] > 100
    assert delay["provider_to_sip_out"]["count"] == 2
    assert delay["sip_in_to_provider"]["p50_ms"] < 20
    assert 0 < delay["provider_to_sip_out"]["p50_ms"] < 120
    assert summary["sip"]["callback_errors"] == 0
    assert "registered" in err and PASSWORD not in err + out
    # The SIP events are in the session's event log.
    kinds = [json.loads(line)["kind"] for line in
             (Path(summary["session_dir"]) / "events.jsonl").read_text().splitlines()]
    assert {"CallState", "CallQuality"} <= set(kinds)
    assert kinds.index("CallStarted") < kinds.index("CallState")


def test_dial_bridges_a_call_to_baresip(tmp_path: Path, scripts: dict[str, Path]) -> None:
    truth_path = tmp_path / "truth.jsonl"
    with run_baresip(tmp_path / "carol", scripts["one-wav"], user="carol") as carol:
        proc = start_cli(
            tmp_path, "sip", "dial", carol.uri, "--uri", "sip:vp@127.0.0.1",
            "--provider", "sim", "--scenario", str(scripts["one"]),
            "--truth", str(truth_path), "--json", "--timeout", "10",
            "--out", str(tmp_path / "data"),
        )
        try:
            carol.wait_event("CALL_ESTABLISHED", 10.0)
            carol.wait_event("CALL_CLOSED", 20.0)
            received = _received(carol)
            rc, out, err = finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 0, err[-3000:]
    summary = json.loads(out)
    assert summary["ok"] and summary["sip"]["direction"] == "out"
    assert summary["turns"][0]["user_transcript"] == "Hello, can you hear me?"
    truth = _truth(truth_path)
    assert len([r for r in truth if r["event"] == "speech_stopped"]) == 1
    sent_s = [r["ms"] / 1000 for r in truth if r["event"] == "audio_sent"]
    heard = bursts(received, 8000)
    assert len(heard) == 1 and heard[0] == pytest.approx(sent_s[0], rel=0.25)


def _stored_turns(data: Path) -> list[dict[str, Any]]:
    found = sorted(data.glob("sessions/*/turns.json"))
    return json.loads(found[0].read_text(encoding="utf-8")) if found else []


def _signal_after_first_turn(
    proc: subprocess.Popen[str], data: Path, sig: signal.Signals
) -> tuple[int, str, str]:
    """Send ``sig`` once the call's first turn is stored; return (code, stdout, stderr)."""
    wait_until(lambda: bool(_stored_turns(data)) or proc.poll() is not None, 30.0,
               "the first turn")  # fmt: skip
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    proc.send_signal(sig)
    return finish(proc)


def _interrupted_summary(rc: int, out: str, err: str, sig: signal.Signals) -> dict[str, Any]:
    """The one summary an interrupted command printed: its finished first turn, ``ok``
    false, reason ``interrupted``, the exit 128 + signal, and on stderr the call's session
    before the signal's line (the endpoint's own lines may follow)."""
    assert rc == 128 + int(sig), err[-3000:]
    (line,) = out.splitlines()
    summary = json.loads(line)
    assert summary["ok"] is False and summary["reason"] == "interrupted"
    assert summary["turns"][0]["user_transcript"] == "Hello, can you hear me?"
    lines = err.splitlines()
    said = lines.index(f"voiceprobe: interrupted by {sig.name}")
    assert any(summary["session_id"] in line for line in lines[:said]), err[-3000:]
    return dict(summary)


def test_dial_interrupted_prints_the_turns_that_finished(
    tmp_path: Path, scripts: dict[str, Path]
) -> None:
    """Ctrl-C in the middle of a call hangs it up and, as ``call`` does, still prints
    the turns that finished (read back from the session folder, ``ok: false``, reason
    ``interrupted``); it used to print only the ``interrupted by`` line."""
    data = tmp_path / "data"
    with run_baresip(tmp_path / "carol", scripts["two-wav"], user="carol") as carol:
        proc = start_cli(
            tmp_path, "sip", "dial", carol.uri, "--uri", "sip:vp@127.0.0.1",
            "--provider", "sim", "--scenario", str(scripts["two"]), "--json",
            "--timeout", "10", "--out", str(data),
        )
        try:
            carol.wait_event("CALL_ESTABLISHED", 10.0)
            rc, out, err = _signal_after_first_turn(proc, data, signal.SIGINT)
            carol.wait_event("CALL_CLOSED", 10.0)  # hung up
        finally:
            if proc.poll() is None:
                proc.kill()
    summary = _interrupted_summary(rc, out, err, signal.SIGINT)
    assert "voice_to_voice" in summary["turns"][0]["spans"]


def test_answer_interrupted_prints_the_turns_that_finished(
    tmp_path: Path, registrar: Kamailio, scripts: dict[str, Path]
) -> None:
    """``sip answer`` cancels its calls' tasks on SIGTERM: the call in progress is hung
    up and its finished turns printed, with the 143 exit."""
    data = tmp_path / "data"
    proc = start_cli(
        tmp_path, "sip", "answer", "--uri", registrar.aor("vp"),
        "--registrar", f"sip:{registrar.domain}", "--calls", "2", "--provider", "sim",
        "--scenario", str(scripts["two"]), "--json", "--timeout", "20", "--out", str(data),
    )
    try:
        wait_until(lambda: proc.poll() is not None or registered(registrar, "vp"),
                   10.0, "voiceprobe registration")
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        with run_baresip(tmp_path / "bob", scripts["two-wav"], user="bob",
                         registrar=registrar) as bob:
            bob.dial(registrar.aor("vp"))
            bob.wait_event("CALL_ESTABLISHED", 10.0)
            rc, out, err = _signal_after_first_turn(proc, data, signal.SIGTERM)
            bob.wait_event("CALL_CLOSED", 10.0)
    finally:
        if proc.poll() is None:
            proc.kill()
    _interrupted_summary(rc, out, err, signal.SIGTERM)


def test_wrong_password_is_a_clear_failure(tmp_path: Path, registrar: Kamailio) -> None:
    proc = start_cli(
        tmp_path, "sip", "answer", "--uri", registrar.aor("vp"),
        "--registrar", f"sip:{registrar.domain}", "--timeout", "5",
        password="not-the-password",
    )
    rc, out, err = finish(proc)
    assert rc == 1
    lines = [ln for ln in err.splitlines() if "registration failed" in ln]
    assert len(lines) == 1 and "password" in lines[0], err
    assert "Traceback" not in err and "not-the-password" not in err + out


def test_busy_callee_is_a_clear_failure(tmp_path: Path, scripts: dict[str, Path]) -> None:
    with run_baresip(tmp_path / "dave", scripts["one-wav"], user="dave",
                     answermode="manual") as dave:
        proc = start_cli(tmp_path, "sip", "dial", dave.uri, "--uri", "sip:vp@127.0.0.1",
                         "--timeout", "10", "--out", str(tmp_path / "data"))
        try:
            dave.wait_event("CALL_INCOMING", 10.0)
            dave.hangup()
            rc, out, err = finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 1
    status = [ln for ln in err.splitlines() if "failed" in ln]
    assert status and "486" in status[0] and "busy" in status[0].lower(), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("sip", "answer"), "--uri"),
        (("sip", "answer", "--uri", "alice@example.com"), "uri"),
        (("sip", "answer", "--uri", "sip:a@127.0.0.1", "--bind", "nowhere"), "--bind"),
        (("sip", "answer", "--uri", "sip:a@127.0.0.1", "--calls", "0"), "--calls"),
        (("sip", "dial", "sip:b@127.0.0.1", "--uri", "sip:a@127.0.0.1", "--provider", "x"),
         "provider"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: tuple[str, ...],
                                         needle: str) -> None:
    rc, out, err = finish(start_cli(tmp_path, *args), timeout=20)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
