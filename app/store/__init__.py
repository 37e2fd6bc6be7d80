"""Sessions on disk: one folder per session plus a SQLite index
(docs/architecture.md#sessions-on-disk).

The names below are imported on first use (PEP 562), so a command that needs only the
index (``voiceprobe coverage``) does not pay for the writer's imports (keyring, events).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.store.index import SessionIndex
    from app.store.paths import config_dir, data_dir, new_session_id, sessions_dir
    from app.store.reader import SessionRecord, load_session, recover_unfinished
    from app.store.writer import SessionWriter

_WHERE = {
    "SessionIndex": "app.store.index",
    "SessionRecord": "app.store.reader",
    "SessionWriter": "app.store.writer",
    "config_dir": "app.store.paths",
    "data_dir": "app.store.paths",
    "load_session": "app.store.reader",
    "new_session_id": "app.store.paths",
    "recover_unfinished": "app.store.reader",
    "sessions_dir": "app.store.paths",
}

__all__ = [
    "SessionIndex",
    "SessionRecord",
    "SessionWriter",
    "config_dir",
    "data_dir",
    "load_session",
    "new_session_id",
    "recover_unfinished",
    "sessions_dir",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'app.store' has no attribute {name!r}")
