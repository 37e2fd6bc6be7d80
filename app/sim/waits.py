"""Waiting on the simulator's injected clock (the runner's only sleeps).

The deadline is read on the given :class:`app.clock.Clock`; the wait itself is an asyncio
sleep on the running loop.
"""

from __future__ import annotations

import asyncio

from app.clock import Clock


async def sleep_until(clock: Clock, deadline_ns: int) -> None:
    """Sleep until ``clock`` reaches ``deadline_ns``."""
    delay = (deadline_ns - clock.now_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


async def wait_or_cancel(clock: Clock, deadline_ns: int, cancel: asyncio.Event) -> bool:
    """Wait until ``clock`` reaches ``deadline_ns``; True at once if ``cancel`` is (or gets) set."""
    if cancel.is_set():
        return True
    delay = (deadline_ns - clock.now_ns()) / 1e9
    if delay <= 0:
        return False
    try:
        await asyncio.wait_for(cancel.wait(), delay)
    except TimeoutError:
        return False
    return True
