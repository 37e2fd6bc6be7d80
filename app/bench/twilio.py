"""Benchmark: ``serve twilio`` with concurrent streams against the simulator.

    .venv/bin/python -m app.bench.twilio [--streams 10] [--json]

The Media Streams server runs in this process (as ``voiceprobe serve twilio`` does); the
simulators (one per stream, as ``serve twilio --provider sim`` gives each stream its own,
all in one process) and the Twilio-side clients (one process, N streams of the demo
conversation with a barge-in, media every 20 ms, marks answered) run in their own
processes, so the CPU figure is the server's alone. Figures, per direction, are the
bridge's own added delay:

* Twilio media in → provider send: a caller frame's arrival stamp → its audio handed to
  the provider's socket (``BridgeStats.send_delay_ns``);
* provider audio → Twilio media out: the agent chunk's arrival → queued for playout
  (``recv_delay_ns``), plus the port's hop, agent block written → ``media`` handed to the
  Twilio socket. Between the two the audio waits for its 20 ms playout slot (the bridge
  paces agent audio on the caller's clock so that what is sent is what is heard); that
  wait is reported apart (``pacing_wait_mean_ms``, 10 ms on average by construction).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app import eventloop
from app.bridge.providers import DEFAULT_SCENARIO, ProviderPlan
from app.bridge.session import CallSetup
from app.metrics.percentile import percentile
from app.profile import load_profile
from app.serve.twilio import TOKEN_PARAM, TwilioServer


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def _client(url: str, token: str) -> None:
    """One Twilio-side stream: the demo caller at 8 kHz, marks answered when played."""
    from websockets.asyncio.client import connect

    from app.providers.twilio.protocol import TwilioCallerProtocol
    from app.sim.caller import caller_track
    from app.sim.scenario import load_scenario

    pcm, _ = caller_track(load_scenario(str(DEFAULT_SCENARIO)), rate=8000, barge_in={2: 1500})
    proto = TwilioCallerProtocol({TOKEN_PARAM: token})
    async with connect(url) as ws:
        for out in proto.open():
            await ws.send(out.text)
        t0 = time.monotonic()
        play_until = t0
        marks: list[tuple[float, str]] = []

        async def rx() -> None:
            nonlocal play_until
            async for text in ws:
                m = json.loads(text)
                now = time.monotonic()
                if m["event"] == "media":
                    n = len(base64.b64decode(m["media"]["payload"]))
                    play_until = max(play_until, now) + n / 8000
                elif m["event"] == "mark":
                    marks.append((play_until, m["mark"]["name"]))
                elif m["event"] == "clear":
                    play_until = now

        task = asyncio.create_task(rx())
        for i in range(len(pcm) // 160):
            for out in proto.audio(pcm[i * 160 : (i + 1) * 160].tobytes()):
                await ws.send(out.text)
            now = time.monotonic()
            for due, name in [m for m in marks if m[0] <= now]:
                marks.remove((due, name))
                await ws.send(
                    json.dumps(
                        {"event": "mark", "streamSid": proto.stream_sid, "mark": {"name": name}}
                    )
                )
            await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
        for out in proto.stop():
            await ws.send(out.text)
        await asyncio.wait_for(task, 60)


async def _clients(url: str, token: str, n: int) -> None:
    await asyncio.gather(*(_client(url, token) for _ in range(n)))


def _figs(values_ns: list[int]) -> dict[str, float | None]:
    ms = [v / 1e6 for v in values_ns]
    p50, p95 = percentile(ms, 50), percentile(ms, 95)
    return {
        "count": len(ms),
        "p50_ms": round(p50, 3) if p50 is not None else None,
        "p95_ms": round(p95, 3) if p95 is not None else None,
        "max_ms": round(max(ms), 3) if ms else None,
    }


async def _sims(n: int) -> None:
    """``n`` simulators of the demo scenario; prints their URLs, serves until stdin closes."""
    from app.sim.scenario import load_scenario
    from app.sim.server import SimServer

    scenario = load_scenario(str(DEFAULT_SCENARIO))
    servers = [SimServer(scenario) for _ in range(n)]
    for server in servers:
        print(await server.start(), flush=True)
    await asyncio.to_thread(sys.stdin.read)
    for server in servers:
        await server.stop()


async def _run(streams: int, tmp: Path, sim_urls: list[str]) -> dict[str, Any]:
    profile = load_profile(None)
    plans = [ProviderPlan("openai", "openai", u.split("/realtime")[0], "key") for u in sim_urls]
    unused = iter(plans)
    summaries: list[dict[str, Any]] = []
    all_done = asyncio.Event()

    def finished(summary: dict[str, Any]) -> None:
        summaries.append(summary)
        if len(summaries) >= streams:
            all_done.set()

    server = TwilioServer(
        CallSetup(profile=profile, plan=plans[0], data_root=tmp / "data"),
        on_call=finished,
        plan_for_stream=lambda: next(unused),  # each stream its own simulator
    )
    url = await server.start()
    cpu0, wall0 = _cpu_s(), time.monotonic()
    clients = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.bench.twilio", "--clients", url, server.token, str(streams)
    )
    await clients.wait()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_done.wait(), 60)
    cpu, wall = _cpu_s() - cpu0, time.monotonic() - wall0
    ports = list(server.ports)
    await server.close()
    return {
        "streams": streams,
        "calls_ok": sum(1 for s in summaries if s["ok"]),
        "turns": sum(len(s["turns"]) for s in summaries),
        "wall_s": round(wall, 1),
        "server_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "cpu_percent_per_bridged_call": round(100 * cpu / wall / streams, 2),
        "twilio_media_in_to_provider_send": _figs(
            [v for st in server.stats for v in st.send_delay_ns]
        ),
        "provider_audio_in_to_playout_queue": _figs(
            [v for st in server.stats for v in st.recv_delay_ns]
        ),
        "playout_write_to_twilio_socket": _figs(
            [a + b for p in ports for a, b in zip(p.write_ns, p.send_ns, strict=False)]
        ),
        "pacing_wait_mean_ms": 10.0,
        "marks_echoed": sum(s["twilio"]["marks_echoed"] for s in summaries),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print its figures (JSON with ``--json``)."""
    ap = argparse.ArgumentParser(prog="python -m app.bench.twilio")
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--clients", nargs=3, metavar=("URL", "TOKEN", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--sims", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.sims:
        asyncio.run(_sims(args.sims))
        return 0
    if args.clients:
        url, token, n = args.clients
        asyncio.run(_clients(url, token, int(n)))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="vp-bench-twilio-"))
    sims = subprocess.Popen(
        [sys.executable, "-m", "app.bench.twilio", "--sims", str(args.streams)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sims.stdout is not None
        urls = [sims.stdout.readline().strip() for _ in range(args.streams)]
        out = eventloop.run(_run(args.streams, tmp, urls))
    finally:
        assert sims.stdin is not None
        sims.stdin.close()
        try:
            sims.wait(10)
        except subprocess.TimeoutExpired:
            sims.kill()
            sims.wait(10)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0 if out["calls_ok"] == args.streams else 1


if __name__ == "__main__":
    sys.exit(main())
