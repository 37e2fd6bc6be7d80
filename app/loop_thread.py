"""Stopping an asyncio loop that runs forever on a thread of its own, with its workers.

``loop.stop()`` alone leaves the loop's default executor (the ``asyncio.to_thread`` /
``run_in_executor`` worker threads) running for the rest of the process. Stop such a loop
with :func:`stop_loop_thread` instead.
"""

from __future__ import annotations

import asyncio
import threading


def stop_loop_thread(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread, timeout: float = 5.0
) -> None:
    """Shut down the loop's async generators and default executor, stop it, join, close.

    Safe to call from any thread but ``thread`` itself, and more than once (a closed loop
    is left alone). Each step waits at most ``timeout`` seconds; a worker stuck past it
    stays behind as a daemon thread, and the loop is closed only once ``thread`` ended.
    """
    if loop.is_closed():
        return
    if thread.is_alive():

        async def wind_down() -> None:
            await loop.shutdown_asyncgens()
            await loop.shutdown_default_executor()

        done = asyncio.run_coroutine_threadsafe(wind_down(), loop)
        try:
            done.result(timeout)
        except (TimeoutError, RuntimeError):
            done.cancel()  # stop the loop anyway
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
    if not thread.is_alive():
        loop.close()
