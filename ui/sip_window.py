"""The SIP window: a :class:`ui.views.sip_panel.SipPanel` and a probe pad in tabs of their
own top-level window.

The composition root creates one :class:`sip.controller.SipController` per process
(lazily, the first time the window opens; pjsua2 allows one endpoint per process) and
shuts it down at exit. Closing the window only hides it: the panel stays subscribed, so
registration and calls carry on and the panel is current when it is shown again.

The **Probe pad** tab is a :class:`~ui.views.probe_pad.ProbePad` over the same pad folder
as the main window's; its **Play** mixes a probe into the bridged SIP call as the caller
(the controller's ``caller_mix``). When the call ends the played probes are scored
against its turns and filed as that session's automatic verdicts
(:meth:`ProbePad.score_call`), in the data folder that holds the session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMainWindow, QScrollArea, QTabWidget, QWidget

from app.audio.callermix import CallerMix
from app.events import CallEnded, CallStarted, EventBase, TurnCompleted
from app.probes.pad import PAD_FOLDER
from ui.protocols import SipControllerLike
from ui.views.probe_pad import ProbePad
from ui.views.sip_panel import SipPanel


class SipWindow(QMainWindow):
    """Account, registration, dial pad, incoming calls, quality, DTMF and listen-in; and
    the probe pad for the SIP call.

    Main thread only.

    Args:
        controller: a :class:`~sip.controller.SipController` (or any
            :class:`~ui.protocols.SipControllerLike`; the pad plays only where it also has
            ``caller_mix()``).
        parent: the main window (the SIP window stays on top of it).
        remember: save and restore the account fields in the config folder.
        secrets: see :class:`~ui.views.sip_panel.SipPanel`.
        pad_folder: the probe pad's folder, or what gives it; default the parent's data
            folder's ``probes`` (the main window's pad), else the user data folder's.
    """

    def __init__(
        self,
        controller: SipControllerLike,
        parent: QWidget | None = None,
        *,
        remember: bool = True,
        secrets: Any = None,
        pad_folder: Path | Callable[[], Path] | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("voiceprobe — SIP")
        self.resize(460, 760)
        self.panel = SipPanel(controller, self, remember=remember, secrets=secrets)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.panel)
        self.probe_pad = ProbePad(pad_folder or _pad_folder(parent), self._caller_mix, self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(scroll, "Phone")
        pad_tab = self.tabs.addTab(self.probe_pad, "Probe pad")
        self.tabs.setTabToolTip(pad_tab, "Probes to play into the SIP call as the caller")
        self.setCentralWidget(self.tabs)
        # The bridged call's session, for scoring the pad when it ends.
        self._session_id = ""
        self._session_dir = ""
        self._turns: dict[int, dict[str, Any]] = {}
        self.panel.bus.event.connect(self._core_event)

    def _caller_mix(self) -> CallerMix | None:
        get = getattr(self.controller, "caller_mix", None)
        mix = get() if callable(get) else None
        return mix if isinstance(mix, CallerMix) else None

    def _core_event(self, ev: EventBase) -> None:
        """Main thread (the panel's bus): follow the bridged call for the pad."""
        if isinstance(ev, CallStarted):
            self._session_id, self._session_dir, self._turns = ev.session_id, ev.session_dir, {}
            self.probe_pad.set_in_call(True)
        elif isinstance(ev, TurnCompleted):
            self._turns[ev.turn.index] = ev.turn.to_dict()  # a re-sent turn replaces its own
        elif isinstance(ev, CallEnded):
            self.probe_pad.set_in_call(False)
            sid, folder = self._session_id, self._session_dir
            turns = [self._turns[i] for i in sorted(self._turns)]
            self._session_id, self._session_dir, self._turns = "", "", {}
            if sid and folder:
                # The data folder that holds the session (<root>/sessions/<id>).
                self.probe_pad.score_call(Path(folder).parent.parent, sid, turns)

    def detach(self) -> None:
        """Unsubscribe the panel from the controller (before the window is destroyed)."""
        self.panel.close_panel()


def _pad_folder(parent: QWidget | None) -> Callable[[], Path]:
    """The pad folder the main window ``parent`` uses (its ``data_root()``), else the user
    data folder's; asked each time (the data folder may change)."""
    root = getattr(parent, "data_root", None)

    def folder() -> Path:
        if callable(root):
            return Path(root()) / PAD_FOLDER
        from app.store.paths import data_dir

        return data_dir() / PAD_FOLDER

    return folder


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
