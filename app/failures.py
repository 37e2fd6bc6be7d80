"""Why a call failed, and what the user can do about it.

Every failure that ends a call (or stops it from starting) is reported as one
:class:`app.events.CallFailed` event with a code, the one-line reason, and the *fix*: the
step a user can take (set a key, check the URL, start the audio server). The table lives
here, in the core, so the window, ``voiceprobe sessions show`` and the HTML report all say
the same thing.
"""

from __future__ import annotations

from app.errors import (
    AudioDeviceError,
    ConfigError,
    MissingKeyError,
    ProviderError,
    StoreError,
    VoiceprobeError,
)

#: Error code → the fix a user can apply. Codes are the ``ProviderError.code`` values of
#: ``app/providers/ws.py`` and the bridge's own (``config_timeout``, ``response_stalled``…).
FIXES: dict[str, str] = {
    "missing_key": "set the key in File → Settings (or `voiceprobe keys set <provider>`), "
    "or choose the Simulator",
    "auth_failed": "the server refused the key: check it in File → Settings "
    "(or `voiceprobe keys set <provider>`) and that it may use this model",
    "connection_refused": "the server refused the session: check the key, the model and "
    "the account's access",
    "not_found": "is the URL right? The server has no realtime endpoint there "
    "(File → Settings → Endpoints, or --url)",
    "bad_url": "is the URL right? Fix it in File → Settings → Endpoints, or --url",
    "handshake_failed": "is the URL right? The server did not accept a WebSocket there",
    "connect_failed": "is the URL right, and is the server running? Check the endpoint "
    "(File → Settings → Endpoints, or --url) and the network",
    "connect_timeout": "is the URL right? Check the network, a firewall or the proxy",
    "tls_untrusted": "for a private CA or a TLS-inspecting proxy, trust its CA: pass "
    "--ca-file or set SSL_CERT_FILE",
    "tls_failed": "check that the URL is wss:// to a TLS server and the server's certificate",
    "proxy_failed": "check the proxy set in HTTPS_PROXY / ALL_PROXY, or add the host to NO_PROXY",
    "proxy_unsupported": "use an HTTP(S) proxy, or unset ALL_PROXY / HTTPS_PROXY",
    "rate_limited": "wait a moment and call again, or raise the account's rate limit",
    "config_timeout": "the server took the connection but not the session: check the model "
    "name and the URL",
    "audio_device": "no audio server or device: start PulseAudio (or plug the device in) "
    "and pick a device under Audio",
    "config": "fix the setting named in the message",
    "store": "free disk space in the data folder, or choose another one in File → Settings",
    "response_stalled": "the agent stopped answering mid-reply: call again; if it repeats, "
    "report it to the provider",
    "connection_closed": "the connection dropped: check the network and call again",
    "reconnect_failed": "the connection dropped and could not be restored: check the network "
    "and call again",
    "message_too_big": "the server sent a message over the size limit: report it to the provider",
    "session_expired": "the provider ended the session: call again",
}
#: The fix when a code has none of its own.
GENERIC_FIX = "see the message; the session's events (Events tab) hold the details"


def fix_for(code: str) -> str:
    """The fix for error ``code`` (:data:`GENERIC_FIX` when it has none)."""
    return FIXES.get(code, GENERIC_FIX)


def failure_code(exc: BaseException) -> str:
    """The error code of an exception that stopped a call: the provider's code, or one of
    ``missing_key``, ``audio_device``, ``store``, ``config``, ``internal_error``."""
    if isinstance(exc, ProviderError):
        return exc.code
    if isinstance(exc, MissingKeyError):
        return "missing_key"
    if isinstance(exc, AudioDeviceError):
        return "audio_device"
    if isinstance(exc, StoreError):
        return "store"
    if isinstance(exc, ConfigError):
        return "config"
    if isinstance(exc, VoiceprobeError):
        return "error"
    return "internal_error"
