"""The bridge asks events and capabilities, never vendor names.

Session facts travel on events (:class:`SessionCreated` before the configuration is
confirmed, ``ConnectionState.close_code``, :class:`ResumptionUpdate`), so a provider that
is neither OpenAI nor Gemini gets the same continuity by emitting them. Every call here is
a real :class:`Bridge` over a real :class:`WebSocketProvider` talking to a loopback
WebSocket server on the test's own loop.
"""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from app.audio.fileport import WavFilePort
from app.bridge.call import Bridge, BridgeOptions, CallResult, EventSink
from app.clock import MONOTONIC
from app.events import (
    ConnectionState,
    Event,
    EventBase,
    Reconnected,
    ResumptionUpdate,
    SessionConfigured,
    SessionCreated,
)
from app.profile import Profile
from app.providers.base import Provider
from app.providers.openai.protocol import OpenAIProtocol
from app.providers.ws import WebSocketProvider
from app.tools.runner import ToolRunner
from tests.conftest import REPO, TIME_SCALE

Handler = Callable[[ServerConnection, int], Awaitable[None]]


def _session_event(kind: str) -> str:
    session = {"id": "sess_1", "type": "realtime", "model": "gpt-realtime"}
    return json.dumps({"type": kind, "event_id": f"evt_{kind}", "session": session})


class AcmeProtocol(OpenAIProtocol):
    """A provider the bridge has never heard of: the OpenAI dialect plus one message of
    its own that offers a resumption handle."""

    name = "acme"

    def receive(self, text: str | bytes, t_ns: int) -> list[Event]:
        msg = json.loads(text)
        if msg.get("type") == "acme.resume":
            return [ResumptionUpdate(t_ns=t_ns, raw=msg, handle=msg["handle"], resumable=True)]
        return super().receive(text, t_ns)


def _provider(url: str, protocol: OpenAIProtocol | None = None) -> WebSocketProvider:
    proto = protocol or OpenAIProtocol(Profile(), MONOTONIC)
    return WebSocketProvider(proto, url, {}, MONOTONIC, rtt_sample_s=None, rtt_ping_s=None)


