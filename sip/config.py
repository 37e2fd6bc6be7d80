"""SIP account settings: a dataclass, loadable from a YAML or JSON ``--account FILE``.

The password never lives in the file: when it is not given it comes from
:func:`app.secrets.get_secret` (``sip_password`` in the keyring, else the environment
variable ``VOICEPROBE_SIP_PASSWORD``). ``repr`` never shows it.

Security rules enforced here (at construction, so a bad file, flag or form is one
:class:`ConfigError` before any SIP message is sent):

* over ``tls`` the server's certificate is verified against ``tls_ca_file``, else the
  system's CA bundle (:func:`system_ca_file`); ``tls_verify: false`` turns that off and is
  insecure (anyone on the path can pose as the server);
* SRTP (``optional`` or ``mandatory``) needs TLS signalling, because the SRTP keys travel
  in the SDP (SDES): over ``udp``/``tcp`` they would be readable by anyone on the path.
  Such a configuration is refused unless ``srtp_insecure_signaling: true`` says otherwise.
  Refusing (rather than warning and sending the keys anyway) is the safe choice.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from app.bounded_yaml import load_yaml
from app.errors import ConfigError

TRANSPORTS = ("udp", "tcp", "tls")
SRTP_MODES = ("off", "optional", "mandatory")

#: Where platforms keep their CA bundle as one PEM file (pjsua2 takes one file, no folder).
_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, BSDs
)


class TlsPolicy(NamedTuple):
    """How a SIP TLS transport checks the server.

    Attributes:
        ca_file: PEM file of the trusted CAs ("" when none was found: with ``verify``,
            every server is then refused).
        verify: whether the server's certificate and name are checked.
    """

    ca_file: str
    verify: bool


def system_ca_file() -> str:
    """The platform's CA bundle as one PEM file, or "" when none is found.

    Order: ``SSL_CERT_FILE``; OpenSSL's default file; the usual distribution paths;
    ``certifi``'s bundle (as in a frozen app).
    """
    openssl_default = ssl.get_default_verify_paths().cafile or ""
    for path in (os.environ.get("SSL_CERT_FILE", ""), openssl_default, *_CA_BUNDLES):
        if path and os.path.isfile(path) and os.access(path, os.R_OK):
            return path
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi is a dependency of the providers
        return ""
    return str(certifi.where())


def _check_ca_file(value: str, path: str | None) -> None:
    """Raise :class:`ConfigError` (field ``tls_ca_file``) unless ``value`` is a readable
    file holding at least one PEM certificate."""
    f = Path(value)
    try:
        with f.open("rb") as fh:
            head = fh.read(1 << 20)
    except FileNotFoundError:
        raise ConfigError(f"file not found: {value}", path, "tls_ca_file") from None
    except IsADirectoryError:
        raise ConfigError(f"not a file: {value}", path, "tls_ca_file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {value} ({exc.strerror})", path,
                          "tls_ca_file") from None
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise ConfigError(f"not a PEM certificate file: {value}", path, "tls_ca_file")


def _default_password() -> str:
    from app.secrets import get_secret

    return get_secret("sip_password", ("VOICEPROBE_SIP_PASSWORD",)) or ""


@dataclass(slots=True)
class SipAccountConfig:
    """One SIP account.

    Attributes:
        uri: the account's AOR, e.g. ``sip:alice@example.com``.
        registrar: registrar URI (``sip:example.com``); empty means no registration (the
            account can still call and be called directly at its contact address).
        username: digest user name; defaults to the user part of ``uri``.
        password: digest password (``repr`` hides it); from the keyring/env when empty.
        realm: digest realm, ``*`` for any.
        transport: ``udp``, ``tcp`` or ``tls``.
        outbound_proxy: a proxy URI every request goes through (``sip:proxy;lr``), if any.
        srtp: ``off``, ``optional`` or ``mandatory``. Anything but ``off`` needs
            ``transport: tls`` unless ``srtp_insecure_signaling`` is set.
        srtp_insecure_signaling: allow SRTP over ``udp``/``tcp`` signalling. INSECURE: the
            SRTP keys then travel in plaintext SDP, readable by anyone on the path.
        tls_ca_file: PEM file of the CAs that may sign the SIP server's TLS certificate
            (a private PBX CA); empty: the system's CA bundle. Must be a readable file.
        tls_verify: check the server's TLS certificate and name (``transport: tls``).
            ``false`` is INSECURE: any server, or anyone on the path, is accepted.
        stun: a STUN server ``host[:port]``, if any (used by the endpoint).
        reg_interval: registration expiry in seconds.
        reg_timeout: seconds after which a registration without an answer is reported
            failed (code 408) by voiceprobe itself.
        bind_host: local address for SIP and RTP (also advertised in SDP).
        bind_port: local SIP port; 0 picks a free one.
        auto_answer: answer incoming calls at once with 200.
    """

    uri: str
    registrar: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    realm: str = "*"
    transport: str = "udp"
    outbound_proxy: str = ""
    srtp: str = "off"
    stun: str = ""
    reg_interval: int = 300
    reg_timeout: float = 5.0
    bind_host: str = "127.0.0.1"
    bind_port: int = 0
    auto_answer: bool = True
    tls_ca_file: str = ""
    tls_verify: bool = True
    srtp_insecure_signaling: bool = False

    def __post_init__(self) -> None:
        self.validate()
        if not self.username:
            self.username = user_part(self.uri)

    def validate(self, path: str | None = None) -> None:
        """Raise :class:`ConfigError` naming the first bad field."""
        if not isinstance(self.uri, str) or not self.uri.startswith(("sip:", "sips:")):
            raise ConfigError("must be a sip: or sips: URI", path, "uri")
        if self.registrar and not str(self.registrar).startswith(("sip:", "sips:")):
            raise ConfigError("must be a sip: or sips: URI", path, "registrar")
        if self.outbound_proxy and not str(self.outbound_proxy).startswith(("sip:", "sips:")):
            raise ConfigError("must be a sip: or sips: URI", path, "outbound_proxy")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"must be one of {', '.join(TRANSPORTS)}", path, "transport")
        if self.srtp not in SRTP_MODES:
            raise ConfigError(f"must be one of {', '.join(SRTP_MODES)}", path, "srtp")
        if not isinstance(self.reg_interval, int) or not 30 <= self.reg_interval <= 86400:
            raise ConfigError("must be an integer from 30 to 86400", path, "reg_interval")
        if not isinstance(self.reg_timeout, int | float) or not 0.5 <= self.reg_timeout <= 120:
            raise ConfigError("must be a number from 0.5 to 120", path, "reg_timeout")
        if not isinstance(self.bind_port, int) or not 0 <= self.bind_port <= 65535:
            raise ConfigError("must be a port number (0 for any)", path, "bind_port")
        for name in ("auto_answer", "tls_verify", "srtp_insecure_signaling"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError("must be true or false", path, name)
        for name in ("username", "password", "realm", "stun", "bind_host", "tls_ca_file"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError("must be a string", path, name)
        if self.tls_ca_file:
            _check_ca_file(self.tls_ca_file, path)
        if self.srtp != "off" and self.transport != "tls" and not self.srtp_insecure_signaling:
            raise ConfigError(
                f"SRTP over {self.transport} signalling would send the SRTP keys in plaintext "
                "SDP: use transport tls, or set srtp_insecure_signaling: true "
                "(--srtp-insecure-signaling; insecure)", path, "srtp")

    def tls_policy(self) -> TlsPolicy:
        """How a TLS transport for this account checks the server (see :class:`TlsPolicy`)."""
        return TlsPolicy(self.tls_ca_file or system_ca_file(), self.tls_verify)

    def resolved_password(self) -> str:
        """The password to use: the configured one, else the keyring/env secret ("" if none)."""
        return self.password or _default_password()

    @property
    def domain(self) -> str:
        """The host part of :attr:`uri`."""
        rest = self.uri.split(":", 1)[1]
        return rest.split("@", 1)[-1].split(";", 1)[0]


def user_part(uri: str) -> str:
    """``sip:alice@host`` → ``alice`` (empty when the URI has no user)."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""


