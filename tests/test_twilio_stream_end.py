"""How a served Twilio stream ends, and what the call records for it (``serve twilio``).

The stream's end decides the call's: ``stop`` ends it ``completed``; the caller closing
without ``stop`` ends it ``caller_hangup``; a lost connection or an error close fails it
(``connection_closed``); the server shutting down leaves the session ``interrupted``. Each
is said in ``events.jsonl`` and on stderr, the call ends as soon as the stream is gone,
and no agent audio is counted as played after it. Media after ``stop`` is ignored, and
caller audio is held to real time. The end-to-end tests run real WebSocket clients on
loopback against a ``serve twilio`` process started without ``--provider`` (the
simulator, as for ``call``); the port and the close mapping are also tested with plain
calls.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import select
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from app.audio import g711
from app.bridge.providers import DEFAULT_SCENARIO
from app.events import Notice
from app.providers.twilio.protocol import CallerMedia, TwilioStreamProtocol
from app.serve.twilio import stream_end_of_close
from app.serve.twilio_port import AHEAD_MS, StreamEnd, TwilioStreamPort
from app.sim.caller import caller_track
from app.sim.scenario import load_scenario
from tests.conftest import REPO, TIME_SCALE
from tests.twilio_helpers import stop

S = 1_000_000_000
#: How soon after the stream is gone the call's summary must be out (the agent's reply
#: and the 1.5 s tail used to run on for several seconds).
PROMPT_S = 3.0 * TIME_SCALE
#: Waiting on the server or a client (never a synchronisation sleep).
WAIT_S = 30.0 * TIME_SCALE

PCM, UTTERANCES = caller_track(load_scenario(str(DEFAULT_SCENARIO)), rate=8000)
ULAW = g711.ulaw_encode(PCM)
#: Just after the caller's first line ends, before the agent can answer it.
AFTER_LINE_1 = UTTERANCES[0].end / 8000 + 0.14


# --- the port and the close mapping, with plain calls ---------------------------------


def _port(start_ns: int, ended: list[StreamEnd] | None = None) -> TwilioStreamPort:
    port = TwilioStreamPort(
        TwilioStreamProtocol(),
        lambda _text: None,
        lambda: start_ns,
        start_ns=start_ns,
        on_end=(ended.append if ended is not None else None),
    )
    return port


def _media(t_ns: int, samples: int, value: int = 1000) -> CallerMedia:
    return CallerMedia(
        t_ns=t_ns, pcm=np.full(samples, value, np.int16), chunk=None, timestamp_ms=None
    )


def test_an_oversized_payload_is_cut_to_real_time_and_never_stamped_before_start() -> None:
    start = 5 * S
    port = _port(start)
    logged: list[Any] = []
    port.emit = logged.append
    port.feed(_media(start + 20_000_000, 160))
    port.feed(_media(start + 2 * S, 700_000))  # 87.5 s of audio, 2 s into the stream
    frames = port.read(start + 2 * S)
    allowed = (2 * S + AHEAD_MS * 1_000_000) * 8000 // S
    assert sum(len(f.pcm) for f in frames) == allowed
    assert port.dropped_samples == 160 + 700_000 - allowed
    stamps = [f.t_ns for f in frames]
    assert stamps == sorted(stamps) and stamps[0] >= start and stamps[-1] == start + 2 * S
    warnings = [e for e in logged if isinstance(e, Notice) and e.level == "warning"]
    assert len(warnings) == 1 and "87500 ms" in warnings[0].message
    assert "dropped" in warnings[0].message
    # Audio at the pace of real time afterwards passes untouched (no second warning).
    port.feed(_media(start + 3 * S, 8000))
    assert sum(len(f.pcm) for f in port.read(start + 3 * S)) == 8000
    assert len([e for e in logged if isinstance(e, Notice)]) == 1


def test_normal_media_is_kept_whole_and_stamped_at_arrival() -> None:
    start = S
    port = _port(start)
    for i in range(1, 51):
        port.feed(_media(start + i * 20_000_000, 160))
    frames = port.read(start + S)
    assert len(frames) == 50 and port.dropped_samples == 0
    assert [f.t_ns for f in frames] == [start + i * 20_000_000 for i in range(1, 51)]


def test_the_end_is_reported_once_every_frame_before_it_was_read() -> None:
    ended: list[StreamEnd] = []
    port = _port(S, ended)
    port.start(S)  # the bridge is reading
    port.feed(_media(S + 20_000_000, 160))
    port.end(StreamEnd(kind="stop", t_ns=S + 30_000_000))
    port.end(StreamEnd(kind="dropped", t_ns=S + 40_000_000, code=1006))  # the first counts
    port.feed(_media(S + 50_000_000, 160))  # after the end: ignored
    assert len(port.read(S + 60_000_000)) == 1 and not ended  # the bridge handles it first
    assert port.read(S + 80_000_000) == [] and [e.kind for e in ended] == ["stop"]
    port.read(S + 100_000_000)
    assert len(ended) == 1


def test_an_end_before_the_bridge_reads_is_reported_at_once() -> None:
    ended: list[StreamEnd] = []
    port = _port(S, ended)
    port.end(StreamEnd(kind="hangup", t_ns=S, code=1000))
    assert [e.kind for e in ended] == ["hangup"]


@pytest.mark.parametrize(
    ("exc", "kind", "code", "words"),
    [
        (ConnectionClosedOK(Close(1000, ""), Close(1000, ""), True), "hangup", 1000, "caller"),
        (ConnectionClosedOK(Close(1001, "bye"), Close(1001, ""), True), "hangup", 1001, "bye"),
        (ConnectionClosedError(None, None), "dropped", 1006, "connection lost"),
        (
            ConnectionClosedError(Close(1009, "too big"), Close(1009, "too big"), False),
            "dropped",
            1009,
            "voiceprobe closed",
        ),
        (ConnectionClosedError(None, Close(1011, "ping")), "dropped", 1011, "voiceprobe"),
        (ConnectionClosedError(Close(4000, "x\x1b[2J"), None), "dropped", 4000, "caller"),
    ],
)
def test_a_close_without_stop_says_who_closed_and_how(
    exc: ConnectionClosed, kind: str, code: int, words: str
) -> None:
    end = stream_end_of_close(exc, 7)
    assert (end.kind, end.code, end.t_ns) == (kind, code, 7)
    assert "without stop" in end.message and words in end.message
    assert f"close code {code}" in end.message and "\x1b" not in end.message


# --- end to end: real clients against `serve twilio` ----------------------------------


class Served:
    """A ``serve twilio --json`` process started without ``--provider``: its summaries
    by call SID (read with a deadline), its stderr in a file."""

    def __init__(self, tmp: Path) -> None:
        self.out = tmp / "data"
        self.err_path = tmp / "stderr.txt"
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "twilio", "--out", str(self.out)]
                + ["--json"],
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=REPO,
                env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
            )
        self._buf = b""
        self.calls: dict[str, dict[str, Any]] = {}
        self.url = self.line()
        assert self.url.startswith("ws://127.0.0.1:"), self.url
        twiml = self.line() + self.line()
        self.token = twiml.split('value="')[1].split('"')[0]

    def line(self, timeout_s: float = WAIT_S) -> str:
        """The next stdout line, or fail after ``timeout_s``."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            assert left > 0, "no line from the server in time"
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, "the server exited"
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def call(self, call_sid: str, timeout_s: float = WAIT_S) -> dict[str, Any]:
        """The summary of call ``call_sid`` once it is printed."""
        deadline = time.monotonic() + timeout_s
        while call_sid not in self.calls:
            summary = json.loads(self.line(max(0.0, deadline - time.monotonic())))
            self.calls[summary["twilio"]["call_sid"]] = summary
        return self.calls[call_sid]

    def stderr(self) -> str:
        return self.err_path.read_text()

    def stop(self) -> None:
        stop(self.proc)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("serve-end"))
    try:
        yield server
    finally:
        server.stop()


