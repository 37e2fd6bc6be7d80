"""SIP events: frozen, slotted records derived from :class:`app.events.EventBase`.

They are emitted by :class:`sip.endpoint.SipEndpoint` through its ``on_event`` callback,
on the SIP thread, so the store and the UI can take them like any other event.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.events import EventBase


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationState(EventBase):
    """A registration attempt finished (or was refreshed, or ended).

    Attributes:
        account: the account's AOR (``sip:user@domain``).
        code: the SIP status (200 ok; 401/403 bad credentials; 408/503 unreachable).
        reason: the registrar's reason phrase or a local explanation; never a secret.
        active: whether the account is registered now.
    """

    account: str
    code: int
    reason: str
    active: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CallState(EventBase):
    """A call changed state.

    Attributes:
        call_id: the SIP Call-ID.
        state: ``calling``, ``incoming``, ``early``, ``connecting``, ``confirmed`` or
            ``disconnected``.
        code: the last SIP status seen (e.g. 180, 200, 486, 488).
        reason: the last reason phrase.
        remote_uri: the far end's URI.
    """

    call_id: str
    state: str
    code: int
    reason: str
    remote_uri: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQuality(EventBase):
    """RTP statistics of a call, sampled every few seconds.

    Attributes:
        call_id: the SIP Call-ID.
        codec: codec name and clock rate, e.g. ``PCMU/8000``.
        jitter_ms: interarrival jitter of received RTP (RFC 3550), mean over the call.
        loss_pct: received packets lost, in percent of expected.
        rtt_ms: round trip time from RTCP, or ``None`` before the first report.
        mos: estimated listening quality (1.0-4.5) from the E-model (ITU-T G.107).
    """

    call_id: str
    codec: str
    jitter_ms: float
    loss_pct: float
    rtt_ms: float | None
    mos: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Dtmf(EventBase):
    """A DTMF digit was received (RFC 2833 telephone-event, or SIP INFO)."""

    call_id: str
    digit: str
