"""``voiceprobe sip answer --concurrent K``: several SIP calls bridged at once, each to its
own agent session, against sipp on loopback.

No registrar: voiceprobe listens on ``--bind 127.0.0.1:0`` and prints its contact; sipp's
``uac_pcap`` scenario places the calls (each plays ~8 s of G.711 A-law speech and a DTMF
digit) and the built-in simulator is the agent, one simulator per call. The test also
measures the process's CPU over the run (``wait4`` rusage) and the media clock's frame
intervals under that load (pjmedia's clock thread stamps every received frame).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import REPO
from tests.sip_peers import have, read_wav, rms, run_sipp_uac, wait_until

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(not have("sipp"), reason="sipp not installed"),
]

ENTRY = (
    "import sys; from app.cli import main; from sip.cli import register; "
    "sys.exit(main(sys.argv[1:], extend=register))"
)
SIGABRT_CODES = (134, -6)  # the shell's and Popen's view of a pjsua2 abort


class Answerer:
    """``voiceprobe sip answer`` as a subprocess whose output goes to files, reaped with
    ``os.wait4`` so that its CPU time (and its children's: espeak-ng) can be read."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.out_path = tmp / "answer.out"
        self.err_path = tmp / "answer.err"
        env = dict(os.environ, VOICEPROBE_HOME=str(tmp / "home"))
        env.pop("VOICEPROBE_SIP_PASSWORD", None)
        self.t0 = time.monotonic()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", ENTRY, "sip", "answer", "--uri", "sip:vp@127.0.0.1",
                 "--bind", "127.0.0.1:0", "--provider", "sim", "--out", str(tmp / "data"),
                 "--timeout", "20", *args],
                stdout=out, stderr=err, cwd=REPO, env=env,
            )
        self.rusage: Any = None
        self.wall_s = 0.0

    @property
    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    @property
    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def port(self, timeout: float = 15.0) -> int:
        """The SIP port voiceprobe listens on, from its ``contact sip:HOST:PORT`` line."""
        found: list[int] = []

        def listening() -> bool:
            m = re.search(r"contact sip:127\.0\.0\.1:(\d+)", self.err)
            if m:
                found.append(int(m.group(1)))
            return bool(found) or "error" in self.err

        wait_until(listening, timeout, "voiceprobe listening")
        assert found, self.err[-3000:]
        return found[0]

    def reap(self, timeout: float) -> int:
        """Wait for the exit; returns the exit code and keeps the rusage."""
        box: list[tuple[int, int, Any]] = []
        waiter = threading.Thread(target=lambda: box.append(os.wait4(self.proc.pid, 0)),
                                  daemon=True)
        waiter.start()
        waiter.join(timeout)
        if not box:
            self.proc.kill()
            waiter.join(10)
            raise AssertionError(f"voiceprobe did not exit: {self.err[-3000:]}")
        self.wall_s = time.monotonic() - self.t0
        _, status, self.rusage = box[0]
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        assert self.proc.returncode not in SIGABRT_CODES, f"pjsua2 aborted: {self.err[-3000:]}"
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait(10)

    def summaries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def _events(session_dir: str) -> list[dict[str, Any]]:
    text = (Path(session_dir) / "events.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_four_concurrent_calls_each_bridged_to_its_own_session(tmp_path: Path) -> None:
    vp = Answerer(tmp_path, "--calls", "4", "--concurrent", "4", "--json")
    try:
        port = vp.port()
        sipp = run_sipp_uac(tmp_path / "sipp", f"127.0.0.1:{port}", calls=4, concurrent=4,
                            timeout=30, service="vp")
        rc = vp.reap(30)
    finally:
        vp.kill()
    assert sipp.returncode == 0, sipp.stdout + sipp.stderr + sipp.errors
    assert rc == 0, vp.err[-3000:]
    summaries = vp.summaries()
    assert len(summaries) == 4, vp.out
    assert len({s["session_id"] for s in summaries}) == 4
    assert len({s["session_dir"] for s in summaries}) == 4
    call_ids = set()
    for s in summaries:
        assert s["ok"] and s["errors"] == [] and s["provider"] == "sim", s
        assert s["reason"] == "remote_hangup"
        # The caller's audio reached this session's provider: sipp plays ~8 s (400 frames).
        bridge = s["bridge"]
        assert bridge["frames"] > 100
        assert bridge["caller_capture_to_ws_send"]["count"] > 100
        # The call-quality figures, and the DTMF digit sipp sends in every call.
        q = s["call_quality"]
        assert q["codec"] == "PCMA/8000"
        assert q["mos"] > 4.0 and q["loss_pct"] < 1.0 and q["jitter_ms"] is not None
        assert q["dtmf"] == "1"
        events = _events(s["session_dir"])
        states = [e for e in events if e["kind"] == "CallState"]
        assert any(e["state"] == "disconnected" for e in states)
        # Each session logged one call's SIP events only.
        ids = {e["call_id"] for e in states}
        assert len(ids) == 1, ids
        call_ids |= ids
        assert s["sip"]["call_id"] in ids
        assert any(e["kind"] == "CallQuality" for e in events)
        # audio.wav: the caller on the left, not silent.
        left, rate = read_wav(Path(s["session_dir"]) / "audio.wav")
        assert rate == 16000 and len(left) > 5 * rate
        assert rms(left) > 300
        assert s["sip"]["callback_errors"] == 0
    assert len(call_ids) == 4

    # Figures under a 4-call load: the whole process, and pjmedia's clock per call.
    ru = vp.rusage
    cpu_s = ru.ru_utime + ru.ru_stime
    intervals = [s["sip"]["frame_interval"] for s in summaries]
    print(json.dumps({
        "wall_s": round(vp.wall_s, 2),
        "cpu_s": round(cpu_s, 2),
        "cpu_pct_of_one_core": round(100 * cpu_s / vp.wall_s, 1),
        "max_rss_mb": round(ru.ru_maxrss / 1024, 1),
        "per_call_cpu": [s["cpu"] for s in summaries],
        "frame_interval_ms": intervals,
        "sip_in_to_provider_p95_ms": [
            round(s["bridge"]["caller_capture_to_ws_send"]["p95_ms"], 2) for s in summaries
        ],
    }))
    assert cpu_s / vp.wall_s < 0.8  # measured ~0.22 of one core on 2 cores
    for fi in intervals:
        assert fi["n"] > 300
        # A GIL-starved clock thread delivers frames at a mean of ~157 ms (TEST-ENV).
        assert fi["mean_ms"] == pytest.approx(20.0, abs=1.0)
        assert fi["p99_ms"] < 40.0
    assert np.median([fi["std_ms"] for fi in intervals]) < 5.0


def test_calls_beyond_concurrent_are_turned_away_busy(tmp_path: Path) -> None:
    # Three calls at once to a 2-call answerer: the third is refused with 486 Busy Here.
    # --max-seconds ends the two bridged calls early (sipp counts them failed: fine).
    vp = Answerer(tmp_path, "--calls", "2", "--concurrent", "2", "--max-seconds", "3",
                  "--json")
    try:
        port = vp.port()
        sipp = run_sipp_uac(tmp_path / "sipp", f"127.0.0.1:{port}", calls=3, concurrent=3,
                            timeout=20, service="vp")
        vp.reap(30)
    finally:
        vp.kill()
    assert sipp.returncode != 0
    assert re.search(r"SIP/2\.0 486 Busy", sipp.errors), sipp.errors
    assert "turned away 1 call(s) with 486" in vp.err, vp.err[-3000:]
    summaries = vp.summaries()
    assert len(summaries) == 2 and summaries[0]["session_id"] != summaries[1]["session_id"]
    assert all(s["sip"]["answered"] for s in summaries)


@pytest.mark.parametrize("k", ["0", "5"])
def test_concurrent_outside_1_to_4_is_one_usage_line(tmp_path: Path, k: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ENTRY, "sip", "answer", "--uri", "sip:vp@127.0.0.1",
         "--concurrent", k],
        capture_output=True, text=True, cwd=REPO, timeout=30,
        env=dict(os.environ, VOICEPROBE_HOME=str(tmp_path / "home")),
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--concurrent" in lines[0], proc.stderr
    assert "4 calls per process" in lines[0]
