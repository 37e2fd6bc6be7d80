"""The desktop app's handle on SIP: one endpoint, one account, one bridged call at a time.

:class:`SipController` owns one :class:`sip.endpoint.SipEndpoint` (pjsua2 allows one per
process: create one controller per process, lazily, and :meth:`~SipController.shutdown`
it at exit) and one asyncio loop thread, ``voiceprobe-sip-core``, on which each call is
bridged to the agent with :func:`sip.bridge.bridge_sip_call`. Its public methods may be
called from any thread (the Qt main thread): they queue work and return at once; outcomes
arrive as events.

Events reach every subscriber exactly once, on the SIP thread (registration, call states,
quality, DTMF, endpoint notices) or on the loop thread (the bridged call's core events:
``CallStarted``, transcripts, turns, ``CallEnded``…); subscribers must be thread-safe and
return quickly (the UI passes ``EventBus.post``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from app import eventloop
from app.audio.callermix import CallerMix
from app.bridge.session import CallHandle, CallSetup
from app.clock import MONOTONIC, Clock
from app.errors import VoiceprobeError
from app.events import EventBase, Notice, NoticeLevel
from app.loop_thread import stop_loop_thread
from sip.config import SipAccountConfig
from sip.events import CallQuality, CallState, Dtmf, RegistrationState

Subscriber = Callable[[EventBase], None]
SetupFactory = Callable[[Any], CallSetup]

_SIP_KINDS = (RegistrationState, CallState, CallQuality, Dtmf)


def default_setup(call: Any) -> CallSetup:
    """The agent side for a call: the default profile, its provider when a key is
    configured, else the built-in simulator."""
    from app.bridge.controller import provider_for
    from app.bridge.providers import plan_provider
    from app.profile import load_profile

    profile = load_profile(None)
    plan, profile = plan_provider(provider_for(profile), profile)
    return CallSetup(profile=profile, plan=plan, tags=["sip"],
                     source=f"sip:{call.remote_uri or call.direction}")


class SipController:
    """Register, dial, answer/reject, hang up, DTMF and listen-in for the desktop.

    Args:
        setup_factory: builds the agent side for a call (on the loop thread); the
            composition root passes one that uses the window's profile and provider.
        clock: the one clock (shared with the endpoint so stamps compare).
        media_rate: the calls' port rate.
        listen_device: output device for listen-in (``None``: the default).
        endpoint_factory: builds the endpoint (tests); default :class:`SipEndpoint`.
    """

    def __init__(
        self,
        setup_factory: SetupFactory | None = None,
        *,
        clock: Clock = MONOTONIC,
        media_rate: int = 16000,
        listen_device: int | str | None = None,
        endpoint_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.setup_factory = setup_factory or default_setup
        self.clock = clock
        self.media_rate = media_rate
        self.listen_device = listen_device
        self._endpoint_factory = endpoint_factory
        self._subs: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()
        self._loop = eventloop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="voiceprobe-sip-core", daemon=True)
        self._thread.start()
        self._ep: Any = None
        self._account: Any = None
        self._admin: asyncio.Lock | None = None
        # Call state: written on the SIP thread (ringing) or the loop thread (call).
        self._ringing: Any = None
        self._call: Any = None
        self._handle: CallHandle | None = None
        self._pending: set[Future[Any]] = set()
        self._recent_notices: collections.deque[EventBase] = collections.deque(maxlen=32)
        self._listen_on = False
        self._listen: Any = None
        self._closed = False
        self._stun = ""
        #: The last bridged call's summary (``None`` before any).
        self.last_summary: dict[str, Any] | None = None
        #: The last registration outcome (``None`` before any).
        self.registration: RegistrationState | None = None

    # --- subscription ----------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        """Receive every event (SIP or loop thread; must be thread-safe, must not block)."""
        with self._lock:
            self._subs = (*self._subs, callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop delivering to ``callback`` (a no-op if it was not subscribed)."""
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not callback)

    def _dispatch(self, ev: EventBase) -> None:
        for cb in self._subs:
            try:
                cb(ev)
            except Exception as exc:  # one broken view must not stop the others
                import logging

                logging.getLogger(__name__).error("SIP subscriber raised %s: %s",
                                                  type(exc).__name__, exc)

    def _notice(self, level: NoticeLevel, message: str) -> None:
        self._dispatch(Notice(t_ns=self.clock.now_ns(), level=level, message=message))

    def _on_endpoint_event(self, ev: EventBase) -> None:
        """SIP thread: every endpoint event goes out once, from here."""
        if isinstance(ev, RegistrationState):
            self.registration = ev
        elif isinstance(ev, CallState) and ev.state == "disconnected":
            ringing = self._ringing
            if ringing is not None and ringing.ended.is_set():
                self._ringing = None
        elif isinstance(ev, Notice):
            self._recent_notices.append(ev)
        self._dispatch(ev)

    def _on_bridge_event(self, ev: EventBase) -> None:
        """Loop thread: the bridged call's events, minus the SIP events it re-emits."""
        if isinstance(ev, _SIP_KINDS):
            return
        if isinstance(ev, Notice) and any(n is ev for n in self._recent_notices):
            return
        self._dispatch(ev)

    # --- plumbing ---------------------------------------------------------------------------

    def _submit(self, coro: Any) -> Future[Any]:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(self._report)
        return fut

    def _report(self, fut: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(fut)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            return
        msg = str(exc) if isinstance(exc, VoiceprobeError) else f"{type(exc).__name__}: {exc}"
        self._notice("error", msg)

    async def _endpoint(self, stun: str = "") -> Any:
        """Loop thread: the running endpoint (started on first use, off the loop; the
        first account's STUN server is the endpoint's)."""
        if self._admin is None:
            self._admin = asyncio.Lock()
        async with self._admin:
            if self._ep is None:
                factory = self._endpoint_factory
                if factory is None:
                    from sip.endpoint import SipEndpoint

                    factory = SipEndpoint
                ep = factory(on_event=self._on_endpoint_event, on_incoming=self._decide,
                             clock=self.clock, media_rate=self.media_rate,
                             stun_servers=(stun,) if stun else ())
                self._stun = stun
                await self._loop.run_in_executor(None, ep.start)
                self._ep = ep
            return self._ep

    # --- account ----------------------------------------------------------------------------

    def apply_account(self, cfg: SipAccountConfig) -> Future[Any]:
        """Replace the account with ``cfg`` (unregistering the old one) and register.

        Returns at once; the outcome arrives as a :class:`RegistrationState` (or a
        ``Notice`` when the account cannot be created).
        """
        return self._submit(self._apply_account(cfg))

    async def _apply_account(self, cfg: SipAccountConfig) -> None:
        ep = await self._endpoint(cfg.stun)
        if cfg.stun != self._stun:
            self._notice("warning", "a new STUN server takes effect after voiceprobe restarts")
        old, self._account = self._account, None
        if old is not None:
            await self._loop.run_in_executor(None, old.remove)
        self._account = await self._loop.run_in_executor(None, ep.add_account, cfg)
        if not cfg.registrar:
            self._notice("info", f"SIP account {cfg.uri} ready (no registrar), "
                                 f"contact {self._account.contact}")

    @property
    def account(self) -> Any:
        """The current account handle (``None`` before :meth:`apply_account` succeeds)."""
        return self._account

    # --- calls ------------------------------------------------------------------------------

    @property
    def in_call(self) -> bool:
        """True while a call is being bridged."""
        return self._call is not None

    @property
    def ringing(self) -> Any:
        """The incoming call waiting for Answer/Reject, if any."""
        return self._ringing

    def _decide(self, call: Any) -> int:
        """SIP thread: ring one incoming call at a time; busy otherwise."""
        if self._call is not None or self._ringing is not None or self._closed:
            return 486
        self._ringing = call
        return 180

    def dial(self, uri: str) -> Future[Any]:
        """Call ``uri`` and bridge the call to the agent (errors arrive as a Notice)."""
        return self._submit(self._dial(uri))

    async def _dial(self, uri: str) -> None:
        if self._call is not None:
            self._notice("warning", "a SIP call is already running")
            return
        if self._account is None:
            self._notice("error", "no SIP account: register first")
            return
        ep = await self._endpoint()
        call = await self._loop.run_in_executor(None, ep.make_call, self._account, uri)
        await self._bridge(call)

    def answer(self) -> Future[Any]:
        """Bridge the ringing call to the agent; it is answered once the agent is ready."""
        return self._submit(self._answer())

    async def _answer(self) -> None:
        call, self._ringing = self._ringing, None
        if call is None or call.ended.is_set():
            self._notice("warning", "no incoming call to answer")
            return
        await self._bridge(call)

    def reject(self, code: int = 486) -> None:
        """Reject the ringing call (486 Busy Here by default)."""
        call, self._ringing = self._ringing, None
        if call is not None:
            call.answer(code)

    def hangup(self) -> None:
        """Hang up the bridged call (or reject the ringing one)."""
        if self._call is None:
            self.reject(603)
            return
        self._loop.call_soon_threadsafe(self._hangup_now)

    def _hangup_now(self) -> None:
        if self._handle is not None and self._handle.bridge is not None:
            self._handle.hangup()
        elif self._call is not None:
            self._call.hangup()

    def send_dtmf(self, digits: str) -> Future[Any]:
        """Send DTMF digits (RFC 2833) on the bridged call."""

        async def send() -> None:
            call = self._call
            if call is None:
                self._notice("warning", "no SIP call for DTMF")
                return
            await self._loop.run_in_executor(None, call.send_dtmf, digits)

        return self._submit(send())

    async def _bridge(self, call: Any) -> None:
        from sip.bridge import bridge_sip_call

        self._call = call
        self._handle = CallHandle()
        try:
            setup = self.setup_factory(call)
            if self._listen_on:
                self._start_listen(call)
            self.last_summary = await bridge_sip_call(
                call, setup, [self._on_bridge_event], self.clock, handle=self._handle)
        except BaseException:
            call.hangup(503)
            raise
        finally:
            self._stop_listen()
            self._call = None
            self._handle = None

    def caller_mix(self) -> CallerMix | None:
        """The bridged call's caller mix (the SIP window's probe pad plays probes into it
        as the caller; safe from any thread), or ``None`` when no call is bridged."""
        h = self._handle
        bridge = h.bridge if h is not None else None
        return bridge.caller_mix if bridge is not None and self._call is not None else None

    def levels(self) -> tuple[float, float]:
        """Caller and agent level of the bridged call (dBFS), for a level meter."""
        h = self._handle
        return h.bridge.levels if h is not None and h.bridge is not None else (-120.0, -120.0)

    # --- listen-in ---------------------------------------------------------------------------

    def set_listen(self, on: bool) -> None:
        """Hear both sides of calls on the speakers (now and for later calls)."""
        self._listen_on = on
        self._loop.call_soon_threadsafe(self._apply_listen)

    def _apply_listen(self) -> None:
        if self._listen_on and self._call is not None and self._listen is None:
            self._start_listen(self._call)
        elif not self._listen_on:
            self._stop_listen()

    def _start_listen(self, call: Any) -> None:
        from sip.listen import ListenIn

        listen = ListenIn(self.media_rate, self.listen_device)
        try:
            listen.start()
        except VoiceprobeError as exc:
            self._notice("error", str(exc))
            return
        listen.attach(call.port)
        self._listen = listen

    def _stop_listen(self) -> None:
        listen, self._listen = self._listen, None
        if listen is not None:
            listen.stop()

    # --- lifecycle ---------------------------------------------------------------------------

    def shutdown(self, timeout: float = 15.0) -> None:
        """Hang up, unregister, destroy the endpoint and stop the loop (once, at exit)."""
        if self._closed:
            return
        self._closed = True
        self.reject(603)
        self._loop.call_soon_threadsafe(self._hangup_now)
        # Let a bridged call (and any queued command) finish its own teardown first.
        with self._lock:
            pending = list(self._pending)
        for fut in pending:
            with contextlib.suppress(Exception):
                fut.result(timeout)
        self._loop.call_soon_threadsafe(self._stop_listen)
        ep, self._ep = self._ep, None
        self._account = None
        if ep is not None:
            ep.shutdown()
        stop_loop_thread(self._loop, self._thread)
