"""What a call is given and what it gives back: :class:`BridgeOptions` and :class:`CallResult`.

Plain data shared by the bridge core (:mod:`app.bridge.call`), the session wiring
(:mod:`app.bridge.session`), the controllers and the CLIs; importing it pulls in no
asyncio or audio machinery. :mod:`app.bridge.call` re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from app.bridge.stats import BridgeStats
from app.events import EventBase

#: Where a call's events go (store, UI, CLI): called on the loop thread, must not block.
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
    """What a finished call produced: whether it ended well and why, its turn records (the
    JSON shape of :meth:`app.metrics.timeline.Timeline.to_list`), its errors
    (``t_ns``/``code``/``message``/``fix`` each) and the bridge's counters."""

    ok: bool
    reason: str
    turns: list[dict[str, Any]]
    errors: list[dict[str, Any]] = field(default_factory=list)
    stats: BridgeStats | None = None
