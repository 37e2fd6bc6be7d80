"""SIP calls: the pjsua2 ``Call`` subclass (SIP thread) and a thread-safe handle.

The handle (:class:`SipCall`) holds no pjsua2 object, so user code may keep it after the
endpoint is gone; the pjsua2 objects live only in the endpoint's tables and are dropped
before ``libDestroy`` (a ``Call`` or ``AudioMediaPort`` alive then aborts the process).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

import pjsua2 as pj

from sip.events import CallQuality, CallState, Dtmf
from sip.media_port import FramePort
from sip.port import SipCallPort

if TYPE_CHECKING:
    from sip.endpoint import SipEndpoint

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "null",
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_INCOMING: "incoming",
    pj.PJSIP_INV_STATE_EARLY: "early",
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
    pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
}


class SipCall:
    """Handle of one call; safe to use from any thread.

    Attributes:
        key: voiceprobe's own number for the call (unique per endpoint).
        direction: ``in`` or ``out``.
        call_id: the SIP Call-ID.
        remote_uri: the far end's URI.
        port: the call's audio as a caller-side port.
        state / code / reason: the last call state and SIP status.
        confirmed: set when the call is answered (200 OK / ACK).
        ended: set when the call is disconnected (either side, or failed).
        ended_future: resolved with the final :class:`CallState` (for asyncio, use
            ``asyncio.wrap_future``).
        quality: the last :class:`CallQuality`, if any.
    """

    def __init__(self, endpoint: SipEndpoint, key: int, direction: str, rate: int) -> None:
        self.key = key
        self.direction = direction
        self.call_id = ""
        self.remote_uri = ""
        self.state = "null"
        self.code = 0
        self.reason = ""
        self.confirmed = threading.Event()
        self.ended = threading.Event()
        self.ended_future: Future[CallState] = Future()
        self.quality: CallQuality | None = None
        #: The last DTMF digit received, if any.
        self.last_dtmf: Dtmf | None = None
        #: Every call state so far, oldest first (appended on the SIP thread).
        self.states: list[CallState] = []
        self._changed = threading.Condition()
        self._endpoint = endpoint
        self.port = SipCallPort(rate, hangup=self.hangup)

    @property
    def endpoint(self) -> SipEndpoint:
        """The endpoint that owns the call."""
        return self._endpoint

    def _on_state(self, ev: CallState) -> None:
        self.states.append(ev)
        self.state, self.code, self.reason = ev.state, ev.code, ev.reason
        if ev.call_id:
            self.call_id = ev.call_id
        if ev.remote_uri:
            self.remote_uri = ev.remote_uri
        if ev.state == "confirmed":
            self.confirmed.set()
        elif ev.state == "disconnected" and not self.ended.is_set():
            self.port.disconnected.set()
            self.ended.set()
            if not self.ended_future.done():
                self.ended_future.set_result(ev)
        with self._changed:
            self._changed.notify_all()

    def answer(self, code: int = 200) -> None:
        """Answer (2xx), ring (180) or reject (4xx-6xx) an incoming call; does not wait."""
        self._endpoint.post(lambda: self._endpoint.call_answer(self, code))

    def hangup(self, code: int = 603) -> None:
        """Hang up (BYE, CANCEL, or reject with ``code``); does not wait."""
        if not self.ended.is_set():
            self._endpoint.post(lambda: self._endpoint.call_hangup(self, code))

    def send_dtmf(self, digits: str, timeout: float = 5.0) -> None:
        """Send DTMF digits as RFC 2833 telephone-events (blocks until queued).

        Raises:
            SipError: the call has no active audio or pjsua2 refused the digits.
        """
        self._endpoint.run(lambda: self._endpoint.call_dtmf(self, digits), timeout=timeout)

    def wait_confirmed(self, timeout: float) -> bool:
        """Block until answered; False if it ended or ``timeout`` passed first."""
        with self._changed:
            self._changed.wait_for(lambda: self.confirmed.is_set() or self.ended.is_set(),
                                   timeout)
        return self.confirmed.is_set()
        # Wake on either event: poll both in short waits (no busy loop).
        step = 0.02
        waited = 0.0
        while waited < timeout:
            if self.confirmed.wait(step):
                return True
            if self.ended.is_set():
                return False
            waited += step
        return self.confirmed.is_set()

    def wait_ended(self, timeout: float) -> CallState:
        """Block until the call is disconnected; returns the final state.

        Raises:
            TimeoutError: it did not end within ``timeout``.
        """
        return self.ended_future.result(timeout)


class PjCall(pj.Call):  # type: ignore[misc]
    """pjsua2 call; callbacks run on the SIP thread and never raise.

    Owns the call's :class:`FramePort` (connected both ways to the call's audio on every
    ``onCallMediaState``, since a re-INVITE recreates the stream).
    """

    def __init__(self, endpoint: SipEndpoint, account: pj.Account, handle: SipCall,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.endpoint = endpoint
        self.handle = handle
        self.media: FramePort | None = None
        self.audio_index = -1

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 - pjsua2 API
        try:
            self.endpoint.call_state_changed(self)
        except Exception as exc:
            self.endpoint.callback_failed("onCallState", exc)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        try:
            self.connect_media()
        except Exception as exc:
            self.endpoint.callback_failed("onCallMediaState", exc)

    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:  # noqa: N802
        try:
            self.endpoint.final_quality(self)
        except Exception as exc:
            self.endpoint.callback_failed("onStreamDestroyed", exc)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802 - pjsua2 API
        try:
            self.endpoint.dtmf_received(self, str(prm.digit))
        except Exception as exc:
            self.endpoint.callback_failed("onDtmfDigit", exc)

    def connect_media(self) -> None:
        """SIP thread: (re)connect the frame port to the active audio stream."""
        ci = self.getInfo()  # keep it: iterating getInfo().media directly reads freed memory
        media = ci.media
        for i in range(len(media)):
            mi = media[i]
            if mi.type != pj.PJMEDIA_TYPE_AUDIO or mi.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            aud = self.getAudioMedia(mi.index)
            port = self.handle.port
            if self.media is None:
                self.media = FramePort(port.rate, port.link)
                self.media.create(f"vp{self.handle.key}")
            aud.startTransmit(self.media)
            self.media.startTransmit(aud)
            self.audio_index = mi.index
            return
