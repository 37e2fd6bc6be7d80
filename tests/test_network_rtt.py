"""Network or model? The round trip to the provider, measured during every call.

A relay on loopback delays every byte by a known time in each direction (as a distant
region would); ``voiceprobe call`` through it must report that round trip in the
summary's ``network_rtt`` and the dial time must include it, while a direct call reports
a loopback figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.events import NetworkSample
from app.providers.netstats import summarize_network, tcp_rtt_ms
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from app.sim.server import SimThread
from tests.conftest import REPO, TIME_SCALE

ONE_WAY_MS = 40
SCENARIO = """
name: rtt
timing: {response_delay_ms: 50, first_audio_ms: 100, chunk_ms: 100, realtime_factor: 4.0}
turns:
  - hears: "Hello, can you hear me?"
    reply: "Yes, I can hear you."
  - hears: "What's the weather in Paris?"
    reply: "It is sunny."
"""


class DelayRelay:
    """Forwards TCP to ``upstream_port``, holding every chunk ``delay_s`` in each direction
    (order kept), on its own loop thread."""

    def __init__(self, upstream_port: int, delay_s: float) -> None:
        self.upstream_port, self.delay_s = upstream_port, delay_s
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="delay-relay", daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1"))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.close()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    dst.close()
                    return
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                dst.write(data)
                await dst.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await src.read(65536):
                queue.put_nowait((time.monotonic() + self.delay_s, data))
        except ConnectionError:
            pass
        queue.put_nowait((0.0, b""))
        await asyncio.gather(sender, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[tuple[SimThread, Path]]:
    sc = tmp_path / "scenario.yaml"
    sc.write_text(SCENARIO)
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(sc)), wav)
    thread = SimThread(load_scenario(str(sc)))
    thread.start()
    yield thread, wav
    thread.stop()


def run_call(url: str, wav: Path, out: Path) -> dict:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-rtt-0123456789abcdefghij",
           "VOICEPROBE_HOME": str(out)}
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "call", "--input", str(wav), "--provider", "openai",
         "--url", url, "--json", "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.paired  # round trips to ±30 ms
def test_round_trip_through_a_distant_path_is_reported(
    tmp_path: Path, sim: tuple[SimThread, Path]
) -> None:
    thread, wav = sim
    port = int(thread.server.url.split(":")[2].split("/")[0])
    relay = DelayRelay(port, ONE_WAY_MS / 1000)
    try:
        far = run_call(f"ws://127.0.0.1:{relay.port}/v1", wav, tmp_path / "far")
    finally:
        relay.stop()
    near = run_call(thread.server.url.rsplit("/realtime", 1)[0], wav, tmp_path / "near")

    rtt = far["network_rtt"]
    assert rtt["source"] == "ping" and rtt["ping"]["count"] >= 2
    want = 2 * ONE_WAY_MS
    assert want - 5 <= rtt["p50_ms"] <= want + 30 * TIME_SCALE, rtt
    assert want - 5 <= rtt["p95_ms"] <= want + 40 * TIME_SCALE, rtt
    # The dial (TCP to the relay, then the upgrade request and its answer through it)
    # includes at least one delayed round trip.
    (connect_ms,) = rtt["connect_ms"]
    assert connect_ms >= want - 5
    # The kernel's RTT is to the relay (loopback; it can include the relay's delayed ACKs),
    # well under the delayed path: the two sources tell the hops apart.
    assert rtt["tcp"]["count"] >= 2 and rtt["tcp"]["p50_ms"] < want / 2, rtt
    assert near["network_rtt"]["p50_ms"] < 15 * TIME_SCALE
    # Stored with the session too.
    meta = json.loads((Path(far["session_dir"]) / "session.json").read_text())
    assert meta["summary"]["network_rtt"]["p50_ms"] == rtt["p50_ms"]


def test_tcp_rtt_of_a_loopback_socket() -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    try:
        rtt = tcp_rtt_ms(cli)
        if sys.platform.startswith("linux"):
            assert rtt is not None and 0 <= rtt < 10
        else:
            assert rtt is None
        assert tcp_rtt_ms(None) is None
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_network_summary_prefers_ping_and_names_its_source() -> None:
    def s(source: str, ms: float) -> NetworkSample:
        return NetworkSample(t_ns=0, provider="openai", source=source, ms=ms)  # type: ignore[arg-type]

    only_tcp = summarize_network([s("connect", 120.0), s("tcp", 20.0), s("tcp", 30.0)])
    assert only_tcp["source"] == "tcp" and only_tcp["p50_ms"] == 25.0
    assert only_tcp["connect_ms"] == [120.0]
    both = summarize_network([s("tcp", 1.0), *(s("ping", v) for v in (80, 82, 84, 86, 200))])
    assert both["source"] == "ping" and both["p50_ms"] == 84 and both["max_ms"] == 200
    assert both["p95_ms"] == pytest.approx(177.2)
    empty = summarize_network([])
    assert empty["source"] is None and empty["count"] == 0 and empty["p50_ms"] is None


def test_waterfall_header_names_the_network_round_trip(qtbot) -> None:  # noqa: ANN001
    from ui.models.turns import TurnsModel

    model = TurnsModel()
    assert model.summary_text() == "No turns yet"
    for ms in (80.0, 90.0):
        model.apply(NetworkSample(t_ns=1, provider="openai", source="ping", ms=ms))
    model.apply(NetworkSample(t_ns=1, provider="openai", source="connect", ms=500.0))
    assert "network RTT p50 85 ms" in model.summary_text()
    assert model.network_text().endswith("(ping)")
