"""Session writes on a thread of their own, so the bridge's loop never waits for the disk.

:class:`WriterThread` wraps a :class:`~app.store.writer.SessionWriter`. The loop thread
hands it events and turn lists and goes on at once; one writer thread does the file I/O
in the same order. Each event is still written and flushed on its own, so a crash loses
only the events not yet written: normally none or the one being written; behind a
stalled disk, the backlog, which the bounded queue caps. A disk that cannot keep up is
never absorbed silently: events beyond the bound are dropped, counted, and reported
(:meth:`WriterThread.problems`, ``events_dropped`` in ``session.json``'s summary).

Measured (tests/test_writer_thread.py): with every ``fsync`` taking 1 s, no caller frame
of a headless call reaches the provider more than 40 ms after its nominal stamp; with the
writes on the loop thread, caller frames were up to 1011 ms late.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.errors import StoreError
from app.events import EventBase
from app.store.writer import EVENTS_FILE, SessionWriter

T = TypeVar("T")

#: Events that may wait for the disk. About 40 s of the busiest event stream (agent audio
#: chunks carry their PCM, so the backlog stays within some 20 MB).
DEFAULT_MAX_PENDING = 4096


class _Turns:
    """Queue marker: write the latest turn list here (later lists replace earlier ones)."""


@dataclass(slots=True)
class _Call:
    """Queue item: run ``fn`` on the writer thread and hand its outcome to ``future``."""

    fn: Callable[[], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any] = field(repr=False)
    last: bool


_TURNS = _Turns()


class WriterThread:
    """Runs ``writer``'s disk writes on a daemon thread behind a bounded queue.

    Threading: :meth:`append_event`, :meth:`write_turns`, :meth:`problems` and the
    properties may be called from any thread and never block on the disk (a short lock
    guards the queue). Once wrapped, the writer is used only through this object (its own
    methods are locked, so :meth:`call` may run any of them on the writer thread), except
    :meth:`SessionWriter.set_tags`, which a tester's tag edit calls from its own thread
    (:func:`app.store.session_tags.set_session_tags`).

    Args:
        writer: an open session writer (its folder and ``session.json`` exist).
        max_pending: how many events may wait for the disk before new ones are dropped.
        on_error: called on the writer thread with the message of each write error of an
            event or of ``turns.json`` (hop to your own thread from there; must not block).
    """

    def __init__(
        self,
        writer: SessionWriter,
        max_pending: int = DEFAULT_MAX_PENDING,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be positive, got {max_pending}")
        self.writer = writer
        self._max_pending = max_pending
        self._on_error = on_error
        self._cond = threading.Condition()
        self._queue: deque[EventBase | _Turns | _Call] = deque()
        self._pending_events = 0
        self._turns: list[dict[str, Any]] | None = None
        self._closing = False
        self._dropped = 0
        self._errors: list[str] = []
        self._thread = threading.Thread(
            target=self._run, name=f"session-writer-{writer.session_id}", daemon=True
        )
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Events not written because the queue was full (or the writer was closing)."""
        return self._dropped

    @property
    def overflow(self) -> str | None:
        """The report of dropped events (None while none was dropped)."""
        with self._cond:
            if not self._dropped:
                return None
            return (
                f"the disk could not keep up: {self._dropped} events were not written to "
                f"{EVENTS_FILE} ({self._max_pending} were already waiting)"
            )

    def append_event(self, ev: EventBase) -> bool:
        """Queue ``ev`` for ``events.jsonl``; never blocks, never raises.

        Returns:
            False if the event was dropped: ``max_pending`` events are already waiting for
            the disk, or the session is being closed (:meth:`finish`, ``call(last=True)``).
        """
        with self._cond:
            if self._closing or self._pending_events >= self._max_pending:
                self._dropped += 1
                return False
            self._queue.append(ev)
            self._pending_events += 1
            self._cond.notify()
        return True

    def write_turns(self, turns: list[dict[str, Any]]) -> None:
        """Queue a rewrite of ``turns.json``; never blocks. Only the latest list waiting is
        written (each one is complete)."""
        with self._cond:
            if self._closing:
                return
            queued = self._turns is not None
            self._turns = list(turns)
            if not queued:
                self._queue.append(_TURNS)
                self._cond.notify()

    def problems(self) -> list[str]:
        """One line per kind of trouble so far: the first write error, and the events the
        queue dropped."""
        with self._cond:
            out: list[str] = []
            if self._errors:
                more = len(self._errors) - 1
                out.append(self._errors[0] + (f" (and {more} more write errors)" if more else ""))
        overflow = self.overflow
        return out + ([overflow] if overflow else [])

    async def call(self, fn: Callable[[], T], last: bool = False) -> T:
        """Run ``fn`` on the writer thread once everything queued before it is written, and
        return its result (or raise its exception); waits without blocking the loop.

        With ``last``, nothing queued later is accepted and the thread ends after ``fn``
        (use it for the call that closes the session). If the caller is cancelled while
        waiting, ``fn`` still runs.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._cond:
            if self._closing:
                raise StoreError(f"session {self.writer.session_id} is already closed")
            self._closing = last
            self._queue.append(_Call(fn, loop, future, last))
            self._cond.notify()
        return await future

    async def finish(
        self, status: str = "complete", summary: Mapping[str, Any] | None = None
    ) -> None:
        """Write everything queued, then close the session: ``SessionWriter.finish`` with
        ``summary`` plus ``events_dropped``. Waits without blocking the loop.

        Raises:
            StoreError: the session is closed already, or ``session.json`` or the index
                could not be updated.
        """

        def close() -> None:
            self.writer.finish(status, {**(summary or {}), "events_dropped": self.dropped})

        await self.call(close, last=True)

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                item = self._queue.popleft()
                turns: list[dict[str, Any]] | None = None
                if isinstance(item, _Turns):
                    turns, self._turns = self._turns, None
                elif isinstance(item, EventBase):
                    self._pending_events -= 1
            if isinstance(item, _Call):
                self._run_call(item)
                if item.last:
                    return
                continue
            try:
                if turns is not None:
                    self.writer.write_turns(turns)
                elif isinstance(item, EventBase):
                    self.writer.append_event(item)
            except StoreError as exc:
                self._failed(str(exc))
            except Exception as exc:  # a bug must not stop the thread: report it, go on
                what = "turns.json" if turns is not None else f"a {type(item).__name__} event"
                self._failed(f"cannot write {what} ({type(exc).__name__})")

    @staticmethod
    def _run_call(item: _Call) -> None:
        def settle(ok: bool, value: Any) -> None:
            if item.future.done():
                return  # the waiter was cancelled
            if ok:
                item.future.set_result(value)
            else:
                item.future.set_exception(value)

        try:
            outcome: tuple[bool, Any] = (True, item.fn())
        except Exception as exc:
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            item.loop.call_soon_threadsafe(settle, *outcome)

    def _failed(self, message: str) -> None:
        with self._cond:
            self._errors.append(message)
        if self._on_error is not None:
            self._on_error(message)
