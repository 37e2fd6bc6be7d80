"""Qt test helpers for the UI tests: offscreen platform and a fake controller.

Thread leaks are checked for every test by ``tests/conftest.py``.

Import it from a test module (``from tests.conftest_qt import ...``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from app.bridge.request import CallRequest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


class FakeController:
    """A :class:`ui.protocols.CallControllerLike` with no core.

    ``start_call`` replays ``script`` (a list of events) from a separate thread, as the
    core's asyncio thread would, through every subscribed callback.
    """

    def __init__(
        self,
        script: list[Any] | None = None,
        levels: tuple[float, float] = (-18.0, -30.0),
        fail_with: Exception | None = None,
    ) -> None:
        self.script = list(script or [])
        self._levels = levels
        self.fail_with = fail_with
        self.callbacks: list[Any] = []
        self.calls: list[tuple[str, Any]] = []
        self.thread: threading.Thread | None = None
        self.replayed = threading.Event()

    def subscribe(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def start_call(self, request: CallRequest) -> None:
        self.calls.append(("start_call", request))
        if self.fail_with is not None:
            raise self.fail_with
        self.thread = threading.Thread(target=self._replay, name="fake-core", daemon=True)
        self.thread.start()

    def _replay(self) -> None:
        for ev in self.script:
            for cb in self.callbacks:
                cb(ev)
        self.replayed.set()

    def key_host_to_confirm(self, request: CallRequest) -> str | None:
        return None

    def hangup(self) -> None:
        self.calls.append(("hangup", None))

    def set_mute(self, muted: bool) -> None:
        self.calls.append(("set_mute", muted))

    def set_push_to_talk_pressed(self, pressed: bool) -> None:
        self.calls.append(("ptt", pressed))

    def levels(self) -> tuple[float, float]:
        return self._levels



def main_window_with(qtbot: Any, events: list[Any]) -> tuple[Any, FakeController]:
    """The real main window (no settings, no devices), shown, over a
    :class:`FakeController` that plays ``events`` when a call starts."""
    from ui.app import build_main_window

    ctl = FakeController(events)
    win = build_main_window(ctl, devices=lambda: [], settings=False)
    qtbot.addWidget(win)
    win.show()
    return win, ctl


def shown_waterfall(qtbot: Any, turns: list[Any]) -> tuple[Any, Any]:
    """A 900×600 :class:`ui.views.waterfall.WaterfallView` on screen with ``turns`` added;
    returns (view, its TurnsModel)."""
    from ui.models.turns import TurnsModel
    from ui.views.waterfall import WaterfallView

    model = TurnsModel()
    view = WaterfallView(model)
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    for turn in turns:
        model.add_turn(turn)
    return view, model
