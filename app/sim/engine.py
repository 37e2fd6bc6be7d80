"""The dialect-neutral simulator engine: scenario playback against one connection.

:class:`Conversation` owns everything a realtime agent does that is not wire format:
caller audio in (decode, resample to 16 kHz, VAD on *audio time*), mapping audio positions
to the clock, picking the scenario turn, timing and pacing responses, barge-in, tool-call
follow-ups, truncation bookkeeping, faults, and the ground-truth log. A dialect (for
example :class:`app.sim.openai_dialect.OpenAIConversation`) subclasses it, parses client
messages into calls of the ``on_*``/``request_*`` methods here, and renders the engine's
``send_*`` hooks as wire messages through :meth:`Conversation.emit`.

Threading: one asyncio loop (the server's) runs every method; nothing here blocks except
the numpy work on one audio chunk (tens of microseconds). Speech synthesis happens ahead
of time (:meth:`app.sim.server.SimServer.start`), never while a turn is being timed.

Audio time: speech edges come from :class:`app.audio.vad.VadTracker` over the audio the
client sent, counted in samples, never from wall time. The clock time of input sample
``q`` of a chunk covering ``[a, b)`` received at ``t_recv`` is ``t_recv - (b - q)/rate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from app.audio.g711 import alaw_decode, ulaw_decode
from app.audio.pcm import bytes_to_int16
from app.audio.resample import StreamResampler
from app.audio.vad import VadTracker
from app.sim.scenario import Fault, Scenario, Timing, ToolCall, Turn
from app.sim.truth import TruthLog
from app.sim.tts import synthesize

#: Rate the agent's audio is synthesised and paced at (OpenAI's only PCM rate).
OUT_RATE = 24000
#: Rate the VAD runs at.
VAD_RATE = 16000
_VAD_FRAME = VAD_RATE // 100  # 10 ms frames
#: Session-expired message of the real service ("N minutes" is filled in).
SESSION_EXPIRED_MESSAGE = "Your session hit the maximum duration of {minutes} minutes."


def new_id(prefix: str) -> str:
    """Return a fresh id like the service's (``item_``, ``resp_``, ``call_`` ...)."""
    return f"{prefix}_{secrets.token_hex(10)}"


class Transport(Protocol):
    """The I/O the engine needs from the connection (a websockets server connection)."""

    async def send(self, message: str | bytes) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class SessionClosed(Exception):
    """Raised inside the engine when the connection is gone (internal control flow)."""


class SimState:
    """State shared by all connections of one server: where the script has got to.

    A reconnecting client continues at the next turn (when the scenario's
    ``continue_on_reconnect`` is true). Only touched from the server's loop thread.
    """

    def __init__(self) -> None:
        self.next_turn = 1
        self.connections = 0
        self.greeted = False
        #: Turns whose answer reached the client (first audio or the tool call sent). A
        #: turn taken on a connection that closed before answering it is taken again by
        #: the next connection (the client re-sends the unanswered utterance).
        self.delivered: set[int] = set()
        #: Tool calls sent and not yet answered, by call id: a client may answer one on
        #: its next connection (after replaying the call into the new session).
        self.awaiting_tool: dict[str, ResponseRun] = {}
        #: Event faults fire once per server, so a reconnecting client that sends the same
        #: utterance again is not dropped again at the same point.
        self.faults: FaultPlan | None = None
        #: Session-resumption handles issued so far (Gemini), each with the connection's
        #: next turn when it was issued.
        self.handles: dict[str, int] = {}

    def connection_closed(self) -> None:
        """Roll the script back over the last turn if its answer never went out."""
        taken = self.next_turn - 1
        if taken >= 1 and taken not in self.delivered:
            self.next_turn = taken


@dataclass(slots=True)
class InputConfig:
    """The client's input-audio settings, as far as the engine cares."""

    codec: str = "pcm"  # "pcm" (24 kHz PCM16), "pcm16" (16 kHz PCM16), "pcmu"/"pcma" (8 kHz)
    vad: bool = True
    silence_ms: int = 500
    prefix_ms: int = 300
    create_response: bool = True
    interrupt_response: bool = True

    @property
    def rate(self) -> int:
        """Sample rate of the client's input audio."""
        return codec_rate(self.codec)


