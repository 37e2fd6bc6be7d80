"""Helpers for the Twilio tests: processes whose first stdout line is a WebSocket URL
(``serve twilio``, ``sim``, the Pipecat bot), and stopping them; a ``serve twilio --json``
process read with deadlines (:class:`Served`) and a Twilio-side client written from the
message reference (:class:`Caller`), with the default scenario's caller track."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from app.audio import g711
from app.bridge.providers import DEFAULT_SCENARIO
from app.sim.caller import caller_track
from app.sim.scenario import load_scenario
from tests.conftest import REPO, TIME_SCALE

S = 1_000_000_000
#: How much a served span's two ends may each move with the loop's wake-up (ms): the
#: server stamps a reply's first and last block when its loop writes them (measured
#: 0.9 ms longer than the client's span, beside other tests).
SERVED_JITTER_MS = 5.0 * max(1.0, TIME_SCALE)
#: How much longer a client's span may run than the audio it was sent (ms): its sink plays
#: a frame of silence for each message that reaches it after its slot. Beside other tests
#: two were seen in one reply (3620 ms for 3567 ms sent), so four frames are allowed; a
#: reply cut short, the defect these tests guard against, shows on the other side.
CLIENT_LATE_MS = 4 * 20.0 * max(1.0, TIME_SCALE)
#: Waiting on the server or a client (never a synchronisation sleep).
WAIT_S = 30.0 * TIME_SCALE

PCM, UTTERANCES = caller_track(load_scenario(str(DEFAULT_SCENARIO)), rate=8000)
ULAW = g711.ulaw_encode(PCM)
#: Just after the caller's first line ends, before the agent can answer it.
AFTER_LINE_1 = UTTERANCES[0].end / 8000 + 0.14


def start_line(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start a process whose first stdout line is its URL; return it and the line."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # the process prints it once it listens
    assert line.startswith("ws://"), line
    return proc, line


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate ``proc`` (kill it if it does not end within 10 s)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class ServeTwilio:
    """A ``voiceprobe serve twilio --provider sim`` process: its URL, TwiML and token."""

    def __init__(self, tmp: Path, truth: bool = True) -> None:
        self.out = tmp / "data"
        self.truth = tmp / "truth.jsonl"
        args = [sys.executable, "-m", "app.cli", "serve", "twilio", "--provider", "sim"]
        if truth:
            args += ["--truth", str(self.truth)]
        self.proc = subprocess.Popen(
            [*args, "--out", str(self.out), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("ws://127.0.0.1:") and self.url.endswith("/twilio")
        self.twiml = self.proc.stdout.readline() + self.proc.stdout.readline()
        assert "<Connect><Stream url=" in self.twiml
        self.token = self.twiml.split('value="')[1].split('"')[0]
        assert len(self.token) >= 24

    def next_call(self) -> dict[str, Any]:
        """The next finished call's summary (one JSON line per call)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the server prints it when the call ends
        assert line, "server exited"
        return dict(json.loads(line))

    def sessions(self) -> list[Path]:
        """The server's session folders."""
        root = self.out / "sessions"
        return sorted(root.iterdir()) if root.exists() else []

    def stop(self) -> None:
        """Stop the server."""
        stop(self.proc)


class Served:
    """A ``serve twilio --json`` process started without ``--provider``: its summaries
    by call SID (read with a deadline), its stderr in a file; with ``truth``, every
    stream's simulator writes its ground truth to :attr:`truth`."""

    def __init__(self, tmp: Path, truth: bool = False) -> None:
        self.out = tmp / "data"
        self.err_path = tmp / "stderr.txt"
        self.truth = tmp / "truth.jsonl"
        extra = ["--truth", str(self.truth)] if truth else []
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "twilio", "--out", str(self.out)]
                + ["--json", *extra],
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


def twilio_message(event: str, **body: Any) -> str:
    """One Twilio-side message of the test stream ``MZend``."""
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

    def _message(self, event: str, **body: Any) -> str:
        self.seq += 1
        return twilio_message(event, sequenceNumber=str(self.seq), **body)

    def _media_body(self, ulaw: bytes) -> dict[str, str]:
        self.chunk += 1
        return {
            "track": "inbound",
            "chunk": str(self.chunk),
            "timestamp": str((self.chunk - 1) * 20),
            "payload": base64.b64encode(ulaw).decode(),
        }

    async def send(self, event: str, **body: Any) -> None:
        await self.ws.send(self._message(event, **body))

    async def media(self, ulaw: bytes) -> None:
        await self.send("media", media=self._media_body(ulaw))

    def media_then_stop(self, chunks: list[bytes]) -> None:
        """``media`` for each chunk, then ``stop``, in one write to the socket (as a
        network stall releases them): the server reads them all before it handles any."""
        for ulaw in chunks:
            text = self._message("media", media=self._media_body(ulaw))
            self.ws.protocol.send_text(text.encode())
        text = self._message("stop", stop={"accountSid": "ACend", "callSid": self.call_sid})
        self.ws.protocol.send_text(text.encode())
        self.ws.transport.write(b"".join(self.ws.protocol.data_to_send()))

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


def events_of(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The call's ``events.jsonl``."""
    text = (Path(summary["session_dir"]) / "events.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def notices(events: list[dict[str, Any]], level: str, words: str) -> list[dict[str, Any]]:
    """The Notices of ``level`` whose message holds ``words``."""
    return [
        e for e in events if e["kind"] == "Notice" and e["level"] == level and words in e["message"]
    ]
