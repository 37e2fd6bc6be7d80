"""API keys and passwords: the OS keyring first, then environment variables.

Secrets live in the OS keyring under the service name ``voiceprobe`` (never in profiles,
settings or logs). Names in use: ``openai_api_key`` (env ``OPENAI_API_KEY``),
``gemini_api_key`` (env ``GOOGLE_API_KEY``, then ``GEMINI_API_KEY``) and ``sip_password`` (env
``VOICEPROBE_SIP_PASSWORD``). :func:`redact` scrubs known secrets from any text before it
is shown or stored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import keyring
import keyring.errors

from app.errors import ConfigError

SERVICE = "voiceprobe"

#: Secret name → environment variables consulted (in order) when the keyring has none.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "openai_api_key": ("OPENAI_API_KEY",),
    # GOOGLE_API_KEY first when both are set, as Google's own ``google-genai`` SDK reads
    # them: voiceprobe calls with the key the team's agent code uses.
    "gemini_api_key": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "sip_password": ("VOICEPROBE_SIP_PASSWORD",),
}

_MIN_SECRET = 4

#: A field or query parameter holds a credential when its name contains one of these (any
#: case, anywhere: ``key``, ``x-api-secret``, ``access_token``, ``X-Goog-Signature``,
#: ``Authorization``…), or is exactly ``sig`` (an Azure SAS). A rule, not a list of names.
_SECRET_NAME_PARTS = (
    "key", "secret", "token", "signature", "password", "passwd", "auth", "credential"
)


def is_secret_name(name: str) -> bool:
    """Whether a field, header or query parameter called ``name`` holds a credential."""
    low = name.lower()
    return low == "sig" or any(part in low for part in _SECRET_NAME_PARTS)


def scrub_url(url: str, replacement: str | None = "***") -> str:
    """``url`` without credentials: user info dropped, and the value of every
    secret-named query parameter (:func:`is_secret_name`) replaced by ``replacement``
    (``None`` drops the parameter). An unparsable URL gives ``"<invalid URL>"``.
    """
    if not url:
        return url
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    kept = [
        (k, v if not is_secret_name(k) else replacement)
        for k, v in query
        if replacement is not None or not is_secret_name(k)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(kept, safe="*"), ""))


def keyring_available() -> bool:
    """Whether a usable keyring backend exists (not the ``fail``/``null`` backends)."""
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken backend configuration means "none"
        return False
    name = type(backend).__module__
    if name.startswith(("keyring.backends.fail", "keyring.backends.null")):
        return False
    subs = getattr(backend, "backends", None)
    return not (subs is not None and len(subs) == 0)


def get_secret(name: str, env_vars: tuple[str, ...] | None = None) -> str | None:
    """Return the secret ``name`` from the keyring, else from the first set env var.

    A missing or broken keyring backend falls back silently to the environment. Empty
    values count as unset.

    Args:
        name: the keyring entry (e.g. ``openai_api_key``).
        env_vars: environment variables to try; ``None`` uses :data:`ENV_VARS`.
    """
    try:
        value = keyring.get_password(SERVICE, name)
    except Exception:  # backends raise their own types (dbus, secretstorage)
        value = None
    if value:
        return value
    for var in ENV_VARS.get(name, ()) if env_vars is None else env_vars:
        env = os.environ.get(var, "")
        if env:
            return env
    return None


def set_secret(name: str, value: str) -> None:
    """Store ``value`` under ``name`` in the OS keyring.

    Raises:
        ConfigError: no keyring backend is available, or it refused the write.
    """
    if not keyring_available():
        raise ConfigError(
            f"no OS keyring available to store {name}; set it in the environment instead"
        )
    try:
        keyring.set_password(SERVICE, name, value)
    except keyring.errors.KeyringError as exc:
        raise ConfigError(
            f"the OS keyring refused to store {name} ({type(exc).__name__})"
        ) from None


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each secret (4 characters or longer) by ``***``."""
    for s in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(s, "***")
    return text
