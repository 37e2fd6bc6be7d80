"""WebSocketProvider + OpenAI dialing over a real loopback WebSocket server; URL and secret
helpers."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any, TypeVar

import keyring
import keyring.backend
import keyring.backends.fail
import pytest
from openai.types.realtime import (
    InputAudioBufferSpeechStartedEvent,
    RealtimeResponse,
    ResponseAudioDeltaEvent,
    ResponseDoneEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest
from websockets.asyncio.server import Server, ServerConnection, serve

from app.clock import MONOTONIC
from app.errors import ConfigError, ProviderError
from app.events import (
    AgentAudio,
    ClientMessageSent,
    ConnectionState,
    Event,
    ServerSpeechStarted,
    SessionConfigured,
)
from app.profile import Profile
from app.providers.openai.connection import connect_openai, openai_headers, openai_url
from app.providers.openai.protocol import OpenAIProtocol
from app.providers.ws import WebSocketProvider, endpoint_of, safe_url
from app.secrets import get_secret, keyring_available, redact, set_secret
from tests.sdk_oracle import validate_openai_client, validate_openai_server

#: Scales every wait in this file (slow CI machines set it above 1).
TIME_SCALE = float(os.environ.get("VOICEPROBE_TEST_TIME_SCALE", "1"))
WAIT = 5.0 * TIME_SCALE
KEY = "sk-test-0123456789abcdef"

R = TypeVar("R")

# The fake server's own logger stays quiet so the log check below sees only the client.
_server_log = logging.getLogger("tests.fake_realtime_server")
_server_log.setLevel(logging.WARNING)


def run(coro: Coroutine[Any, Any, R]) -> R:
    """Run one test coroutine with an overall deadline."""

    async def bounded() -> R:
        return await asyncio.wait_for(coro, 4 * WAIT)

    return asyncio.run(bounded())


class FakeRealtimeServer:
    """A loopback WebSocket server that records what a client sends."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.ws: ServerConnection | None = None
        self.path = ""
        self.headers: dict[str, str] = {}
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.port = 0

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.path = ws.request.path
        self.headers = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        self.ws = ws
        self.connected.set()
        async for msg in ws:
            await self.received.put(json.loads(msg))

    async def next_message(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.received.get(), WAIT)

    async def send(self, model: Any) -> None:
        text = model if isinstance(model, str) else model.model_dump_json(exclude_none=True)
        validate_openai_server(text)
        assert self.ws is not None
        await self.ws.send(text)


@asynccontextmanager
async def fake_server(
    process_request: Callable[..., Awaitable[Any] | Any] | None = None,
) -> AsyncIterator[FakeRealtimeServer]:
    fake = FakeRealtimeServer()
    server: Server
    async with serve(
        fake.handler, "127.0.0.1", 0, process_request=process_request, logger=_server_log
    ) as server:
        fake.port = server.sockets[0].getsockname()[1]
        yield fake


async def collect(events: AsyncIterator[Event]) -> list[Event]:
    out: list[Event] = []
    async with asyncio.timeout(WAIT):
        async for ev in events:
            out.append(ev)
    return out


