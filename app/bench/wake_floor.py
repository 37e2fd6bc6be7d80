"""Benchmark: the least CPU any Python client can spend on a 20 ms caller frame here.

    .venv/bin/python -m app.bench.wake_floor [--frames 500] [--json]

One thread, no event loop, no bridge: it sleeps until each frame falls due, then (in the
second pass) resamples the frame 16 → 24 kHz with soxr (C), base64-encodes it, fills an
``input_audio_buffer.append`` template and writes it to a loopback TCP socket read by a
child process. What it prints is a floor for the comparison in ``app.bench.compare``: CPU
per frame when the thread only wakes, and when it also does that minimal work, next to the
same work done back to back without sleeping (warm caches). On a VM the difference
between the two is what a wake-up after 20 ms asleep costs; no Python client, voiceprobe
or another, can spend less per frame than the second figure. ``soxr`` comes with the dev
extras (a Pipecat dependency).
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import subprocess
import sys
import time
from typing import Any

import numpy as np

from app.bench.harness import CALLER_RATE, cpu_s

_TEMPLATE = '{"type":"input_audio_buffer.append","event_id":"e%d","audio":"%s"}'
_FRAME = CALLER_RATE // 50


def _reader(port: int) -> subprocess.Popen[bytes]:
    code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}))\n"
        "while s.recv(65536):\n    pass\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def measure(frames: int) -> dict[str, Any]:
    """CPU µs per frame: waking only, waking plus the minimal work, and the work warm."""
    import soxr

    x = (np.random.default_rng(0).standard_normal(_FRAME * frames) * 3000).astype(np.int16)
    server = socket.create_server(("127.0.0.1", 0))
    child = _reader(server.getsockname()[1])
    conn, _ = server.accept()
    server.close()
    rs = soxr.ResampleStream(CALLER_RATE, 24000, 1, dtype="int16", quality="HQ")

    def work(k: int) -> None:
        y = rs.resample_chunk(x[k * _FRAME : (k + 1) * _FRAME])
        conn.sendall((_TEMPLATE % (k, base64.b64encode(y.tobytes()).decode())).encode())

    out: dict[str, Any] = {"frames": frames}
    try:
        for name, do_work, sleep in (("wake_only", False, True), ("wake_and_work", True, True),
                                     ("work_warm", True, False)):
            c0, t0 = cpu_s(), time.monotonic()
            for k in range(frames):
                if sleep:
                    time.sleep(max(0.0, t0 + (k + 1) * 0.02 - time.monotonic()))
                if do_work:
                    work(k)
            cpu, wall = cpu_s() - c0, time.monotonic() - t0
            out[name] = {"us_per_frame": round(1e6 * cpu / frames),
                         "cpu_percent": round(100 * cpu / wall, 2) if sleep else None}
    finally:
        conn.close()
        child.wait(10)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the floor."""
    ap = argparse.ArgumentParser(prog="app.bench.wake_floor")
    ap.add_argument("--frames", type=int, default=500, help="20 ms frames per pass")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    if args.frames < 1:
        print("--frames must be at least 1", file=sys.stderr)
        return 2
    res = measure(args.frames)
    if args.json:
        print(json.dumps(res))
        return 0
    for name in ("wake_only", "wake_and_work", "work_warm"):
        r = res[name]
        share = f", {r['cpu_percent']} % of a core" if r["cpu_percent"] is not None else ""
        print(f"{name:<14} {r['us_per_frame']:>5} us CPU per frame{share}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
