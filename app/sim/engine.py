"""The simulator's runner: plays one connection's script against its transport.

:class:`Conversation` is the thin async layer around the pure parts: the script state
machine (:class:`app.sim.script.Script`, which owns the listening side
:class:`app.sim.audio_input.AudioInput`), the fault plan (:mod:`app.sim.faults`) and the
response plans (:mod:`app.sim.response`). It carries out the script's actions, times and
paces responses (first audio, chunk pacing, barge-in cancels, tool-call follow-ups),
applies faults to outgoing messages, keeps truncation bookkeeping and writes the
ground-truth log. A wire dialect (:class:`app.sim.dialect.Dialect`) parses client messages
into calls of the methods here and renders the runner's decisions as wire messages through
:meth:`Conversation.emit`.

Time: every stamp and deadline comes from the injected :class:`app.clock.Clock` (the real
monotonic clock in use: the simulator's stamps are the ground truth the bridge's are
compared to, so they are taken immediately before each send call).

Threading: one asyncio loop (the server's) runs every method; nothing here blocks except
the numpy work on one audio chunk (tens of microseconds). Speech synthesis happens ahead
of time (:meth:`app.sim.server.SimServer.start`), never while a turn is being timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from app.clock import MONOTONIC, Clock
from app.sim.audio_input import AudioInput, InputConfig, SpeechEdge
from app.sim.dialect import Dialect
from app.sim.faults import FaultPlan, session_expired_message, timed_schedule
from app.sim.playout import play_response
from app.sim.response import EMPTY_AUDIO, OUT_RATE, ResponseRun, RunPlan, new_id
from app.sim.scenario import Fault, Scenario
from app.sim.script import Action, Commit, Interrupt, Script, SimState, SpeechStarted
from app.sim.truth import TruthLog
from app.sim.tts import synthesize
from app.sim.waits import sleep_until


class Transport(Protocol):
    """The I/O the engine needs from the connection (a websockets server connection)."""

    async def send(self, message: str | bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class SessionClosed(Exception):
    """Raised inside the engine when the connection is gone (internal control flow)."""


class Conversation:
    """One connection's simulated agent (dialect-neutral); see the module docstring.

    A dialect subclasses it, implements :class:`app.sim.dialect.Dialect` and sets
    :attr:`dialect` to itself. Every method runs on the server's loop thread.

    Args:
        scenario: the script.
        state: server-wide state (turn position across reconnects).
        truth: the ground-truth log.
        transport: the connection.
        index: 1-based connection number on this server.
        model: the model the client asked for (from the URL), if any.
        binary: send every message as a binary frame of UTF-8 JSON instead of a text
            frame (the real Gemini service sends binary frames).
        clock: every stamp and deadline of the connection.
    """

    #: The wire dialect rendering this conversation (set by the dialect's constructor).
    dialect: Dialect

    def __init__(
        self,
        scenario: Scenario,
        state: SimState,
        truth: TruthLog,
        transport: Transport,
        index: int,
        model: str = "",
        binary: bool = False,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.scenario = scenario
        self.model = model
        self.binary = binary
        self.state = state
        self.truth = truth
        self.transport = transport
        self.index = index
        self.clock = clock
        self.script = Script(scenario, state, clock)
        if state.faults is None:
            state.faults = FaultPlan(scenario.all_faults())
        self.faults = state.faults
        self.closed = False
        self.opened_ns = clock.now_ns()
        self.last_item_id: str | None = None
        self.active: ResponseRun | None = None
        self.item_audio_ms: dict[str, float] = {}
        self.input_audio_ms_total = 0.0
        #: Tool calls of this connection sent and not yet answered, by call id.
        self.awaiting_tool: dict[str, ResponseRun] = {}
        #: Responses whose tool call was answered (the next response follows them up).
        self.tool_ready: list[ResponseRun] = []
        self._stall_until = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_run_task: asyncio.Task[None] | None = None

    # --- the script's state, for dialects ------------------------------------------------

    @property
    def cfg(self) -> InputConfig:
        """The client's input settings (see :meth:`configure`)."""
        return self.script.cfg

    @cfg.setter
    def cfg(self, cfg: InputConfig) -> None:
        self.script.cfg = cfg

    @property
    def audio(self) -> AudioInput:
        """The listening side."""
        return self.script.audio

    def peek_turn(self) -> int:
        """The 1-based turn the next committed utterance will take."""
        return self.script.peek_turn()

    def take_turn(self) -> int:
        """Consume and return the next turn number."""
        return self.script.take_turn()

    def resume_at(self, turn: int) -> None:
        """Continue this connection's script at ``turn`` (a resumed session)."""
        self.script.local_turn = turn

    def configure(self, cfg: InputConfig) -> None:
        """Apply the client's input settings (from its session update)."""
        self.script.configure(cfg)

    def event_type(self, msg: dict[str, Any]) -> str:
        """Name of an outgoing message for fault matching (the wire ``type``)."""
        return str(msg.get("type", ""))

    async def send_go_away(self, turn: int | None, time_left_ms: float) -> int | None:
        """Default for dialects without a go-away message (OpenAI): nothing is sent."""
        return None

    def mark_created(self, run: ResponseRun, t_ns: int) -> None:
        """Record ``response.created`` for ``run`` at ``t_ns`` (once per response)."""
        if run.created_logged:
            return
        run.created_logged = True
        self.truth.record("response.created", run.turn, t_ns, response_id=run.response_id,
                          kind=run.kind)

    # --- caller audio and the script's actions -----------------------------------------

    async def on_audio(self, payload: bytes, t_recv_ns: int) -> None:
        """Feed one chunk of client audio and act on the speech edges it completes."""
        await self._act(self.script.feed_audio(payload, t_recv_ns))

    async def on_speech_edge(self, edge: SpeechEdge) -> None:
        """A speech edge the client marked (e.g. Gemini's activity start/end)."""
        await self._act(self.script.edge(edge))

    async def request_commit(self) -> bool:
        """The client committed the input buffer; return False if it was too small."""
        actions = self.script.commit(self.clock.now_ns())
        await self._act(actions)
        return bool(actions)

    def request_clear(self) -> None:
        """The client cleared the input buffer."""
        self.script.clear()

    async def _act(self, actions: list[Action]) -> None:
        anchor = 0  # the stamp of the last speech-stopped sent (a VAD commit's anchor)
        d = self.dialect
        for a in actions:
            if isinstance(a, SpeechStarted):
                e = a.edge
                t = await d.send_speech_started(a.turn, a.item_id, a.audio_start_ms)
                self.truth.record("speech_started", a.turn, t, item_id=a.item_id,
                                  audio_start_ms=a.audio_start_ms, edge_ms=e.ms,
                                  edge_sample=e.sample, speech_start_t_ns=e.t_ns)
            elif isinstance(a, Interrupt):
                run = self.active
                if run is not None and run.status == "in_progress":
                    self.cancel_response(run, a.reason)
            elif isinstance(a, Commit):
                await self._commit(a, anchor if a.at_ns is None else a.at_ns)
            else:
                e = a.edge
                anchor = await d.send_speech_stopped(a.turn, a.item_id, a.audio_end_ms)
                self.truth.record("speech_stopped", a.turn, anchor, item_id=a.item_id,
                                  audio_end_ms=a.audio_end_ms, edge_ms=e.ms,
                                  edge_sample=e.sample, speech_end_t_ns=e.t_ns,
                                  hangover_ms=a.hangover_ms)

    async def _commit(self, c: Commit, t_anchor: int) -> None:
        prev, self.last_item_id = self.last_item_id, c.item_id
        self.input_audio_ms_total += c.audio_ms
        t = await self.dialect.send_user_item(c.turn, c.item_id, prev, c.audio_ms)
        self.truth.record("committed", c.turn, t, item_id=c.item_id, manual=c.manual)
        timing = self.script.timing_for(c.turn)
        self.spawn(self._transcribe(c.turn, c.item_id,
                                    t + int(timing.transcript_delay_ms * 1e6)))
        if c.respond is not None:
            self.start_response(self.make_run(c.respond),
                                t_anchor + int(timing.response_delay_ms * 1e6))

    async def _transcribe(self, turn: int, item_id: str, at_ns: int) -> None:
        await sleep_until(self.clock, at_ns)
        text = self.script.hears_for(turn)
        t = await self.dialect.send_input_transcript(turn, item_id, text)
        self.truth.record("transcript", turn, t, item_id=item_id, transcript=text)

    # --- responses ---------------------------------------------------------------------

    def turn_run(self, turn: int, kind: str) -> ResponseRun | None:
        """The response answering ``turn`` (see :meth:`app.sim.script.Script.plan_turn`)."""
        plan = self.script.plan_turn(turn, kind)
        return None if plan is None else self.make_run(plan)

    def make_run(self, plan: RunPlan) -> ResponseRun:
        """Build a response (its audio comes from the synthesis cache)."""
        spec = self.script.turn_spec(plan.turn) if plan.kind != "default" else None
        voice = self.scenario.voice_of(spec)
        text, timing = plan.text, plan.timing
        audio = synthesize(text, OUT_RATE, self.scenario.voice_rate, voice) if text else EMPTY_AUDIO
        run = ResponseRun(
            response_id=new_id("resp"), turn=plan.turn, kind=plan.kind, text=text, audio=audio,
            timing=timing,
            first_audio_ms=(timing.first_audio_ms if plan.first_audio_ms is None
                            else plan.first_audio_ms),
        )
        if plan.tool is not None:
            run.tool = plan.tool
            run.call_id = new_id("call")
        return run

    def start_after(self, run: ResponseRun) -> None:
        """Start ``run`` its timing's ``response_delay_ms`` from now."""
        self.start_response(run, self.clock.now_ns() + int(run.timing.response_delay_ms * 1e6))

    def followup_run(self, done: ResponseRun) -> ResponseRun:
        """The follow-up of a response whose tool call was answered."""
        tool = done.tool
        assert tool is not None
        return self.make_run(RunPlan(done.turn, "followup", tool.after_result, done.timing,
                                     tool.followup_first_audio_ms))

    def start_greeting(self) -> None:
        """Speak the scenario's greeting once per server (first session update)."""
        if self.scenario.greeting and not self.state.greeted:
            self.state.greeted = True
            timing = self.scenario.timing
            self.start_after(self.make_run(RunPlan(0, "greeting", self.scenario.greeting,
                                                   timing)))

    def request_response(self) -> str | None:
        """The client asked for a response; return an error message if it cannot have one."""
        if self.active is not None and self.active.status == "in_progress":
            return (
                "Conversation already has an active response in progress: "
                f"{self.active.response_id}. Wait until the response is finished before "
                "creating a new one."
            )
        if self.tool_ready:
            done = self.tool_ready.pop(0)
            self.tool_ready.clear()
            run = self.followup_run(done)
        elif self.script.pending_turn is not None:
            turn, _ = self.script.pending_turn
            self.script.pending_turn = None
            maybe = self.turn_run(turn, "manual")
            assert maybe is not None
            run = maybe
        else:
            turn = max(0, self.peek_turn() - 1)
            run = self.make_run(RunPlan(turn, "default", "", self.script.timing_for(turn)))
        self.start_after(run)
        return None

    def on_tool_output(self, call_id: str) -> None:
        """The client sent a function_call_output item for ``call_id``."""
        run = self.awaiting_tool.pop(call_id, None) or self.state.awaiting_tool.get(call_id)
        self.state.awaiting_tool.pop(call_id, None)
        self.truth.record("function_call_output", run.turn if run else None, call_id=call_id,
                          known=run is not None)
        if run is not None:
            self.tool_ready.append(run)

    def cancel_response(self, run: ResponseRun | None, reason: str) -> bool:
        """Stop a response at once (its task sends the closing events); False if none."""
        run = run or self.active
        if run is None or run.status != "in_progress" or run.cancel.is_set():
            return False
        run.reason = reason
        run.cancel.set()
        return True

    def truncate(self, item_id: str, audio_end_ms: int) -> tuple[bool, float | None]:
        """Check a truncate request: ``(ok, sent_ms)``; sent_ms None for unknown items."""
        sent = self.item_audio_ms.get(item_id)
        ok = sent is not None and 0 <= audio_end_ms <= sent + 0.5
        turn = self.active.turn if self.active else None
        self.truth.record("truncate", turn, item_id=item_id, audio_end_ms=audio_end_ms,
                          sent_ms=sent, ok=ok)
        if ok:
            self.item_audio_ms[item_id] = float(audio_end_ms)
        return ok, sent

    def start_response(self, run: ResponseRun, created_at_ns: int) -> None:
        """Schedule ``run``: response created at ``created_at_ns``, after any active one."""
        prev = self._last_run_task
        run.task = self.spawn(play_response(self, run, created_at_ns, prev))
        self._last_run_task = run.task
        if self.active is None or self.active.status != "in_progress":
            self.active = run
    # --- sending -----------------------------------------------------------------------

    async def emit(self, msg: dict[str, Any], turn: int | None) -> int:
        """Send one message, applying faults and stalls; return the send stamp.

        The stamp is the clock's time taken immediately before the send call.

        Raises:
            SessionClosed: the connection is closed (or a fault just closed it).
        """
        if self.closed:
            raise SessionClosed
        name = self.event_type(msg)
        for f in self.faults.at_event(name, turn):
            await self._apply_fault(f, turn, before=name)
        while True:  # a stall may be extended while we wait
            wait = self._stall_until - self.clock.now_ns()
            if wait <= 0:
                break
            await asyncio.sleep(wait / 1e9)
        return await self.send_raw(json.dumps(msg, separators=(",", ":")))

    async def send_raw(self, text: str) -> int:
        """Send text as is (no faults); return the stamp taken just before sending.

        With ``binary`` the text goes out as a binary frame of its UTF-8 bytes.
        """
        if self.closed:
            raise SessionClosed
        data: str | bytes = text.encode("utf-8") if self.binary else text
        t = self.clock.now_ns()
        try:
            await self.transport.send(data)
        except Exception as e:  # websockets.ConnectionClosed and transport errors
            self.closed = True
            raise SessionClosed from e
        return t

    async def close(self, code: int, reason: str = "") -> None:
        """Close the connection (idempotent); pending sends end with SessionClosed."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            await self.transport.close(code, reason[:120])

    async def _apply_fault(self, f: Fault, turn: int | None, before: str) -> None:
        self.truth.record("fault", turn, action=f.action, at=f.at, before=before, code=f.code)
        if f.action == "stall":
            self._stall_until = max(self._stall_until, self.clock.now_ns() + int(f.ms * 1e6))
        elif f.action == "malformed":
            await self.send_raw('{"type": "' + before + '", "event_id": ')
        elif f.action == "error":
            code = str(f.code or "server_error")
            err_type = f.error_type or (
                "invalid_request_error" if code == "session_expired" else "server_error"
            )
            await self.dialect.send_error(turn, err_type, code, f.message or f"Simulated {code}.")
            if f.close_code is not None:
                await self.close(f.close_code, code)
                raise SessionClosed
        elif f.action == "close":
            await self.close(int(f.code or 1011), f.message)
            raise SessionClosed
        elif f.action == "go_away":
            await self.dialect.send_go_away(turn, f.ms)
            self.spawn(self._close_later(f.ms, int(f.code or 1011),
                                         f.message or "Deadline expired"))

    async def _close_later(self, ms: float, code: int, reason: str) -> None:
        await asyncio.sleep(ms / 1000)
        if not self.closed:
            self.truth.record("fault", None, action="go_away_close", at="time", code=code)
            await self.close(code, reason)

    # --- lifecycle ---------------------------------------------------------------------

    async def run(self, messages: Callable[[], Awaitable[str | bytes]]) -> None:
        """Serve the connection: opening, then client messages until it closes.

        Args:
            messages: returns the next client message; raises when the connection ends.
        """
        self.spawn(self._timed_faults())
        try:
            await self.dialect.send_opening()
            while not self.closed:
                try:
                    raw = await messages()
                except Exception:  # the connection closed
                    break
                t_recv = self.clock.now_ns()
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                await self.dialect.handle(text, t_recv)
        except SessionClosed:
            pass
        finally:
            self.closed = True
            await self.shutdown()
            if self.scenario.continue_on_reconnect:
                self.state.connection_closed()

    async def shutdown(self) -> None:
        """Cancel every task of this connection and wait for them."""
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this connection (SessionClosed ends it quietly; any
        other exception is logged as a ``sim_error`` truth record, so it cannot go unseen).
        A task cancelled before it ran closes ``coro`` unstarted.
        """

        async def guarded() -> Any:
            try:
                return await coro
            except SessionClosed:
                return None
            except Exception as e:
                self.truth.record("sim_error", None, error=f"{type(e).__name__}: {e}"[:300])
                raise

        task = asyncio.ensure_future(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _t: coro.close())  # a no-op once it ran
        return task

    async def _timed_faults(self) -> None:
        for after_ms, f in timed_schedule(self.faults, self.scenario.session_limit_ms):
            await sleep_until(self.clock, self.opened_ns + int(after_ms * 1e6))
            if f is not None:
                await self._apply_fault(f, None, before="time")
                continue
            self.truth.record("fault", None, action="session_limit", at="time", code=1000)
            await self.dialect.send_error(None, "invalid_request_error", "session_expired",
                                          session_expired_message(after_ms))
            await self.close(1000, "session_expired")
            return
