"""Ground truth: what the simulator really sent and received, and when.

Each record is a plain dict ``{"t_ns", "event", "turn", ...}``; ``t_ns`` is the
simulator's clock (``time.monotonic_ns()`` unless a test injects another) read immediately
before the send call (or on receipt), so it compares directly with the bridge's stamps.
Record kinds (``event``) and their fields:

- ``connection``: ``state`` ("open"/"close"), ``index`` (1-based), ``path``, ``model``,
  ``authorization`` (bool: a header was present; its value is never kept),
  ``credential_headers`` (the names of the key-carrying headers present), ``code``.
- ``speech_started``: ``item_id``, ``audio_start_ms`` (as sent), ``edge_ms`` (VAD edge,
  audio time), ``speech_start_t_ns`` (clock time of the edge sample).
- ``speech_stopped``: ``item_id``, ``audio_end_ms`` (as sent), ``edge_ms``,
  ``edge_sample`` (16 kHz samples since the first audio), ``speech_end_t_ns``.
- ``committed``: ``item_id``, ``manual`` (bool).
- ``transcript``: ``item_id``, ``transcript``.
- ``response.created``: ``response_id``, ``kind`` (turn/followup/greeting/manual/default).
- ``first_audio``: ``response_id``, ``item_id``.
- ``audio_sent``: ``response_id``, ``item_id``, ``ms`` (sent), ``total_ms`` (planned).
- ``function_call_arguments.done``: ``response_id``, ``call_id``, ``name``, ``arguments``.
- ``function_call_output``: ``call_id`` (received).
- ``truncate``: ``item_id``, ``audio_end_ms``, ``sent_ms``, ``ok`` (received).
- ``response.done``: ``response_id``, ``status``, ``reason``.
- ``usage``: ``response_id``, ``usage`` (the token counts the simulator billed for that
  response, exactly as sent: OpenAI ``response.usage`` / Gemini ``usageMetadata``).
- ``replayed_item``: ``item_type``, ``role``, ``text`` (received on a reconnection).
- ``fault``: ``action``, ``at``, ``code``.
- ``client_event``: ``type`` (other client events that matter: commit, clear, cancel,
  response.create, session.update).
- ``error_sent``: ``code``, ``message`` (Gemini: the close code and reason).
- ``interrupted``: ``response_id``, ``sent_ms`` (Gemini: ``serverContent.interrupted`` sent).
- ``resumption_update``: ``handle`` (Gemini: a ``sessionResumptionUpdate`` issued it).
- ``resumed``: ``handle``, ``index`` (Gemini: a connection's setup resumed with a handle
  this server issued).
- ``sim_error``: ``error`` (a bug in the simulator: a task died with this exception).

Gemini dialect: ``speech_started`` / ``speech_stopped`` / ``committed`` are the simulator's
VAD edges (nothing is sent for them); ``response.created`` is stamped at the first message
of the model turn; ``response.done`` at ``turnComplete``.

Thread-safety: records are appended from the simulator's loop thread and may be copied
from any thread (a lock guards the list and the file).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Any

from app.clock import MONOTONIC, Clock
from app.errors import ConfigError
from app.private_files import open_private


class TruthLog:
    """An append-only list of ground-truth records, optionally mirrored to a JSONL file.

    Args:
        path: if given, every record is appended to this file as one JSON line and
            flushed at once.
        clock: stamps records given no ``t_ns``.
    """

    def __init__(self, path: str | Path | None = None, clock: Clock = MONOTONIC) -> None:
        self._clock = clock
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            # Private (0600), as a session's files are: it holds the call's transcripts.
            try:
                self._file = open_private(path, "a", encoding="utf-8")  # closed in close()
            except OSError as exc:
                raise ConfigError(
                    f"cannot write the truth log {str(path)!r}: {exc.strerror or exc}"
                ) from None

    def record(
        self, event: str, turn: int | None, t_ns: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Append one record (stamped now unless ``t_ns`` is given) and return it."""
        rec: dict[str, Any] = {
            "t_ns": self._clock.now_ns() if t_ns is None else t_ns,
            "event": event,
            "turn": turn,
        }
        rec.update(fields)
        with self._lock:
            self._records.append(rec)
            if self._file is not None:
                self._file.write(json.dumps(rec, default=str) + "\n")
                self._file.flush()
        return rec

    @property
    def records(self) -> list[dict[str, Any]]:
        """A copy of the records so far (shallow: do not modify the dicts)."""
        with self._lock:
            return list(self._records)

    def close(self) -> None:
        """Close the mirror file, if any (records can still be appended in memory)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
