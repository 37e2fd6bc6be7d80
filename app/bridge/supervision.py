"""Session continuity of one call: when a provider session ends, open the next one and
restore the conversation in it.

A call outlives its provider sessions. A session ends on purpose (a ``goAway``, a
renewable error such as ``session_expired``, a rollover before the server's own limit) or
by accident (the socket drops). Either way :class:`Supervisor` dials a fresh session with
backoff, resuming the old one where the provider offered a handle, replays the finished
conversation into it (the rule is in :mod:`app.bridge.recovery`), re-sends an utterance
the old session never answered, and lets caller audio flow again. A close code that a new
session would meet again (a refusal, a message over the size limit) fails the call
instead, and a stream that *is* the call (``resumable`` off, a Twilio stream) ends it.

The supervisor reads only events and the protocol's capability attributes, never a vendor
name: a new provider gets continuity by emitting the same events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.audio.pcm import FRAME_MS
from app.bridge.recovery import (
    RESEND_PADDING_SAMPLES,
    AudioHistory,
    Backoff,
    build_history,
    needs_response,
    turn_unanswered,
)
from app.errors import ProviderError
from app.events import (
    ConnectionState,
    Event,
    GoAway,
    Notice,
    Reconnected,
    ResumptionUpdate,
    SessionConfigured,
)
from app.providers.base import Provider

if TYPE_CHECKING:
    from app.bridge.call import Bridge

#: Provider errors after which the call goes on in a new session instead of failing.
RENEWABLE_ERRORS = frozenset({"session_expired"})
#: Close codes after which a new session would fare no better, with the error code the
#: call fails with: a refusal (policy / authentication), or a server message over the size
#: limit (1009, set by the client when it refuses the message; it would come again).
FATAL_CLOSE_CODES = {
    1008: "connection_refused",
    4001: "connection_refused",
    4003: "connection_refused",
    1009: "message_too_big",
}

#: Builds a fresh (unconnected) provider session, given the resumption handle to resume
#: the old one with (``None``: start a new session and replay the conversation).
Reconnect = Callable[[str | None], Provider]


class _Outage:
    """A session that ended and has not been replaced by a restored one yet."""

    __slots__ = ("attempts", "dropped_ns", "reason", "resumed")

    def __init__(self, reason: str, dropped_ns: int, attempts: int, resumed: bool) -> None:
        self.reason = reason
        self.dropped_ns = dropped_ns
        self.attempts = attempts
        self.resumed = resumed


class Supervisor:
    """Keeps one call going across provider sessions (loop thread only).

    Args:
        bridge: the call whose sessions this supervises; the supervisor swaps
            ``bridge.provider`` for each new session.
        reconnect: builds a fresh session; ``None``: the first drop ends the call.

    Attributes:
        online: set while a configured session takes caller audio and tool results.
        history: caller audio kept for re-sending an unanswered utterance.
        utterance_start: VAD sample where the caller's current utterance began, or
            ``None`` before the first one.
        session_index: 1 for the first session, counting up with each new one.
    """

    def __init__(self, bridge: Bridge, reconnect: Reconnect | None) -> None:
        self._bridge = bridge
        self._reconnect = reconnect
        options = bridge.options
        self.online = asyncio.Event()
        self.history = AudioHistory(int(options.resend_max_s * 1000 / FRAME_MS))
        self.utterance_start: int | None = None
        self.session_index = 1
        self._started_ns = 0
        self._planned_close: str | None = None
        self._closed: ConnectionState | None = None
        self._handle: str | None = None
        self._outage: _Outage | None = None
        self._backoff = Backoff(options.reconnect_base_ms, options.reconnect_cap_ms)

    # -- what the events say ----------------------------------------------------------------

    def on_event(self, ev: Event) -> None:
        """Follow the current session through its events (after the bridge saw them)."""
        if isinstance(ev, SessionConfigured):
            if self._outage is not None:
                self._bridge.spawn(self._restore(), "restore")
            elif not self.online.is_set():
                self.go_online(ev.t_ns)
        elif isinstance(ev, GoAway):
            self.end_session("goAway")
        elif isinstance(ev, ResumptionUpdate):
            if ev.resumable and ev.handle:
                self._handle = ev.handle
        elif isinstance(ev, ConnectionState) and ev.state in ("closed", "failed"):
            self._closed = ev

    def renew(self, code: str) -> bool:
        """A provider error with ``code`` came: go on in a new session if the error is
        one a new session cures and a new session can be made. True if so."""
        if code in RENEWABLE_ERRORS and self._reconnect is not None:
            self.end_session(code)
            return True
        return False

    def go_online(self, t_ns: int) -> None:
        """The first session is configured at ``t_ns``: caller audio may flow."""
        self._started_ns = t_ns
        self.online.set()

    def rollover_due(self, now_ns: int) -> bool:
        """True when the session has run ``session_max_s`` and should be replaced at
        the next turn boundary (the caller checks that the agent is idle)."""
        limit = self._bridge.options.session_max_s
        return (
            limit is not None
            and self.online.is_set()
            and now_ns - self._started_ns >= limit * 1e9
        )

    def end_session(self, reason: str) -> None:
        """Close the current provider session on purpose; the pump opens the next one."""
        if self._planned_close is None:
            self._planned_close = reason
            self.online.clear()
            self._bridge.spawn(self._bridge.provider.close(), "close-session")

    @property
    def _close_detail(self) -> str:
        closed = self._closed
        return f"{closed.state}: {closed.detail}" if closed is not None else ""

    def _fatal_code(self) -> str | None:
        """The error code when the session closed with a code in
        :data:`FATAL_CLOSE_CODES`, else ``None`` (a drop to recover from)."""
        code = self._closed.close_code if self._closed is not None else None
        return FATAL_CLOSE_CODES.get(code) if code is not None else None

    # -- after a session ended --------------------------------------------------------------

    async def session_ended(self) -> bool:
        """The current session's event stream ended. Open the next one; True if there is
        a new session to pump events from, False when the call is over (ended or failed).
        """
        bridge = self._bridge
        self.online.clear()
        if bridge.stopping:
            return False
        if not bridge.provider.protocol.resumable:
            # The stream is the call (Twilio): its end ends the call, no new session.
            if self._closed is not None and self._closed.state == "closed":
                bridge.hangup("agent_hangup")
            else:
                bridge.abort("connection_closed", f"the agent stream {self._close_detail}")
            return False
        if self._reconnect is None or bridge.options.reconnect_attempts <= 0:
            code = self._fatal_code() or "connection_closed"
            bridge.abort(code, f"the provider connection {self._close_detail}")
            return False
        return await self._new_session(self._reconnect)

    async def _new_session(self, reconnect: Reconnect) -> bool:
        """Open a fresh provider session after the old one ended; False if none could be
        opened (the call then fails).

        A session that dies before it was restored counts as a failed attempt of the same
        outage, so backoff and the attempt limit hold even when every dial succeeds.
        """
        bridge = self._bridge
        options = bridge.options
        if self._outage is not None:  # the last new session never got going
            reason, dropped, done = (
                self._outage.reason,
                self._outage.dropped_ns,
                self._outage.attempts,
            )
            self._outage = None
        else:
            reason = self._planned_close or self._close_detail or "connection lost"
            dropped, done = bridge.clock.now_ns(), 0
            self._backoff = Backoff(options.reconnect_base_ms, options.reconnect_cap_ms)
            bridge.emit(
                ConnectionState(
                    t_ns=dropped, provider=bridge.provider.name, state="reconnecting", detail=reason
                )
            )
        self._planned_close = None
        bridge.close_open_responses("connection_lost")
        fatal = self._fatal_code()
        if fatal is not None:
            bridge.abort(fatal, f"the provider connection {self._close_detail}")
            return False
        handle = self._handle
        with contextlib.suppress(Exception):
            await bridge.provider.close()
        last = self._close_detail
        for attempt in range(done + 1, options.reconnect_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._backoff.next_s())
            if bridge.stopping:
                return False
            fresh = reconnect(handle)
            try:
                await fresh.connect()
            except ProviderError as exc:
                last = str(exc)
                bridge.emit(
                    Notice(
                        t_ns=bridge.clock.now_ns(),
                        level="warning",
                        message=f"reconnect attempt {attempt} failed: {exc}",
                    )
                )
                if not exc.retryable:
                    break
                continue
            bridge.provider = fresh
            self.session_index += 1
            self._outage = _Outage(reason, dropped, attempt, bool(handle))
            return True
        bridge.abort("reconnect_failed", f"no new session after the drop ({reason}): {last}")
        return False

    async def _restore(self) -> None:
        """The new session accepted its configuration: restore the conversation, then let
        caller audio flow again (the rule is in app/bridge/recovery.py)."""
        bridge = self._bridge
        outage = self._outage
        assert outage is not None
        self._outage = None
        provider = bridge.provider
        turn = bridge.timeline.current
        resend = turn_unanswered(turn) and self.utterance_start is not None
        try:
            replay = provider.protocol.replay(build_history(bridge.timeline, skip_current=resend))
            await provider.send(replay)
            if resend:
                start = max(0, (self.utterance_start or 0) - RESEND_PADDING_SAMPLES)
                sent_to = -1
                while True:
                    frames = [f for f in self.history.since(start) if f[0] > sent_to]
                    if not frames:
                        break
                    for pos, pcm in frames:
                        await provider.send_audio(pcm)
                        sent_to = pos
            elif needs_response(turn):
                await provider.send(provider.protocol.respond())
        except ProviderError:
            return  # this session died too: the pump opens another one
        now = bridge.clock.now_ns()
        gap_ms = (now - outage.dropped_ns) // 1_000_000
        self._started_ns = now
        self.online.set()
        bridge.emit(
            Reconnected(
                t_ns=now,
                provider=provider.name,
                reason=outage.reason,
                dropped_ns=outage.dropped_ns,
                attempts=outage.attempts,
                session_index=self.session_index,
                replayed_items=len(replay),
                replayed_turn=resend,
                resumed=outage.resumed,
            )
        )
        bridge.emit(
            ConnectionState(
                t_ns=now,
                provider=provider.name,
                state="connected",
                detail=f"session {self.session_index}, {gap_ms} ms after the drop",
            )
        )
