"""The simulator's fault plan: which scripted fault fires, and when.

Pure: :class:`FaultPlan` is asked before each outgoing message which event faults fire
(each fires once per server, so a reconnecting client that sends the same utterance again
is not dropped again at the same point), and :func:`timed_schedule` lists the faults that
fire at a time after the connection opened. Applying a fault (sending, stalling, closing)
is the runner's job (:mod:`app.sim.engine`).
"""

from __future__ import annotations

from app.sim.scenario import Fault

#: Session-expired message of the real service ("N minutes" is filled in).
SESSION_EXPIRED_MESSAGE = "Your session hit the maximum duration of {minutes} minutes."


class FaultPlan:
    """Decides which faults fire before a given outgoing event (each fires once)."""

    def __init__(self, faults: tuple[Fault, ...]) -> None:
        self.faults = faults
        self._counts = [0] * len(faults)
        self._fired = [False] * len(faults)

    def at_event(self, name: str, turn: int | None) -> list[Fault]:
        """The faults that fire before sending an event named ``name`` in ``turn``.

        A fault with ``nth`` fires at its nth matching event; each fires at most once.
        """
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
        """The faults that fire at a time (``at: time``)."""
        return [f for f in self.faults if f.at == "time"]

    def pong_delay_ms(self) -> float:
        """How long the server delays its pongs (the largest ``slow_pong``), 0 if none."""
        return max((f.ms for f in self.faults if f.action == "slow_pong"), default=0.0)


def timed_schedule(
    plan: FaultPlan, session_limit_ms: float | None
) -> list[tuple[float, Fault | None]]:
    """The timed faults of a connection in firing order, as ``(after_ms, fault)``.

    A ``None`` fault is the session limit (the service's ``session_expired`` close).
    """
    out: list[tuple[float, Fault | None]] = [(f.after_ms or 0.0, f) for f in plan.timed()]
    if session_limit_ms is not None:
        out.append((session_limit_ms, None))
    return sorted(out, key=lambda p: p[0])


def session_expired_message(after_ms: float) -> str:
    """The service's session-expired message for a limit of ``after_ms``."""
    return SESSION_EXPIRED_MESSAGE.format(minutes=max(1, int(round(after_ms / 60000))))
