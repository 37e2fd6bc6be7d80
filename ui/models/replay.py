"""Feed a stored session back into the live-call view-models.

The store rebuilds the events (:func:`app.store.reader.session_events`) and the turn
records (:func:`app.store.reader.session_turns`); this module only applies them, in
order, as the live call did.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.events import EventBase
from app.metrics.records import TurnRecord
from ui.models.call_view import CallViewModel


def replay_into(
    vm: CallViewModel, events: Iterable[EventBase], turns: Iterable[TurnRecord] = ()
) -> int:
    """Feed stored events (and the session's turn records) to ``vm``; returns the number
    of events applied. Main thread only.
    """
    n = 0
    for ev in events:
        vm.apply(ev)
        n += 1
    for turn in turns:
        vm.turns.add_turn(turn)
    return n
