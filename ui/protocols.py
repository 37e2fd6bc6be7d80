"""What the windows need from the controllers they are bound to (structural types).

The real controllers are :class:`app.bridge.controller.CallController` and
:class:`sip.controller.SipController`; the tests and ``ui/bench.py`` pass small stand-ins
with the same methods. Callbacks given to ``subscribe`` run on the controller's thread
and must not block (the windows pass :meth:`ui.bus.EventBus.post`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from app.bridge.request import CallRequest
from app.events import EventBase
from sip.config import SipAccountConfig

#: Receives every event of the controller, on the controller's thread.
EventCallback = Callable[[EventBase], None]


class CallControllerLike(Protocol):
    """The calls of the main window (:class:`ui.main_window.MainWindow`).

    A controller may also have a ``data_root`` attribute (the data folder): the window
    reads it, and the settings set it, only where it exists.
    """

    def start_call(self, request: CallRequest) -> None:
        """Start the call ``request`` describes; failures arrive as events (a
        :class:`~app.errors.VoiceprobeError` raised here is shown too)."""

    def key_host_to_confirm(self, request: CallRequest) -> str | None:
        """The host the user must confirm before ``request`` may send it the API key,
        else ``None``."""

    def hangup(self) -> None:
        """End the running call (no-op when idle)."""

    def set_mute(self, muted: bool) -> None:
        """Mute or unmute the caller."""

    def set_push_to_talk_pressed(self, pressed: bool) -> None:
        """Push-to-talk: the talk key is held (``True``) or released."""

    def levels(self) -> tuple[float, float]:
        """Caller and agent level (dBFS); cheap, any thread."""

    def subscribe(self, callback: EventCallback) -> None:
        """Receive every event on the controller's thread."""


class SipControllerLike(Protocol):
    """The SIP phone of :class:`ui.views.sip_panel.SipPanel`; outcomes arrive as events
    (what the calls return is not used)."""

    def subscribe(self, callback: EventCallback) -> None:
        """Receive every SIP event, on any thread."""

    def unsubscribe(self, callback: EventCallback) -> None:
        """Stop receiving events."""

    def apply_account(self, cfg: SipAccountConfig) -> object:
        """(Re-)register the account."""

    def dial(self, uri: str) -> object:
        """Call ``uri``."""

    def answer(self) -> object:
        """Answer the ringing call."""

    def reject(self, code: int = 486) -> None:
        """Reject the ringing call with SIP status ``code``."""

    def hangup(self) -> None:
        """End the current SIP call."""

    def send_dtmf(self, digits: str) -> object:
        """Send DTMF ``digits`` in the current call."""

    def set_listen(self, on: bool) -> None:
        """Hear the call on the speaker (listen-in) or not."""
