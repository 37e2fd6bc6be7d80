"""Benchmark: voiceprobe's bridge beside the bare ``openai`` client, a Pipecat pipeline and
the floor (the least any live client does, ``client_floor.py``).

    .venv/bin/python -m app.bench.compare --seconds 60 --rounds 3

One caller WAV, the simulator in a process of its own (``voiceprobe sim``, OpenAI
dialect, the demo scenario repeated, its tool call left out so every client holds the
same call; a fresh one per call, as a scenario's turns carry on across sessions), and one
call per client per round, each client in a process of its own, in an order that rotates
every round. Each client streams the WAV's 20 ms frames in real time and queues the
agent's audio on a paced sink; see ``client_voiceprobe.py``, ``client_sdk.py`` and
``client_pipecat.py`` (``client_floor.py`` drops the agent's audio unread). Per client it
prints:

* CPU per live call: user+system CPU time of the client's process over the call's wall
  time (connect to hang-up, imports excluded), as a percentage of one core, and its
  wake-ups per second (context switches of all its threads: each costs a cold start,
  see docs/timing.md);
* send delay: a caller frame's due time (its nominal capture end) → its bytes handed to
  the socket; receive delay: an audio message off the socket → its audio queued for
  the sink (p50/p95/p99/max over every frame of every round);
* loop lag: how late the event loop woke the client's frame pacing (max and p99): a
  stalled loop shows here, whatever caused it;

and for voiceprobe its turns' ``playback_latency`` p95, then the ratios voiceprobe/Pipecat,
voiceprobe/SDK and voiceprobe/floor, and the floor's CPU against Pipecat's, then the CPU
ratios round by round (voiceprobe/Pipecat, floor/Pipecat, voiceprobe/floor: the two
clients of a pair ran back to back in each round, so each round's ratio sees one state of
the machine) with their min, median and max. The
machine's load average before and after is printed too: the figures mean little on a
busy machine. ``--json`` prints one JSON object instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app import eventloop
from app.bench.harness import ClientRun, Simulator, cpu_s, figures, make_workload, switches

CLIENTS = ("voiceprobe", "sdk", "pipecat", "floor")
#: A call that has not ended this long after its track is a failed run.
OVERRUN_S = 60.0


def _session_config() -> dict[str, Any]:
    """The ``session`` every client sends: voiceprobe's own for the default profile."""
    from app.clock import MONOTONIC
    from app.profile import load_profile
    from app.providers.openai.protocol import OpenAIProtocol

    config = OpenAIProtocol(load_profile(None), MONOTONIC).session_config()
    config.pop("tools", None)  # no tool calls in the comparison's scenario
    config.pop("tool_choice", None)
    return config


async def _one_call(client: str, wav: Path, base: str, url: str, work: Path) -> ClientRun:
    """Prepare (untimed) and run (timed by the caller) one client's call."""
    if client == "voiceprobe":
        from app.bench import client_voiceprobe

        port = client_voiceprobe.prepare(wav)
        return await _timed(client_voiceprobe.run(port, base, work / "data"))
    if client == "sdk":
        from app.bench import client_sdk

        frames = client_sdk.prepare(wav)
        return await _timed(client_sdk.run(frames, base, _session_config()))
    if client == "floor":
        from app.bench import client_floor

        frames = client_floor.prepare(wav)
        return await _timed(client_floor.run(frames, url, _session_config()))
    from app.bench import client_pipecat

    frames = client_pipecat.prepare(wav)
    return await _timed(client_pipecat.run(frames, url, _session_config()))


async def _timed(coro: Any) -> ClientRun:
    cpu0, wall0, sw0 = cpu_s(), time.monotonic(), switches()
    result: ClientRun = await coro
    cpu, wall = cpu_s() - cpu0, time.monotonic() - wall0
    result.extra["switches"] = switches() - sw0
    result.extra["cpu_s"] = cpu
    result.extra["wall_s"] = wall
    return result


