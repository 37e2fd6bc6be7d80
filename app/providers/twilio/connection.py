"""Dial a team's Media Streams server as Twilio would (the ``twilio-ws`` provider kind).

The I/O half around :class:`~app.providers.twilio.protocol.TwilioCallerProtocol`: the
shared :class:`~app.providers.ws.WebSocketProvider` plus what Twilio's side needs that an
API session does not — the stream counts as configured once ``connected`` and ``start``
are sent (no server acknowledges them), a ticker closes agent responses after a quiet
spell and sends the mark echoes a ``clear`` made due, and ``stop`` goes out before the
socket closes. No API key is sent; a token may ride in the URL or a custom parameter, and
then only over ``wss://`` or loopback (:func:`check_stream_target`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from app.clock import Clock
from app.errors import ConfigError, ProviderError
from app.events import SessionConfigured
from app.providers.keyhost import is_loopback_host
from app.providers.twilio.protocol import TwilioCallerProtocol
from app.providers.ws import WebSocketProvider
from app.secrets import is_secret_name

#: How often the ticker looks at the stream (closes quiet responses, flushes echoes).
TICK_S = 0.02


def stream_secrets(url: str, params: Mapping[str, str]) -> list[str]:
    """Credential values that ride in ``url`` (user info, secret-named query parameters)
    or in secret-named custom parameters, so that they can be redacted everywhere."""
    parts = urlsplit(url)
    found = [v for k, v in parse_qsl(parts.query) if is_secret_name(k) and v]
    if parts.password:
        found.append(parts.password)
    found += [v for k, v in params.items() if is_secret_name(k) and v]
    return found


def check_stream_target(url: str, params: Mapping[str, str]) -> None:
    """Refuse a stream URL that is not ``ws(s)://host/…``, or that would carry a secret in
    clear text off loopback.

    Raises:
        ConfigError: with ``field="url"``.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise ConfigError("the twilio-ws URL is not a valid URL", field="url") from None
    if parts.scheme.lower() not in ("ws", "wss") or not host:
        raise ConfigError(
            "--provider twilio-ws needs --url ws://HOST/PATH or wss://HOST/PATH", field="url"
        )
    if parts.scheme.lower() == "ws" and stream_secrets(url, params) and not is_loopback_host(host):
        raise ConfigError(
            "the twilio-ws URL or a --param carries a token: use wss:// off loopback "
            "(it would travel in clear text)",
            field="url",
        )


class TwilioWsProvider(WebSocketProvider):
    """One Media Stream towards an agent's server; see the module docstring.

    Args:
        protocol: the caller-side dialect (SIDs, custom parameters).
        url: the agent's WebSocket URL.
        clock: the one clock.
        ca_file: extra CA bundle for ``wss://``.
    """

    protocol: TwilioCallerProtocol

    def __init__(
        self, protocol: TwilioCallerProtocol, url: str, clock: Clock, ca_file: str | None = None
    ) -> None:
        super().__init__(protocol, url, {}, clock, ca_file=ca_file, rtt_ping_s=None)
        self._secrets += [s for s in stream_secrets(url, protocol.custom_parameters)]
        self._ticker: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Dial, send ``connected`` and ``start``; the stream is configured from then on.

        Raises:
            ProviderError: as :meth:`WebSocketProvider.connect`.
        """
        await super().connect()
        self._emit(
            SessionConfigured(
                t_ns=self._clock.now_ns(),
                provider=self.protocol.name,
                session_id=self.protocol.stream_sid,
            )
        )
        self._ticker = asyncio.create_task(self._tick(), name=f"twilio-tick {self.endpoint}")

    async def _tick(self) -> None:
        while not self._finished:
            await asyncio.sleep(TICK_S)
            for ev in self.protocol.tick(self._clock.now_ns()):
                self._emit(ev)
            due = self.protocol.data_to_send()
            if due:
                with contextlib.suppress(ProviderError):
                    await self.send(due)

    async def send_dtmf(self, digit: str) -> None:
        """Send one DTMF key as Twilio reports a keypress."""
        await self.send(self.protocol.dtmf(digit))

    async def close(self) -> None:
        """Send ``stop`` (while the socket is up), then close; idempotent."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if self._ws is not None and not self._finished and not self._closing:
            with contextlib.suppress(ProviderError):
                await asyncio.wait_for(self.send(self.protocol.stop()), 2.0)
        await super().close()


def connect_twilio(
    url: str, params: Mapping[str, str], clock: Clock, ca_file: str | None = None
) -> TwilioWsProvider:
    """Build (not yet dial) a ``twilio-ws`` stream to ``url`` with ``params`` as
    ``start.customParameters``.

    Raises:
        ConfigError: see :func:`check_stream_target`.
    """
    check_stream_target(url, params)
    return TwilioWsProvider(TwilioCallerProtocol(dict(params)), url, clock, ca_file=ca_file)
