"""Change the tags of a session that is stored, or still being recorded.

Tags are set when a call starts (``CallSetup.tags``, ``--tag``) and may be edited later,
while the call runs or after it: :func:`set_session_tags` puts the new list where the
start-time tags are (``session.json``'s ``"tags"`` and the index row, whose tag columns
the coverage matrix, ``sessions list`` and reports read).

A session this process is still writing is changed through its
:class:`~app.store.writer.SessionWriter` (:meth:`~app.store.writer.SessionWriter.set_tags`),
so the writer's own later writes (``finish``) keep the new tags instead of putting back
the old ones. A session another live process is writing is refused: that writer would
overwrite the change.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from app.errors import ConfigError, StoreError
from app.store.index import SessionIndex
from app.store.tags import check_tags
from app.store.writer import (
    INDEX_FILE,
    SESSION_FILE,
    TURNS_FILE,
    atomic_write_text,
    dumps,
    open_writer,
)


def set_session_tags(
    session_dir: Path, tags: Iterable[str], index: SessionIndex | None = None
) -> list[str]:
    """Replace the tags of the session in ``session_dir`` (``<root>/sessions/<id>``) by
    ``tags`` and return them as stored.

    Checked first, like ``--tag`` (:func:`app.store.tags.check_tags`): a bad tag changes
    nothing. ``session.json`` is rewritten atomically, then the index row (``index``;
    default ``<root>/sessions.db``) is brought up to date.

    Threading: any thread; blocking file I/O (an ``fsync`` and an SQLite write).

    Raises:
        ConfigError: a bad tag, or no session in ``session_dir`` (one line).
        StoreError: the session is being recorded by another process, or a file or the
            index cannot be written.
    """
    checked = check_tags(list(tags))
    session_dir = Path(session_dir)
    writer = open_writer(session_dir)
    if writer is not None:
        writer.set_tags(checked)
        return checked
    meta_path = session_dir / SESSION_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no session at {session_dir}") from None
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {meta_path} ({exc})") from None
    if not isinstance(meta, dict):
        raise StoreError(f"{meta_path} is not a JSON object")
    if meta.get("status") == "running" and meta.get("pid") != os.getpid():
        from app.store.reader import writer_alive

        if writer_alive(meta):
            raise StoreError(
                f"session {session_dir.name} is being recorded by another voiceprobe "
                f"(pid {meta.get('pid')}): set its tags there"
            )
    meta["tags"] = checked
    atomic_write_text(meta_path, dumps(meta, indent=2) + "\n")
    if index is None:
        index = SessionIndex(session_dir.parent.parent / INDEX_FILE)
    turns = _stored_turns(session_dir)
    meta.setdefault("session_id", session_dir.name)
    index.upsert(meta, turns=turns)
    return checked


def _stored_turns(session_dir: Path) -> list[object] | None:
    """``turns.json`` as stored (``None`` when absent or unreadable: the index keeps the
    figures it has from ``session.json``'s summary)."""
    try:
        turns = json.loads((session_dir / TURNS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return turns if isinstance(turns, list) else None
