"""The bridge core: one call between a caller-side port and a provider session.

Everything here runs on ONE asyncio loop thread (DESIGN.md, "Threads"). Device callbacks
behind the port only copy into ring buffers; this module drains them, runs the local VAD,
resamples, sends caller audio to the provider, queues agent audio for playout, cuts it on
barge-in, runs tools, and stamps every event on the one clock.

Audio paths (caller side at the port's rate, 16 kHz for files and mics, 8/16 kHz for SIP):

* caller → port.read() → local VAD (16 kHz) → resample to provider.input_rate → send
* provider AgentAudio → resample to port rate → PlayoutBuffer → port.write_for_frame()
  (one frame per caller frame, named by its stamp, so a paced port plays in lockstep with
  its capture however the loop's wake-ups group the frames; docs/timing.md)

Both are written to the stereo recording at their clock positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.pcm import FRAME_MS, SILENCE_DBFS, int16_to_bytes, rms_dbfs
from app.audio.port import CallerFrame, CallerPort
from app.audio.resample import StreamResampler
from app.audio.vad import VadTracker
from app.bridge.playback import Playback
from app.bridge.recovery import (
    RESEND_PADDING_SAMPLES,
    AudioHistory,
    Backoff,
    build_history,
    needs_response,
    turn_unanswered,
)
from app.bridge.stats import BridgeStats
from app.clock import Clock
from app.errors import ProviderError, VoiceprobeError
from app.events import (
    AgentAudio,
    AgentInterrupted,
    BargeIn,
    CallFailed,
    ClientMessageSent,
    ConnectionState,
    Event,
    GoAway,
    LocalSpeechStarted,
    LocalSpeechStopped,
    Notice,
    ProviderErrorEvent,
    Reconnected,
    ResponseFinished,
    ResponseStarted,
    ServerSpeechStarted,
    SessionConfigured,
    ToolCallFinished,
    ToolCallRequested,
)
from app.failures import failure_code, fix_for
from app.metrics.timeline import Timeline
from app.providers.base import Outgoing, Provider
from app.tools.runner import ToolRunner

VAD_RATE = 16000
#: Provider errors after which the call goes on in a new session instead of failing.
RENEWABLE_ERRORS = frozenset({"session_expired"})
#: How long to wait for ``session.updated`` after ``session.created``.
UPDATE_GRACE_S = 2.0
#: Close codes after which a new session would fare no better, with the error code the
#: call fails with: a refusal (policy / authentication), or a server message over the size
#: limit (1009, set by the client when it refuses the message; it would come again).
FATAL_CLOSE_CODES = {
    1008: "connection_refused",
    4001: "connection_refused",
    4003: "connection_refused",
    1009: "message_too_big",
}


def _fatal_close(detail: str) -> str | None:
    """The error code when a close detail such as ``failed: server closed (4001: …)`` names
    a close code in :data:`FATAL_CLOSE_CODES`, else ``None`` (a drop to recover from)."""
    match = re.search(r"\((\d{4})\b", detail)
    return FATAL_CLOSE_CODES.get(int(match.group(1))) if match is not None else None


def _from_server(ev: Event) -> bool:
    """True for an event made from a server message (not our own sends, connection
    states or network measurements, which say nothing about a response's progress)."""
    if isinstance(ev, ProviderErrorEvent):
        return True
    return ev.raw is not None and not isinstance(ev, ClientMessageSent)


EventSink = Callable[[Event], None]


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
            long (OpenAI sessions end at 60 min with ``session_expired``).
        resend_max_s: caller audio kept for re-sending an unanswered utterance.
        response_stall_s: watchdog of a response in progress: when no server event comes
            for this long (while no tool of ours is running), the response is closed as
            ``incomplete`` (reason ``stalled``) and the call fails with
            ``response_stalled``; a server that stops mid-answer would otherwise hold the
            call until ``max_seconds``. ``None``: no watchdog.
    """

    barge_in: str = "local"
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
            resumption handle (Gemini) or ``None``; without it a drop ends the call.
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
        reconnect: Callable[[str | None], Provider] | None = None,
    ) -> None:
        self.provider = provider
        self._reconnect = reconnect
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
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._configured = asyncio.Event()
        self._session_seen = asyncio.Event()
        self._reason = "completed"
        self._ok = True
        self._errors: list[dict[str, Any]] = []
        self._idle_since: int | None = None
        # Session continuity (see app/bridge/recovery.py).
        self._online = asyncio.Event()
        self._session_index = 1
        self._session_started_ns = 0
        self._planned_close: str | None = None
        self._close_detail = ""
        self._restore_reason: tuple[str, int, int, bool] | None = None
        self._backoff = Backoff(self.options.reconnect_base_ms, self.options.reconnect_cap_ms)
        self._history = AudioHistory(int(self.options.resend_max_s * 1000 / FRAME_MS))
        self._utterance_start: int | None = None
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

    def emit(self, ev: Event) -> None:
        """Record an event: timeline, then the outside sinks (store, UI, CLI)."""
        completed = self.timeline.feed(ev)
        self._emit_out(ev)
        for done in completed:
            self._emit_out(done)

    # -- lifecycle ------------------------------------------------------------------------

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
            for task in (audio, watchdog, *self._tool_tasks):
                if task is not None:
                    task.cancel()
            for task in (audio, watchdog, *self._tool_tasks):
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
        """Wait until the provider took the session configuration (``session.updated`` /
        ``setupComplete``). A server that only ever sends ``session.created`` is given
        ``UPDATE_GRACE_S`` and then used as it is, with a warning.

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
            self._session_started_ns = self.clock.now_ns()
            self._online.set()

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
            self._online.clear()
            if self._stop.is_set():
                return
            if not self.provider.protocol.resumable:
                # The stream is the call (Twilio): its end ends the call, no new session.
                if self._close_detail.startswith("closed"):
                    self.hangup("agent_hangup")
                else:
                    self._fail("connection_closed", f"the agent stream {self._close_detail}")
                return
            if self._reconnect is None or self.options.reconnect_attempts <= 0:
                code = _fatal_close(self._close_detail) or "connection_closed"
                self._fail(code, f"the provider connection {self._close_detail}")
                return
            if not await self._new_session():
                return

    async def _new_session(self) -> bool:
        """Open a fresh provider session after the old one ended; False if none could be
        opened (the call then fails).

        A session that dies before it was restored counts as a failed attempt of the same
        outage, so backoff and the attempt limit hold even when every dial succeeds.
        """
        assert self._reconnect is not None
        if self._restore_reason is not None:  # the last new session never got going
            reason, dropped, done, _ = self._restore_reason
            self._restore_reason = None
        else:
            reason = self._planned_close or self._close_detail or "connection lost"
            dropped, done = self.clock.now_ns(), 0
            self._backoff = Backoff(self.options.reconnect_base_ms, self.options.reconnect_cap_ms)
            self.emit(
                ConnectionState(
                    t_ns=dropped, provider=self.provider.name, state="reconnecting", detail=reason
                )
            )
        self._planned_close = None
        self._abandon_responses()
        fatal = _fatal_close(self._close_detail)
        if fatal is not None:
            self._fail(fatal, f"the provider connection {self._close_detail}")
            return False
        handle = getattr(self.provider.protocol, "latest_handle", None)
        with contextlib.suppress(Exception):
            await self.provider.close()
        last = self._close_detail
        for attempt in range(done + 1, self.options.reconnect_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._backoff.next_s())
            if self._stop.is_set():
                return False
            fresh = self._reconnect(handle)
            try:
                await fresh.connect()
            except ProviderError as exc:
                last = str(exc)
                self.emit(
                    Notice(
                        t_ns=self.clock.now_ns(),
                        level="warning",
                        message=f"reconnect attempt {attempt} failed: {exc}",
                    )
                )
                if not exc.retryable:
                    break
                continue
            self.provider = fresh
            self._session_index += 1
            self._restore_reason = (reason, dropped, attempt, bool(handle))
            return True
        self._fail("reconnect_failed", f"no new session after the drop ({reason}): {last}")
        return False

    def _abandon_responses(self) -> None:
        """The session is gone: its unfinished responses will never finish. Close them as
        ``incomplete`` so their audio can finish playing and the turn can settle."""
        now = self.clock.now_ns()
        for rid in list(self._open_responses):
            self._on_provider_event(
                ResponseFinished(
                    t_ns=now, response_id=rid, status="incomplete", reason="connection_lost"
                )
            )

    async def _restore(self) -> None:
        """The new session accepted its configuration: restore the conversation, then let
        caller audio flow again (the rule is in app/bridge/recovery.py)."""
        assert self._restore_reason is not None
        reason, dropped, attempts, resumed = self._restore_reason
        self._restore_reason = None
        turn = self.timeline.current
        resend = turn_unanswered(turn) and self._utterance_start is not None
        try:
            replay = self.provider.protocol.replay(
                build_history(self.timeline, skip_current=resend)
            )
            await self.provider.send(replay)
            if resend:
                start = max(0, (self._utterance_start or 0) - RESEND_PADDING_SAMPLES)
                sent_to = -1
                while True:
                    frames = [f for f in self._history.since(start) if f[0] > sent_to]
                    if not frames:
                        break
                    for pos, pcm in frames:
                        await self.provider.send_audio(pcm)
                        sent_to = pos
            elif needs_response(turn):
                await self.provider.send(self.provider.protocol.respond())
        except ProviderError:
            return  # this session died too: the pump opens another one
        now = self.clock.now_ns()
        gap_ms = (now - dropped) // 1_000_000
        self._session_started_ns = now
        self._online.set()
        self.emit(
            Reconnected(
                t_ns=now,
                provider=self.provider.name,
                reason=reason,
                dropped_ns=dropped,
                attempts=attempts,
                session_index=self._session_index,
                replayed_items=len(replay),
                replayed_turn=resend,
                resumed=resumed,
            )
        )
        self.emit(
            ConnectionState(
                t_ns=now,
                provider=self.provider.name,
                state="connected",
                detail=f"session {self._session_index}, {gap_ms} ms after the drop",
            )
        )

    def _on_provider_event(self, ev: Event) -> None:
        if isinstance(ev, AgentAudio):
            self._on_agent_audio(ev)
            self.emit(ev)
            return
        self.emit(ev)
        if isinstance(ev, SessionConfigured):
            self._session_seen.set()
            if not (ev.raw and ev.raw.get("type") == "session.created"):
                self._configured.set()
                if self._restore_reason is not None:
                    self._spawn(self._restore(), "restore")
                elif not self._online.is_set():
                    self._session_started_ns = ev.t_ns
                    self._online.set()
        elif isinstance(ev, GoAway):
            self._end_session("goAway")
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
            if ev.code in RENEWABLE_ERRORS and self._reconnect is not None:
                self._end_session(ev.code)
            elif ev.fatal:
                self._fail(ev.code, ev.message, record=False)
        elif isinstance(ev, ConnectionState):
            if ev.state in ("closed", "failed"):
                self._close_detail = f"{ev.state}: {ev.detail}"

    def _end_session(self, reason: str) -> None:
        """Close the current provider session on purpose; the pump opens the next one."""
        if self._planned_close is None:
            self._planned_close = reason
            self._online.clear()
            self._spawn(self.provider.close(), "close-session")

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[Any] = asyncio.create_task(coro, name=name)
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

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
            # Gemini finishes the turn only after it has the result (LiveKit PR #3192).
            and self.provider.protocol.name != "gemini"
        ):
            # OpenAI refuses response.create while the asking response is still active.
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
            if (
                self.options.session_max_s is not None
                and self._online.is_set()
                and self._agent_idle()
                and self.clock.now_ns() - self._session_started_ns
                >= self.options.session_max_s * 1e9
            ):
                self._end_session("rollover")
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
        for rid in sorted(self._open_responses):
            self._on_provider_event(
                ResponseFinished(t_ns=now, response_id=rid, status="incomplete", reason="stalled")
            )
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
        if self.muted or (self.half_duplex and self.playback.audible):
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
        self._history.append(frame_vad_pos, data)
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
                if cur is None or cur.agent_phase or self._utterance_start is None:
                    self._utterance_start = edge.sample
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
                self._spawn(self._send_quietly(messages), "truncate")
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