def states(events: list[Event]) -> list[str]:
    return [e.state for e in events if isinstance(e, ConnectionState)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a session over loopback ---------------------------------------------------------------


def test_session_over_loopback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        async with fake_server() as srv:
            provider = connect_openai(
                Profile(), KEY, MONOTONIC, url=f"ws://127.0.0.1:{srv.port}/v1"
            )
            assert provider.name == "openai" and provider.input_rate == 24000
            await provider.connect()
            await asyncio.wait_for(srv.connected.wait(), WAIT)

            # Handshake: GA path and auth, no beta header.
            assert srv.path == "/v1/realtime?model=gpt-realtime"
            assert srv.headers["authorization"] == f"Bearer {KEY}"
            assert "openai-beta" not in srv.headers

            # session.update arrives first and is a valid GA client event.
            first = await srv.next_message()
            assert first["type"] == "session.update"
            validate_openai_client(first)

            pcm = bytes(range(256)) * 4
            await provider.send_audio(pcm)
            await provider.send_audio(pcm[:480])
            a1, a2 = await srv.next_message(), await srv.next_message()
            for m in (a1, a2):
                assert m["type"] == "input_audio_buffer.append"
                validate_openai_client(m)
            assert base64.b64decode(a1["audio"]) == pcm
            assert base64.b64decode(a2["audio"]) == pcm[:480]

            session = RealtimeSessionCreateRequest(type="realtime", model="gpt-realtime")
            await srv.send(
                SessionUpdatedEvent(type="session.updated", event_id="s1", session=session)
            )
            await srv.send(
                InputAudioBufferSpeechStartedEvent(
                    type="input_audio_buffer.speech_started",
                    event_id="s2",
                    item_id="item_u",
                    audio_start_ms=320,
                )
            )
            agent_pcm = b"\x01\x00" * 2400
            await srv.send(
                ResponseAudioDeltaEvent(
                    type="response.output_audio.delta",
                    event_id="s3",
                    response_id="resp_1",
                    item_id="item_a",
                    output_index=0,
                    content_index=0,
                    delta=base64.b64encode(agent_pcm).decode(),
                )
            )
            await srv.send(
                ResponseDoneEvent(
                    type="response.done",
                    event_id="s4",
                    response=RealtimeResponse(id="resp_1", status="completed"),
                )
            )

            # Read until the response is done, then truncate and close from the client.
            seen: list[Event] = []
            events = provider.events()
            async with asyncio.timeout(WAIT):
                async for ev in events:
                    seen.append(ev)
                    if type(ev).__name__ == "ResponseFinished":
                        break
            assert provider.protocol.received_audio_ms("item_a") == 100
            await provider.truncate("item_a", 250)
            trunc = await srv.next_message()
            validate_openai_client(trunc)
            assert trunc["audio_end_ms"] == 100

            await provider.close()
            await provider.close()  # idempotent
            seen += await collect(events)
            # A second iteration after the end ends at once.
            assert await collect(provider.events()) == []

        kinds = [e.kind for e in seen]
        assert states(seen) == ["connecting", "connected", "closed"]
        assert isinstance(seen[-1], ConnectionState) and seen[-1].detail == "closed by client"
        sent = [e for e in seen if isinstance(e, ClientMessageSent)]
        assert [e.type for e in sent] == ["session.update", "conversation.item.truncate"]
        assert kinds.index("ClientMessageSent") < kinds.index("SessionConfigured")
        assert any(isinstance(e, SessionConfigured) for e in seen)
        (started,) = [e for e in seen if isinstance(e, ServerSpeechStarted)]
        assert started.audio_start_ms == 320 and started.item_id == "item_u"
        (audio,) = [e for e in seen if isinstance(e, AgentAudio)]
        assert audio.pcm == agent_pcm and audio.sample_rate == 24000
        stamps = [e.t_ns for e in seen]
        assert stamps == sorted(stamps)

    run(main())
    # The key (sent as a header) never reaches the logs.
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("close", "state", "detail"),
    [
        ("normal", "closed", "server closed (1000: bye)"),
        ("error", "failed", "server closed (1011: boom)"),
        ("drop", "failed", "connection lost (no close frame)"),
    ],
)
def test_server_ending_the_socket_ends_the_events(close: str, state: str, detail: str) -> None:
    async def main() -> list[Event]:
        async with fake_server() as srv:
            provider = connect_openai(Profile(), KEY, MONOTONIC, url=f"ws://127.0.0.1:{srv.port}")
            await provider.connect()
            await srv.next_message()  # session.update
            assert srv.ws is not None
            if close == "normal":
                await srv.ws.close(1000, "bye")
            elif close == "error":
                await srv.ws.close(1011, "boom")
            else:
                srv.ws.transport.abort()
            seen = await collect(provider.events())
            with pytest.raises(ProviderError) as err:
                await provider.send_audio(b"\0\0" * 10)
            assert err.value.code == "connection_closed" and err.value.retryable
            await provider.close()
            return seen

    seen = run(main())
    assert states(seen) == ["connecting", "connected", state]
    last = seen[-1]
    assert isinstance(last, ConnectionState) and last.detail == detail


