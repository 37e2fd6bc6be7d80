"""The desktop app's handle on the core: calls on a background asyncio thread.

The UI (``ui/``) talks to the core only through :class:`CallController`. It owns one
asyncio loop thread (docs/architecture.md#threads); its methods may be called from the Qt main
thread and hop onto that loop. Events reach subscribers on the loop thread; the UI's
single ``EventBus`` re-emits them as queued Qt signals.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from app import eventloop
from app.audio.callermix import CallerMix
from app.audio.port import CallerPort
from app.bridge.call import BridgeOptions
from app.bridge.providers import KEY_NAMES, KEYLESS_KINDS, ProviderPlan, plan_provider
from app.bridge.request import CallRequest
from app.bridge.session import CallHandle, CallSetup, run_call
from app.clock import MONOTONIC, Clock
from app.errors import VoiceprobeError
from app.events import CallEnded, CallFailed, EventBase, Notice, NoticeLevel
from app.failures import failure_code, fix_for
from app.loop_thread import stop_loop_thread
from app.profile import Profile
from app.providers.keyhost import UnconfirmedKeyHostError
from app.secrets import get_secret

Subscriber = Callable[[EventBase], None]


def provider_for(profile: Profile) -> str:
    """``openai``/``gemini`` when a key for the profile's provider is configured, else
    ``sim`` (the built-in simulator answers); a keyless stream (``twilio-ws``) is always
    the profile's own agent.
    """
    if profile.provider in KEYLESS_KINDS:
        return profile.provider
    name, env_vars = KEY_NAMES[profile.provider]
    return profile.provider if get_secret(name, env_vars) else "sim"


class CallController:
    """Places one call at a time for the desktop app.

    Args:
        data_root: data folder (default: the user data folder / ``$VOICEPROBE_HOME``).
        clock: the one clock.
        port_factory: builds the caller port of a request that brings none (default:
            :func:`device_port`, the sound devices it names).
    """

    def __init__(
        self,
        data_root: Path | None = None,
        clock: Clock = MONOTONIC,
        port_factory: Callable[[CallRequest], CallerPort] | None = None,
    ) -> None:
        self.data_root = data_root
        self.clock = clock
        self.port_factory = port_factory or device_port
        self._subs: list[Subscriber] = []
        self._loop = eventloop.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="voiceprobe-core", daemon=True
        )
        self._thread.start()
        self._handle = CallHandle()
        self._future: Future[dict[str, Any]] | None = None
        self.push_to_talk = False
        self.last_summary: dict[str, Any] | None = None

    # -- subscription ---------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> None:
        """Receive every event (called on the core thread; must not block)."""
        self._subs.append(callback)

    def _dispatch(self, ev: EventBase) -> None:
        for cb in list(self._subs):
            cb(ev)

    # -- calls ----------------------------------------------------------------------------

    @property
    def in_call(self) -> bool:
        """True while a call runs."""
        return self._future is not None and not self._future.done()

    def start_call(self, request: CallRequest) -> None:
        """Start the call ``request`` describes (its ``port``, else one from the port
        factory).

        Problems that stop the call from starting arrive as a ``CallFailed`` event (code,
        message, fix) and a ``CallEnded`` event, never as an exception on the UI thread.
        """
        if self.in_call:
            self._notice("warning", "a call is already running")
            return
        try:
            plan, profile = self._plan(request)
            port = request.port if request.port is not None else self.port_factory(request)
        except VoiceprobeError as exc:
            self._failed(exc)
            return
        if plan.key_destination is not None:
            self._notice("info", plan.key_destination.describe())
        self.push_to_talk = request.push_to_talk
        setup = CallSetup(
            profile=profile,
            plan=plan,
            data_root=self.data_root,
            record=request.record,
            tags=list(request.tags),
            options=BridgeOptions(),
            source=request.source,
        )
        self._handle = CallHandle()

        async def call() -> dict[str, Any]:
            task = asyncio.create_task(
                run_call(setup, port, [self._dispatch], self.clock, self._handle)
            )
            await asyncio.sleep(0)
            self._apply_gates(request)
            return await task

        self._future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        self._future.add_done_callback(self._finished)

    def _plan(self, request: CallRequest) -> tuple[ProviderPlan, Profile]:
        """The provider plan for ``request``. In the app no URL counts as named on a
        command line: a host other than the vendor's receives the key only when it is in
        ``request.confirmed_hosts`` (see :meth:`key_host_to_confirm`)."""
        profile = request.profile
        provider = request.provider or "auto"
        if provider == "auto":
            # A URL the user set is never dropped for the simulator: without a key the
            # call asks for one (MissingKeyError) instead.
            provider = profile.provider if request.url else provider_for(profile)
        sim = provider == "sim"
        return plan_provider(
            provider,
            profile,
            url=request.url if not sim else None,
            scenario=request.scenario if sim else None,
            truth_path=request.truth if sim else None,
            url_named=False,
            confirmed_hosts=request.confirmed_hosts,
        )

    def key_host_to_confirm(self, request: CallRequest) -> str | None:
        """The host the user must confirm before ``request`` may send it the API key (not
        the vendor's own host, not yet confirmed), else ``None``. Other problems are left
        for :meth:`start_call` to report."""
        try:
            self._plan(request)
        except UnconfirmedKeyHostError as exc:
            return exc.host
        except VoiceprobeError:
            return None
        return None

    def _finished(self, fut: Future[dict[str, Any]]) -> None:
        try:
            self.last_summary = fut.result()
        except Exception as exc:  # noqa: BLE001 - surfaced to the tester, never swallowed
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        """A call that could not start or run: ``CallFailed`` (why, and the fix), then
        ``CallEnded``."""
        message = str(exc) if isinstance(exc, VoiceprobeError) else f"{type(exc).__name__}: {exc}"
        code = failure_code(exc)
        now = self.clock.now_ns()
        self._dispatch(CallFailed(t_ns=now, code=code, message=message, fix=fix_for(code)))
        self._dispatch(CallEnded(t_ns=now, session_id="", reason="failed", ok=False))

    def _apply_gates(self, request: CallRequest) -> None:
        bridge = self._handle.bridge
        if bridge is None:
            return
        bridge.half_duplex = request.half_duplex
        bridge.muted = request.mute or self.push_to_talk

    def hangup(self) -> None:
        """End the running call (no-op when idle or after :meth:`shutdown`)."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._handle.hangup)

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until the running call ends; return its summary (tests, demo mode)."""
        if self._future is None:
            return None
        try:
            return self._future.result(timeout)
        except Exception:  # noqa: BLE001 - already reported through _finished
            return None

    def set_mute(self, muted: bool) -> None:
        """Mute or unmute the caller (the recording keeps the real microphone)."""
        bridge = self._handle.bridge
        if bridge is not None:
            bridge.muted = muted

    def set_push_to_talk_pressed(self, pressed: bool) -> None:
        """Push-to-talk: the caller is heard only while the key is held."""
        bridge = self._handle.bridge
        if bridge is not None and self.push_to_talk:
            bridge.muted = not pressed

    def set_half_duplex(self, on: bool) -> None:
        """Mute the caller while agent audio plays."""
        bridge = self._handle.bridge
        if bridge is not None:
            bridge.half_duplex = on

    def levels(self) -> tuple[float, float]:
        """Caller and agent level of the last frame (dBFS), pulled by the UI's timer."""
        bridge = self._handle.bridge
        return bridge.levels if bridge is not None and self.in_call else (-120.0, -120.0)

    def caller_mix(self) -> CallerMix | None:
        """The running call's caller mix (the probe pad plays probes into it as the
        caller; safe from any thread), or ``None`` outside a call."""
        bridge = self._handle.bridge
        return bridge.caller_mix if bridge is not None and self.in_call else None

    def shutdown(self) -> None:
        """Hang up, then stop the loop thread and its worker threads (see
        :func:`stop_loop_thread`). A second call does nothing."""
        if self._loop.is_closed():
            return
        if self.in_call:
            self.hangup()
            self.wait(10)
        stop_loop_thread(self._loop, self._thread)

    def _notice(self, level: NoticeLevel, message: str) -> None:
        self._dispatch(Notice(t_ns=self.clock.now_ns(), level=level, message=message))


def device_port(request: CallRequest) -> CallerPort:
    """The caller port of a mic call: the sound devices ``request.input_device`` /
    ``output_device`` (``None``: the system defaults) with the profile's
    ``audio_processing`` on the mic path, or none at all when ``request.aec`` is False
    (the bare microphone, to compare the echo)."""
    from app.audio.deviceport import DevicePort

    return DevicePort(
        input_device=request.input_device,
        output_device=request.output_device,
        processing=request.profile.audio_processing if request.aec else None,
    )