def codec_rate(codec: str) -> int:
    """Sample rate of an input codec name (see :class:`InputConfig`)."""
    return {"pcm": 24000, "pcm16": 16000}.get(codec, 8000)


@dataclass(frozen=True, slots=True)
class SpeechEdge:
    """A VAD edge in audio time and on the clock.

    Attributes:
        speaking: True for a start, False for an end.
        sample: 16 kHz samples since the first audio of the connection.
        t_ns: the clock time of that sample (monotonic ns).
    """

    speaking: bool
    sample: int
    t_ns: int

    @property
    def ms(self) -> float:
        """Audio time of the edge in milliseconds since the first audio."""
        return self.sample * 1000.0 / VAD_RATE


class AudioInput:
    """Caller audio: decode, resample to 16 kHz, VAD in whole 10 ms frames, clock map.

    Synchronous and pure apart from reading the arrival stamps it is given.
    """

    def __init__(self, codec: str = "pcm", hangover_ms: int = 500) -> None:
        self.codec = codec
        self.fed16 = 0  # 16 kHz samples handed to the VAD (whole frames)
        self.in_s = 0.0  # input audio seconds received
        self.uncommitted_s = 0.0
        self._rest = np.zeros(0, dtype=np.int16)
        self._rs = StreamResampler(self.rate, VAD_RATE)
        self._hangover = hangover_ms
        self._vad = self._make_vad(hangover_ms)
        self._vad_base = 0
        self._chunks: deque[tuple[float, float, int]] = deque(maxlen=5000)

    @property
    def rate(self) -> int:
        return codec_rate(self.codec)

    @property
    def hangover_ms(self) -> int:
        return self._hangover

    @property
    def speaking(self) -> bool:
        return self._vad.speaking

    @staticmethod
    def _make_vad(hangover_ms: int) -> VadTracker:
        return VadTracker(rate=VAD_RATE, frame_ms=10, aggressiveness=2, start_ms=30,
                          hangover_ms=hangover_ms, min_rms_dbfs=-50.0)

    def set_codec(self, codec: str) -> None:
        """Switch the input format (a new resampler; audio time carries on)."""
        if codec != self.codec:
            self.codec = codec
            self._rs = StreamResampler(self.rate, VAD_RATE)

    def set_hangover(self, ms: int) -> None:
        """Use a new endpointing hangover from the next utterance on.

        The VAD is rebuilt only between utterances (never while speaking), at a frame
        boundary, so audio time stays continuous.
        """
        if ms == self._hangover or self._vad.speaking:
            return
        self._hangover = ms
        self._vad = self._make_vad(ms)
        self._vad_base = self.fed16

    def feed(self, payload: bytes, t_recv_ns: int) -> list[SpeechEdge]:
        """Take one chunk of client audio (wire bytes) received at ``t_recv_ns``."""
        if self.codec == "pcmu":
            x = ulaw_decode(payload)
        elif self.codec == "pcma":
            x = alaw_decode(payload)
        else:
            x = bytes_to_int16(payload)
        if len(x) == 0:
            return []
        dur = len(x) / self.rate
        self._chunks.append((self.in_s, self.in_s + dur, t_recv_ns))
        self.in_s += dur
        self.uncommitted_s += dur
        y = self._rs.process(x)
        if len(self._rest):
            y = np.concatenate([self._rest, y])
        n = len(y) // _VAD_FRAME * _VAD_FRAME
        self._rest = y[n:].copy()
        if n == 0:
            return []
        edges = self._vad.feed(y[:n])
        self.fed16 += n
        return [self._edge(e.speaking, self._vad_base + e.sample) for e in edges]

    def _edge(self, speaking: bool, sample16: int) -> SpeechEdge:
        delay_s = self._rs.delay_ms / 1000  # 0 when the input is already at 16 kHz
        return SpeechEdge(speaking, sample16, self.clock_of(sample16 / VAD_RATE - delay_s))

    def clock_of(self, sec: float) -> int:
        """Map an input audio position (seconds since the first audio) to the clock."""
        if not self._chunks:
            return time.monotonic_ns()
        for a, b, t in reversed(self._chunks):
            if a <= sec:
                return t - int(round((b - sec) * 1e9))
        a, b, t = self._chunks[0]
        return t - int(round((b - sec) * 1e9))