def _msg(event: str, **body: Any) -> str:
    return json.dumps({"event": event, **body, "streamSid": "MZend"})


class Caller:
    """A Twilio-side client from the message reference: ``connected``, ``start``, then
    paced 20 ms ``media``; records what came back and how the socket closed."""

    def __init__(self, ws: ClientConnection, call_sid: str) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.seq = 0
        self.chunk = 0
        self.agent_media = 0
        self.closed = asyncio.Event()
        self.close: Close | None = None
        self._rx = asyncio.create_task(self._receive())

    @classmethod
    async def dial(cls, url: str, token: str, call_sid: str) -> Caller:
        ws = await connect(url, max_size=None)
        caller = cls(ws, call_sid)
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "streamSid": "MZend",
            "accountSid": "ACend",
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": {"voiceprobe_token": token},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await caller.send("start", start=start)
        return caller

    async def _receive(self) -> None:
        try:
            async for text in self.ws:
                if json.loads(text).get("event") == "media":
                    self.agent_media += 1
        except ConnectionClosed:
            pass
        self.close = self.ws.protocol.close_rcvd
        self.closed.set()

    async def send(self, event: str, **body: Any) -> None:
        self.seq += 1
        await self.ws.send(_msg(event, sequenceNumber=str(self.seq), **body))

    async def media(self, ulaw: bytes) -> None:
        self.chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self.chunk),
            "timestamp": str((self.chunk - 1) * 20),
            "payload": base64.b64encode(ulaw).decode(),
        }
        await self.send("media", media=media)

    async def play(self, start_s: float, end_s: float) -> None:
        """The caller track from ``start_s`` to ``end_s``, in real time."""
        t0 = time.monotonic()
        first, last = round(start_s * 50), round(end_s * 50)
        for i in range(first, last):
            await self.media(ULAW[i * 160 : (i + 1) * 160])
            await asyncio.sleep(max(0.0, t0 + (i - first + 1) * 0.02 - time.monotonic()))

    async def stop(self) -> None:
        await self.send("stop", stop={"accountSid": "ACend", "callSid": self.call_sid})

    async def wait_closed(self) -> Close | None:
        await asyncio.wait_for(self.closed.wait(), WAIT_S)
        await self._rx
        return self.close


