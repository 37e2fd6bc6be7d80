"""A SIP call bridged to an agent session through the one core (:func:`run_call`).

:func:`bridge_sip_call` places the call's :class:`sip.port.SipCallPort` in
:func:`app.bridge.session.run_call`, so a SIP call records the same session folder and
returns the same summary as ``voiceprobe call``, plus:

* ``call_quality``: the last RTP figures of the call (codec, jitter, loss, RTT, MOS) and
  the DTMF digits received;
* ``sip``: direction, far end, Call-ID, whether it was answered, how it ended, and the
  media port's own counters;
* ``sip_bridge_delay``: the delay the bridge adds on the SIP path, each way, measured from
  stamps taken on pjmedia's clock thread (see :class:`_DelayProbe`);
* ``cpu``: CPU time of the process and of the bridge's loop thread over the call.

Threads: everything here runs on the caller's asyncio loop, except :meth:`_SipFeed.on_sip`
(the SIP thread), which only hops events onto the loop with ``call_soon_threadsafe``.
Nothing here calls pjsua2: the call is answered and hung up through the endpoint's
thread-safe handle methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.bridge.call import EventSink
from app.bridge.session import CallHandle, CallSetup, run_call
from app.clock import MONOTONIC, Clock
from app.events import (
    AgentAudio,
    CallEnded,
    CallStarted,
    EventBase,
    Notice,
    PlaybackStarted,
    SessionConfigured,
)
from app.metrics.percentile import delay_figures
from sip.call import SipCall
from sip.events import CallQuality, CallState, Dtmf, RegistrationState

#: How often pending hand-over times are looked up (the clock thread keeps ~20 s).
PROBE_INTERVAL_S = 0.1
#: How long the bridge waits for the SIP call to end after the session ended.
END_WAIT_S = 5.0


@dataclass(slots=True)
class _DelayProbe:
    """Bridge-added delay on the SIP path, agent side (loop thread only).

    * ``provider_to_sip_out``: per agent item, the websocket receive stamp of its first
      chunk → its first sample handed to pjmedia (``onFrameRequested``, clock thread).
      This is resampling, the playout buffer's wait for the next paced frame, and the
      send ring's backlog.
    * ``port_write_to_sip_out``: sampled every :data:`PROBE_INTERVAL_S`, a write's first
      sample: ``SipCallPort.write`` → handed to pjmedia (the send ring's backlog alone).
    * ``playback_estimate_error``: measured hand-over − the ``PlaybackStarted`` stamp the
      bridge estimated (positive: the estimate was early).

    The caller side (RTP frame out of the media port → audio sent on the websocket) is
    the bridge's own ``caller_capture_to_ws_send``, since SIP frames carry the clock
    thread's arrival stamps.
    """

    port: Any
    first_recv: dict[str, int] = field(default_factory=dict)
    pending_items: list[tuple[int, int, int]] = field(default_factory=list)
    pending_writes: list[tuple[int, int]] = field(default_factory=list)
    provider_to_out: list[int] = field(default_factory=list)
    write_to_out: list[int] = field(default_factory=list)
    estimate_error: list[int] = field(default_factory=list)
    _last_sampled: int = -1

    def on_event(self, ev: EventBase) -> None:
        """Session events, loop thread."""
        if isinstance(ev, AgentAudio):
            self.first_recv.setdefault(ev.item_id, ev.t_ns)
        elif isinstance(ev, PlaybackStarted):
            # Emitted right after the port.write() holding the item's first sample, with
            # t_ns = that write's play estimate + the sample's offset in the block.
            start, _, play_ns = self.port.last_write
            offset = round((ev.t_ns - play_ns) * self.port.rate / 1e9)
            recv = self.first_recv.get(ev.item_id)
            if recv is not None and 0 <= offset < self.port.frame_samples * 4:
                self.pending_items.append((start + offset, recv, ev.t_ns))

    def sample_write(self) -> None:
        """Remember the latest write for a hand-over lookup (loop thread)."""
        start, now_ns, _ = self.port.last_write
        if now_ns and start != self._last_sampled:
            self._last_sampled = start
            self.pending_writes.append((start, now_ns))

    def resolve(self) -> None:
        """Look up hand-over times that the clock thread has recorded since."""
        keep_items = []
        for pos, recv, estimate in self.pending_items:
            handed = self.port.handed_ns(pos)
            if handed is None:
                keep_items.append((pos, recv, estimate))
                continue
            self.provider_to_out.append(handed - recv)
            self.estimate_error.append(handed - estimate)
        self.pending_items = keep_items[-64:]
        keep_writes = []
        for pos, wrote in self.pending_writes:
            handed = self.port.handed_ns(pos)
            if handed is None:
                keep_writes.append((pos, wrote))
            else:
                self.write_to_out.append(handed - wrote)
        self.pending_writes = keep_writes[-256:]

    def summary(self, bridge_stats: dict[str, Any]) -> dict[str, Any]:
        return {
            "sip_in_to_provider": bridge_stats.get("caller_capture_to_ws_send", delay_figures([])),
            "provider_to_sip_out": delay_figures(self.provider_to_out),
            "port_write_to_sip_out": delay_figures(self.write_to_out),
            "playback_estimate_error": delay_figures(self.estimate_error),
        }


class _SipFeed:
    """Brings one call's SIP events into its session, and answers when the agent is ready.

    SIP events arrive on the SIP thread (:meth:`on_sip`) and are hopped onto the loop;
    before the session exists they wait, then they go through the bridge's ``emit`` (the
    session writer, the timeline, every subscriber) like any other event.
    """

    def __init__(self, call: SipCall, loop: asyncio.AbstractEventLoop, handle: CallHandle,
                 answer_when_ready: bool) -> None:
        self.call = call
        self.loop = loop
        self.handle = handle
        self.answer_when_ready = answer_when_ready
        self.pending: list[EventBase] = []
        self.seen: set[int] = set()
        self.live = False
        self.closed = False
        self.quality: CallQuality | None = None
        self.digits: list[str] = []
        self.registration: RegistrationState | None = None
        self.answered = False

    # SIP thread --------------------------------------------------------------------------

    def on_sip(self, ev: EventBase) -> None:
        """Endpoint listener (SIP thread): keep this call's events and account/endpoint
        notices; hop them onto the loop."""
        # By identity, not Call-ID: both legs of a call between two local accounts share
        # one Call-ID. The endpoint stores each event on the call's handle before emitting.
        call = self.call
        if isinstance(ev, CallState):
            if not any(s is ev for s in call.states[-4:]):
                return
        elif isinstance(ev, CallQuality):
            if call.quality is not ev:
                return
        elif isinstance(ev, Dtmf):
            if call.last_dtmf is not ev:
                return
        elif not isinstance(ev, RegistrationState | Notice):
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: drop it
            self.loop.call_soon_threadsafe(self.deliver, ev)

    # loop thread -------------------------------------------------------------------------

    def deliver(self, ev: EventBase) -> None:
        """One SIP event on the loop: update the figures, then record it."""
        if isinstance(ev, CallState):
            # Replayed from call.states and heard live: once (call.states keeps every
            # state alive, so ids are not reused).
            if id(ev) in self.seen:
                return
            self.seen.add(id(ev))
        if isinstance(ev, CallQuality):
            self.quality = ev
        elif isinstance(ev, Dtmf):
            self.digits.append(ev.digit)
        elif isinstance(ev, RegistrationState):
            self.registration = ev
        if self.closed:
            return
        if self.live and self.handle.bridge is not None:
            self.handle.bridge.emit(ev)
        else:
            self.pending.append(ev)

    def _flush(self) -> None:
        self.live = True
        pending, self.pending = self.pending, []
        for ev in pending:
            if self.handle.bridge is not None and not self.closed:
                self.handle.bridge.emit(ev)

    def sink(self, ev: EventBase) -> None:
        """Session subscriber (loop thread)."""
        if isinstance(ev, CallStarted):
            self.loop.call_soon(self._flush)
            if self.call.ended.is_set():
                self.loop.call_soon(self.hangup_bridge)
        elif isinstance(ev, SessionConfigured):  # confirmed (not merely created)
            if self.answer_when_ready and not self.answered and not self.call.ended.is_set():
                self.answered = True
                if self.call.direction == "in" and not self.call.confirmed.is_set():
                    self.call.answer(200)
        elif isinstance(ev, CallEnded):
            self.closed = True

    def hangup_bridge(self) -> None:
        """The SIP call ended: end the session now (loop thread)."""
        if self.handle.bridge is not None:
            self.handle.bridge.hangup("remote_hangup")


def _rusage() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    thread = getattr(resource, "RUSAGE_THREAD", None)
    th = resource.getrusage(thread) if thread is not None else None
    return me.ru_utime + me.ru_stime, (th.ru_utime + th.ru_stime) if th else float("nan")


async def bridge_sip_call(
    call: SipCall,
    setup: CallSetup,
    subscribers: list[EventSink] | None = None,
    clock: Clock = MONOTONIC,
    *,
    answer_when_ready: bool = True,
    handle: CallHandle | None = None,
    on_session: Callable[[str, Any], None] | None = None,
) -> dict[str, Any]:
    """Bridge ``call`` to a fresh agent session and return the session summary.

    Runs on the asyncio loop that owns the session. The session ends as soon as the SIP
    call ends (either side); when the session ends first (time limit, provider failure,
    ``handle.hangup()``) the call is hung up. An incoming call still ringing is answered
    (200) once the provider has accepted the session configuration, so the agent is
    ready when the caller's audio starts (``answer_when_ready``).

    Args:
        call: the SIP call (ringing, answered, or dialling out).
        setup: the agent side (profile, provider plan, store); ``setup.source`` is set to
            ``sip:<far end>`` when empty.
        subscribers: session event sinks (loop thread); SIP events reach them too.
        clock: the one clock (must be the endpoint's clock for SIP stamps to compare).
        answer_when_ready: answer a ringing incoming call when the agent is ready.
        handle: lets the caller end the session (``handle.hangup()`` on the loop thread).
        on_session: called with the session id and folder once they exist.

    Returns:
        The :func:`run_call` summary plus ``call_quality``, ``sip``, ``sip_bridge_delay``
        and ``cpu``. A call that was never answered has ``ok: false`` and an error
        ``sip_<status>``.

    Raises:
        VoiceprobeError: the session could not be set up (the call is then hung up).
    """
    loop = asyncio.get_running_loop()
    handle = handle or CallHandle()
    port = call.port
    feed = _SipFeed(call, loop, handle, answer_when_ready)
    probe = _DelayProbe(port)
    if not setup.source:
        setup.source = f"sip:{call.remote_uri or call.direction}"

    def sink(ev: EventBase) -> None:
        feed.sink(ev)
        probe.on_event(ev)

    endpoint = call.endpoint
    endpoint.add_listener(feed.on_sip)
    for state in list(call.states):  # what happened before we listened (e.g. "incoming")
        feed.deliver(state)
    cpu0, thread0 = _rusage()
    wall0 = time.monotonic()

    ended = asyncio.Event()

    def on_ended(_: object) -> None:  # SIP thread, or here if it already ended
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(ended.set)

    # A callback, not asyncio.wrap_future: cancelling a wrapped future would cancel the
    # call's own future, which the SIP thread then cannot resolve.
    call.ended_future.add_done_callback(on_ended)

    async def watch_end() -> None:
        await ended.wait()
        feed.hangup_bridge()

    async def watch_delay() -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            probe.sample_write()
            probe.resolve()

    session = asyncio.create_task(
        run_call(setup, port, [*(subscribers or []), sink], clock, handle, on_session),
        name="sip-session",
    )
    helpers = [
        asyncio.create_task(watch_end(), name="sip-end"),
        asyncio.create_task(watch_delay(), name="sip-delay"),
    ]
    failed = True
    try:
        summary = await session
        failed = False
    finally:
        for task in helpers:
            task.cancel()
        for task in helpers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if failed:
            call.hangup(503)  # no session: "service unavailable" rather than a decline
        else:
            port.stop()  # already done by the bridge; idempotent
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), END_WAIT_S)
        endpoint.remove_listener(feed.on_sip)
    wall = time.monotonic() - wall0
    cpu1, thread1 = _rusage()
    probe.resolve()

    quality = feed.quality or call.quality
    summary["call_quality"] = {
        "codec": quality.codec if quality else None,
        "jitter_ms": quality.jitter_ms if quality else None,
        "loss_pct": quality.loss_pct if quality else None,
        "rtt_ms": quality.rtt_ms if quality else None,
        "mos": quality.mos if quality else None,
        "dtmf": "".join(feed.digits),
    }
    answered = call.confirmed.is_set()
    summary["sip"] = {
        "call_id": call.call_id,
        "direction": call.direction,
        "remote_uri": call.remote_uri,
        "answered": answered,
        "end_code": call.code,
        "end_reason": call.reason,
        "frame_interval": port.stats.jitter_summary(),
        "callback_cost": port.stats.cost_summary(),
        "callback_errors": port.stats.errors,
        "rx_overruns": port.rx.overruns,
        "tx_overruns": port.tx.overruns,
        "dropped_silence_ms": round(port.dropped_silence * 1000 / port.rate, 1),
    }
    summary["sip_bridge_delay"] = probe.summary(summary.get("bridge") or {})
    summary["cpu"] = {
        "wall_s": round(wall, 3),
        "process_s": round(cpu1 - cpu0, 3),
        "process_pct": round(100.0 * (cpu1 - cpu0) / wall, 1) if wall > 0 else None,
        "loop_thread_s": round(thread1 - thread0, 3),
        "loop_thread_pct": round(100.0 * (thread1 - thread0) / wall, 1) if wall > 0 else None,
    }
    if not answered:
        final = next((s for s in reversed(call.states) if s.state == "disconnected"), None)
        code = final.code if final else call.code
        reason = final.reason if final else call.reason
        summary["ok"] = False
        summary["reason"] = "not_answered"
        summary["errors"].append(
            {"code": f"sip_{code}", "message": f"call not answered: {code} {reason}".strip()}
        )
    return summary
