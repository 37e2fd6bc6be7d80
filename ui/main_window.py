"""The main window: profile, devices, call controls, and the live views of one call.

It talks to the core only through a *controller* (duck-typed; the real one lives in
``app/bridge``)::

    start_call(options: dict) -> None   # profile, input_device, output_device,
                                        # mute, push_to_talk, half_duplex
    hangup() -> None
    set_mute(muted: bool) -> None
    set_push_to_talk_pressed(pressed: bool) -> None
    levels() -> tuple[float, float]     # caller, agent dBFS; cheap, any thread
    subscribe(callback) -> None         # callback(ev) runs on the core thread

Status and errors come back as events (``Notice``, ``ProviderErrorEvent``, ``CallEnded``);
a :class:`~app.errors.VoiceprobeError` raised by ``start_call`` is shown in the banner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.errors import VoiceprobeError
from ui.bus import EventBus
from ui.levels import LevelPump
from ui.models.call_view import CallViewModel
from ui.views.event_inspector import EventInspector
from ui.views.level_meters import LevelMeters
from ui.views.profile_editor import ProfileEditor
from ui.views.tool_calls_view import ToolCallsView
from ui.views.transcript_view import TranscriptView
from ui.views.vad_lane_view import VadLaneView
from ui.views.waterfall import WaterfallView

STATE_COLORS = {
    "idle": ("#e8eaed", "#3c4043"),
    "connecting": ("#fef7e0", "#b06000"),
    "reconnecting": ("#fef7e0", "#b06000"),
    "connected": ("#e6f4ea", "#137333"),
    "closed": ("#e8eaed", "#3c4043"),
    "failed": ("#fce8e6", "#c5221f"),
}


def _fit(label: QLabel, text: str) -> None:
    """Set a status-bar label's text and keep it wide enough to show all of it."""
    label.setText(text)
    label.setMinimumWidth(label.sizeHint().width())


def _default_devices() -> list[Any]:
    from app.audio.deviceport import list_devices

    return list_devices()


