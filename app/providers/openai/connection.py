"""Dial an OpenAI Realtime GA endpoint: the URL rules and the auth header.

The default endpoint is ``wss://api.openai.com/v1/realtime?model=<model>`` with
``Authorization: Bearer <key>`` and no ``OpenAI-Beta`` header
(docs/protocols.md#openai-connection). Azure hosts (``*.openai.azure.com``) take the key
in ``api-key`` instead.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.clock import Clock
from app.errors import ConfigError
from app.profile import Profile
from app.providers.openai.protocol import OpenAIProtocol
from app.providers.ws import WebSocketProvider

DEFAULT_BASE = "wss://api.openai.com/v1"

_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def openai_url(base: str | None, model: str) -> str:
    """The WebSocket URL for ``model``.

    ``base`` may be ``None`` (the public endpoint), a full URL that already names the
    model (``...?model=``) or an Azure deployment (``deployment=`` / ``api-version=``),
    left as given, or a base such as ``ws://127.0.0.1:8765/v1`` to which
    ``/realtime?model=<model>`` is appended (as the SDK's ``websocket_base_url``).
    ``http``/``https`` become ``ws``/``wss``.

    Raises:
        ConfigError: ``base`` is not an http(s)/ws(s) URL with a host.
    """
    parts = urlsplit(base.strip() if base else DEFAULT_BASE)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ConfigError("must be a ws://, wss://, http:// or https:// URL", field="url")
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {k for k, _ in query}
    path = parts.path
    if not names & {"model", "deployment", "api-version"}:
        if not path.rstrip("/").endswith("/realtime"):
            path = path.rstrip("/") + "/realtime"
        query.append(("model", model))
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


def is_azure_host(url: str) -> bool:
    """Whether ``url`` points at an Azure OpenAI resource (``*.openai.azure.com``)."""
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(".openai.azure.com")


def openai_headers(url: str, key: str) -> dict[str, str]:
    """Handshake headers for ``url``: ``api-key`` on Azure hosts, else a Bearer token.

    No ``OpenAI-Beta`` header: that selects the retired beta protocol.
    """
    if is_azure_host(url):
        return {"api-key": key}
    return {"Authorization": f"Bearer {key}"}


def connect_openai(
    profile: Profile, key: str, clock: Clock, url: str | None = None, ca_file: str | None = None
) -> WebSocketProvider:
    """Build (not yet dial) an OpenAI Realtime provider for ``profile``.

    ``url`` (e.g. from ``--url``) wins over ``profile.url``; neither means the public
    endpoint. ``wss://`` is verified against the system's CAs (``SSL_CERT_FILE``) plus
    ``ca_file``. Await ``connect()`` on the result to dial.

    Raises:
        ConfigError: the URL or the CA file is not usable.
    """
    target = openai_url(url or profile.url or None, profile.model)
    headers = openai_headers(target, key)
    return WebSocketProvider(
        OpenAIProtocol(profile, clock), target, headers, clock, ca_file=ca_file
    )
