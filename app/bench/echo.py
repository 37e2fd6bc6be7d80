"""Benchmark: echo cancellation on the mic path, in a simulated room.

    .venv/bin/python -m app.bench.echo [--seconds 12] [--json]

A loud agent reply (espeak-ng, or the simulator's tone speech) is played into a
simulated room (:mod:`app.audio.processing.room`: 80 ms delay, −6 dB, 120 ms tail); its
echo, with the caller speaking over the agent for two seconds in the middle (double
talk), is the microphone. The mic is processed as ``DevicePort.read`` processes it
(20 ms frames, 10 ms blocks, reference first) by :class:`app.audio.aec.EchoCanceller`
and, when installed, by ``pywebrtc-audio``'s AEC3 for comparison. Reported per binding:

* ``erle_db``: median echo return loss enhancement over 100 ms blocks of echo only,
  after the first 2 s (convergence);
* ``false_barge_ins``: local VAD speech starts during echo-only audio, without and with
  cancellation; ``barge_in_ms``: from the caller's first word to the VAD start;
* ``added_delay_ms``: lag of the processed caller speech against the raw (cross
  correlation; 0 = the processor adds no delay) plus the buffering (whole 10 ms blocks
  in 20 ms frames: none);
* ``cpu_ms_per_s`` / ``cpu_ms_per_call``: process CPU time per second of audio and for
  the whole call of ``--seconds``.

Offline and faster than real time; the real-device figures come from tests/test_aec.py.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.aec import AudioProcessing, EchoCanceller
from app.audio.processing.room import EchoPath, block_erle_db, room_impulse_response, to_int16
from app.audio.vad import VadTracker
from app.sim.tts import synthesize

RATE = 16000
FRAME = RATE // 50
AGENT = (
    "Thanks for calling. Your order shipped this morning and should arrive on Thursday. "
    "Is there anything else I can help you with today?"
)
CALLER = "Wait, stop, I need to change the delivery address please."

Processor = Callable[[NDArray[np.int16], NDArray[np.int16]], NDArray[np.int16]]


def _scaled(x: NDArray[np.int16], peak: int) -> NDArray[np.int16]:
    y = x.astype(np.float64)
    return to_int16(y * peak / max(1.0, float(np.abs(y).max())))


def _scene(seconds: float) -> tuple[NDArray[np.int16], NDArray[np.int16], NDArray[np.int16], int]:
    """(far, mic, caller-alone, caller start sample)."""
    n = int(seconds * RATE)
    agent = _scaled(synthesize(AGENT, RATE), 26000)
    far = np.resize(agent, n).astype(np.int16)
    echo = EchoPath(room_impulse_response(RATE, 80.0, -6.0)).process(far)
    caller = _scaled(synthesize(CALLER, RATE), 20000)[: 2 * RATE]
    start = n // 2
    near = np.zeros(n)
    near[start : start + len(caller)] = caller
    return far, to_int16(echo + near), to_int16(near), start


def _livekit() -> Processor:
    ec = EchoCanceller(AudioProcessing(), RATE, stream_delay_ms=80)

    def run(far: NDArray[np.int16], mic: NDArray[np.int16]) -> NDArray[np.int16]:
        ec.far(far)
        return ec.near(mic)

    return run


def _pywebrtc() -> Processor | None:
    try:
        import pywebrtc_audio
    except ImportError:
        return None
    ec = pywebrtc_audio.EchoCanceller(RATE, 1, 80)

    def run(far: NDArray[np.int16], mic: NDArray[np.int16]) -> NDArray[np.int16]:
        return np.concatenate(
            [ec.process(mic[i : i + 160].copy(), far[i : i + 160].copy()) for i in (0, 160)]
        )

    return run


def _vad_starts(x: NDArray[np.int16]) -> list[int]:
    vad = VadTracker(rate=RATE)
    return [e.sample for e in vad.feed(x) if e.speaking]


def _measure(
    name: str, proc: Processor, far: Any, mic: Any, near: Any, start: int
) -> dict[str, Any]:
    out = []
    cpu0 = time.process_time()
    for i in range(0, len(far) - FRAME + 1, FRAME):
        out.append(proc(far[i : i + FRAME], mic[i : i + FRAME]))
    cpu = time.process_time() - cpu0
    y = np.concatenate(out)
    n = len(y)
    talk = slice(start, start + 2 * RATE)
    erle = block_erle_db(mic[:n], y, RATE // 10)
    mask = np.ones(len(erle), bool)
    mask[:20] = False  # convergence: the first 2 s
    mask[talk.start // (RATE // 10) : talk.stop // (RATE // 10) + 1] = False
    vals = erle[mask]
    starts = _vad_starts(y)
    false = [s for s in starts if not (talk.start <= s < talk.stop)]
    heard = [s for s in starts if talk.start <= s < talk.stop]
    # Added delay: lag of the processed caller speech against the caller alone.
    seg = slice(talk.start, min(n, talk.stop))
    a, b = near[seg].astype(np.float64), y[seg].astype(np.float64)
    lags = range(-160, 161)
    corr = [
        float(np.dot(a[max(0, -k) : len(a) - max(0, k)], b[max(0, k) : len(b) - max(0, -k)]))
        for k in lags
    ]
    lag = list(lags)[int(np.argmax(corr))]
    return {
        "binding": name,
        "erle_db": round(float(np.nanmedian(vals)), 1),
        "erle_p10_db": round(float(np.nanpercentile(vals, 10)), 1),
        "false_barge_ins": len(false),
        "barge_in_ms": round((heard[0] - start) * 1000 / RATE) if heard else None,
        "added_delay_ms": round(lag * 1000 / RATE, 2),
        "cpu_ms_per_s": round(1000 * cpu / (n / RATE), 2),
        "cpu_ms_per_call": round(1000 * cpu, 1),
    }


def run(seconds: float) -> dict[str, Any]:
    """Run every binding on the same scene; see the module docstring for the figures."""
    far, mic, near, start = _scene(seconds)
    raw_starts = _vad_starts(mic)
    talk = range(start, start + 2 * RATE)
    results = [_measure("livekit", _livekit(), far, mic, near, start)]
    other = _pywebrtc()
    if other is not None:
        results.append(_measure("pywebrtc-audio", other, far, mic, near, start))
    return {
        "seconds": seconds,
        "echo": {"delay_ms": 80, "gain_db": -6, "rt60_ms": 120},
        "false_barge_ins_without_aec": len([s for s in raw_starts if s not in talk]),
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench.echo", description=__doc__)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 6 <= args.seconds <= 600:
        parser.error("--seconds must be between 6 and 600")
    report = run(args.seconds)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"false barge-ins without cancellation: {report['false_barge_ins_without_aec']}")
    for r in report["results"]:
        print(
            f"{r['binding']:>15}: ERLE {r['erle_db']} dB (p10 {r['erle_p10_db']}), "
            f"false barge-ins {r['false_barge_ins']}, barge-in {r['barge_in_ms']} ms, "
            f"added delay {r['added_delay_ms']} ms, CPU {r['cpu_ms_per_s']} ms per s "
            f"({r['cpu_ms_per_call']} ms per {args.seconds:g} s call)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