def _child(args: argparse.Namespace) -> int:
    """``--client NAME``: hold one call in this process, write its raw figures."""
    limit = args.limit
    # voiceprobe runs on its own loop (precise timers, app/eventloop.py); the other
    # clients on asyncio's default loop, as their users run them.
    runner = eventloop.run if args.client == "voiceprobe" else asyncio.run
    run = runner(
        asyncio.wait_for(
            _one_call(args.client, Path(args.wav), args.base, args.url, Path(args.work)), limit
        )
    )
    Path(args.out).write_text(
        json.dumps(
            {"send_ns": run.send_ns, "recv_ns": run.recv_ns, "lag_ns": run.lag_ns, **run.extra}
        )
    )
    return 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _aggregate(client: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = [100 * r["cpu_s"] / r["wall_s"] for r in runs]
    out: dict[str, Any] = {
        "cpu_percent_per_call": round(statistics.mean(cpu), 2),
        "cpu_percent_rounds": [round(c, 2) for c in cpu],
        "wakes_per_second": round(statistics.mean(r["switches"] / r["wall_s"] for r in runs)),
        "send_delay": figures([v for r in runs for v in r["send_ns"]]),
        "receive_delay": figures([v for r in runs for v in r["recv_ns"]]),
        "loop_lag": figures([v for r in runs for v in r["lag_ns"]]),
    }
    if client == "voiceprobe":
        out["playback_latency_p95_ms"] = [r["playback_latency"]["p95_ms"] for r in runs]
        out["voice_to_voice_p50_ms"] = [r["voice_to_voice"]["p50_ms"] for r in runs]
        out["ok"] = all(r["ok"] for r in runs)
        out["turns"] = [r["turns"] for r in runs]
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _ratios(res: dict[str, Any], other: str) -> dict[str, Any]:
    vp, ot = res["voiceprobe"], res[other]
    return {
        "cpu": _ratio(vp["cpu_percent_per_call"], ot["cpu_percent_per_call"]),
        "send_p50": _ratio(vp["send_delay"]["p50_ms"], ot["send_delay"]["p50_ms"]),
        "send_p95": _ratio(vp["send_delay"]["p95_ms"], ot["send_delay"]["p95_ms"]),
        "receive_p95": _ratio(vp["receive_delay"]["p95_ms"], ot["receive_delay"]["p95_ms"]),
    }


def _paired(results: dict[str, Any], a: str, b: str) -> dict[str, Any] | None:
    """``a``'s CPU over ``b``'s, round by round (the two ran back to back in each round,
    so a round's ratio sees the same machine): each round's, and their min, median, max."""
    if a not in results or b not in results:
        return None
    rounds = [
        _ratio(x, y)
        for x, y in zip(
            results[a]["cpu_percent_rounds"], results[b]["cpu_percent_rounds"], strict=True
        )
    ]
    known = sorted(r for r in rounds if r is not None)
    if not known:
        return None
    return {"rounds": rounds, "min": known[0], "median": round(statistics.median(known), 2),
            "max": known[-1]}  # fmt: skip


def _table(report: dict[str, Any]) -> str:
    rows = [
        f"{'client':<11} {'CPU %/call':>10} {'wakes/s':>7} {'send p50':>9} {'send p95':>9} "
        f"{'recv p50':>9} {'recv p95':>9} {'lag p99':>8} {'lag max':>8}"
    ]
    for name in report["clients"]:
        r = report["results"][name]
        s, v, g = r["send_delay"], r["receive_delay"], r["loop_lag"]
        rows.append(
            f"{name:<11} {r['cpu_percent_per_call']:>10.2f} {r['wakes_per_second']:>7} "
            f"{s['p50_ms']:>9.3f} {s['p95_ms']:>9.3f} "
            f"{v['p50_ms'] or 0:>9.3f} {v['p95_ms'] or 0:>9.3f} "
            f"{g['p99_ms'] or 0:>8.2f} {g['max_ms'] or 0:>8.2f}"
        )
    rows.append("(delays in ms; CPU per round: " + "; ".join(
        f"{n} {report['results'][n]['cpu_percent_rounds']}" for n in report["clients"]
    ) + ")")
    vp = report["results"].get("voiceprobe")
    if vp is not None:
        rows.append(f"voiceprobe playback_latency p95 per round (ms): "
                    f"{vp['playback_latency_p95_ms']}; turns {vp['turns']}, ok {vp['ok']}")
    for other, ratio in report["ratios"].items():
        rows.append(f"voiceprobe/{other}: " + ", ".join(f"{k} {v}" for k, v in ratio.items()))
    if report["floor_cpu_vs_pipecat"] is not None:
        rows.append(f"floor/pipecat: cpu {report['floor_cpu_vs_pipecat']} (no client spends "
                    "less CPU on this call than the floor)")
    for name, paired in report["cpu_ratio_by_round"].items():
        if paired is not None:
            rows.append(f"{name} cpu, round by round: {paired['rounds']} (min {paired['min']}, "
                        f"median {paired['median']}, max {paired['max']})")
    rows.append(f"load average before {report['load_before']}, after {report['load_after']}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print its figures."""
    ap = argparse.ArgumentParser(prog="app.bench.compare")
    ap.add_argument("--seconds", type=float, default=60.0, help="caller track length")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated subset")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    for hidden in ("--client", "--wav", "--base", "--url", "--work", "--out"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        return _child(args)
    clients = [c for c in args.clients.split(",") if c]
    unknown = set(clients) - set(CLIENTS)
    if unknown or not clients or args.rounds < 1 or args.seconds <= 0:
        print(f"bad arguments: clients from {', '.join(CLIENTS)}, rounds ≥ 1, seconds > 0",
              file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="vp-compare-"))
    work = make_workload(tmp, args.seconds, tools=False)
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    load_before = _load()
    for rnd in range(args.rounds):
        order = clients[rnd % len(clients):] + clients[: rnd % len(clients)]
        for client in order:
            # A fresh simulator per call: the scenario's turns carry on across sessions.
            with Simulator(work.scenario, tmp / "sim-home") as sim:
                out = tmp / f"{client}-{rnd}.json"
                cmd = [
                    sys.executable, "-m", "app.bench.compare", "--client", client,
                    "--wav", str(work.wav), "--base", sim.base, "--url", sim.url,
                    "--work", str(tmp / f"{client}-{rnd}"), "--out", str(out),
                    "--limit", str(work.seconds + OVERRUN_S),
                ]
                env = dict(os.environ, VOICEPROBE_HOME=str(tmp / "home"))
                proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
            if proc.returncode != 0 or not out.exists():
                print(f"{client} (round {rnd + 1}) failed: exit {proc.returncode}",
                      file=sys.stderr)
                return 1
            runs[client].append(json.loads(out.read_text()))
            if not args.json:
                print(f"round {rnd + 1}: {client} done", file=sys.stderr)
    results = {c: _aggregate(c, runs[c]) for c in clients}
    report: dict[str, Any] = {
        "caller_audio_seconds": round(work.seconds, 2),
        "turns_per_call": work.turns,
        "rounds": args.rounds,
        "clients": clients,
        "results": results,
        "ratios": {o: _ratios(results, o) for o in ("pipecat", "sdk", "floor")
                   if "voiceprobe" in results and o in results},
        "floor_cpu_vs_pipecat": _ratio(*(results[c]["cpu_percent_per_call"]
                                         for c in ("floor", "pipecat")))
        if "floor" in results and "pipecat" in results else None,
        "cpu_ratio_by_round": {
            f"{a}/{b}": _paired(results, a, b)
            for a, b in (("voiceprobe", "pipecat"), ("floor", "pipecat"), ("voiceprobe", "floor"))
        },
        "load_before": load_before,
        "load_after": _load(),
    }
    print(json.dumps(report, indent=2) if args.json else _table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
