"""Event loops whose timers wake on time, to the tenth of a millisecond.

asyncio's default selector on Linux waits in ``epoll_wait``, whose timeout is whole
milliseconds rounded up: a timer due in 19.3 ms fires after 20 ms or more. The bridge
wakes once per 20 ms caller frame, so that rounding alone made every frame up to a
millisecond late (the send delay's p95 was about 2.4 ms, measured with
``python -m app.bench.bridge_load``). :class:`PreciseEpollSelector` keeps epoll for the
sockets but sleeps in ``select()`` on the epoll descriptor itself, whose timeout has
microsecond resolution, then collects the ready events with a zero-timeout
``epoll_wait``: the same events, one extra system call per wake-up, a wake-up on time
(send p95 about 1 ms on the same benchmark).

Every loop that runs a call is made here (:func:`new_event_loop`, :func:`run`).
"""

from __future__ import annotations

import asyncio
import select
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: ``select()`` takes descriptors below this number only.
_FD_SETSIZE = 1024

_Epoll: Any = getattr(selectors, "EpollSelector", None)


if _Epoll is not None:

    class PreciseEpollSelector(_Epoll):  # type: ignore[misc]
        """An epoll selector whose timeouts have microsecond resolution (Linux)."""

        def select(
            self, timeout: float | None = None
        ) -> list[tuple[selectors.SelectorKey, int]]:
            fd = self.fileno()
            if timeout is not None and timeout > 0 and fd < _FD_SETSIZE:
                try:
                    select.select([fd], [], [], timeout)
                except InterruptedError:
                    pass
                timeout = 0
            ready: list[tuple[selectors.SelectorKey, int]] = super().select(timeout)
            return ready


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop with precise timers where the platform has epoll; asyncio's
    default loop elsewhere."""
    if _Epoll is None:
        return asyncio.new_event_loop()
    return asyncio.SelectorEventLoop(PreciseEpollSelector())


def run(coro: Coroutine[Any, Any, T]) -> T:
    """:func:`asyncio.run` on a loop from :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)
