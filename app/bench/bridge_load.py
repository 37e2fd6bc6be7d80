"""Benchmark: bridge CPU, added delay and loop stalls over one long call against the simulator.

    .venv/bin/python -m app.bench.bridge_load --seconds 60

The simulator runs in its own process (``voiceprobe sim``), so the CPU figure is the
bridge process alone: user+system CPU time over wall time, as a percentage of one core.
The delays are the bridge's own processing (see :class:`app.bridge.stats.BridgeStats`):
caller frame captured → its audio handed to the websocket, and websocket receive → agent
audio queued for the sink; ``loop_lag`` is how late the event loop woke the bridge's
audio loop (its longest stall). Prints one JSON object. For voiceprobe beside the bare
``openai`` client and Pipecat, see :mod:`app.bench.compare`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app import eventloop
from app.audio.fileport import WavFilePort
from app.bench import client_voiceprobe
from app.bench.harness import Simulator, StallTracer, cpu_s, make_workload
from app.metrics.timeline import summarize


async def _call(
    port: WavFilePort, base: str, data: Path, tracer: StallTracer | None
) -> dict[str, Any]:
    task = asyncio.create_task(tracer.run()) if tracer is not None else None
    try:
        return await client_voiceprobe.call(port, base, data)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures as JSON."""
    ap = argparse.ArgumentParser(prog="bridge_load")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument(
        "--trace-stalls", type=float, metavar="MS", default=None,
        help="also report where the loop was when it stalled MS or longer (costs CPU)",
    )
    args = ap.parse_args(argv)
    tracer = StallTracer(args.trace_stalls / 1000) if args.trace_stalls else None
    tmp = Path(tempfile.mkdtemp(prefix="vp-bench-"))
    work = make_workload(tmp, args.seconds)
    port = client_voiceprobe.prepare(work.wav)
    with Simulator(work.scenario, tmp / "home") as sim:
        cpu0, wall0 = cpu_s(), time.monotonic()
        summary = eventloop.run(_call(port, sim.base, tmp / "data", tracer))
        cpu, wall = cpu_s() - cpu0, time.monotonic() - wall0
    out = {
        "call_seconds": round(wall, 2),
        "caller_audio_seconds": round(work.seconds, 2),
        "turns": len(summary["turns"]),
        "ok": summary["ok"],
        "bridge_cpu_percent_of_one_core": round(100 * cpu / wall, 2),
        "bridge_added_delay": summary["bridge"],
        "voice_to_voice": summary["voice_to_voice"],
        "playback_latency": summarize(summary["turns"], "playback_latency"),
    }
    if tracer is not None:
        out["stalls"] = [
            {"ms": round(ms, 1), "stack": stack}
            for ms, stack in sorted(tracer.stalls, key=lambda s: -s[0])[:10]
        ]
    print(json.dumps(out, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
