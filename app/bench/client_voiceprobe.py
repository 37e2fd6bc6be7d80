"""Benchmark client: voiceprobe's own bridge (``run_call`` with a :class:`WavFilePort`).

The whole product path: local VAD, resampling to the provider's rate, the sans-I/O
protocol, the recorder, the session store on its writer thread, the network sampler.
The bridge's own stats give the figures (``app.bridge.stats.BridgeStats``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.audio.fileport import WavFilePort
from app.audio.wavio import read_wav
from app.bench.harness import ClientRun
from app.bridge.providers import ProviderPlan
from app.bridge.session import CallHandle, CallSetup, run_call
from app.clock import MONOTONIC
from app.metrics.timeline import summarize
from app.profile import load_profile


def prepare(wav: Path) -> WavFilePort:
    """The caller WAV as a file port (done before the call)."""
    pcm, rate = read_wav(wav)
    return WavFilePort(pcm, rate)


async def call(
    port: WavFilePort, base: str, data_root: Path, handle: CallHandle | None = None
) -> dict[str, Any]:
    """Place one call through the bridge against the simulator at ``base``; its summary."""
    plan = ProviderPlan("openai", "openai", base, "bench-key")
    setup = CallSetup(profile=load_profile(None), plan=plan, data_root=data_root)
    return await run_call(setup, port, [], MONOTONIC, handle)


async def run(port: WavFilePort, base: str, data_root: Path) -> ClientRun:
    """:func:`call`, with the bridge's raw figures."""
    handle = CallHandle()
    summary = await call(port, base, data_root, handle)
    assert handle.bridge is not None
    stats = handle.bridge.stats
    return ClientRun(
        send_ns=stats.send_delay_ns,
        recv_ns=stats.recv_delay_ns,
        lag_ns=stats.loop_lag_ns,
        extra={
            "ok": summary["ok"],
            "turns": len(summary["turns"]),
            "playback_latency": summarize(summary["turns"], "playback_latency"),
            "voice_to_voice": summarize(summary["turns"]),
        },
    )