def load_account_config(path: str | Path) -> SipAccountConfig:
    """Read a YAML or JSON account file (one mapping of :class:`SipAccountConfig` fields).

    Raises:
        ConfigError: the file is missing or malformed, a field is unknown, missing or bad.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read account file ({exc.strerror})", str(p)) from None
    # Within the budget of every other file voiceprobe reads (no alias bombs, no key
    # named twice); JSON is YAML.
    what = "JSON" if p.suffix.lower() == ".json" else "YAML"
    data: Any = load_yaml(text, str(p), what)
    if not isinstance(data, dict):
        raise ConfigError("must contain a mapping of account fields", str(p))
    known = {f.name for f in dataclasses.fields(SipAccountConfig)}
    for key in data:
        if key not in known:
            raise ConfigError("unknown field", str(p), str(key))
    if "uri" not in data:
        raise ConfigError("is required", str(p), "uri")
    try:
        return SipAccountConfig(**data)
    except ConfigError as exc:  # named again with the file it came from
        raise ConfigError(exc.problem, str(p), exc.field) from None
    except TypeError as exc:  # a field of the wrong kind for the dataclass machinery
        raise ConfigError(f"bad account fields ({exc})", str(p)) from None


def save_account_config(cfg: SipAccountConfig, path: str | Path) -> None:
    """Write ``cfg`` as YAML for :func:`load_account_config`, without the password.

    Raises:
        ConfigError: the file cannot be written.
    """
    data = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "password"}
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write account file ({exc.strerror})", str(p)) from None
