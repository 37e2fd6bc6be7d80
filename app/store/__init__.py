"""Sessions on disk: one folder per session plus a SQLite index (DESIGN.md "Sessions on
disk").
"""

from app.store.index import SessionIndex
from app.store.paths import config_dir, data_dir, new_session_id, sessions_dir
from app.store.reader import SessionRecord, load_session, recover_unfinished
from app.store.writer import SessionWriter

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
