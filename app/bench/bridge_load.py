"""Benchmark: bridge CPU and added delay over a long call against the simulator.

    .venv/bin/python -m app.bench.bridge_load --seconds 60

The simulator runs in its own process (``voiceprobe sim``), so the CPU figure is the
bridge process alone: user+system CPU time over wall time, as a percentage of one core.
The delays are the bridge's own processing (see :class:`app.bridge.stats.BridgeStats`):
caller frame captured → its audio handed to the websocket, and websocket receive → agent
audio queued for the sink. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.audio.fileport import WavFilePort
from app.bridge.providers import DEFAULT_SCENARIO, ProviderPlan
from app.bridge.session import CallSetup, run_call
from app.clock import MONOTONIC
from app.profile import load_profile
from app.sim.caller import caller_track
from app.sim.scenario import load_scenario


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures as JSON."""
    ap = argparse.ArgumentParser(prog="bridge_load")
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args(argv)
    scenario = load_scenario(str(DEFAULT_SCENARIO))
    turns = scenario.turns
    while True:
        sc = dataclasses.replace(scenario, turns=turns)
        pcm, _ = caller_track(sc)
        if len(pcm) / 16000 >= args.seconds:
            break
        turns = turns + scenario.turns
    tmp = Path(tempfile.mkdtemp(prefix="vp-bench-"))
    import yaml

    raw = yaml.safe_load(Path(DEFAULT_SCENARIO).read_text())
    raw["turns"] = raw["turns"] * (len(turns) // len(scenario.turns))
    sc_path = tmp / "scenario.yaml"
    sc_path.write_text(yaml.safe_dump(raw))
    env = dict(os.environ, VOICEPROBE_HOME=str(tmp / "home"))
    sim = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--scenario", str(sc_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip()
        base = url.split("/realtime")[0]
        profile = load_profile(None)
        plan = ProviderPlan("openai", "openai", base, "bench-key")
        setup = CallSetup(profile=profile, plan=plan, data_root=tmp / "data")
        port = WavFilePort(pcm, 16000)
        cpu0, wall0 = _cpu_s(), time.monotonic()
        summary = asyncio.run(run_call(setup, port, [], MONOTONIC))
        cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
    finally:
        sim.terminate()
        sim.wait(10)
    out = {
        "call_seconds": round(wall, 2),
        "caller_audio_seconds": round(len(pcm) / 16000, 2),
        "turns": len(summary["turns"]),
        "ok": summary["ok"],
        "bridge_cpu_percent_of_one_core": round(100 * cpu / wall, 2),
        "bridge_added_delay": summary["bridge"],
        "voice_to_voice": summary["voice_to_voice"],
    }
    print(json.dumps(out, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
