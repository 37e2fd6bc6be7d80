"""The bridge core: one call between a caller-side port and a provider session.

Everything here runs on ONE asyncio loop thread (docs/architecture.md#threads). Device callbacks
behind the port only copy into ring buffers; this module drains them, runs the local VAD,
resamples, sends caller audio to the provider, queues agent audio for playout, cuts it on
barge-in, runs tools, and stamps every event on the one clock.

Audio paths (caller side at the port's rate, 16 kHz for files and mics, 8/16 kHz for SIP):

* caller → port.read() → local VAD (16 kHz) → resample to provider.input_rate → send
* provider AgentAudio → resample to port rate → PlayoutBuffer → port.write_for_frame()
  (one frame per caller frame, named by its stamp, so a paced port plays in lockstep with
  its capture however the loop's wake-ups group the frames; docs/timing.md)
* both directions → the stereo recording, at their clock positions

The audio loop, the event dispatch, barge-in, tool runs and the response watchdog share
the per-call state (open responses, playout, the local VAD, the online gate) in order on
one thread, so they stay together. Beside them: the options and the result
(:mod:`app.bridge.options`, re-exported here), each caller frame's path
(:mod:`app.bridge.caller`), session continuity (:mod:`app.bridge.supervision`), the
restore rule (:mod:`app.bridge.recovery`), playout (:mod:`app.bridge.playback`), the
counters (:mod:`app.bridge.stats`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from app.audio.callermix import CallerMix
from app.audio.pcm import SILENCE_DBFS
from app.audio.port import CallerPort, start_port
from app.audio.vad import VadTracker
from app.bridge.caller import VAD_RATE, CallerPath
from app.bridge.options import BargeInMode, BridgeOptions, CallResult, EventSink
from app.bridge.playback import Playback
from app.bridge.stats import BridgeStats
from app.bridge.supervision import Reconnect, Supervisor
from app.clock import Clock
from app.errors import ProviderError, VoiceprobeError
from app.events import (
    AgentAudio,
    AgentInterrupted,
    BargeIn,
    CallFailed,
    ClientMessageSent,
    Event,
    EventBase,
    Notice,
    ProviderErrorEvent,
    ResponseFinished,
    ResponseStarted,
    ServerSpeechStarted,
    SessionConfigured,
    SessionCreated,
    ToolCallFinished,
    ToolCallRequested,
)
from app.failures import failure_code, fix_for
from app.metrics.timeline import Timeline
from app.providers.base import Outgoing, Provider
from app.tools.runner import ToolRunner

__all__ = ["VAD_RATE", "BargeInMode", "Bridge", "BridgeOptions", "CallResult", "EventSink"]

#: How long to wait for :class:`SessionConfigured` after :class:`SessionCreated`.
UPDATE_GRACE_S = 2.0


def _from_server(ev: Event) -> bool:
    """True for an event made from a server message (not our own sends, connection
    states or network measurements, which say nothing about a response's progress)."""
    if isinstance(ev, ProviderErrorEvent):
        return True
    return ev.raw is not None and not isinstance(ev, ClientMessageSent)


class Bridge:
    """One call. Construct, then ``await run()``; ``hangup()`` may be called from the same
    loop (use ``loop.call_soon_threadsafe`` from other threads).

    Args:
        provider: an unconnected provider session.
        port: the caller-side port (file, mic, SIP call).
        tools: runs the agent's tool calls.
        clock: the one clock.
        emit: called on the loop thread for every event (store, UI, CLI); must not block.
        recorder: the session's stereo recorder, or ``None`` when recording is off.
        options: call knobs.
        reconnect: builds a fresh (unconnected) provider session, given the last
            resumption handle a :class:`~app.events.ResumptionUpdate` offered, or
            ``None``; without it a drop ends the call (see :mod:`app.bridge.supervision`).
    """

    def __init__(
        self,
        provider: Provider,
        port: CallerPort,
        tools: ToolRunner,
        clock: Clock,
        emit: EventSink,
        recorder: Any | None = None,
        options: BridgeOptions | None = None,
        reconnect: Reconnect | None = None,
    ) -> None:
        self.provider = provider
        self.port = port
        self.tools = tools
        self.clock = clock
        self._emit_out = emit
        self.recorder = recorder
        self.options = options or BridgeOptions()
        self.timeline = Timeline()
        self.stats = BridgeStats()
        self.playback = Playback(port, self.emit, recorder)
        self.vad = VadTracker(
            rate=VAD_RATE,
            aggressiveness=self.options.vad_aggressiveness,
            hangover_ms=self.options.vad_hangover_ms,
        )
        self._open_responses: set[str] = set()
        self._response_done: dict[str, asyncio.Event] = {}
        # Tool runs (the agent is busy while any runs) and the bridge's own background
        # sends (restore, close, truncate), which say nothing about the agent.
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._configured = asyncio.Event()
        self._session_seen = asyncio.Event()
        self._reason = "completed"
        self._ok = True
        self._errors: list[dict[str, Any]] = []
        self._idle_since: int | None = None
        #: Session continuity: reconnects, rollovers, restoring the conversation.
        self.supervisor = Supervisor(self, reconnect)
        self._online = self.supervisor.online
        # Response watchdog: when the open responses last showed progress (a server event,
        # or one of our tools finishing), and how many tools are running now.
        self._progress_ns = 0
        self._tools_running = 0
        #: Caller audio gate, set from any thread (a plain bool: one writer, one reader).
        self.muted = False
        #: Mute the caller while agent audio plays (laptops without a headset).
        self.half_duplex = False
        #: Last frame's level (dBFS) of the caller and of the agent, pulled by the UI.
        self.levels: tuple[float, float] = (SILENCE_DBFS, SILENCE_DBFS)
        #: Clips played into the call as the caller (the probe pad), mixed into every
        #: caller frame before anything hears it; ``play`` from any thread.
        self.caller_mix = CallerMix(port.rate)
        self._caller = CallerPath(self)

    # -- events ---------------------------------------------------------------------------

    def emit(self, ev: EventBase) -> None:
        """Record an event (the core's, or the SIP adapter's): timeline, then the outside
        sinks (store, UI, CLI)."""
        completed = self.timeline.feed(ev)
        self._emit_out(ev)
        for done in completed:
            self._emit_out(done)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once the call is ending (hung up, failed or over its time limit)."""
        return self._stop.is_set()

    def hangup(self, reason: str = "hangup") -> None:
        """End the call (loop thread only)."""
        self._reason = reason
        self._stop.set()

    def abort(self, code: str, message: str) -> None:
        """End the call as failed because of a problem outside the bridge, e.g. the store
        could not write (loop thread only). The error goes into the result's errors."""
        self._fail(code, message)

    async def run(self) -> CallResult:
        """Run the call to its end and return the turns and errors."""
        pump: asyncio.Task[None] | None = None
        audio: asyncio.Task[None] | None = None
        watchdog: asyncio.Task[None] | None = None
        try:
            # One deadline for the whole call: connecting and waiting for the session
            # configuration count against max_seconds too.
            async with asyncio.timeout(self.options.max_seconds):
                await self.provider.connect()
                self._caller.connected(self.provider.input_rate)
                pump = asyncio.create_task(self._pump_events(), name="provider-events")
                pump.add_done_callback(self._task_died)
                await self._await_configuration()
                if not self._stop.is_set():
                    audio = asyncio.create_task(self._audio_loop(), name="audio")
                    audio.add_done_callback(self._task_died)
                    # Its own task: a server that stops answering may also stop reading,
                    # and then the audio loop waits on a full socket.
                    watchdog = asyncio.create_task(self._watch_responses(), name="watchdog")
                    watchdog.add_done_callback(self._task_died)
                    await self._stop.wait()
        except TimeoutError:
            if self._configured.is_set():
                self.hangup("max_duration")  # stops the pump from opening a new session
            else:
                self._fail(
                    "config_timeout",
                    "the provider session was not ready within the call's time limit "
                    f"({self.options.max_seconds:g} s)",
                )
        except ProviderError as exc:
            self._fail(exc.code, str(exc))
        finally:
            # Ending, a cancel too: the socket closed below is no drop to reconnect from.
            self._stop.set()
            tasks = (audio, watchdog, *self._tool_tasks, *self._background)
            for task in tasks:
                if task is not None:
                    task.cancel()
            for task in tasks:
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            self.playback.sink_gone(self.clock.now_ns())  # a reply still playing is cut
            await self.provider.close()
            if pump is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(pump, 2.0)
                pump.cancel()
            self.port.stop()
            for done in self.timeline.close(self.clock.now_ns()):
                self._emit_out(done)
        return CallResult(
            ok=self._ok,
            reason=self._reason,
            turns=self.timeline.to_list(),
            errors=self._errors,
            stats=self.stats,
        )

    async def _await_configuration(self) -> None:
        """Wait until the provider took the session configuration
        (:class:`SessionConfigured`). A server that only ever says the session was created
        (:class:`SessionCreated`) is given ``UPDATE_GRACE_S`` and then used as it is, with
        a warning.

        Raises:
            ProviderError: no session message at all within ``config_timeout_s``.
        """
        if not await self._until(self._session_seen, self.options.config_timeout_s):
            if self._stop.is_set():
                return
            raise ProviderError(
                "the provider did not accept the session configuration in "
                f"{self.options.config_timeout_s:.0f} s",
                code="config_timeout",
            ) from None
        if self._stop.is_set():
            return
        if not await self._until(self._configured, UPDATE_GRACE_S):
            if self._stop.is_set():
                return
            self.emit(
                Notice(
                    t_ns=self.clock.now_ns(),
                    level="warning",
                    message="the provider never confirmed session.update; going on with "
                    "the session as created",
                )
            )
            self._configured.set()
            self.supervisor.go_online(self.clock.now_ns())

    async def _until(self, event: asyncio.Event, limit_s: float) -> bool:
        """Wait for ``event`` or the end of the call; True if ``event`` came first."""
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return event.is_set()

    def _task_died(self, task: asyncio.Task[Any]) -> None:
        """A core task ended with an exception: never swallowed, the call fails with it."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if isinstance(exc, VoiceprobeError):  # e.g. AudioDeviceError: no audio server
            self._fail(failure_code(exc), str(exc))
            return
        self._fail("internal_error", f"{task.get_name()} failed: {type(exc).__name__}: {exc}")

    def _fail(self, code: str, message: str, record: bool = True) -> None:
        """End the call as failed. The first failure is announced as a :class:`CallFailed`
        event with its fix (later ones are its consequences and are only recorded)."""
        first = self._ok
        self._ok = False
        self._reason = "failed"
        now = self.clock.now_ns()
        fix = fix_for(code)
        if record:
            self._errors.append({"t_ns": now, "code": code, "message": message, "fix": fix})
        if first:
            self.emit(CallFailed(t_ns=now, code=code, message=message, fix=fix))
        self._stop.set()

    # -- provider → bridge ----------------------------------------------------------------

    async def _pump_events(self) -> None:
        while True:
            async for ev in self.provider.events():
                if _from_server(ev):
                    self._progress_ns = self.clock.now_ns()
                self._on_provider_event(ev)
            if not await self.supervisor.session_ended():
                return

    def close_open_responses(self, reason: str) -> None:
        """Close every open response as ``incomplete`` with ``reason`` (the session is
        gone, or the response stalled), so its audio can finish playing and the turn can
        settle."""
        now = self.clock.now_ns()
        for rid in sorted(self._open_responses):
            self._on_provider_event(
                ResponseFinished(t_ns=now, response_id=rid, status="incomplete", reason=reason)
            )

    def _on_provider_event(self, ev: Event) -> None:
        if isinstance(ev, AgentAudio):
            self._on_agent_audio(ev)
            self.emit(ev)
            return
        self.emit(ev)
        if isinstance(ev, SessionCreated):
            self._session_seen.set()
        elif isinstance(ev, SessionConfigured):
            self._session_seen.set()
            self._configured.set()
        elif isinstance(ev, ResponseStarted):
            self._open_responses.add(ev.response_id)
            self._response_done.setdefault(ev.response_id, asyncio.Event())
        elif isinstance(ev, ResponseFinished):
            self._open_responses.discard(ev.response_id)
            self._response_done.setdefault(ev.response_id, asyncio.Event()).set()
            self.playback.response_finished(ev.response_id)
        elif isinstance(ev, ToolCallRequested):
            task = asyncio.create_task(self._run_tool(ev), name=f"tool-{ev.name}")
            self._tool_tasks.add(task)
            task.add_done_callback(self._tool_tasks.discard)
        elif isinstance(ev, ServerSpeechStarted):
            self.barge_in(ev.t_ns, "server_speech_started")
        elif isinstance(ev, AgentInterrupted):
            self.barge_in(ev.t_ns, "server_interrupted", send_truncate=False)
            self._open_responses.discard(ev.response_id)
        elif isinstance(ev, ProviderErrorEvent):
            self._errors.append({"t_ns": ev.t_ns, "code": ev.code, "message": ev.message})
            if not self.supervisor.renew(ev.code) and ev.fatal:
                self._fail(ev.code, ev.message, record=False)
        self.supervisor.on_event(ev)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``coro`` as a background task of the call (a restore, a session close, a
        truncate): cancelled when the call ends, never counted as the agent being busy."""
        task: asyncio.Task[Any] = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_agent_audio(self, ev: AgentAudio) -> None:
        if self.playback.push(ev):
            self.stats.recv_delay_ns.append(self.clock.now_ns() - ev.t_ns)

    # -- tools ----------------------------------------------------------------------------

    async def _run_tool(self, ev: ToolCallRequested) -> None:
        self._tools_running += 1
        try:
            result = await self.tools.run(ev.call_id, ev.name, ev.arguments)
        finally:
            self._tools_running -= 1
            self._progress_ns = self.clock.now_ns()  # the server's turn again
        done = self._response_done.get(ev.response_id) if ev.response_id else None
        if (
            done is not None
            and ev.response_id in self._open_responses
            and self.provider.protocol.tool_result_waits
        ):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.options.tool_wait_s)
        try:
            if not self._online.is_set():
                await asyncio.wait_for(self._online.wait(), self.options.max_seconds)
            await self.provider.send_tool_result(ev.call_id, ev.name, result.output)
        except (ProviderError, TimeoutError) as exc:
            self.emit(Notice(t_ns=self.clock.now_ns(), level="error", message=str(exc)))
            return
        self.emit(
            ToolCallFinished(
                t_ns=self.clock.now_ns(),
                call_id=ev.call_id,
                name=ev.name,
                arguments=ev.arguments,
                status=result.status,
                output=result.output,
                ms=round((self.clock.now_ns() - ev.t_ns) / 1e6, 3),
            )
        )

    # -- caller audio and playout ---------------------------------------------------------

    async def _audio_loop(self) -> None:
        self.port.emit = self.emit  # the port's own notices join the call's events
        await start_port(self.port, self.clock.now_ns)
        while not self._stop.is_set():
            due = self.port.next_due_ns()
            now = self.clock.now_ns()
            delay = (due - now) / 1e9 if due is not None else 0.005
            if delay > 0:
                await self.port.wait_readable(delay)
                woke = self.clock.now_ns()
                self.stats.loop_lag_ns.append(max(0, woke - now - int(delay * 1e9)))
            frames = self.port.read(self.clock.now_ns())
            for frame in frames:
                await self._caller.on_frame(frame)
            if self.supervisor.rollover_due(self.clock.now_ns()) and self._agent_idle():
                self.supervisor.end_session("rollover")
            if self.port.exhausted and self._agent_idle():
                now = self.clock.now_ns()
                if self._idle_since is None:
                    self._idle_since = now
                elif now - self._idle_since >= self.options.tail_ms * 1_000_000:
                    self.hangup("completed")
            else:
                self._idle_since = None

    async def _watch_responses(self) -> None:
        """The response watchdog (see ``BridgeOptions.response_stall_s``): looks a few
        times per limit, so it fires at most a quarter of the limit (or 0.25 s) late."""
        limit = self.options.response_stall_s
        if limit is None:
            return
        while not self._stop.is_set():
            await asyncio.sleep(min(0.25, limit / 4))
            if (
                self._open_responses
                and not self._tools_running
                and self._online.is_set()
                and self.clock.now_ns() - self._progress_ns >= limit * 1e9
            ):
                message = f"response stalled: no server event for {limit:g} s"
                self.emit(Notice(t_ns=self.clock.now_ns(), level="error", message=message))
                self.close_open_responses("stalled")  # as ``incomplete``, then fail the call
                self._fail("response_stalled", message)
                return

    def _agent_idle(self) -> bool:
        return (
            not self._open_responses
            and not self._tool_tasks
            and self.playback.queued_samples == 0
            and self.playback.playing_item() is None  # a reply paced in real time (Twilio)
            and not self.vad.speaking
        )

    async def send_quietly(self, messages: list[Outgoing]) -> None:
        """Send control messages; a dead socket is reported by the event pump."""
        if not messages:
            return
        try:
            await self.provider.send(messages)
        except ProviderError:
            self.stats.unsent_frames += 1

    def barge_in(self, t_ns: int, trigger: str, send_truncate: bool = True) -> None:
        """Cut agent playout at once; tell the server what was heard (OpenAI truncate)."""
        cut = self.playback.cut(t_ns)
        if cut is None:
            return
        item, played = cut
        played_ms = int(played * 1000 / self.port.rate)
        received_ms = self.provider.protocol.received_audio_ms(item.item_id)
        truncate_ms: int | None = None
        if send_truncate and item.started:
            truncate_ms = max(0, min(played_ms, received_ms))
            messages = self.provider.protocol.truncate(item.item_id, truncate_ms)
            if messages:
                self.spawn(self.send_quietly(messages), "truncate")
            else:
                truncate_ms = None
        self.emit(
            BargeIn(
                t_ns=t_ns,
                item_id=item.item_id,
                played_ms=played_ms,
                received_ms=received_ms,
                truncate_ms=truncate_ms,
            )
        )
        self.emit(Notice(t_ns=t_ns, level="info", message=f"barge-in ({trigger})"))
