"""The hot send (app/providers/wsframe.py): frames a real ``websockets`` server reads as
the exact texts, in order with ``websockets``' own sends, and a fallback whenever the
bypass would not be safe."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame
from websockets.protocol import CLIENT, OPEN

from app.eventloop import run
from app.providers.wsframe import MaskKeys, text_frame, try_send_text

#: Payload lengths at each of RFC 6455's length encodings and their edges.
LENGTHS = (0, 1, 125, 126, 1280, 65535, 65536, 300_000)


async def _echo_server(
    received: list[str], done: asyncio.Event, count: int, tls: ssl.SSLContext | None = None
) -> Any:
    async def handler(conn: ServerConnection) -> None:
        async for msg in conn:
            assert isinstance(msg, str)
            received.append(msg)
            if len(received) == count:
                done.set()

    return await serve(handler, "127.0.0.1", 0, compression=None, max_size=None, ssl=tls)


def _tls_pair() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1, and a client trusting its CA."""
    authority = trustme.CA()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return server, client


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_direct_frames_arrive_whole_and_in_order_with_the_library_s_own(scheme: str) -> None:
    texts = ["x" * n for n in LENGTHS]
    sent_direct: list[bool] = []
    server_tls, client_tls = _tls_pair() if scheme == "wss" else (None, None)

    async def main() -> list[str]:
        received: list[str] = []
        done = asyncio.Event()
        server = await _echo_server(received, done, 2 * len(texts), server_tls)
        port = server.sockets[0].getsockname()[1]
        keys = MaskKeys()
        url = f"{scheme}://127.0.0.1:{port}"
        async with connect(url, compression=None, max_size=None, ssl=client_tls) as ws:
            for i, text in enumerate(texts):
                sent_direct.append(try_send_text(ws, f"{i}:{text}", keys))
                await ws.send(f"lib{i}")  # interleaved with websockets' own framing
            await asyncio.wait_for(done.wait(), 10)
        server.close()
        await server.wait_closed()
        return received

    received = run(main())
    expected = [m for i, t in enumerate(texts) for m in (f"{i}:{t}", f"lib{i}")]
    assert received == expected
    assert all(sent_direct)


def test_frame_bytes_parse_as_the_text_with_the_key() -> None:
    keys = MaskKeys()
    for n in LENGTHS:
        key = keys.next()
        payload = ("é" * n).encode()
        data = text_frame(payload, key)
        frames = list(_parse(data))
        assert len(frames) == 1
        assert frames[0].fin and frames[0].opcode.name == "TEXT"
        assert frames[0].data == payload
        extended = 0 if len(payload) < 126 else 2 if len(payload) < 65536 else 8
        assert data[2 + extended : 6 + extended] == key


def _parse(data: bytes) -> Any:
    from websockets.streams import StreamReader

    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    gen = Frame.parse(reader.read_exact, mask=True)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        yield stop.value


def test_mask_keys_are_fresh_across_pool_refills() -> None:
    keys = MaskKeys()
    seen = [keys.next() for _ in range(3000)]  # about three 4 KiB blocks
    assert all(len(k) == 4 for k in seen)
    assert len(set(seen)) > 2990  # 32-bit keys: a handful of repeats at most


@pytest.mark.parametrize("blocker", ["paused", "closing", "fragment", "queued"])
def test_declines_and_writes_nothing_when_the_bypass_is_unsafe(blocker: str) -> None:
    async def main() -> tuple[bool, list[str]]:
        received: list[str] = []
        done = asyncio.Event()
        server = await _echo_server(received, done, 1)
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            assert ws.protocol.side is CLIENT and ws.protocol.state is OPEN
            writes: list[bytes] = []
            real_write = ws.transport.write
            ws.transport.write = writes.append  # type: ignore[method-assign,assignment]
            if blocker == "paused":
                ws.paused = True
            elif blocker == "closing":
                ws.transport.is_closing = lambda: True  # type: ignore[method-assign]
            elif blocker == "fragment":
                ws.protocol.expect_continuation_frame = True
            else:
                ws.protocol.writes.append(b"pong")
            ok = try_send_text(ws, "hello", MaskKeys())
            ws.transport.write = real_write  # type: ignore[method-assign]
            assert writes == []
            # Undo, so the connection closes cleanly.
            ws.paused = False
            ws.protocol.expect_continuation_frame = False
            ws.protocol.writes.clear()
            if blocker == "closing":
                del ws.transport.is_closing
            await ws.send("after")
            await asyncio.wait_for(done.wait(), 10)
        server.close()
        await server.wait_closed()
        return ok, received

    ok, received = run(main())
    assert not ok
    assert received == ["after"]
