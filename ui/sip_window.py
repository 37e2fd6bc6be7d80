"""The SIP window: a :class:`ui.views.sip_panel.SipPanel` in its own top-level window.

The composition root creates one :class:`sip.controller.SipController` per process
(lazily, the first time the window opens; pjsua2 allows one endpoint per process) and
shuts it down at exit. Closing the window only hides it: the panel stays subscribed, so
registration and calls carry on and the panel is current when it is shown again.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMainWindow, QScrollArea, QWidget

from ui.protocols import SipControllerLike
from ui.views.sip_panel import SipPanel


class SipWindow(QMainWindow):
    """Account, registration, dial pad, incoming calls, quality, DTMF and listen-in.

    Main thread only.

    Args:
        controller: a :class:`~sip.controller.SipController` (or any
            :class:`~ui.protocols.SipControllerLike`).
        parent: the main window (the SIP window stays on top of it).
        remember: save and restore the account fields in the config folder.
    """

    def __init__(self, controller: SipControllerLike, parent: QWidget | None = None, *,
                 remember: bool = True, secrets: Any = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("voiceprobe — SIP")
        self.resize(460, 760)
        self.panel = SipPanel(controller, self, remember=remember, secrets=secrets)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.panel)
        self.setCentralWidget(scroll)

    def detach(self) -> None:
        """Unsubscribe the panel from the controller (before the window is destroyed)."""
        self.panel.close_panel()


def open_sip_window(parent: QWidget | None, controller: SipControllerLike) -> SipWindow:
    """Show the SIP window (one per parent: raised if already open)."""
    existing = getattr(parent, "_sip_window", None) if parent is not None else None
    if isinstance(existing, SipWindow):
        existing.show()
        existing.raise_()
        existing.activateWindow()
        return existing
    window = SipWindow(controller, parent)
    if parent is not None:
        parent._sip_window = window  # type: ignore[attr-defined]
    window.show()
    return window