@dataclass(eq=False, slots=True)
class ResponseRun:
    """One response the engine is producing (mutable; owned by its task)."""

    response_id: str
    turn: int
    kind: str  # turn | followup | greeting | manual | default
    text: str
    audio: NDArray[np.int16]
    timing: Timing
    first_audio_ms: float
    tool: ToolCall | None = None
    call_id: str = ""
    message_item_id: str = ""
    fc_item_id: str = ""
    prev_item_id: str | None = None
    sent_samples: int = 0
    transcript_sent: str = ""
    status: str = "in_progress"
    reason: str | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    created: bool = False
    task: asyncio.Task[None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sent_ms(self) -> float:
        return self.sent_samples * 1000.0 / OUT_RATE

    @property
    def total_ms(self) -> float:
        return len(self.audio) * 1000.0 / OUT_RATE


class FaultPlan:
    """Decides which faults fire before a given outgoing event (each fires once)."""

    def __init__(self, faults: tuple[Fault, ...]) -> None:
        self.faults = faults
        self._counts = [0] * len(faults)
        self._fired = [False] * len(faults)

    def at_event(self, name: str, turn: int | None) -> list[Fault]:
        out: list[Fault] = []
        for i, f in enumerate(self.faults):
            if self._fired[i] or f.at in (None, "time") or f.at != name:
                continue
            if f.turn is not None and f.turn != turn:
                continue
            self._counts[i] += 1
            if self._counts[i] >= f.nth:
                self._fired[i] = True
                out.append(f)
        return out

    def timed(self) -> list[Fault]:
        return [f for f in self.faults if f.at == "time"]

    def pong_delay_ms(self) -> float:
        return max((f.ms for f in self.faults if f.action == "slow_pong"), default=0.0)


class Conversation:
    """One connection's simulated agent (dialect-neutral); see the module docstring.

    Subclasses implement :meth:`handle` (client text in) and the ``send_*`` hooks (wire
    messages out through :meth:`emit`). Every method runs on the server's loop thread.

    Args:
        scenario: the script.
        state: server-wide state (turn position across reconnects).
        truth: the ground-truth log.
        transport: the connection.
        index: 1-based connection number on this server.
        model: the model the client asked for (from the URL), if any.
        binary: send every message as a binary frame of UTF-8 JSON instead of a text
            frame (the real Gemini service sends binary frames).
    """

    def __init__(
        self,
        scenario: Scenario,
        state: SimState,
        truth: TruthLog,
        transport: Transport,
        index: int,
        model: str = "",
        binary: bool = False,
    ) -> None:
        self.scenario = scenario
        self.model = model
        self.binary = binary
        self.state = state
        self.truth = truth
        self.transport = transport
        self.index = index
        self.cfg = InputConfig()
        self.audio = AudioInput(self.cfg.codec, self._hangover_for(self.peek_turn()))
        if state.faults is None:
            state.faults = FaultPlan(scenario.all_faults())
        self.faults = state.faults
        self.closed = False
        self.opened_ns = time.monotonic_ns()
        self.last_item_id: str | None = None
        self.active: ResponseRun | None = None
        self.item_audio_ms: dict[str, float] = {}
        self.input_audio_ms_total = 0.0
        self._local_turn = 1
        self._speech_item: str | None = None
        self._speech_turn = 0
        self._suppress_end = False
        self._pending_turn: tuple[int, str] | None = None
        self._awaiting_tool: dict[str, ResponseRun] = {}
        self._tool_ready: list[ResponseRun] = []
        self._stall_until = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_run_task: asyncio.Task[None] | None = None

    # --- dialect interface -------------------------------------------------------------

    def event_type(self, msg: dict[str, Any]) -> str:
        """Name of an outgoing message for fault matching (the wire ``type``)."""
        return str(msg.get("type", ""))

    async def handle(self, text: str, t_recv_ns: int) -> None:
        """Handle one client message (text) received at ``t_recv_ns``."""
        raise NotImplementedError

    async def send_opening(self) -> None:
        """Send what the service sends on connect (e.g. ``session.created``)."""
        raise NotImplementedError

    async def send_error(
        self, turn: int | None, err_type: str, code: str | None, message: str,
        param: str | None = None, event_id: str | None = None,
    ) -> int:
        raise NotImplementedError

    async def send_speech_started(self, turn: int, item_id: str, audio_start_ms: int) -> int:
        raise NotImplementedError

    async def send_speech_stopped(self, turn: int, item_id: str, audio_end_ms: int) -> int:
        raise NotImplementedError

    async def send_user_item(
        self, turn: int, item_id: str, prev_id: str | None, audio_ms: float
    ) -> int:
        raise NotImplementedError

    async def send_input_transcript(self, turn: int, item_id: str, text: str) -> int:
        raise NotImplementedError

    async def send_response_created(self, run: ResponseRun) -> int | None:
        """Announce a response; None if the dialect has no such message (Gemini): the
        response then counts as created at its first message (see :meth:`mark_created`).
        """
        raise NotImplementedError

    async def send_message_start(self, run: ResponseRun) -> int:
        raise NotImplementedError

    async def send_audio(self, run: ResponseRun, chunk: NDArray[np.int16]) -> int:
        raise NotImplementedError

    async def send_text_delta(self, run: ResponseRun, delta: str) -> int:
        raise NotImplementedError

    async def send_message_end(self, run: ResponseRun) -> int:
        raise NotImplementedError

    async def send_function_call(self, run: ResponseRun) -> int:
        """Send the function-call item; return the stamp of its arguments-done event."""
        raise NotImplementedError

    async def send_response_done(self, run: ResponseRun) -> int | None:
        """Close a response; None if nothing was sent (then no ``response.done`` record)."""
        raise NotImplementedError

    async def send_go_away(self, turn: int | None, time_left_ms: float) -> int | None:
        """Warn the client that the connection closes in ``time_left_ms`` (``go_away``
        fault). The base sends nothing (OpenAI has no such message) and returns None.
        """
        return None

    def mark_created(self, run: ResponseRun, t_ns: int) -> None:
        """Record ``response.created`` for ``run`` at ``t_ns`` (once per response)."""
        if run.extra.get("created_logged"):
            return
        run.extra["created_logged"] = True
        self.truth.record("response.created", run.turn, t_ns, response_id=run.response_id,
                          kind=run.kind)

    # --- sending -----------------------------------------------------------------------

    async def emit(self, msg: dict[str, Any], turn: int | None) -> int:
        """Send one message, applying faults and stalls; return the send stamp.

        The stamp is ``time.monotonic_ns()`` taken immediately before the send call.

        Raises:
            SessionClosed: the connection is closed (or a fault just closed it).
        """
        if self.closed:
            raise SessionClosed
        name = self.event_type(msg)
        for f in self.faults.at_event(name, turn):
            await self._apply_fault(f, turn, before=name)
        while True:  # a stall may be extended while we wait
            wait = self._stall_until - time.monotonic_ns()
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
        t = time.monotonic_ns()
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
            self._stall_until = max(self._stall_until, time.monotonic_ns() + int(f.ms * 1e6))
        elif f.action == "malformed":
            await self.send_raw('{"type": "' + before + '", "event_id": ')
        elif f.action == "error":
            code = str(f.code or "server_error")
            err_type = f.error_type or (
                "invalid_request_error" if code == "session_expired" else "server_error"
            )
            await self.send_error(turn, err_type, code, f.message or f"Simulated {code}.")
            if f.close_code is not None:
                await self.close(f.close_code, code)
                raise SessionClosed
        elif f.action == "close":
            await self.close(int(f.code or 1011), f.message)
            raise SessionClosed
        elif f.action == "go_away":
            await self.send_go_away(turn, f.ms)
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
            await self.send_opening()
            while not self.closed:
                try:
                    raw = await messages()
                except Exception:  # the connection closed
                    break
                t_recv = time.monotonic_ns()
                text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
                await self.handle(text, t_recv)
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

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this connection (SessionClosed ends it quietly; any
        other exception is logged as a ``sim_error`` truth record, so it cannot go unseen).
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
        return task

    async def _timed_faults(self) -> None:
        plan: list[tuple[float, Fault | None]] = [
            (f.after_ms or 0.0, f) for f in self.faults.timed()
        ]
        if self.scenario.session_limit_ms is not None:
            plan.append((self.scenario.session_limit_ms, None))
        for after_ms, f in sorted(plan, key=lambda p: p[0]):
            await sleep_until(self.opened_ns + int(after_ms * 1e6))
            if f is not None:
                await self._apply_fault(f, None, before="time")
                continue
            minutes = max(1, int(round(after_ms / 60000)))
            msg = SESSION_EXPIRED_MESSAGE.format(minutes=minutes)
            self.truth.record("fault", None, action="session_limit", at="time", code=1000)
            await self.send_error(None, "invalid_request_error", "session_expired", msg)
            await self.close(1000, "session_expired")
            return

    # --- script position ---------------------------------------------------------------

    def peek_turn(self) -> int:
        """The 1-based turn the next committed utterance will take."""
        return self.state.next_turn if self.scenario.continue_on_reconnect else self._local_turn

    def take_turn(self) -> int:
        """Consume and return the next turn number."""
        n = self.peek_turn()
        if self.scenario.continue_on_reconnect:
            self.state.next_turn += 1
        else:
            self._local_turn += 1
        self.audio.set_hangover(self._hangover_for(self.peek_turn()))
        return n

    def turn_spec(self, n: int) -> Turn | None:
        """The scripted turn ``n`` (1-based), or None beyond the script."""
        return self.scenario.turns[n - 1] if 1 <= n <= len(self.scenario.turns) else None

    def timing_for(self, n: int) -> Timing:
        t = self.turn_spec(n)
        return t.timing if t is not None else self.scenario.timing

    def hears_for(self, n: int) -> str:
        t = self.turn_spec(n)
        return t.hears if t is not None else ""

    def _hangover_for(self, n: int) -> int:
        ep = self.timing_for(n).endpointing_ms
        return ep if ep is not None else self.cfg.silence_ms

    def configure(self, cfg: InputConfig) -> None:
        """Apply the client's input settings (from its session update)."""
        self.cfg = cfg
        self.audio.set_codec(cfg.codec)
        self.audio.set_hangover(self._hangover_for(self.peek_turn()))

    # --- caller audio ------------------------------------------------------------------

    async def on_audio(self, payload: bytes, t_recv_ns: int) -> None:
        """Feed one chunk of client audio and act on the speech edges it completes."""
        edges = self.audio.feed(payload, t_recv_ns)
        if not self.cfg.vad:
            return
        for e in edges:
            if e.speaking:
                await self._on_speech_start(e)
            else:
                await self._on_speech_end(e)

    async def _on_speech_start(self, e: SpeechEdge) -> None:
        self._suppress_end = False
        turn = self.peek_turn()
        item_id = new_id("item")
        self._speech_item, self._speech_turn = item_id, turn
        start_ms = max(0, int(round(e.ms - self.cfg.prefix_ms)))
        t = await self.send_speech_started(turn, item_id, start_ms)
        self.truth.record("speech_started", turn, t, item_id=item_id, audio_start_ms=start_ms,
                          edge_ms=e.ms, edge_sample=e.sample, speech_start_t_ns=e.t_ns)
        run = self.active
        if run is not None and self.cfg.interrupt_response and run.status == "in_progress":
            self.cancel_response(run, "turn_detected")

    async def _on_speech_end(self, e: SpeechEdge) -> None:
        if self._suppress_end:
            self._suppress_end = False
            self._speech_item = None
            return
        item_id = self._speech_item or new_id("item")
        self._speech_item = None
        hangover = self.audio.hangover_ms
        turn = self.take_turn()
        end_ms = int(round(e.ms + hangover))
        t = await self.send_speech_stopped(turn, item_id, end_ms)
        self.truth.record("speech_stopped", turn, t, item_id=item_id, audio_end_ms=end_ms,
                          edge_ms=e.ms, edge_sample=e.sample, speech_end_t_ns=e.t_ns,
                          hangover_ms=hangover)
        await self._commit(turn, item_id, manual=False, t_anchor=t)

    async def request_commit(self) -> bool:
        """The client committed the input buffer; return False if it was too small."""
        if self.audio.uncommitted_s < 0.1:
            return False
        item_id = self._speech_item or new_id("item")
        if self.audio.speaking:
            self._suppress_end = True
        self._speech_item = None
        turn = self.take_turn()
        await self._commit(turn, item_id, manual=True, t_anchor=time.monotonic_ns())
        return True

    def request_clear(self) -> None:
        """The client cleared the input buffer."""
        self.audio.uncommitted_s = 0.0
        if self.audio.speaking:
            self._suppress_end = True
        self._speech_item = None

    async def _commit(self, turn: int, item_id: str, manual: bool, t_anchor: int) -> None:
        prev, self.last_item_id = self.last_item_id, item_id
        audio_ms = self.audio.uncommitted_s * 1000.0
        self.input_audio_ms_total += audio_ms
        self.audio.uncommitted_s = 0.0
        t = await self.send_user_item(turn, item_id, prev, audio_ms)
        self.truth.record("committed", turn, t, item_id=item_id, manual=manual)
        timing = self.timing_for(turn)
        self.spawn(self._transcribe(turn, item_id, t + int(timing.transcript_delay_ms * 1e6)))
        if manual or not self.cfg.create_response:
            self._pending_turn = (turn, item_id)
            return
        run = self._turn_run(turn, "turn")
        if run is not None:
            self.start_response(run, t_anchor + int(timing.response_delay_ms * 1e6))

    async def _transcribe(self, turn: int, item_id: str, at_ns: int) -> None:
        await sleep_until(at_ns)
        text = self.hears_for(turn)
        t = await self.send_input_transcript(turn, item_id, text)
        self.truth.record("transcript", turn, t, item_id=item_id, transcript=text)

    # --- responses ---------------------------------------------------------------------

    def _turn_run(self, turn: int, kind: str) -> ResponseRun | None:
        spec = self.turn_spec(turn)
        timing = self.timing_for(turn)
        if spec is None:
            if self.scenario.default_reply is None:
                return None if kind == "turn" else self.make_run(turn, "default", "", timing)
            return self.make_run(turn, "default", self.scenario.default_reply, timing)
        run = self.make_run(turn, kind, spec.reply, timing)
        if spec.tool_call is not None:
            run.tool = spec.tool_call
            run.call_id = new_id("call")
        return run

    def make_run(self, turn: int, kind: str, text: str, timing: Timing,
                 first_audio_ms: float | None = None) -> ResponseRun:
        """Build a response (its audio comes from the synthesis cache)."""
        voice = self.scenario.voice_of(self.turn_spec(turn) if kind != "default" else None)
        audio = synthesize(text, OUT_RATE, self.scenario.voice_rate, voice) if text else _EMPTY
        return ResponseRun(
            response_id=new_id("resp"), turn=turn, kind=kind, text=text, audio=audio,
            timing=timing,
            first_audio_ms=timing.first_audio_ms if first_audio_ms is None else first_audio_ms,
        )

    def start_greeting(self) -> None:
        """Speak the scenario's greeting once per server (first session update)."""
        if self.scenario.greeting and not self.state.greeted:
            self.state.greeted = True
            timing = self.scenario.timing
            run = self.make_run(0, "greeting", self.scenario.greeting, timing)
            self.start_response(run, time.monotonic_ns() + int(timing.response_delay_ms * 1e6))

    def request_response(self) -> str | None:
        """The client asked for a response; return an error message if it cannot have one."""
        if self.active is not None and self.active.status == "in_progress":
            return (
                "Conversation already has an active response in progress: "
                f"{self.active.response_id}. Wait until the response is finished before "
                "creating a new one."
            )
        if self._tool_ready:
            done = self._tool_ready.pop(0)
            self._tool_ready.clear()
            tool = done.tool
            assert tool is not None
            timing = done.timing
            fa = tool.followup_first_audio_ms
            run = self.make_run(done.turn, "followup", tool.after_result, timing, fa)
        elif self._pending_turn is not None:
            turn, _ = self._pending_turn
            self._pending_turn = None
            maybe = self._turn_run(turn, "manual")
            assert maybe is not None
            run = maybe
        else:
            turn = max(0, self.peek_turn() - 1)
            run = self.make_run(turn, "default", "", self.timing_for(turn))
        self.start_response(run, time.monotonic_ns() + int(run.timing.response_delay_ms * 1e6))
        return None

    def on_tool_output(self, call_id: str) -> None:
        """The client sent a function_call_output item for ``call_id``."""
        run = self._awaiting_tool.pop(call_id, None) or self.state.awaiting_tool.get(call_id)
        self.state.awaiting_tool.pop(call_id, None)
        self.truth.record("function_call_output", run.turn if run else None, call_id=call_id,
                          known=run is not None)
        if run is not None:
            self._tool_ready.append(run)

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
        run.task = self.spawn(self._run_response(run, created_at_ns, prev))
        self._last_run_task = run.task
        if self.active is None or self.active.status != "in_progress":
            self.active = run

    async def _run_response(self, run: ResponseRun, created_at_ns: int,
                            prev: asyncio.Task[None] | None) -> None:
        if prev is not None and not prev.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(prev)
        self.active = run
        if await wait_or_cancel(created_at_ns, run.cancel):
            run.status = "cancelled"  # never created: the caller spoke before it began
            self.truth.record("response.skipped", run.turn, response_id=run.response_id,
                              reason=run.reason)
            return
        run.prev_item_id = self.last_item_id
        t_sent = await self.send_response_created(run)
        t0 = time.monotonic_ns() if t_sent is None else t_sent
        run.created = True
        if t_sent is not None:
            self.mark_created(run, t_sent)
        cancelled = False
        if run.text:
            cancelled = await self._speak(run, t0)
        if run.tool is not None and not cancelled:
            t = await self.send_function_call(run)
            self.truth.record("function_call_arguments.done", run.turn, t,
                              response_id=run.response_id, call_id=run.call_id,
                              name=run.tool.name, arguments=dict(run.tool.arguments))
            self._awaiting_tool[run.call_id] = run
            self.state.awaiting_tool[run.call_id] = run
            self.state.delivered.add(run.turn)
        run.status = "cancelled" if (cancelled or run.cancel.is_set()) else "completed"
        t_done = await self.send_response_done(run)
        if t_done is not None:
            self.truth.record("response.done", run.turn, t_done, response_id=run.response_id,
                              status=run.status, reason=run.reason)
        if self.active is run:
            self.active = None

    async def _speak(self, run: ResponseRun, t_created: int) -> bool:
        """Stream the spoken part; return True if it was cut by a cancel."""
        run.message_item_id = new_id("item")
        self.last_item_id = run.message_item_id
        await self.send_message_start(run)
        self.item_audio_ms[run.message_item_id] = 0.0
        chunk = max(1, int(round(run.timing.chunk_ms * OUT_RATE / 1000)))
        n_chunks = max(1, math.ceil(len(run.audio) / chunk))
        words = _word_deltas(run.text)
        words_sent = 0
        first_ns = t_created + int(run.first_audio_ms * 1e6)
        rf = run.timing.realtime_factor
        step_ns = 0 if rf <= 0 else int(run.timing.chunk_ms * 1e6 / rf)
        cancelled = False
        for i in range(n_chunks):
            if await wait_or_cancel(first_ns + i * step_ns, run.cancel):
                cancelled = True
                break
            due = math.ceil((i + 1) * len(words) / n_chunks)
            while words_sent < due:
                await self.send_text_delta(run, words[words_sent])
                run.transcript_sent += words[words_sent]
                words_sent += 1
            piece = run.audio[i * chunk : (i + 1) * chunk]
            t = await self.send_audio(run, piece)
            if i == 0:
                self.truth.record("first_audio", run.turn, t, response_id=run.response_id,
                                  item_id=run.message_item_id)
                self.state.delivered.add(run.turn)
            run.sent_samples += len(piece)
            self.item_audio_ms[run.message_item_id] = run.sent_ms
        if not cancelled and len(run.audio) == 0:
            for w in words:
                await self.send_text_delta(run, w)
                run.transcript_sent += w
        await self.send_message_end(run)
        self.truth.record("audio_sent", run.turn, response_id=run.response_id,
                          item_id=run.message_item_id, ms=run.sent_ms, total_ms=run.total_ms,
                          cancelled=cancelled)
        return cancelled


_EMPTY = np.zeros(0, dtype=np.int16)


def _word_deltas(text: str) -> list[str]:
    """Split a reply into transcript deltas: one word each, a space after all but the last."""
    words = text.split()
    return [w + " " for w in words[:-1]] + words[-1:]


async def sleep_until(deadline_ns: int) -> None:
    """Sleep until the monotonic clock reaches ``deadline_ns``."""
    delay = (deadline_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def wait_or_cancel(deadline_ns: int, cancel: asyncio.Event) -> bool:
    """Wait until ``deadline_ns``; return True at once if ``cancel`` is (or gets) set."""
    if cancel.is_set():
        return True
    delay = (deadline_ns - time.monotonic_ns()) / 1e9
    if delay <= 0:
        return False
    try:
        await asyncio.wait_for(cancel.wait(), delay)
    except TimeoutError:
        return False
    return True