def test_unreachable_port_names_the_endpoint_not_the_key() -> None:
    port = free_port()

    async def main() -> tuple[ProviderError, list[Event]]:
        provider = connect_openai(
            Profile(), KEY, MONOTONIC, url=f"ws://127.0.0.1:{port}/v1?key={KEY}&trace=1"
        )
        with pytest.raises(ProviderError) as err:
            await provider.connect()
        return err.value, await collect(provider.events())

    err, seen = run(main())
    assert f"127.0.0.1:{port}" in str(err)
    assert KEY not in str(err)
    assert err.code == "connect_failed" and err.retryable
    assert states(seen) == ["connecting", "failed"]
    assert all(KEY not in str(e) for e in seen)


def test_rejected_handshake_is_reported_without_the_key() -> None:
    def reject(connection: ServerConnection, request: Any) -> Any:
        # A real server echoes part of the key in its error body.
        return connection.respond(HTTPStatus.UNAUTHORIZED, f"Incorrect API key provided: {KEY}")

    async def main() -> ProviderError:
        async with fake_server(process_request=reject) as srv:
            provider = connect_openai(Profile(), KEY, MONOTONIC, url=f"ws://127.0.0.1:{srv.port}")
            with pytest.raises(ProviderError) as err:
                await provider.connect()
            return err.value

    err = run(main())
    assert "HTTP 401" in str(err) and "127.0.0.1" in str(err)
    assert KEY not in str(err)
    assert err.code == "auth_failed" and not err.retryable


def test_send_before_connect_raises() -> None:
    async def main() -> None:
        provider = connect_openai(Profile(), KEY, MONOTONIC, url="ws://127.0.0.1:9/v1")
        with pytest.raises(ProviderError):
            await provider.send_audio(b"\0\0")
        await provider.close()
        assert states(await collect(provider.events())) == ["closed"]

    run(main())


# --- URLs and headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "url"),
    [
        (None, "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        ("", "wss://api.openai.com/v1/realtime?model=gpt-realtime"),
        ("ws://127.0.0.1:8765/v1", "ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime"),
        ("ws://127.0.0.1:8765/v1/", "ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime"),
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765/realtime?model=gpt-realtime"),
        ("https://eu.api.openai.com/v1", "wss://eu.api.openai.com/v1/realtime?model=gpt-realtime"),
        ("wss://x.example/v1/realtime", "wss://x.example/v1/realtime?model=gpt-realtime"),
        (
            "wss://x.example/v1/realtime?model=other&intent=conversation",
            "wss://x.example/v1/realtime?model=other&intent=conversation",
        ),
        (
            "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01&deployment=rt",
            "wss://res.openai.azure.com/openai/realtime?api-version=2025-04-01&deployment=rt",
        ),
    ],
)
def test_openai_url(base: str | None, url: str) -> None:
    assert openai_url(base, "gpt-realtime") == url


@pytest.mark.parametrize("bad", ["ftp://x/v1", "not a url", "ws://"])
def test_openai_url_rejects_non_ws(bad: str) -> None:
    with pytest.raises(ConfigError):
        openai_url(bad, "gpt-realtime")


def test_headers_bearer_or_azure_api_key() -> None:
    assert openai_headers("wss://api.openai.com/v1/realtime?model=m", KEY) == {
        "Authorization": f"Bearer {KEY}"
    }
    assert openai_headers("wss://res.openai.azure.com/openai/v1/realtime?model=m", KEY) == {
        "api-key": KEY
    }


def test_profile_url_is_used_unless_overridden() -> None:
    p = Profile(url="ws://127.0.0.1:1/v1")
    assert (
        connect_openai(p, KEY, MONOTONIC).url == "ws://127.0.0.1:1/v1/realtime?model=gpt-realtime"
    )
    assert (
        connect_openai(p, KEY, MONOTONIC, url="ws://h:2").url
        == "ws://h:2/realtime?model=gpt-realtime"
    )
    assert KEY not in repr(connect_openai(p, KEY, MONOTONIC))


def test_safe_url_and_endpoint() -> None:
    url = f"wss://user:pw@h.example/ws?key={KEY}&access_token=t0k3n&alt=sse"
    assert safe_url(url) == "wss://h.example/ws?alt=sse"
    assert endpoint_of(url) == "h.example:443"
    assert endpoint_of("ws://127.0.0.1:8765/v1") == "127.0.0.1:8765"
    assert endpoint_of("ws://[::1]/v1") == "[::1]:80"


