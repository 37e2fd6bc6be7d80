"""Which host receives an API key, and whether it may.

The rule (``docs/security.md``):

* A key travels in clear text (``ws://``/``http://``) only to loopback: anything else is
  refused, whoever named the URL.
* A key goes to a host other than the vendor's own (``api.openai.com``,
  ``*.openai.azure.com``; ``generativelanguage.googleapis.com``,
  ``*-aiplatform.googleapis.com``) only when the user named that host: on the command
  line (``--url``) or by confirming it in the app. A URL that comes from a profile file
  (which may be shared) never sends the key anywhere on its own.
* Before a call starts, the user is told which host receives the key
  (:meth:`KeyDestination.describe`).

Pure functions; no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.errors import ConfigError

#: Each vendor's own hosts: an exact name, or ``*.suffix`` / ``*-suffix`` patterns.
VENDOR_HOSTS: dict[str, tuple[str, ...]] = {
    "openai": ("api.openai.com", "*.openai.azure.com"),
    "gemini": (
        "generativelanguage.googleapis.com",
        "aiplatform.googleapis.com",
        "*-aiplatform.googleapis.com",
    ),
}

_DEFAULT_PORTS = {"ws": 80, "http": 80, "wss": 443, "https": 443}


class UnconfirmedKeyHostError(ConfigError):
    """The key would go to a host the user has not named; :attr:`host` says which."""

    def __init__(self, message: str, host: str) -> None:
        super().__init__(message)
        self.host = host


def _matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*"):
        suffix = pattern[1:]
        return host.endswith(suffix) and len(host) > len(suffix)
    return host == pattern


def is_vendor_host(vendor: str, host: str) -> bool:
    """Whether ``host`` is one of ``vendor``'s own API hosts."""
    host = host.lower().rstrip(".")
    return any(_matches(host, p) for p in VENDOR_HOSTS.get(vendor, ()))


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class KeyDestination:
    """Where a key goes.

    Attributes:
        vendor: ``openai`` or ``gemini``.
        host: the host name (lower case, no port).
        port: the TCP port.
        encrypted: ``wss``/``https`` (TLS).
        vendor_host: one of the vendor's own hosts.
        loopback: a loopback host.
    """

    vendor: str
    host: str
    port: int
    encrypted: bool
    vendor_host: bool
    loopback: bool

    def describe(self) -> str:
        """One line for the user: which host receives the key, and how."""
        how = "over TLS" if self.encrypted else "in clear text (loopback only)"
        whose = "" if self.vendor_host else f", not {self.vendor}'s own host"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"the {self.vendor} key goes to {host}:{self.port} {how}{whose}"


def key_destination(vendor: str, url: str) -> KeyDestination:
    """Where a key sent to ``url`` (a final ws/wss URL) ends up.

    Raises:
        ConfigError: ``url`` has no host or an unknown scheme.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError("not a valid URL", field="url") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        raise ConfigError("must be a ws://, wss://, http:// or https:// URL", field="url")
    return KeyDestination(
        vendor=vendor,
        host=host,
        port=port or _DEFAULT_PORTS[scheme],
        encrypted=scheme in ("wss", "https"),
        vendor_host=is_vendor_host(vendor, host),
        loopback=is_loopback_host(host),
    )


def check_key_destination(
    vendor: str, url: str, named_hosts: Collection[str] = (), source: str = "the profile"
) -> KeyDestination:
    """Apply the rule in the module docstring to a key about to be sent to ``url``.

    Args:
        vendor: whose key it is.
        url: the final WebSocket URL the key goes to.
        named_hosts: hosts the user named (``--url`` on the command line) or confirmed in
            the app; matched case-insensitively.
        source: where the URL came from, for the message (e.g. ``profile team.yaml``).

    Returns:
        The destination (for :meth:`KeyDestination.describe`).

    Raises:
        ConfigError: the key would travel in clear text to a host that is not loopback.
        UnconfirmedKeyHostError: the host is not the vendor's and the user did not name it.
    """
    dest = key_destination(vendor, url)
    if not dest.encrypted and not dest.loopback:
        raise ConfigError(
            f"refusing to send the {vendor} key in clear text to {dest.host}: use a wss:// "
            "URL (ws:// is only for loopback)",
            field="url",
        )
    named = {h.lower().rstrip(".").strip("[]") for h in named_hosts}
    if not dest.vendor_host and dest.host not in named:
        raise UnconfirmedKeyHostError(
            f"the URL in {source} would send the {vendor} key to {dest.host}, which is not "
            f"{vendor}'s own host: name it with --url on the command line (or confirm it "
            "in the app) if you trust it",
            dest.host,
        )
    return dest


def url_host(url: str | None) -> str | None:
    """The host a ``--url`` names (for ``named_hosts``), or ``None``."""
    if not url:
        return None
    try:
        return (urlsplit(url.strip()).hostname or "").lower() or None
    except ValueError:
        return None