async def _serve(handler: Handler, body: Callable[[str], Awaitable[None]]) -> list[int]:
    """Run ``body(url)`` against a loopback server calling ``handler(ws, index)`` per
    connection (1-based); return the close codes the server saw per connection."""
    opened: list[int] = []

    async def handle(ws: ServerConnection) -> None:
        opened.append(1)
        try:
            await handler(ws, len(opened))
            await ws.wait_closed()
        except ConnectionClosed:
            pass

    async with serve(handle, "127.0.0.1", 0, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        await body(f"ws://127.0.0.1:{port}/v1/realtime")
    return opened


async def _configure(ws: ServerConnection) -> None:
    await ws.send(_session_event("session.created"))
    await ws.recv()  # session.update
    await ws.send(_session_event("session.updated"))


def _bridge(
    provider: Provider,
    emit: EventSink,
    reconnect: Callable[[str | None], Provider],
) -> Bridge:
    silence = np.zeros(16000, dtype=np.int16)  # one second of caller audio
    options = BridgeOptions(
        tail_ms=200,
        max_seconds=30.0 * TIME_SCALE,
        reconnect_base_ms=10.0,
        reconnect_cap_ms=50.0,
        response_stall_s=None,
    )
    return Bridge(
        provider,
        WavFilePort(silence),
        ToolRunner((), 0, MONOTONIC),
        MONOTONIC,
        emit,
        options=options,
        reconnect=reconnect,
    )


def test_session_created_is_not_the_confirmation() -> None:
    proto = OpenAIProtocol(Profile(), MONOTONIC)
    (created,) = proto.receive(_session_event("session.created"), 1)
    (updated,) = proto.receive(_session_event("session.updated"), 2)
    assert isinstance(created, SessionCreated) and created.session_id == "sess_1"
    assert isinstance(updated, SessionConfigured) and not isinstance(updated, SessionCreated)


def test_close_code_travels_on_the_final_state_and_a_refusal_is_not_retried() -> None:
    async def refuse(ws: ServerConnection, index: int) -> None:
        await ws.send(_session_event("session.created"))
        await ws.recv()
        # A reason that quotes another code: only the close frame's code counts.
        await ws.close(4001, "invalid key (1000 attempts)")

    events: list[EventBase] = []
    dialled: list[str | None] = []
    result: list[CallResult] = []

    async def body(url: str) -> None:
        def reconnect(handle: str | None) -> Provider:
            dialled.append(handle)
            return _provider(url)

        result.append(await _bridge(_provider(url), events.append, reconnect).run())

    opened = asyncio.run(_serve(refuse, body))
    final = [e for e in events if isinstance(e, ConnectionState) and e.state == "failed"]
    assert [e.close_code for e in final] == [4001], final
    assert result[0].ok is False
    assert [e["code"] for e in result[0].errors] == ["connection_refused"], result[0].errors
    assert dialled == [] and len(opened) == 1, "a refusal is not a drop to recover from"


def test_client_close_and_normal_close_codes() -> None:
    async def close_normally(ws: ServerConnection, index: int) -> None:
        await _configure(ws)
        await ws.close(1000, "bye")

    states: list[ConnectionState] = []

    async def body(url: str) -> None:
        for _ in range(2):
            provider = _provider(url)
            await provider.connect()
            if not states:  # the first time the client closes, the second the server
                await provider.close()
            async for ev in provider.events():
                if isinstance(ev, ConnectionState) and ev.state in ("closed", "failed"):
                    states.append(ev)

    asyncio.run(_serve(close_normally, body))
    assert [(s.state, s.close_code) for s in states] == [("closed", None), ("closed", 1000)]


def test_a_new_provider_resumes_with_the_handle_its_events_offered() -> None:
    async def drop_after_handle(ws: ServerConnection, index: int) -> None:
        await _configure(ws)
        if index == 1:
            await ws.send(json.dumps({"type": "acme.resume", "handle": "h-1"}))
            await ws.close(1011, "server restarting")

    events: list[EventBase] = []
    dialled: list[str | None] = []
    result: list[CallResult] = []

    async def body(url: str) -> None:
        def reconnect(handle: str | None) -> Provider:
            dialled.append(handle)
            return _provider(url, AcmeProtocol(Profile(), MONOTONIC))

        first = _provider(url, AcmeProtocol(Profile(), MONOTONIC))
        result.append(await _bridge(first, events.append, reconnect).run())

    asyncio.run(_serve(drop_after_handle, body))
    assert result[0].ok, result[0].errors
    assert dialled == ["h-1"]
    (back,) = [e for e in events if isinstance(e, Reconnected)]
    assert back.resumed and back.provider == "acme" and back.session_index == 2


def _code_strings_and_attributes(path: Path) -> tuple[set[str], set[str]]:
    """String constants (docstrings excluded) and attribute names used in ``path``."""
    tree = ast.parse(path.read_text())
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    strings = {
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    }
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    return strings, attributes


def test_bridge_core_names_no_vendor() -> None:
    for name in ("call.py", "session.py", "supervision.py"):
        path = REPO / "app" / "bridge" / name
        assert path.exists(), path
        strings, attributes = _code_strings_and_attributes(path)
        vendor = [s for s in strings if any(v in s.lower() for v in ("openai", "gemini", "twilio"))]
        assert not vendor, f"{name} branches on a vendor: {vendor}"
        assert not [s for s in strings if s.startswith("session.")], f"{name} reads raw messages"
        assert "latest_handle" not in attributes, f"{name} probes a vendor attribute"


def test_background_sends_do_not_keep_the_agent_busy() -> None:
    """A background task of the bridge (a restore, a close, a truncate) that never ends
    does not hold the call open as a running tool would: the call completes after the
    caller's audio and its tail, and the task is cancelled."""

    async def quiet(ws: ServerConnection, index: int) -> None:
        await _configure(ws)

    events: list[EventBase] = []
    result: list[CallResult] = []
    stuck = asyncio.Event()

    async def body(url: str) -> None:
        bridges: list[Bridge] = []

        def sink(ev: EventBase) -> None:
            events.append(ev)
            if isinstance(ev, SessionConfigured):
                bridges[0].spawn(stuck.wait(), "stuck-send")

        bridges.append(_bridge(_provider(url), sink, lambda handle: _provider(url)))
        result.append(await bridges[0].run())

    asyncio.run(_serve(quiet, body))
    assert any(isinstance(e, SessionConfigured) for e in events)
    assert result[0].ok and result[0].reason == "completed", (result[0].reason, result[0].errors)