# --- secrets ----------------------------------------------------------------------------------


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real in-memory keyring backend (not a mock)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def keyring_backend() -> Any:
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


def test_secrets_from_keyring_then_env(
    keyring_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mem = MemoryKeyring()
    keyring_backend(mem)
    monkeypatch.setenv("OPENAI_API_KEY", "env-openai-key")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "env-google-key")
    assert keyring_available()
    assert get_secret("openai_api_key", ("OPENAI_API_KEY",)) == "env-openai-key"
    set_secret("openai_api_key", "kr-openai-key")
    assert mem.store[("voiceprobe", "openai_api_key")] == "kr-openai-key"
    assert get_secret("openai_api_key", ("OPENAI_API_KEY",)) == "kr-openai-key"
    assert get_secret("gemini_api_key", ("GEMINI_API_KEY", "GOOGLE_API_KEY")) == "env-google-key"
    assert get_secret("gemini_api_key") == "env-google-key"  # default env vars
    monkeypatch.setenv("GEMINI_API_KEY", "env-gemini-key")  # both: the SDK's order
    assert get_secret("gemini_api_key") == "env-google-key"
    monkeypatch.delenv("GOOGLE_API_KEY")
    assert get_secret("gemini_api_key") == "env-gemini-key"
    monkeypatch.delenv("GEMINI_API_KEY")
    assert get_secret("gemini_api_key") is None


def test_no_keyring_backend_falls_back_to_env(
    keyring_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring_backend(keyring.backends.fail.Keyring())
    monkeypatch.setenv("VOICEPROBE_SIP_PASSWORD", "env-sip-pass")
    assert not keyring_available()
    assert get_secret("sip_password", ("VOICEPROBE_SIP_PASSWORD",)) == "env-sip-pass"
    with pytest.raises(ConfigError) as err:
        set_secret("sip_password", "new-sip-pass")
    assert "keyring" in str(err.value) and "new-sip-pass" not in str(err.value)


def test_redact() -> None:
    text = f"Bearer {KEY} and again {KEY}; short 'abc' stays; pw=hunter22"
    assert redact(text, [KEY, "abc", "hunter22", None, ""]) == (
        "Bearer *** and again ***; short 'abc' stays; pw=***"
    )


def test_wire_debug_log_carries_no_credentials(caplog: pytest.LogCaptureFixture) -> None:
    wire = logging.getLogger("app.providers.ws.wire")
    level = wire.level
    wire.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        async with fake_server() as srv:
            url = f"ws://127.0.0.1:{srv.port}/v1/realtime?model=m&key={KEY}"
            provider = connect_openai(Profile(), KEY, MONOTONIC, url=url)
            await provider.connect()
            await srv.next_message()
            await provider.close()

    try:
        run(main())
    finally:
        wire.setLevel(level)
    assert "GET /v1/realtime?model=m HTTP/1.1" in caplog.text  # the filter saw the handshake
    assert KEY not in caplog.text


def test_silent_server_times_out_then_cancel_ends_the_events() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # accept TCP, never answer the handshake
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            url = f"ws://127.0.0.1:{port}/v1/realtime?model=m"
            provider = WebSocketProvider(
                OpenAIProtocol(Profile(), MONOTONIC), url, {}, MONOTONIC, open_timeout=0.2
            )
            with pytest.raises(ProviderError) as err:
                await provider.connect()
            assert err.value.code == "connect_timeout" and err.value.retryable
            assert f"127.0.0.1:{port}" in str(err.value)
            assert states(await collect(provider.events())) == ["connecting", "failed"]

            # A dial cancelled by its caller still ends the event stream.
            other = WebSocketProvider(OpenAIProtocol(Profile(), MONOTONIC), url, {}, MONOTONIC)
            task = asyncio.create_task(other.connect())
            events = other.events()
            first = await anext(events)
            assert isinstance(first, ConnectionState) and first.state == "connecting"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert states(await collect(events)) == ["closed"]

    run(main())
