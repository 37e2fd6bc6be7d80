"""A thin WebSocket connection around any sans-I/O :class:`ProviderProtocol`.

The I/O half of a provider (docs/architecture.md#caller-side-and-agent-side): dial with
``websockets.asyncio.client.connect``, send what the protocol produces, feed the protocol
every message that arrives and queue the events it returns, and on every send queue the
events the protocol made outside a receive. Every vendor reuses it; only the URL, the
headers and the protocol differ.

Secrets: headers are never logged, and every message or detail this module produces is
scrubbed of header values and of credential query parameters (``key=``, ``*token*``…).

One module on purpose (over 500 lines): the connection's whole life (dial, TLS and proxy
errors named, heartbeats, the send and receive loops, close codes) is one state machine
over one socket; split, each half would need the other's private state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.util
import ipaddress
import logging
import ssl as ssl_module
from collections.abc import AsyncIterator
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidProxy,
    InvalidProxyStatus,
    InvalidStatus,
    InvalidURI,
    ProxyError,
)
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from app.clock import Clock
from app.errors import ProviderError
from app.events import (
    ClientMessageSent,
    ConnectionState,
    ConnState,
    Event,
    NetworkSample,
    ProviderErrorEvent,
)
from app.providers.base import Outgoing, Provider, ProviderProtocol
from app.providers.netstats import tcp_rtt_ms
from app.providers.tls import client_ssl_context
from app.providers.wsframe import MaskKeys, try_send_text
from app.secrets import is_secret_name, redact, scrub_url

#: Largest message accepted from the server (bytes); the protocols check the same bound.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024

log = logging.getLogger(__name__)

class _NoCredentials(logging.Filter):
    """Drop handshake header lines and strip credential query parameters from the
    request line that websockets logs at DEBUG (``> GET /path?key=… HTTP/1.1``,
    ``> Authorization: …``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "> %s: %s":
            return False
        if record.msg == "> GET %s HTTP/1.1" and isinstance(record.args, tuple) and record.args:
            record.args = (safe_url(str(record.args[0])),)
        return True


# websockets logs every handshake header (the key included) at DEBUG. Its logger here
# never goes below INFO, whatever the root level, and filters credentials if raised.
_wire_log = logging.getLogger(__name__ + ".wire")
_wire_log.setLevel(logging.INFO)
_wire_log.addFilter(_NoCredentials())


def safe_url(url: str) -> str:
    """``url`` without credentials: user info and secret-named query parameters removed."""
    return scrub_url(url, None)


def endpoint_of(url: str) -> str:
    """``host:port`` of a ws/wss URL (default port filled in), for messages."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or "<no host>"
    if port is None:
        port = 443 if parts.scheme in ("wss", "https") else 80
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_END = object()

#: The close reason websockets sends when a keepalive pong does not come in time
#: (``websockets.asyncio.connection.Connection.keepalive``).
_KEEPALIVE_REASON = "keepalive ping timeout"


class WebSocketProvider(Provider):
    """One live session over a WebSocket, driven by a sans-I/O protocol.

    Every method runs on the bridge's asyncio loop thread. One consumer iterates
    :meth:`events`; it ends after exactly one final ``ConnectionState`` (``closed`` or
    ``failed``), whether the client closed, the server closed, or the socket dropped.

    Args:
        protocol: the vendor dialect.
        url: the endpoint (``ws://`` or ``wss://``), possibly with a credential in the
            query string (it is never printed).
        headers: handshake headers (credentials); never logged.
        clock: stamps received messages and sent-message events.
        ssl: TLS context for ``wss://`` (``None``: :func:`app.providers.tls.
            client_ssl_context` with ``ca_file``). Never used for ``ws://``.
        ca_file: extra CA bundle (``--ca-file``) when ``ssl`` is ``None``.
        open_timeout: seconds allowed for TCP + TLS + handshake.
        ping_interval: keepalive ping period in seconds (``None``: no pings). The
            defaults suit OpenAI (20 s / 20 s); Gemini answers pings slowly and passes
            a 60 s timeout (docs/protocols.md#keepalive-pings).
        ping_timeout: seconds to wait for a pong before failing (``None``: forever).
            A missed pong ends :meth:`events` with ``ConnectionState(state="failed",
            detail="ping timeout …")`` within ``ping_interval + ping_timeout`` (plus at
            most ``close_timeout`` when the peer does not answer the close frame either).
        close_timeout: seconds to wait for the peer's close frame when closing.
        rtt_sample_s: period of the network samples (:class:`NetworkSample`, ``tcp``)
            taken while connected (``None``: none).
        rtt_ping_s: period of WebSocket pings sent to measure the round trip (``ping``
            samples); ``None`` for peers that answer pings late (Gemini).
    """

    def __init__(
        self,
        protocol: ProviderProtocol,
        url: str,
        headers: dict[str, str],
        clock: Clock,
        ssl: ssl_module.SSLContext | None = None,
        ca_file: str | None = None,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 5.0,
        rtt_sample_s: float | None = 1.0,
        rtt_ping_s: float | None = 2.0,
    ) -> None:
        self.protocol = protocol
        self.url = url
        self.endpoint = endpoint_of(url)
        self._headers = dict(headers)
        self._clock = clock
        # websockets refuses ``ssl=None`` for ``wss://``: every secure URL gets a
        # verifying context (the system's CAs, SSL_CERT_FILE, --ca-file); ``ws://`` none.
        secure = urlsplit(url).scheme.lower() == "wss"
        self._ssl = (ssl or client_ssl_context(ca_file)) if secure else None
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._ws: ClientConnection | None = None
        self._mask_keys = MaskKeys()
        self._reader: asyncio.Task[None] | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._rtt_sample_s = rtt_sample_s
        self._rtt_ping_s = rtt_ping_s
        self._queue: asyncio.Queue[Event | object] = asyncio.Queue()
        self._finished = False
        self._closing = False
        self._secrets = [v for value in headers.values() for v in (value, *value.split()[-1:])]
        self._secrets += [v for k, v in parse_qsl(urlsplit(url).query) if is_secret_name(k)]

    def __repr__(self) -> str:
        return f"WebSocketProvider({self.protocol.name!r}, {safe_url(self.url)!r})"

    def _scrub(self, text: str) -> str:
        return redact(text, self._secrets)

    def _scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, dict):
            return {self._scrub_value(k): self._scrub_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub_value(v) for v in value]
        return value

    def _scrub_error(self, ev: ProviderErrorEvent) -> ProviderErrorEvent:
        """An error event without our credentials: servers quote the key they got
        ("Incorrect API key provided: …"), and error messages are printed and shown.
        """
        return dataclasses.replace(
            ev,
            message=self._scrub(ev.message),
            code=self._scrub(ev.code),
            raw=self._scrub_value(ev.raw),
        )

    def _emit(self, ev: Event) -> None:
        if not self._finished:
            self._queue.put_nowait(ev)

    def _finish(self, state: ConnState, detail: str, close_code: int | None = None) -> None:
        """Queue the final ConnectionState (with the close code that ended the
        connection, if any) and the end marker (once)."""
        if self._finished:
            return
        self._queue.put_nowait(
            ConnectionState(
                t_ns=self._clock.now_ns(),
                provider=self.protocol.name,
                state=state,
                detail=self._scrub(detail),
                close_code=close_code,
            )
        )
        self._finished = True
        self._queue.put_nowait(_END)
        if self._sampler is not None and self._sampler is not asyncio.current_task():
            self._sampler.cancel()

    async def connect(self) -> None:
        """Dial, then send ``protocol.open()`` and start reading.

        Raises:
            ProviderError: the endpoint could not be reached or refused the handshake
                (the message names ``host:port``, never the key); the final
                ``failed`` state is queued too, so :meth:`events` ends.
        """
        if self._ws is not None or self._finished:
            raise ProviderError(f"connection to {self.endpoint} already used", code="state")
        try:
            proxy = self._proxy()
        except (InvalidURI, ValueError):
            proxy = None  # the dial below reports the bad URL
        via = f" via proxy {endpoint_of(proxy)}" if proxy else ""
        self._emit(self._state("connecting", self.endpoint + via))
        dial_ns = self._clock.now_ns()
        try:
            self._ws = await connect(
                self.url,
                **self._proxy_options(),
                additional_headers=self._headers,
                ssl=self._ssl,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=self._close_timeout,
                max_size=MAX_MESSAGE_SIZE,
                compression=None,
                logger=_wire_log,
            )
        except asyncio.CancelledError:
            self._finish("closed", "connect cancelled")
            raise
        except Exception as exc:
            err = self._connect_error(exc)
            self._finish("failed", str(err))
            raise err from None
        self._emit(self._state("connected", self.endpoint))
        self._emit(self._sample("connect", (self._clock.now_ns() - dial_ns) / 1e6))
        self._reader = asyncio.create_task(self._read(self._ws), name=f"ws-reader {self.endpoint}")
        if self._rtt_sample_s is not None:
            self._sampler = asyncio.create_task(
                self._sample_network(self._ws, self._rtt_sample_s),
                name=f"ws-rtt {self.endpoint}",
            )
        await self.send(self.protocol.open())

    def _proxy(self) -> str | None:
        """The proxy from the environment (``HTTPS_PROXY``, ``NO_PROXY``…) for this URL;
        loopback (the simulator) never goes through one."""
        if _is_loopback(self.url):
            return None
        return get_proxy(parse_uri(self.url))

    def _proxy_options(self) -> dict[str, Any]:
        """``connect()`` keywords for the proxy: an ``https://`` proxy is reached with
        the same verifying context (so ``--ca-file`` covers a private proxy CA too)."""
        proxy = self._proxy()
        if proxy is None:
            return {"proxy": None}
        scheme = urlsplit(proxy).scheme.lower()
        if scheme.startswith("socks") and importlib.util.find_spec("python_socks") is None:
            raise ProviderError(
                f"the SOCKS proxy {endpoint_of(proxy)} (from the environment) is not "
                "supported: use an HTTP(S) proxy or unset ALL_PROXY/HTTPS_PROXY",
                code="proxy_unsupported",
            )
        options: dict[str, Any] = {"proxy": proxy}
        if scheme == "https":
            options["proxy_ssl"] = self._ssl or client_ssl_context()
        return options

    def _sample(self, source: Literal["connect", "tcp", "ping"], ms: float) -> NetworkSample:
        return NetworkSample(
            t_ns=self._clock.now_ns(), provider=self.protocol.name, source=source, ms=ms
        )

    async def _sample_network(self, ws: ClientConnection, period_s: float) -> None:
        """Sampler task: the socket's TCP round-trip time every ``period_s`` and, where
        enabled, a ping → pong round trip every ``rtt_ping_s``, until the socket ends or is
        being closed. Missing pongs are the keepalive's business, not this task's.

        Cancellation must always end it: the pong wait uses ``asyncio.timeout`` (whose
        TimeoutError is only its own), never ``wait_for`` inside a blanket suppress, which
        on Python 3.11 can swallow a cancel and leave :meth:`close` waiting forever.
        """
        sock = ws.transport.get_extra_info("socket")
        next_ping = 0.0
        elapsed = 0.0
        while not (self._finished or self._closing):
            rtt = tcp_rtt_ms(sock)
            if rtt is not None:
                self._emit(self._sample("tcp", rtt))
            if self._rtt_ping_s is not None and elapsed >= next_ping:
                next_ping = elapsed + self._rtt_ping_s
                try:
                    waiter = await ws.ping()
                    async with asyncio.timeout(self._rtt_ping_s * 5):
                        latency = await waiter
                except (ConnectionClosed, TimeoutError):
                    pass
                else:
                    self._emit(self._sample("ping", latency * 1000.0))
            await asyncio.sleep(period_s)
            elapsed += period_s

    def _state(self, state: ConnState, detail: str) -> ConnectionState:
        return ConnectionState(
            t_ns=self._clock.now_ns(), provider=self.protocol.name, state=state, detail=detail
        )

    def _connect_error(self, exc: Exception) -> ProviderError:
        where = self.endpoint
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, ssl_module.SSLCertVerificationError):
            detail = exc.verify_message or exc.reason or "certificate verify failed"
            return ProviderError(
                f"TLS with {where} failed: the server's certificate is not trusted "
                f"({detail})",  # what to do is the code's fix (app/failures.py)
                code="tls_untrusted",
            )
        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            body = exc.response.body or b""
            snippet = " ".join(body[:300].decode("utf-8", "replace").split())
            msg = f"{where} refused the WebSocket handshake: HTTP {status}"
            if snippet:
                msg += f" ({snippet})"
            code = {401: "auth_failed", 403: "auth_failed", 404: "not_found"}.get(
                status, "rate_limited" if status == 429 else "handshake_failed"
            )
            retryable = status == 429 or status >= 500
            return ProviderError(self._scrub(msg), code=code, retryable=retryable)
        if isinstance(exc, InvalidURI):
            return ProviderError(f"invalid WebSocket URL for {where}", code="bad_url")
        if isinstance(exc, (ProxyError, InvalidProxy)):
            proxy = endpoint_of(self._proxy() or "") if not isinstance(exc, InvalidProxy) else ""
            answer = (
                f": HTTP {exc.response.status_code}" if isinstance(exc, InvalidProxyStatus) else ""
            )
            what = f"the proxy {proxy}" if proxy else "the proxy set in the environment"
            return ProviderError(
                f"{what} did not open a tunnel to {where}{answer}", code="proxy_failed"
            )
        if isinstance(exc, InvalidHandshake):
            name = type(exc).__name__
            return ProviderError(
                f"WebSocket handshake with {where} failed ({name})", code="handshake_failed"
            )
        if isinstance(exc, TimeoutError):
            return ProviderError(
                f"timed out after {self._open_timeout:g} s connecting to {where}",
                code="connect_timeout",
                retryable=True,
            )
        if isinstance(exc, ssl_module.SSLError):
            reason = exc.reason or type(exc).__name__
            return ProviderError(f"TLS with {where} failed: {reason}", code="tls_failed")
        if isinstance(exc, OSError):
            reason = exc.strerror or type(exc).__name__
            if isinstance(exc, ConnectionRefusedError):
                reason = "connection refused"
            return ProviderError(
                f"cannot connect to {where}: {reason}", code="connect_failed", retryable=True
            )
        return ProviderError(
            f"cannot connect to {where}: {type(exc).__name__}", code="connect_failed"
        )

    async def _read(self, ws: ClientConnection) -> None:
        """Reader task: feed every message to the protocol until the socket ends."""
        try:
            async for message in ws:
                self._emit_protocol(self.protocol.receive(message, self._clock.now_ns()))
        except ConnectionClosed:
            pass  # reported below from ws.close_code / close_reason
        except Exception as exc:
            # A bug in a protocol must still end the stream with a reason.
            log.exception("reader for %s stopped", self.endpoint)
            self._finish("failed", f"internal error: {type(exc).__name__}")
            await ws.close()
            return
        self._finish(*self._close_state(ws))

    def _close_state(self, ws: ClientConnection) -> tuple[ConnState, str, int | None]:
        """The final state, its detail and the close code that ended the connection."""
        code = int(ws.close_code) if ws.close_code is not None else None
        reason = ws.close_reason or ""
        if self._closing:
            return "closed", "closed by client", None
        sent = ws.protocol.close_sent
        if sent is not None and sent.reason == _KEEPALIVE_REASON:
            # websockets' keepalive failed the connection: it sent 1011 with this reason.
            detail = f"ping timeout (no pong within {self._ping_timeout:g} s)"
            return "failed", detail, int(sent.code)
        if (
            sent is not None
            and sent.code == 1009  # CloseCode.MESSAGE_TOO_BIG
            and not ws.protocol.close_rcvd_then_sent
        ):
            # We refused a message over max_size and closed with 1009; the server's echo
            # of that code must not read as the server closing the connection.
            limit = f"{MAX_MESSAGE_SIZE / 2**20:g} MiB"
            detail = f"server sent a message larger than {limit} (1009: message too big)"
            return "failed", detail, int(sent.code)
        text = f"server closed ({code}{': ' + reason if reason else ''})"
        if code in (1000, 1001):
            return "closed", text, code
        if code is None or code == 1006:
            return "failed", "connection lost (no close frame)", None
        return "failed", text, code

    def _emit_protocol(self, events: list[Event]) -> None:
        """Queue events the protocol made; error events lose our credentials first."""
        for ev in events:
            if isinstance(ev, ProviderErrorEvent):
                ev = self._scrub_error(ev)
            self._emit(ev)

    async def send(self, messages: list[Outgoing]) -> None:
        """Send ``messages`` in order; queue a ClientMessageSent for each with a log.

        First queues the events the protocol made since the last drain
        (:meth:`ProviderProtocol.events_received`): the call that produced ``messages``
        may have made some, and they come before what is sent.

        Raises:
            ProviderError: not connected, or the connection has ended
                (``code="connection_closed"``, retryable).
        """
        self._emit_protocol(self.protocol.events_received())
        ws = self._ws
        if ws is None:
            raise ProviderError(f"not connected to {self.endpoint}", code="not_connected")
        for out in messages:
            # One transport write when nothing else is in flight (app/providers/wsframe.py);
            # otherwise websockets' own send, with its back-pressure and close handling.
            if not try_send_text(ws, out.text, self._mask_keys):
                try:
                    await ws.send(out.text)
                except ConnectionClosed:
                    raise ProviderError(
                        f"connection to {self.endpoint} is closed",
                        code="connection_closed",
                        retryable=True,
                    ) from None
            if out.log is not None:
                self._emit(ClientMessageSent(t_ns=self._clock.now_ns(), raw=out.log, type=out.type))

    async def events(self) -> AsyncIterator[Event]:
        """Events in arrival order; ends after the final ``ConnectionState``.

        Single consumer. Iterating again after the end yields nothing.
        """
        while True:
            item = await self._queue.get()
            if item is _END:
                self._queue.put_nowait(_END)  # later iterations end at once too
                return
            yield cast(Event, item)  # the queue holds events and the one end marker

    async def close(self) -> None:
        """Close the socket (normal closure) and wait for the reader; idempotent."""
        self._closing = True
        ws, reader, sampler = self._ws, self._reader, self._sampler
        if sampler is not None:
            sampler.cancel()
            await asyncio.wait({sampler}, timeout=1.0)  # never hang a close on a sample
        if ws is not None:
            with contextlib.suppress(websockets.WebSocketException, OSError):
                await ws.close()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        self._finish("closed", "closed by client")