def _events(summary: dict[str, Any]) -> list[dict[str, Any]]:
    text = (Path(summary["session_dir"]) / "events.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _session(summary: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads((Path(summary["session_dir"]) / "session.json").read_text()))


def _notices(events: list[dict[str, Any]], level: str, words: str) -> list[dict[str, Any]]:
    return [
        e for e in events if e["kind"] == "Notice" and e["level"] == level and words in e["message"]
    ]


def _wav_s(summary: dict[str, Any]) -> float:
    with wave.open(str(Path(summary["session_dir"]) / "audio.wav")) as w:
        return float(w.getnframes() / w.getframerate())


def _nothing_played_for_the_unanswered_line(summary: dict[str, Any]) -> None:
    events = _events(summary)
    assert not [e for e in events if e["kind"] == "PlaybackStarted"]
    for turn in summary["turns"]:
        assert "playback_latency" not in turn["spans"] and "voice_to_voice" not in turn["spans"]
    assert summary["voice_to_voice"]["count"] == 0


@pytest.mark.slow
def test_a_caller_closing_without_stop_is_a_hangup_said_and_the_call_ends_at_once(
    served: Served,
) -> None:
    async def run() -> tuple[Close | None, float]:
        caller = await Caller.dial(served.url, served.token, "CAhangup")
        await caller.play(0, AFTER_LINE_1)
        await caller.ws.close()  # 1000, no stop
        closed_at = time.monotonic()
        return await caller.wait_closed(), closed_at

    close, closed_at = asyncio.run(run())
    summary = served.call("CAhangup")
    assert time.monotonic() - closed_at < PROMPT_S
    assert close is not None and close.code == 1000
    assert summary["provider"] == "sim"  # no --provider: the simulator, as for `call`
    assert (summary["ok"], summary["reason"], summary["errors"]) == (True, "caller_hangup", [])
    assert summary["twilio"]["end"]["kind"] == "hangup"
    assert summary["twilio"]["end"]["close_code"] == 1000
    assert _session(summary)["summary"]["reason"] == "caller_hangup"
    warned = _notices(_events(summary), "warning", "without stop")
    assert len(warned) == 1 and "close code 1000" in warned[0]["message"]
    assert "CAhangup: twilio stream ended without stop" in served.stderr()
    assert summary["turns"]  # what was recorded is kept
    assert _wav_s(summary) > AFTER_LINE_1 - 0.2
    _nothing_played_for_the_unanswered_line(summary)


@pytest.mark.slow
def test_a_lost_connection_fails_the_call_with_its_close_code(served: Served) -> None:
    async def run() -> float:
        caller = await Caller.dial(served.url, served.token, "CAlost")
        await caller.play(0, AFTER_LINE_1)
        caller.ws.transport.abort()  # as a killed client: no close frame
        lost_at = time.monotonic()
        await caller.wait_closed()
        return lost_at

    lost_at = asyncio.run(run())
    summary = served.call("CAlost")
    assert time.monotonic() - lost_at < PROMPT_S
    assert (summary["ok"], summary["reason"]) == (False, "failed")
    assert [e["code"] for e in summary["errors"]] == ["connection_closed"]
    assert "1006" in summary["errors"][0]["message"]
    assert _session(summary)["status"] == "failed"
    events = _events(summary)
    assert len(_notices(events, "warning", "connection lost (close code 1006")) == 1
    assert [e["code"] for e in events if e["kind"] == "CallFailed"] == ["connection_closed"]
    assert "CAlost: twilio stream ended without stop: connection lost" in served.stderr()
    _nothing_played_for_the_unanswered_line(summary)


@pytest.mark.slow
def test_a_frame_over_the_size_limit_closes_1009_and_fails_the_call(served: Served) -> None:
    async def run() -> Close | None:
        caller = await Caller.dial(served.url, served.token, "CAbig")
        await caller.play(0, 1.0)
        await caller.media(b"\xff" * 900_000)  # 1.2 MB of base64: over the 1 MiB limit
        return await caller.wait_closed()

    close = asyncio.run(run())
    summary = served.call("CAbig")
    assert close is not None and close.code == 1009
    assert (summary["ok"], summary["reason"]) == (False, "failed")
    assert summary["twilio"]["end"] == {
        "kind": "dropped",
        "close_code": 1009,
        "message": summary["errors"][0]["message"],
    }
    assert (
        "voiceprobe closed the socket (close code 1009, message too big"
        in (summary["errors"][0]["message"])
    )
    assert len(_notices(_events(summary), "warning", "close code 1009")) == 1


@pytest.mark.slow
def test_media_after_stop_is_ignored_and_said_once(served: Served) -> None:
    line_2 = UTTERANCES[1]

    async def run() -> None:
        caller = await Caller.dial(served.url, served.token, "CAafter")
        await caller.play(0, AFTER_LINE_1)
        await caller.stop()
        for i in range(line_2.start // 160, line_2.end // 160):  # the next line, spoken
            await caller.media(ULAW[i * 160 : (i + 1) * 160])
        await caller.wait_closed()

    asyncio.run(run())
    summary = served.call("CAafter")
    assert (summary["ok"], summary["reason"]) == (True, "completed")
    assert summary["twilio"]["end"]["kind"] == "stop"
    events = _events(summary)
    assert len(_notices(events, "warning", "media after stop (ignored)")) == 1
    (stop,) = _notices(events, "info", "twilio stop")
    heard = [e for e in events if e["kind"] in ("LocalSpeechStarted", "BargeIn")]
    assert heard and all(e["t_ns"] <= stop["t_ns"] for e in heard)
    assert len(summary["turns"]) == 1
    (started,) = _notices(events, "info", "twilio stream MZend of call CAafter started")
    assert _wav_s(summary) <= (stop["t_ns"] - started["t_ns"]) / S + 0.05
    assert "CAafter" not in served.stderr()  # a clean end: nothing to warn about


@pytest.mark.slow
def test_an_oversized_payload_cannot_claim_more_time_than_has_passed(served: Served) -> None:
    # 87.5 s of the caller's speech in one message 2 s into the call (under the frame limit).
    speech = ULAW[UTTERANCES[0].start : UTTERANCES[0].end]
    huge = (speech * (700_000 // len(speech) + 1))[:700_000]

    async def run() -> None:
        caller = await Caller.dial(served.url, served.token, "CAhuge")
        await caller.play(0, 2.0)
        await caller.media(huge)
        await caller.play(2.0, 6.0)
        await caller.stop()
        await caller.wait_closed()

    asyncio.run(run())
    summary = served.call("CAhuge")
    assert summary["ok"] and summary["reason"] == "completed"
    assert summary["twilio"]["caller_ms_dropped"] >= 87_500 - 2_000 - AHEAD_MS
    events = _events(summary)
    (warned,) = _notices(events, "warning", "more audio than real time allows")
    assert "87500 ms" in warned["message"] and "dropped" in warned["message"]
    (started,) = _notices(events, "info", "twilio stream MZend of call CAhuge started")
    speech_at = [e["t_ns"] for e in events if e["kind"] == "LocalSpeechStarted"]
    assert speech_at and min(speech_at) >= started["t_ns"]
    for turn in summary["turns"]:
        assert all(span["ms"] >= 0 for span in turn["spans"].values()), turn["spans"]
    stream_s = (_session(summary)["ended_ns"] - started["t_ns"]) / S
    assert _wav_s(summary) <= stream_s + AHEAD_MS / 1000 + 0.05


@pytest.mark.slow
def test_a_server_shutdown_mid_call_leaves_the_session_interrupted(tmp_path: Path) -> None:
    server = Served(tmp_path)
    try:

        async def run() -> Close | None:
            caller = await Caller.dial(server.url, server.token, "CAterm")
            await caller.play(0, 1.5)
            server.proc.terminate()  # SIGTERM
            return await caller.wait_closed()

        close = asyncio.run(run())
        summary = server.call("CAterm")
        assert server.proc.wait(WAIT_S) == 0
    finally:
        server.stop()
    assert close is not None and (close.code, close.reason) == (1001, "server shutting down")
    assert (summary["ok"], summary["reason"]) == (False, "interrupted")
    assert summary["twilio"]["end"]["kind"] == "shutdown"
    assert _session(summary)["status"] == "interrupted"
    assert len(_notices(_events(summary), "warning", "server shuts down (1001)")) == 1
    assert "CAterm: twilio stream closed by voiceprobe" in server.stderr()


# --- which agent `serve twilio` bridges to ---------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_the_help_names_the_agents_serve_bridges_to() -> None:
    proc = _cli("serve", "twilio", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "sim | openai | gemini (default: sim" in text
    assert "twilio-ws (default" not in text


def test_twilio_ws_is_refused_named_or_from_the_profile(tmp_path: Path) -> None:
    named = _cli("serve", "twilio", "--port", "0", "--provider", "twilio-ws")
    assert named.returncode == 2 and "invalid choice: 'twilio-ws'" in named.stderr
    profile = tmp_path / "deployed.yaml"
    profile.write_text("name: deployed\nprovider: twilio-ws\nurl: ws://127.0.0.1:9/twilio\n")
    from_profile = _cli("serve", "twilio", "--port", "0", "--profile", str(profile))
    assert from_profile.returncode == 2
    assert "--provider must be sim | openai | gemini" in from_profile.stderr
    assert "the profile's agent is twilio-ws" in from_profile.stderr
