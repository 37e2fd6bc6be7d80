"""Turn stored event dicts (``events.jsonl`` lines) back into events for the view-models.

A stored event is ``{"t_ns", "kind", <fields>..., "raw"?}`` as written by
:func:`app.events.event_to_dict`: audio payloads became ``<field>_bytes`` counts and
tuples became lists. Unknown kinds and unknown fields are skipped (a newer writer must not
break an older reader).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from app import events as E
from ui.models.call_view import CallViewModel

_KINDS: dict[str, type[E.Event]] = {
    cls.__name__: cls
    for cls in vars(E).values()
    if isinstance(cls, type) and issubclass(cls, E.Event) and cls is not E.Event
}


def event_from_dict(d: dict[str, Any]) -> E.Event | None:
    """Rebuild one event from its stored dict; ``None`` when the kind is unknown or a
    required field is missing. Audio is restored as silence of the stored length.
    """
    cls = _KINDS.get(str(d.get("kind", "")))
    if cls is None or not isinstance(d.get("t_ns"), int):
        return None
    kwargs: dict[str, Any] = {"t_ns": d["t_ns"]}
    if isinstance(d.get("raw"), dict):
        kwargs["raw"] = d["raw"]
    for f in dataclasses.fields(cls):
        if f.name in ("t_ns", "raw"):
            continue
        if f.name in d:
            value = d[f.name]
            kwargs[f.name] = (
                tuple(value) if isinstance(value, list) and f.name.endswith("ids") else value
            )
        elif f"{f.name}_bytes" in d and isinstance(d[f"{f.name}_bytes"], int):
            kwargs[f.name] = bytes(max(0, d[f"{f.name}_bytes"]))
    try:
        return cls(**kwargs)
    except TypeError:
        return None


def replay_into(
    vm: CallViewModel, event_dicts: Iterable[dict[str, Any]], turns: Iterable[dict[str, Any]] = ()
) -> int:
    """Feed stored events (and the session's ``turns.json``) to ``vm``; returns the number
    of events applied. Main thread only.
    """
    n = 0
    for d in event_dicts:
        ev = event_from_dict(d) if isinstance(d, dict) else None
        if ev is not None:
            vm.apply(ev)
            n += 1
    for turn in turns:
        if isinstance(turn, dict):
            vm.turns.add_turn(turn)
    return n
