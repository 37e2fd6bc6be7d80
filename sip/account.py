"""SIP accounts: the pjsua2 ``Account`` subclass (SIP thread) and a thread-safe handle.

Registration outcomes become :class:`sip.events.RegistrationState` events; a wrong
password is a failed status (401/403), an unreachable registrar a 408/503 status, a TLS
server whose certificate could not be verified a 503 whose reason says so.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pjsua2 as pj

from sip.config import SipAccountConfig
from sip.events import RegistrationState

if TYPE_CHECKING:
    from sip.endpoint import SipEndpoint

_SRTP = {
    "off": pj.PJMEDIA_SRTP_DISABLED,
    "optional": pj.PJMEDIA_SRTP_OPTIONAL,
    "mandatory": pj.PJMEDIA_SRTP_MANDATORY,
}


#: ``srtpSecureSignaling`` levels: 0 none, 1 TLS on the first hop, 2 ``sips:`` end to end.
SECURE_SIGNALING_NONE, SECURE_SIGNALING_TLS = 0, 1


def build_account_config(cfg: SipAccountConfig, transport_id: int) -> pj.AccountConfig:
    """Map :class:`SipAccountConfig` to a pjsua2 ``AccountConfig`` (SIP thread).

    SRTP keys travel in the SDP, so pjsua must refuse SRTP unless the signalling is
    secure: ``srtpSecureSignaling`` is 1 (TLS to the next hop) unless the account opted out
    with ``srtp_insecure_signaling`` (then 0). :class:`SipAccountConfig` already refuses
    SRTP over udp/tcp without that opt-out; this is the stack's own second check.
    """
    ac = pj.AccountConfig()
    ac.idUri = cfg.uri
    if cfg.registrar:
        ac.regConfig.registrarUri = cfg.registrar
        ac.regConfig.timeoutSec = cfg.reg_interval
        ac.regConfig.registerOnAdd = True
    else:
        ac.regConfig.registerOnAdd = False
    password = cfg.resolved_password()
    if password or cfg.registrar:
        ac.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", cfg.realm, cfg.username, 0, password)
        )
    if cfg.outbound_proxy:
        ac.sipConfig.proxies.append(cfg.outbound_proxy)
    ac.sipConfig.transportId = transport_id
    if cfg.bind_host not in ("", "0.0.0.0"):
        # Without this, SDP advertises the first interface's address, not the bound one.
        ac.mediaConfig.transportConfig.boundAddress = cfg.bind_host
        ac.mediaConfig.transportConfig.publicAddress = cfg.bind_host
    ac.mediaConfig.srtpUse = _SRTP[cfg.srtp]
    ac.mediaConfig.srtpSecureSignaling = (
        SECURE_SIGNALING_NONE if cfg.srtp_insecure_signaling else SECURE_SIGNALING_TLS)
    if not cfg.stun:
        ac.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        ac.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
    return ac


class SipAccount:
    """Handle of a registered (or local) account; safe to use from any thread.

    Attributes:
        config: the account settings (``repr`` hides the password).
        aor: the account's URI.
        state: the last :class:`RegistrationState`, or ``None`` before any.
    """

    def __init__(self, endpoint: SipEndpoint, config: SipAccountConfig, key: int) -> None:
        self.config = config
        self.aor = config.uri
        self.key = key
        self.state: RegistrationState | None = None
        self.contact = ""
        self._endpoint = endpoint
        self._final = threading.Event()

    def _on_state(self, ev: RegistrationState) -> None:
        self.state = ev
        self._final.set()

    def wait_registration(self, timeout: float = 10.0) -> RegistrationState | None:
        """Block until the first final registration outcome (or ``timeout``); returns it.

        Accounts without a registrar never get one (returns ``None`` after ``timeout``).
        """
        self._final.wait(timeout)
        return self.state

    @property
    def registered(self) -> bool:
        """Whether the last registration outcome left the account registered."""
        return self.state is not None and self.state.active

    def remove(self, timeout: float = 5.0) -> None:
        """Unregister and delete the account (blocks until done on the SIP thread)."""
        self._endpoint.remove_account(self, timeout=timeout)


class PjAccount(pj.Account):  # type: ignore[misc]
    """pjsua2 account; every callback runs on the SIP thread and never raises."""

    def __init__(self, endpoint: SipEndpoint, handle: SipAccount) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.handle = handle

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802 - pjsua2 API
        try:
            info = self.getInfo()
            code = int(prm.code)
            reason = str(prm.reason)
            tls = self.endpoint.tls_failure(reason)
            if tls:
                reason = f"registration failed: {code} {tls}"
            elif code // 100 != 2 and code in (401, 403, 407):
                reason = f"registration failed: {code} {reason} (check user name and password)"
            elif code // 100 != 2:
                reason = f"registration failed: {code} {reason}"
            self.endpoint.registration_outcome(self.handle, code, reason, bool(info.regIsActive))
        except Exception as exc:  # never let an exception (and its frames) escape
            self.endpoint.callback_failed("onRegState", exc)

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802 - pjsua2 API
        try:
            self.endpoint.incoming_call(self, int(prm.callId))
        except Exception as exc:
            self.endpoint.callback_failed("onIncomingCall", exc)
