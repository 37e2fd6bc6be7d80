"""The session list's fields (``LIST_KEYS``) are what ``SessionIndex.list`` rows carry."""

from __future__ import annotations

from pathlib import Path

from app.store.index import LIST_KEYS, SessionIndex


def test_list_keys_are_fields_of_a_listed_row(tmp_path: Path) -> None:
    index = SessionIndex(tmp_path / "index.sqlite")
    index.upsert({"id": "s1", "started_at": "2026-01-01T00:00:00", "provider": "sim",
                  "status": "completed"})
    (row,) = index.list()
    assert len(set(LIST_KEYS)) == len(LIST_KEYS) == 10
    assert set(LIST_KEYS) <= set(row)
    assert row["id"] == "s1" and row["provider"] == "sim"