class MainWindow(QMainWindow):
    """The desktop tester's window. Main thread only.

    Args:
        controller: the core's facade (see the module docstring).
        devices: returns the audio devices (``app.audio.deviceport.list_devices`` by
            default; objects with ``name``, ``host_api``, ``max_input_channels``,
            ``max_output_channels``). Errors leave the pickers at "System default".
        open_settings / open_history: optional callbacks for the menu entries (the
            composition root wires them).
    """

    def __init__(
        self,
        controller: Any,
        devices: Callable[[], list[Any]] | None = None,
        open_settings: Callable[[QWidget], None] | None = None,
        open_history: Callable[[QWidget], None] | None = None,
    ) -> None:
        super().__init__()
        self.controller = controller
        #: Merged into every call's options (the composition root's demo sets a provider).
        self.extra_options: dict[str, Any] = {}
        self.setWindowTitle("voiceprobe")
        self.resize(1360, 860)
        self.in_call = False
        self.vm = CallViewModel(self)
        self.bus = EventBus(self)
        self.bus.event.connect(self.vm.apply)
        self.pump = LevelPump(controller.levels, self)

        # --- sidebar ---------------------------------------------------------------------
        self.profile_editor = ProfileEditor(self)
        profile_box = QGroupBox("Agent profile", self)
        QVBoxLayout(profile_box).addWidget(self.profile_editor)

        audio_box = QGroupBox("Audio", self)
        audio_form = QFormLayout(audio_box)
        self.input_device = QComboBox(audio_box)
        self.output_device = QComboBox(audio_box)
        for combo in (self.input_device, self.output_device):
            combo.setMinimumContentsLength(14)
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
        audio_form.addRow("Microphone", self.input_device)
        audio_form.addRow("Speaker", self.output_device)
        self.mute = QCheckBox("Mute mic", audio_box)
        self.mute.toggled.connect(self._mute_toggled)
        self.push_to_talk = QCheckBox("Push to talk", audio_box)
        self.push_to_talk.toggled.connect(self._ptt_toggled)
        self.half_duplex = QCheckBox("Half duplex", audio_box)
        self.half_duplex.setToolTip("Mute the mic while agent audio plays (no echo canceller)")
        checks = QHBoxLayout()
        for w in (self.mute, self.push_to_talk, self.half_duplex):
            checks.addWidget(w)
        audio_form.addRow(checks)
        self.talk_button = QPushButton("Hold to talk", audio_box)
        self.talk_button.setEnabled(False)
        self.talk_button.pressed.connect(lambda: self.controller.set_push_to_talk_pressed(True))
        self.talk_button.released.connect(lambda: self.controller.set_push_to_talk_pressed(False))
        audio_form.addRow(self.talk_button)
        self.meters = LevelMeters(audio_box)
        audio_form.addRow(self.meters)

        call_box = QGroupBox("Call", self)
        call_layout = QHBoxLayout(call_box)
        self.call_button = QPushButton("Call", call_box)
        self.call_button.setObjectName("callButton")
        self.call_button.setShortcut(QKeySequence("Ctrl+Return"))
        self.call_button.clicked.connect(self.toggle_call)
        self.state_label = QLabel(call_box)
        self.state_label.setObjectName("stateLabel")
        self.state_label.setTextFormat(Qt.TextFormat.PlainText)
        call_layout.addWidget(self.call_button)
        call_layout.addStretch(1)
        call_layout.addWidget(self.state_label)

        side = QWidget(self)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(8, 8, 8, 8)
        side_layout.addWidget(call_box)
        side_layout.addWidget(audio_box)
        side_layout.addWidget(profile_box)
        side_layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(380)
        scroll.setMaximumWidth(460)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)

        # --- views -----------------------------------------------------------------------
        self.banner = QLabel(self)
        self.banner.setObjectName("banner")
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.transcript_view = TranscriptView(self.vm.transcript, self)
        self.waterfall = WaterfallView(self.vm.turns, self)
        self.tools_view = ToolCallsView(self.vm.tools, self)
        self.inspector = EventInspector(self.vm.events, self)
        self.vad_view = VadLaneView(self.vm.vad, self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.waterfall, "Latency")
        self.tabs.addTab(self.tools_view, "Tool calls")
        self.tabs.addTab(self.inspector, "Events")

        transcript_box = QGroupBox("Transcript", self)
        tb = QVBoxLayout(transcript_box)
        tb.setContentsMargins(4, 4, 4, 4)
        tb.addWidget(self.transcript_view)
        upper = QSplitter(Qt.Orientation.Horizontal, self)
        upper.addWidget(transcript_box)
        upper.addWidget(self.tabs)
        upper.setStretchFactor(0, 2)
        upper.setStretchFactor(1, 3)
        upper.setSizes([420, 620])
        transcript_box.setMinimumWidth(300)
        vad_box = QGroupBox("Speech activity (last 30 s)", self)
        vb = QVBoxLayout(vad_box)
        vb.setContentsMargins(4, 4, 4, 4)
        vb.addWidget(self.vad_view)
        center = QSplitter(Qt.Orientation.Vertical, self)
        center.addWidget(upper)
        center.addWidget(vad_box)
        center.setStretchFactor(0, 4)
        center.setStretchFactor(1, 1)
        center.setSizes([600, 170])

        right = QWidget(self)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 8, 8, 0)
        rl.addWidget(self.banner)
        rl.addWidget(center, 1)
        root = QWidget(self)
        hl = QHBoxLayout(root)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addWidget(scroll)
        hl.addWidget(right, 1)
        self.setCentralWidget(root)

        # --- status bar and menu -----------------------------------------------------------
        self.session_label = QLabel(self)
        self.events_label = QLabel("0 events", self)
        self.latency_label = QLabel(self)
        for w in (self.session_label, self.events_label, self.latency_label):
            w.setTextFormat(Qt.TextFormat.PlainText)
            w.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(w)
        menu = self.menuBar().addMenu("&File")
        self.history_action = QAction("Session &history…", self)
        self.history_action.setEnabled(open_history is not None)
        if open_history is not None:
            self.history_action.triggered.connect(lambda: open_history(self))
        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setEnabled(open_settings is not None)
        if open_settings is not None:
            self.settings_action.triggered.connect(lambda: open_settings(self))
        self.sip_action = QAction("SIP &phone…", self)
        self.sip_action.setEnabled(False)  # enabled by set_sip_opener (composition root)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for a in (self.history_action, self.settings_action, self.sip_action, quit_action):
            menu.addAction(a)

        # --- wiring ----------------------------------------------------------------------
        self.pump.sampled.connect(self.meters.set_levels)
        self.pump.sampled.connect(lambda t, c, a: self.vm.vad.add_level(t, c, a))
        self.vm.connectionChanged.connect(self._connection_changed)
        self.vm.callStarted.connect(self._call_started)
        self.vm.callEnded.connect(self._call_ended)
        self.vm.notice.connect(self._notice)
        self.vm.events.countChanged.connect(self._count_changed)
        self.vm.turns.summaryChanged.connect(self._summary_changed)
        self._fill_devices(devices or _default_devices)
        if self.profile_editor.picker.findData("default") >= 0:
            self.profile_editor.load("default")
        self._set_state("idle", "")
        self._summary_changed()
        controller.subscribe(self.bus.post)

    # --- call control -------------------------------------------------------------------

    def set_sip_opener(self, open_sip: Callable[[QWidget], None]) -> None:
        """Enable the "SIP phone…" menu entry (only where pjsua2 is installed)."""
        self.sip_action.triggered.connect(lambda: open_sip(self))
        self.sip_action.setEnabled(True)

    def call_options(self) -> dict[str, Any]:
        """The options :meth:`toggle_call` passes to ``controller.start_call``."""
        return {
            "profile": self.profile_editor.profile(),
            "input_device": self.input_device.currentData(),
            "output_device": self.output_device.currentData(),
            "mute": self.mute.isChecked(),
            "push_to_talk": self.push_to_talk.isChecked(),
            "half_duplex": self.half_duplex.isChecked(),
            **self.extra_options,
        }

    def toggle_call(self) -> None:
        """Start a call, or hang up the current one."""
        if self.in_call:
            self.controller.hangup()
            self.call_button.setEnabled(False)  # until CallEnded arrives
            return
        self.banner.hide()
        self.vm.reset()
        try:
            self.controller.start_call(self.call_options())
        except VoiceprobeError as exc:
            self.show_error(str(exc))
            return
        self._set_in_call(True)
        self._set_state("connecting", "")

    def show_error(self, message: str) -> None:
        """Show a plain-text error above the views."""
        self.banner.setText(message)
        self.banner.show()

    def _set_in_call(self, on: bool) -> None:
        self.in_call = on
        self.call_button.setEnabled(True)
        self.call_button.setText("Hang up" if on else "Call")
        self.call_button.setProperty("inCall", "true" if on else "false")
        self.call_button.style().unpolish(self.call_button)
        self.call_button.style().polish(self.call_button)
        self.profile_editor.setEnabled(not on)
        self.input_device.setEnabled(not on)
        self.output_device.setEnabled(not on)
        self.half_duplex.setEnabled(not on)
        self.vad_view.set_live(on)
        if on:
            self.pump.start()
        else:
            self.pump.stop()

    def _mute_toggled(self, on: bool) -> None:
        if self.in_call:
            self.controller.set_mute(on)

    def _ptt_toggled(self, on: bool) -> None:
        self.talk_button.setEnabled(on)

    # --- event-driven updates -----------------------------------------------------------

    def _set_state(self, state: str, detail: str) -> None:
        bg, fg = STATE_COLORS.get(state, STATE_COLORS["idle"])
        self.state_label.setStyleSheet(f"background: {bg}; color: {fg};")
        self.state_label.setText(
            state.capitalize() if not detail else f"{state.capitalize()} — {detail}"
        )
        self.state_label.setToolTip(detail)

    def _connection_changed(self, state: str, detail: str) -> None:
        self._set_state(state, detail)

    def _call_started(self, session_id: str, provider: str, model: str) -> None:
        if not self.in_call:
            self._set_in_call(True)
        _fit(self.session_label, f"{provider} · {model} · {session_id}")

    def _call_ended(self, reason: str, ok: bool) -> None:
        self._set_in_call(False)
        self._set_state("closed" if ok else "failed", reason)
        if not ok:
            self.show_error(f"Call ended: {reason}")

    def _notice(self, level: str, message: str) -> None:
        if level == "error":
            self.show_error(message)
        self.statusBar().showMessage(message, 8000)

    def _count_changed(self, n: int) -> None:
        _fit(self.events_label, f"{n:,} events")

    def _summary_changed(self) -> None:
        _fit(self.latency_label, self.vm.turns.summary_text())

    def _fill_devices(self, devices: Callable[[], list[Any]]) -> None:
        for combo in (self.input_device, self.output_device):
            combo.clear()
            combo.addItem("System default", None)
        try:
            found = devices()
        except VoiceprobeError as exc:
            self.statusBar().showMessage(f"Audio devices: {exc}", 8000)
            return
        for d in found:
            label = f"{d.name} ({d.host_api})" if getattr(d, "host_api", "") else d.name
            if d.max_input_channels > 0:
                self.input_device.addItem(label, d.name)
            if d.max_output_channels > 0:
                self.output_device.addItem(label, d.name)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Hang up, stop timers and stop listening to the core."""
        if self.in_call:
            self.controller.hangup()
        self.pump.stop()
        self.vad_view.set_live(False)
        self.bus.close()
        super().closeEvent(event)
