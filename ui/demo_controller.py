"""A controller that plays the scripted demo call (:mod:`ui.demo`) with no core."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ui.demo import demo_events


class DemoController:
    """Implements the main window's controller interface over :func:`demo_events`.

    ``start_call`` posts the whole script from a worker thread (as the core's thread
    would); levels are a fixed pair. Nothing here touches Qt.
    """

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Any], None]] = []
        self._done = threading.Event()
        self.muted = False

    def subscribe(self, callback: Callable[[Any], None]) -> None:
        self._subscribers.append(callback)

    def start_call(self, options: dict[str, Any]) -> None:
        self._done.clear()
        events = demo_events(time.monotonic_ns() - 30_000_000_000)
        threading.Thread(target=self._post, args=(events,), name="demo-core", daemon=True).start()

    def _post(self, events: list[Any]) -> None:
        for ev in events:
            for cb in self._subscribers:
                cb(ev)
        self._done.set()

    def wait_replayed(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def hangup(self) -> None:
        """Nothing to hang up: the script ends the call itself."""

    def set_mute(self, muted: bool) -> None:
        self.muted = muted

    def set_push_to_talk_pressed(self, pressed: bool) -> None:
        """Push-to-talk has no effect on a scripted call."""

    def levels(self) -> tuple[float, float]:
        return (-120.0 if self.muted else -24.0, -36.0)
