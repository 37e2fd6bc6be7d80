"""The TLS context every ``wss://`` connection to a provider uses.

One verifying client context for all vendors (see ``docs/security.md``): the system's
trust store (OpenSSL's default paths, which honour ``SSL_CERT_FILE`` and
``SSL_CERT_DIR``; ``certifi``'s bundle when the platform offers none, as in a frozen app
on macOS), plus the ``--ca-file`` a user gives for a private CA, a TLS-inspecting proxy
or the simulator. Certificates and host names are always checked; nothing here turns
verification off.
"""

from __future__ import annotations

import os
import ssl

from app.errors import ConfigError


def client_ssl_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying TLS 1.2+ client context: the system CAs plus ``ca_file``.

    ``SSL_CERT_FILE`` is loaded explicitly too, so that a wrong path in it is one clear
    error rather than an empty trust store.

    Raises:
        ConfigError: ``ca_file`` (or ``SSL_CERT_FILE``) cannot be read as PEM
            certificates; the message names the file and where it came from.
    """
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not ctx.cert_store_stats().get("x509_ca") and not ssl.get_default_verify_paths().capath:
        _load_certifi(ctx)
    env_file = os.environ.get("SSL_CERT_FILE")
    for path, source in ((env_file, "SSL_CERT_FILE"), (ca_file, "--ca-file")):
        if not path:
            continue
        try:
            ctx.load_verify_locations(cafile=path)
        except FileNotFoundError:
            raise ConfigError("file not found", path, source) from None
        except (ssl.SSLError, OSError, ValueError):
            raise ConfigError("not a PEM certificate file", path, source) from None
    return ctx


def _load_certifi(ctx: ssl.SSLContext) -> None:
    """Fall back on certifi's bundle when the platform's default paths hold no CA."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi is a declared dependency
        return
    ctx.load_verify_locations(cafile=certifi.where())
