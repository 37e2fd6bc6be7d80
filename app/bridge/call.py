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

Both are written to the stereo recording at their clock positions.

Why one module of this size: it is the one concept of a call's loop-thread core. The
audio loop, the event dispatch, barge-in, tool runs and the response watchdog share the
same per-call state (open responses, playout, the local VAD, the online gate) and must
see each other's changes in order on one thread; split apart, each piece would reach into
the others' state. What stands on its own lives beside it: session continuity
(:mod:`app.bridge.supervision`), the restore rule (:mod:`app.bridge.recovery`), playout
(:mod:`app.bridge.playback`) and the counters (:mod:`app.bridge.stats`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import FRAME_MS, SILENCE_DBFS, int16_to_bytes, rms_dbfs
from app.audio.port import CallerFrame, CallerPort
from app.audio.resample import StreamResampler
from app.audio.vad import VadTracker
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
    LocalSpeechStarted,
    LocalSpeechStopped,
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

VAD_RATE = 16000
#: How long to wait for :class:`SessionConfigured` after :class:`SessionCreated`.
UPDATE_GRACE_S = 2.0


def _from_server(ev: Event) -> bool:
    """True for an event made from a server message (not our own sends, connection
    states or network measurements, which say nothing about a response's progress)."""
    if isinstance(ev, ProviderErrorEvent):
        return True
    return ev.raw is not None and not isinstance(ev, ClientMessageSent)


EventSink = Callable[[EventBase], None]


#: :attr:`BridgeOptions.barge_in`.
BargeInMode = Literal["local", "server"]


@dataclass(frozen=True, slots=True)
class BridgeOptions:
    """Knobs of one call.

    Attributes:
        barge_in: ``local`` (cut on local VAD start or server speech_started, whichever is
            first) or ``server`` (only on the server's speech_started / interrupted).
        tail_ms: after a finite source ends, how long the agent must stay idle before the
            call ends.
        max_seconds: hard limit on the call's length, connecting and session set-up
            included (a session not ready by then fails the call with ``config_timeout``).
        vad_hangover_ms: silence that ends caller speech for the local VAD.
        vad_aggressiveness: webrtcvad mode 0–3.
        config_timeout_s: how long to wait for the provider to accept the session.
        tool_wait_s: how long a tool result waits for the response that asked for it.
        manual_turns: server turn detection is off; the local VAD starts and ends turns.
        reconnect_attempts: how often to try a new session after a drop (0: never).
        reconnect_base_ms, reconnect_cap_ms: backoff (with jitter) between attempts.
        session_max_s: roll over to a fresh session at the first turn boundary after this
            long (``None``: never; :func:`app.bridge.session.run_call` fills in the
            protocol's ``rollover_s``, e.g. under OpenAI's 60-minute session limit).
        resend_max_s: caller audio kept for re-sending an unanswered utterance.
        response_stall_s: watchdog of a response in progress: when no server event comes
            for this long (while no tool of ours is running), the response is closed as
            ``incomplete`` (reason ``stalled``) and the call fails with
            ``response_stalled``; a server that stops mid-answer would otherwise hold the
            call until ``max_seconds``. ``None``: no watchdog.
    """

    barge_in: BargeInMode = "local"
    tail_ms: int = 1500
    max_seconds: float = 900.0
    vad_hangover_ms: int = 300
    vad_aggressiveness: int = 2
    config_timeout_s: float = 10.0
    tool_wait_s: float = 10.0
    manual_turns: bool = False
    reconnect_attempts: int = 6
    reconnect_base_ms: float = 250.0
    reconnect_cap_ms: float = 4000.0
    session_max_s: float | None = None
    resend_max_s: float = 30.0
    response_stall_s: float | None = 20.0


@dataclass(slots=True)
class CallResult:
    """What a finished call produced."""

    ok: bool
    reason: str
    turns: list[dict[str, Any]]
    errors: list[dict[str, Any]] = field(default_factory=list)
    stats: BridgeStats | None = None


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
        self._to_vad = StreamResampler(port.rate, VAD_RATE) if port.rate != VAD_RATE else None
        self._to_provider: StreamResampler | None = None
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
        # Session continuity: reconnects, rollovers, restoring the conversation.
        self._supervisor = Supervisor(self, reconnect)
        self._online = self._supervisor.online
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
                self._to_provider = (
                    StreamResampler(self.port.rate, self.provider.input_rate)
                    if self.port.rate != self.provider.input_rate
                    else None
                )
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
            tasks = (audio, watchdog, *self._tool_tasks, *self._background)
            for task in tasks:
                if task is not None:
                    task.cancel()
            for task in tasks:
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            self.playback.stop_all(self.clock.now_ns(), interrupted=False)
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
            self._supervisor.go_online(self.clock.now_ns())

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
            if not await self._supervisor.session_ended():
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
            self._barge_in(ev.t_ns, "server_speech_started")
        elif isinstance(ev, AgentInterrupted):
            self._barge_in(ev.t_ns, "server_interrupted", send_truncate=False)
            self._open_responses.discard(ev.response_id)
        elif isinstance(ev, ProviderErrorEvent):
            self._errors.append({"t_ns": ev.t_ns, "code": ev.code, "message": ev.message})
            if not self._supervisor.renew(ev.code) and ev.fatal:
                self._fail(ev.code, ev.message, record=False)
        self._supervisor.on_event(ev)

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
        self.port.start(self.clock.now_ns())
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
                await self._on_caller_frame(frame)
            if self._supervisor.rollover_due(self.clock.now_ns()) and self._agent_idle():
                self._supervisor.end_session("rollover")
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
                self._response_stalled(limit)
                return

    def _response_stalled(self, limit: float) -> None:
        """Close the open responses as ``incomplete`` and fail the call."""
        now = self.clock.now_ns()
        message = f"response stalled: no server event for {limit:g} s"
        self.emit(Notice(t_ns=now, level="error", message=message))
        self.close_open_responses("stalled")
        self._fail("response_stalled", message)

    def _agent_idle(self) -> bool:
        return (
            not self._open_responses
            and not self._tool_tasks
            and self.playback.queued_samples == 0
            and not self.vad.speaking
        )

    async def _on_caller_frame(self, frame: CallerFrame) -> None:
        pcm = frame.pcm
        half = self.half_duplex or self.port.half_duplex_fallback
        if self.muted or (half and self.playback.audible):
            # Muted, push-to-talk released, or half-duplex while the agent speaks: the
            # provider and the local VAD hear silence; the recording keeps the real mic.
            heard = np.zeros_like(pcm)
        else:
            heard = pcm
        frame_vad_pos = self.vad.position
        if self.options.manual_turns:
            # The turn's start/end messages must reach the server before this frame.
            await self._local_vad(frame, heard)
        send = heard
        if self._to_provider is not None:
            send = self._to_provider.process(send)
        data = int16_to_bytes(send)
        self._supervisor.history.append(frame_vad_pos, data)
        if len(send) and self._online.is_set():
            try:
                await self.provider.send_audio(data)
            except ProviderError:
                # The socket is gone; the event pump reports it and ends (or recovers) the
                # call. The caller audio stays in the recording.
                self.stats.unsent_frames += 1
        self.stats.send_delay_ns.append(self.clock.now_ns() - frame.t_ns)
        self.stats.frames += 1
        if not self.options.manual_turns:
            # After the send: the frame's audio waits for nothing it does not need.
            await self._local_vad(frame, heard)
        self.levels = (rms_dbfs(pcm), self.levels[1])
        if self.recorder is not None:
            self.recorder.left(pcm, frame.t_ns - FRAME_MS * 1_000_000)
        self.playback.play_frame(self.clock.now_ns(), frame.t_ns)
        if self.provider.protocol.reports_playout:
            await self._report_playout()
        self.levels = (self.levels[0], self.playback.level)
        if self.recorder is not None and self.recorder.error is not None:
            if not self._stop.is_set():  # the disk refused a write: recording has stopped
                self._fail("store", self.recorder.error)

    async def _local_vad(self, frame: CallerFrame, heard: NDArray[np.int16]) -> None:
        """Local VAD on 16 kHz; edges mapped to the clock via the frame's capture stamp."""
        x16 = self._to_vad.process(heard) if self._to_vad is not None else heard
        for edge in self.vad.feed(x16):
            t = frame.t_ns - int((self.vad.position - edge.sample) * 1e9 / VAD_RATE)
            if edge.speaking:
                cur = self.timeline.current
                if cur is None or cur.agent_phase or self._supervisor.utterance_start is None:
                    self._supervisor.utterance_start = edge.sample
                self.emit(LocalSpeechStarted(t_ns=t, sample=edge.sample))
                if self.options.barge_in == "local" and self.provider.protocol.caller_cuts_playout:
                    self._barge_in(self.clock.now_ns(), "local_vad")
                if self.options.manual_turns:
                    await self._send_quietly(self.provider.protocol.manual_turn_start())
            else:
                self.emit(LocalSpeechStopped(t_ns=t, sample=edge.sample))
                if self.options.manual_turns:
                    await self._send_quietly(self.provider.protocol.manual_turn_end())

    async def _report_playout(self) -> None:
        """Tell the protocol how much of the item being heard has played (Twilio answers
        the agent's marks from it)."""
        item = self.playback.playing_item()
        item_id = item.item_id if item is not None else ""
        played = self.playback.buffer.played_ms(item_id) if item_id else 0
        await self._send_quietly(self.provider.protocol.played(item_id, played))

    async def _send_quietly(self, messages: list[Outgoing]) -> None:
        """Send control messages; a dead socket is reported by the event pump."""
        if not messages:
            return
        try:
            await self.provider.send(messages)
        except ProviderError:
            self.stats.unsent_frames += 1

    def _barge_in(self, t_ns: int, trigger: str, send_truncate: bool = True) -> None:
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
                self.spawn(self._send_quietly(messages), "truncate")
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
