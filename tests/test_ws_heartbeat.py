"""Keepalive: a peer that stops answering pings is detected and reported as ``failed``.

Real loopback servers: one whose connection drops every pong it would send, one that
completes the handshake and then never reads or writes again (a hung peer), and one that
behaves (the control). The client is the real :class:`WebSocketProvider` with short
intervals so the test runs in about two seconds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from app.clock import MONOTONIC
from app.events import ConnectionState, Event
from app.profile import Profile
from app.providers.gemini.connection import connect_gemini
from app.providers.openai.connection import connect_openai
from app.providers.openai.protocol import OpenAIProtocol
from app.providers.ws import WebSocketProvider
from tests.conftest import TIME_SCALE

INTERVAL = 0.3
TIMEOUT = 0.4
SLACK = 0.5 * TIME_SCALE


class _DropPongs(ServerConnection):
    """A server connection that never sends a pong (everything else works)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        send_frame = self.protocol.send_frame

        def without_pongs(frame: Frame) -> None:
            if frame.opcode is not Opcode.PONG:
                send_frame(frame)

        self.protocol.send_frame = without_pongs  # type: ignore[method-assign]


async def _idle(ws: ServerConnection) -> None:
    async for _ in ws:  # read session.update and anything else; never reply
        pass


@asynccontextmanager
async def _server(drop_pongs: bool) -> AsyncIterator[str]:
    kwargs: dict[str, Any] = {"create_connection": _DropPongs} if drop_pongs else {}
    async with serve(_idle, "127.0.0.1", 0, ping_interval=None, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/realtime?model=m"


@asynccontextmanager
async def _hung_server() -> AsyncIterator[str]:
    """Completes the WebSocket handshake by hand, then never reads or writes again."""
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(
            hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await writer.drain()
        held.append(writer)  # keep the socket open, silent

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/realtime?model=m"
    finally:
        for w in held:
            w.close()
        server.close()


def _client(url: str, close_timeout: float = 5.0) -> WebSocketProvider:
    return WebSocketProvider(
        OpenAIProtocol(Profile(), MONOTONIC),
        url,
        {},
        MONOTONIC,
        ping_interval=INTERVAL,
        ping_timeout=TIMEOUT,
        close_timeout=close_timeout,
    )


async def _final_state(provider: WebSocketProvider, deadline: float) -> tuple[Event, float]:
    """Connect, then return the last event of the stream and the seconds it took."""
    t0 = time.monotonic()
    await provider.connect()
    last: Event | None = None

    async def drain() -> None:
        nonlocal last
        async for ev in provider.events():
            last = ev

    await asyncio.wait_for(drain(), deadline)
    assert last is not None
    return last, time.monotonic() - t0


def test_dropped_pongs_fail_within_interval_plus_timeout() -> None:
    async def main() -> tuple[Event, float]:
        async with _server(drop_pongs=True) as url:
            return await _final_state(_client(url), 10 * TIME_SCALE)

    last, elapsed = asyncio.run(main())
    assert isinstance(last, ConnectionState)
    assert last.state == "failed"
    assert last.detail.startswith("ping timeout"), last.detail
    assert INTERVAL + TIMEOUT - 0.05 <= elapsed <= INTERVAL + TIMEOUT + SLACK


def test_hung_peer_fails_within_interval_timeout_and_close_timeout() -> None:
    close_timeout = 0.3

    async def main() -> tuple[Event, float]:
        async with _hung_server() as url:
            return await _final_state(_client(url, close_timeout), 10 * TIME_SCALE)

    last, elapsed = asyncio.run(main())
    assert isinstance(last, ConnectionState)
    assert (last.state, last.detail[:12]) == ("failed", "ping timeout")
    limit = INTERVAL + TIMEOUT + close_timeout
    assert INTERVAL + TIMEOUT - 0.05 <= elapsed <= limit + SLACK


def test_answered_pings_keep_the_connection() -> None:
    """Control: with pongs flowing, several intervals pass and the stream stays open."""

    async def main() -> list[Event]:
        async with _server(drop_pongs=False) as url:
            provider = _client(url)
            await provider.connect()
            seen: list[Event] = []

            async def collect() -> None:
                async for ev in provider.events():
                    seen.append(ev)

            task = asyncio.create_task(collect())
            done, _ = await asyncio.wait({task}, timeout=4 * (INTERVAL + TIMEOUT))
            assert not done, "the stream ended although the peer answers pings"
            await provider.close()
            await asyncio.wait_for(task, 5 * TIME_SCALE)
            return seen

    seen = asyncio.run(main())
    finals = [e for e in seen if isinstance(e, ConnectionState)]
    assert finals[-1].state == "closed" and "failed" not in {e.state for e in finals}


def test_provider_keepalive_settings() -> None:
    """OpenAI: 20 s / 20 s. Gemini answers pongs in 8-30 s, so it gets 20 s / 60 s."""
    openai = connect_openai(Profile(), "k", MONOTONIC, url="ws://127.0.0.1:9/v1")
    gemini = connect_gemini(Profile(provider="gemini"), "k", MONOTONIC, url="ws://127.0.0.1:9")
    assert (openai._ping_interval, openai._ping_timeout) == (20.0, 20.0)
    assert (gemini._ping_interval, gemini._ping_timeout) == (20.0, 60.0)
