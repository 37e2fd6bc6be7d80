"""Dial a Gemini Live endpoint: the URL rules, TLS and the auth header.

docs/protocols.md#gemini-connection:

* Gemini Developer API: ``wss://generativelanguage.googleapis.com/ws/
  google.ai.generativelanguage.<ver>.GenerativeService.BidiGenerateContent`` with the key
  in the ``x-goog-api-key`` header (as the SDK does) and in ``?key=`` (as the published
  WebSocket guide does), so either kind of endpoint accepts the call; the query is
  scrubbed from everything voiceprobe prints or writes. Ephemeral tokens
  (``auth_tokens/…``) go to ``v1alpha`` and ``BidiGenerateContentConstrained`` with
  ``Authorization: Token <token>``.
* Vertex AI: ``wss://{loc}-aiplatform.googleapis.com/ws/google.cloud.aiplatform.v1beta1.
  LlmBidiService/BidiGenerateContent`` with ``Authorization: Bearer <access token>``; the
  profile's model must then be the full ``projects/…/publishers/google/models/…`` name.

Gemini answers pings slowly (8–30 s observed, docs/protocols.md#keepalive-pings), so the
pong timeout is long.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.clock import Clock
from app.errors import ConfigError
from app.profile import Profile
from app.providers.gemini.protocol import GeminiProtocol
from app.providers.ws import WebSocketProvider

DEFAULT_HOST = "generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"
VERTEX_API_VERSION = "v1beta1"

#: Keepalive: ping every 20 s, give up after 60 s without a pong.
PING_INTERVAL_S = 20.0
PING_TIMEOUT_S = 60.0

_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def _google_ai_path(api_version: str, constrained: bool = False) -> str:
    method = "BidiGenerateContentConstrained" if constrained else "BidiGenerateContent"
    return f"/ws/google.ai.generativelanguage.{api_version}.GenerativeService.{method}"


def _vertex_path() -> str:
    return f"/ws/google.cloud.aiplatform.{VERTEX_API_VERSION}.LlmBidiService/BidiGenerateContent"


def is_vertex_host(url: str) -> bool:
    """Whether ``url`` points at Vertex AI (``*aiplatform.googleapis.com``)."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host == "aiplatform.googleapis.com" or host.endswith("-aiplatform.googleapis.com")


def gemini_url(
    base: str | None, api_version: str = DEFAULT_API_VERSION, constrained: bool = False
) -> str:
    """The WebSocket URL of the Live endpoint.

    ``base`` may be ``None`` (the public Gemini Developer API endpoint), a full URL whose
    path already ends in ``BidiGenerateContent…`` (used as given), or a base such as
    ``https://127.0.0.1:8443`` to which the service path is appended (as the SDK's
    ``http_options.base_url``; a Vertex host gets the ``LlmBidiService`` path).
    ``http``/``https`` become ``ws``/``wss``.

    Args:
        base: the ``--url`` / profile URL, or ``None``.
        api_version: the Google AI API version for an appended path.
        constrained: use ``BidiGenerateContentConstrained`` (ephemeral tokens).

    Raises:
        ConfigError: ``base`` is not an http(s)/ws(s) URL with a host.
    """
    if not base or not base.strip():
        return f"wss://{DEFAULT_HOST}{_google_ai_path(api_version, constrained)}"
    try:
        parts = urlsplit(base.strip())
    except ValueError:
        raise ConfigError("not a valid URL", field="url") from None
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ConfigError("must be a ws://, wss://, http:// or https:// URL", field="url")
    path = parts.path
    if "BidiGenerateContent" not in path:
        if is_vertex_host(base):
            suffix = _vertex_path()
        else:
            suffix = _google_ai_path(api_version, constrained)
        path = path.rstrip("/") + suffix
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def _with_query(url: str, name: str, value: str) -> str:
    """``url`` with query parameter ``name`` set to ``value`` (unless already present)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == name for k, _ in query):
        return url
    return urlunsplit(parts._replace(query=urlencode([*query, (name, value)])))


def auth_headers(url: str, key: str) -> dict[str, str]:
    """The credential header for ``url``: Bearer for Vertex, ``Token`` for an ephemeral
    ``auth_tokens/…`` token, else ``x-goog-api-key``; none for an empty key.
    """
    if not key:
        return {}
    if is_vertex_host(url):
        return {"Authorization": f"Bearer {key}"}
    if key.startswith("auth_tokens/"):
        return {"Authorization": f"Token {key}"}
    return {"x-goog-api-key": key}


def connect_gemini(
    profile: Profile,
    key: str,
    clock: Clock,
    url: str | None = None,
    ca_file: str | None = None,
    resumption_handle: str | None = None,
    id_prefix: str = "",
) -> WebSocketProvider:
    """Build (not yet dial) a Gemini Live provider for ``profile``.

    ``url`` (e.g. from ``--url``) wins over ``profile.url``; neither means the public
    endpoint. Pass ``resumption_handle`` (the old protocol's ``latest_handle``) to resume
    a session after ``goAway``; close the old socket first. Await ``connect()`` on the
    result to dial; wait for ``SessionConfigured`` before sending audio.

    Raises:
        ConfigError: the URL or the CA file is not usable.
    """
    ephemeral = key.startswith("auth_tokens/")
    target = gemini_url(
        url or profile.url or None,
        api_version="v1alpha" if ephemeral else DEFAULT_API_VERSION,
        constrained=ephemeral,
    )
    if key and not ephemeral and not is_vertex_host(target):
        # The published WebSocket guide authenticates with ``?key=``; the SDK sends the
        # ``x-goog-api-key`` header. Both are sent, so either kind of endpoint accepts the
        # call. The query is scrubbed from everything voiceprobe prints or writes.
        target = _with_query(target, "key", key)
    protocol = GeminiProtocol(
        profile, clock, resumption_handle=resumption_handle, id_prefix=id_prefix
    )
    return WebSocketProvider(
        protocol,
        target,
        auth_headers(target, key),
        clock,
        ca_file=ca_file,
        ping_interval=PING_INTERVAL_S,
        ping_timeout=PING_TIMEOUT_S,
        rtt_ping_s=None,  # Gemini's pongs come seconds late: they would measure nothing
    )
