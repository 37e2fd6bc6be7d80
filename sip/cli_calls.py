"""The calls of one ``voiceprobe sip`` command: which incoming calls it takes
(:class:`Gate`), what it prints of them, a call cut short by a signal included
(:class:`Calls`), and how it runs them (:func:`run_calls`)."""

from __future__ import annotations

import asyncio
import queue
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import eventloop
from app.cli_output import print_summary
from app.cli_support import cancel_on_signals, interrupted_summary
from app.textsafe import printable


def status(line: str) -> None:
    """One status line on stderr."""
    print(f"voiceprobe: {line}", file=sys.stderr, flush=True)


class Gate:
    """Which incoming calls to take: at most ``concurrent`` at a time, ``limit`` in all.

    :meth:`decide` runs on the SIP thread (it must not block); :meth:`next_call`,
    :meth:`release` and :meth:`forget` on other threads. The counts are guarded by a lock
    held for a few instructions only (never on the media path).
    """

    def __init__(self, limit: int, concurrent: int = 1) -> None:
        self.limit = limit
        self.concurrent = concurrent
        self.taken = 0
        self.active = 0
        self.turned_away = 0
        self._lock = threading.Lock()
        self._accepted: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def decide(self, call: Any) -> int:
        """SIP thread: ring (180) a call we take, 486 when busy or done."""
        with self._lock:
            if self.active >= self.concurrent or self.taken >= self.limit:
                self.turned_away += 1
                return 486
            self.active += 1
            self.taken += 1
        self._accepted.put(call)
        return 180  # ring; the bridge answers once the agent is ready

    def next_call(self, timeout: float) -> Any:
        """The next call taken by :meth:`decide`, or None after ``timeout`` (blocks)."""
        try:
            return self._accepted.get(timeout=timeout)
        except queue.Empty:
            return None

    def release(self) -> None:
        """A taken call has ended: make room for another."""
        with self._lock:
            self.active -= 1

    def forget(self) -> None:
        """A taken call ended before it was bridged: it does not count."""
        with self._lock:
            self.active -= 1
            self.taken -= 1


class Calls:
    """The sessions of the command's calls, until each one's summary is printed: a
    signal that cuts calls short prints the turns they finished, read back from their
    session folders, as ``call`` does (:func:`~app.cli_support.interrupted_summary`)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._open: dict[str, Path] = {}

    def started(self, session_id: str, folder: Any) -> None:
        """``bridge_sip_call``'s ``on_session``."""
        self._open[session_id] = Path(folder)

    def print(self, summary: dict[str, Any]) -> None:
        """Print a finished call's summary."""
        self._open.pop(str(summary.get("session_id")), None)
        print_summary(summary, self.as_json)

    def print_interrupted(self) -> None:
        """Print what the calls cut short finished (their sessions are closed out)."""
        for session_id, folder in sorted(self._open.items()):
            kept = interrupted_summary(folder)
            if kept is not None:
                print_summary(kept, self.as_json)
            status(f"session {printable(session_id)} in {printable(folder)}")
        self._open.clear()


def run_calls(main: Callable[[], Any], calls: Calls) -> int:
    """Run the command's coroutine; SIGINT/SIGTERM cancel it (calls are hung up, and
    what they finished is printed)."""

    async def guarded() -> int:
        received = cancel_on_signals()
        try:
            return int(await main())
        except asyncio.CancelledError:
            sig = received[0] if received else signal.SIGINT
            calls.print_interrupted()
            status(f"interrupted by {sig.name}")
            return 128 + int(sig)  # as `call`: 130 for SIGINT, 143 for SIGTERM

    return eventloop.run(guarded())
