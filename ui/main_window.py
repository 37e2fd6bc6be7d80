"""The main window: profile, devices, call controls, and the live views of one call.

It talks to the core only through a *controller*
(:class:`ui.protocols.CallControllerLike`; the real one is
:class:`app.bridge.controller.CallController`): a call starts with the
:class:`~app.bridge.request.CallRequest` that :meth:`MainWindow.call_request` builds.

Status and errors come back as events (``Notice``, ``ProviderErrorEvent``, ``CallFailed``,
``CallEnded``); a ``CallFailed`` puts its reason and its fix in the banner, and a
:class:`~app.errors.VoiceprobeError` raised by ``start_call`` is shown there too.

One module on purpose (over 500 lines): the window's widgets, menus, shortcuts and the
state they share (in a call or not, the provider picked) are one screen; the views it
holds live in ``ui/views`` and their data in ``ui/models``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QFontInfo, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.bridge.providers import DEFAULT_SCENARIO, KEY_NAMES, KEYLESS_KINDS
from app.bridge.request import CallOverrides, CallRequest, with_overrides
from app.errors import VoiceprobeError
from app.metrics.presentation import SCRIPTED_MARK
from app.report.export import export_coverage_report, export_session_report
from app.secrets import get_secret, scrub_url
from app.store.coverage import CoverageQuery
from ui.bus import EventBus
from ui.levels import LevelPump
from ui.models.call_view import CallViewModel
from ui.models.common import plain_tip
from ui.protocols import CallControllerLike
from ui.report_export import export_report
from ui.views.elided_label import ElidedLabel
from ui.views.event_inspector import EventInspector
from ui.views.labels import banner_label
from ui.views.level_meters import LevelMeters
from ui.views.presentation import PresentationPanel
from ui.views.probe_pad import ProbePad
from ui.views.profile_editor import ProfileEditor
from ui.views.tool_calls_view import ToolCallsView
from ui.views.transcript_view import TranscriptView
from ui.views.vad_lane_view import VadLaneView
from ui.views.verdicts import FAIL_KEY, PASS_KEY, VerdictPanel
from ui.views.waterfall import WaterfallView
from ui.windows import close_windows, keep_window

STATE_COLORS = {
    "idle": ("#e8eaed", "#3c4043"),
    "connecting": ("#fef7e0", "#b06000"),
    "reconnecting": ("#fef7e0", "#b06000"),
    "connected": ("#e6f4ea", "#137333"),
    "closed": ("#e8eaed", "#3c4043"),
    "failed": ("#fce8e6", "#c5221f"),
}
#: The agent side a call can go to, as the Provider picker names them.
PROVIDER_NAMES = {
    "sim": "Simulator",
    "openai": "OpenAI Realtime",
    "gemini": "Gemini Live",
    "twilio-ws": "Twilio stream (deployed agent)",
}
#: Shortcuts (shown in the Call menu and in the buttons' tooltips).
CALL_KEY = "Ctrl+Return"
HANGUP_KEY = "Ctrl+Shift+Return"
MUTE_KEY = "Ctrl+M"
PTT_MODE_KEY = "Ctrl+T"
#: Held down to talk in push-to-talk mode (a key held, so not a menu shortcut).
TALK_KEY = Qt.Key.Key_F9
TALK_KEY_NAME = "F9"
PRESENTATION_KEY = "F11"
DEMO_KEY = "Ctrl+D"
COVERAGE_KEY = "Ctrl+Shift+C"
#: The side panel's width range (px).
SIDE_MIN_WIDTH, SIDE_MAX_WIDTH = 290, 420
#: How much larger the type is in presentation mode.
PRESENTATION_SCALE = 1.45


def _default_devices() -> list[Any]:
    """PortAudio's devices, then PulseAudio's sinks and sources by name (a call opens
    them through PortAudio's ``pulse`` device)."""
    from app.audio.devices import DeviceInfo, list_devices
    from app.audio.devicewatch import pulse_devices

    found: list[Any] = list_devices()
    for p in pulse_devices():
        source = p.kind == "source"
        found.append(
            DeviceInfo(-1, p.name, "PulseAudio", int(source), int(not source), float(p.rate))
        )
    return found


def key_configured(provider: str) -> bool:
    """Whether an API key for ``provider`` is set (keyring or environment)."""
    names = KEY_NAMES.get(provider)
    return bool(names and get_secret(*names))


def bundled_scenarios() -> list[Path]:
    """The simulator scenarios shipped in ``resources/scenarios`` (the demo first)."""
    found = sorted(DEFAULT_SCENARIO.parent.glob("*.yaml"))
    return sorted(found, key=lambda p: (p != DEFAULT_SCENARIO, p.name))


def _scroll(widget: QWidget, parent: QWidget) -> QScrollArea:
    area = QScrollArea(parent)
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


class MainWindow(QMainWindow):
    """The desktop tester's window. Main thread only.

    Args:
        controller: the core's facade (see the module docstring).
        devices: returns the audio devices (``app.audio.devices.list_devices`` by
            default; objects with ``name``, ``host_api``, ``max_input_channels``,
            ``max_output_channels``). Errors leave the pickers at "System default".
        open_settings / open_history: optional callbacks for the menu entries (the
            composition root wires them).

    The Provider picker names where the call goes: the Simulator (a scripted agent, with a
    scenario picker; its caller transcripts are the script's lines, marked
    ``[scripted]``), OpenAI Realtime or Gemini Live. It starts on a real provider when its
    key or an endpoint URL is configured, else on the Simulator, and says so under it.
    File → Quit closes every window opened from this one and ends the event loop.
    """

    def __init__(
        self,
        controller: CallControllerLike,
        devices: Callable[[], list[Any]] | None = None,
        open_settings: Callable[[QWidget], None] | None = None,
        open_history: Callable[[QWidget], None] | None = None,
    ) -> None:
        super().__init__()
        self.controller = controller
        #: Set on every call's request (the settings' URL and recording, a demo's port).
        self.extra_options: CallOverrides = {}
        self.confirmed_key_hosts: set[str] = set()
        #: Other top-level windows opened from this one (history, viewers): closed with it.
        self.windows: list[QWidget] = []
        self._demo: Callable[[], CallOverrides] | None = None
        self._demo_running = False
        self._talk_held = False
        self.presenting = False
        self._base_font = self.font()
        self.setWindowTitle("voiceprobe")
        self.resize(1360, 860)
        self.in_call = False
        self.vm = CallViewModel(self)
        self.bus = EventBus(self)
        self.bus.event.connect(self.vm.apply)
        self.pump = LevelPump(controller.levels, self)

        # --- call box: button, state, provider, scenario ---------------------------------
        call_box = QGroupBox("Call", self)
        call_form = QFormLayout(call_box)
        call_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.call_button = QPushButton("Call", call_box)
        self.call_button.setObjectName("callButton")
        self.call_button.clicked.connect(self.toggle_call)
        self.state_label = ElidedLabel("", call_box)
        self.state_label.setObjectName("stateLabel")
        top = QHBoxLayout()
        top.addWidget(self.call_button)
        top.addWidget(self.state_label, 1)
        call_form.addRow(top)
        self.provider = QComboBox(call_box)
        for key, name in PROVIDER_NAMES.items():
            self.provider.addItem(name, key)
        self.provider.setToolTip(
            "Where the call goes: the built-in Simulator (a scripted agent, no key needed), "
            "or a real provider with the profile below"
        )
        call_form.addRow("Provider", self.provider)
        self.scenario = QComboBox(call_box)
        for path in bundled_scenarios():
            self.scenario.addItem(path.stem, str(path))
        self.scenario.setToolTip("The simulator's script: what it hears and how it answers")
        self.scenario_open = QPushButton("Open…", call_box)
        self.scenario_open.setToolTip("Load a scenario file (YAML) for the simulator")
        self.scenario_open.clicked.connect(self._open_scenario)
        scen = QHBoxLayout()
        scen.addWidget(self.scenario, 1)
        scen.addWidget(self.scenario_open)
        call_form.addRow("Scenario", scen)
        self.provider_hint = QLabel(call_box)
        self.provider_hint.setObjectName("hint")
        self.provider_hint.setTextFormat(Qt.TextFormat.PlainText)
        self.provider_hint.setWordWrap(True)
        self.provider_hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        call_form.addRow(self.provider_hint)

        # --- audio page -----------------------------------------------------------------
        audio_page = QWidget(self)
        audio_form = QFormLayout(audio_page)
        self.input_device = QComboBox(audio_page)
        self.output_device = QComboBox(audio_page)
        for combo in (self.input_device, self.output_device):
            combo.setMinimumContentsLength(14)
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
        self.input_device.setToolTip("The caller's microphone (or the WAV file of a demo)")
        self.output_device.setToolTip("Where the agent's voice plays (a demo plays both sides)")
        audio_form.addRow("Microphone", self.input_device)
        audio_form.addRow("Speaker", self.output_device)
        self.mute = QCheckBox("Mute mic", audio_page)
        self.mute.setToolTip(f"The agent hears silence; the recording keeps the mic ({MUTE_KEY})")
        self.mute.toggled.connect(self._mute_toggled)
        self.push_to_talk = QCheckBox("Push to talk", audio_page)
        self.push_to_talk.setToolTip(
            f"The agent hears you only while you hold {TALK_KEY_NAME} or the button "
            f"({PTT_MODE_KEY} turns it on or off)"
        )
        self.push_to_talk.toggled.connect(self._ptt_toggled)
        self.half_duplex = QCheckBox("Half duplex", audio_page)
        self.half_duplex.setToolTip("Mute the mic while agent audio plays (no echo canceller)")
        checks = QHBoxLayout()
        for w in (self.mute, self.push_to_talk, self.half_duplex):
            checks.addWidget(w)
        checks.addStretch(1)
        audio_form.addRow(checks)
        self.talk_button = QPushButton(f"Hold to talk ({TALK_KEY_NAME})", audio_page)
        self.talk_button.setToolTip(f"Hold (or hold {TALK_KEY_NAME}) to be heard by the agent")
        self.talk_button.setEnabled(False)
        self.talk_button.pressed.connect(lambda: self.controller.set_push_to_talk_pressed(True))
        self.talk_button.released.connect(lambda: self.controller.set_push_to_talk_pressed(False))
        audio_form.addRow(self.talk_button)
        self.meters = LevelMeters(audio_page)
        audio_form.addRow(self.meters)

        # --- profile page ---------------------------------------------------------------
        self.profile_editor = ProfileEditor(self)

        self.side_tabs = QTabWidget(self)
        self.side_tabs.addTab(_scroll(audio_page, self), "Audio")
        self.side_tabs.addTab(_scroll(self.profile_editor, self), "Agent profile")
        self.side_tabs.setTabToolTip(0, "Microphone, speaker, mute, push to talk, levels")
        self.side_tabs.setTabToolTip(1, "Protocol, model, voice, instructions, turn detection")
        # --- tags and verdicts page -------------------------------------------------------
        self.verdicts = VerdictPanel(self.vm.turns, self.data_root, self)
        verdicts_tab = self.side_tabs.addTab(self.verdicts, "Verdicts")
        self.side_tabs.setTabToolTip(
            verdicts_tab,
            f"Tags for the next call; pass/fail per turn ({PASS_KEY} / {FAIL_KEY}: last turn)",
        )
        # --- probe pad page ------------------------------------------------------------
        self.probe_pad = ProbePad(lambda: self.data_root() / "probes", self._caller_mix, self)
        self.bus.event.connect(self.probe_pad.follow)  # a recorded probe's provider transcript
        pad_tab = self.side_tabs.addTab(self.probe_pad, "Probe pad")
        self.side_tabs.setTabToolTip(
            pad_tab, "Probes (rendered, imported, recorded) to play into the call as the caller"
        )
        self.side_tabs.currentChanged.connect(
            lambda _i: (
                self.verdicts.refresh_completions()
                if self.side_tabs.currentWidget() is self.verdicts
                else None
            )
        )
        side = QWidget(self)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(8, 8, 8, 8)
        side_layout.addWidget(call_box)
        side_layout.addWidget(self.side_tabs, 1)
        side.setMinimumWidth(SIDE_MIN_WIDTH)
        side.setMaximumWidth(SIDE_MAX_WIDTH)
        side.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.side = side

        # --- views -----------------------------------------------------------------------
        self.banner = banner_label(self)
        self.banner.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.presentation = PresentationPanel(self.vm.turns, self)
        self.presentation.hide()
        self.transcript_view = TranscriptView(self.vm.transcript, self)
        self.transcript_view.setToolTip(
            "Both sides of the conversation; caller lines marked "
            f"{SCRIPTED_MARK} are the simulator's script, not a transcription"
        )
        self.waterfall = WaterfallView(self.vm.turns, self)
        # A turn selected in the verdicts table (same rows as the turns model) is shown
        # in the waterfall, scrolled into view.
        self.verdicts.table.selectionModel().currentRowChanged.connect(
            lambda current, _previous: self.waterfall.select_turn(current.row())
        )
        self.tools_view = ToolCallsView(self.vm.tools, self)
        self.inspector = EventInspector(self.vm.events, self)
        self.vad_view = VadLaneView(self.vm.vad, self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.waterfall, "Latency")
        self.tabs.addTab(self.tools_view, "Tool calls")
        self.tabs.addTab(self.inspector, "Events")
        self.tabs.setTabToolTip(0, "Where the time went, turn by turn (hover a bar)")
        self.tabs.setTabToolTip(1, "Every tool call: arguments, result, duration")
        self.tabs.setTabToolTip(2, "Every event of the call, with the raw provider message")

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
        upper.setChildrenCollapsible(False)
        transcript_box.setMinimumWidth(200)
        self.tabs.setMinimumWidth(340)
        vad_box = QGroupBox("Speech activity", self)
        vad_box.setToolTip("Live: the last 30 s; after the call: the whole call. Hover a lane.")
        vb = QVBoxLayout(vad_box)
        vb.setContentsMargins(4, 4, 4, 4)
        vb.addWidget(self.vad_view)
        center = QSplitter(Qt.Orientation.Vertical, self)
        center.addWidget(upper)
        center.addWidget(vad_box)
        center.setStretchFactor(0, 4)
        center.setStretchFactor(1, 1)
        center.setSizes([600, 170])
        center.setChildrenCollapsible(False)

        right = QWidget(self)
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 8, 8, 0)
        rl.addWidget(self.banner)
        rl.addWidget(self.presentation)
        rl.addWidget(center, 1)
        root = QWidget(self)
        hl = QHBoxLayout(root)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addWidget(side)
        hl.addWidget(right, 1)
        self.setCentralWidget(root)

        # --- status bar and menus ----------------------------------------------------------
        self.session_label = ElidedLabel("", self)
        self.events_label = QLabel("0 events", self)
        self.latency_label = ElidedLabel("", self)
        self.session_label.setToolTip("provider · model · session id")
        for label in (self.session_label, self.events_label, self.latency_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setContentsMargins(8, 0, 8, 0)
        self.notice_label = ElidedLabel("", self)
        self.notice_label.setObjectName("hint")
        self.notice_label.setContentsMargins(8, 0, 8, 0)
        for label, stretch in (
            (self.notice_label, 2),
            (self.latency_label, 4),
            (self.session_label, 2),
            (self.events_label, 0),
        ):
            self.statusBar().addPermanentWidget(label, stretch)
        self._build_menus(open_settings, open_history)

        # --- wiring ----------------------------------------------------------------------
        self.pump.sampled.connect(self.meters.set_levels)
        self.pump.sampled.connect(lambda t, c, a: self.vm.vad.add_level(t, c, a))
        self.vm.connectionChanged.connect(self._connection_changed)
        self.vm.callStarted.connect(self._call_started)
        self.vm.callStarted.connect(
            lambda sid, *_: self.verdicts.set_session(sid, self.vm.session_dir)
        )
        self.vm.callEnded.connect(self._call_ended)
        self.vm.notice.connect(self._notice)
        self.vm.failed.connect(self._failed)
        self.vm.events.countChanged.connect(self._count_changed)
        self.vm.turns.summaryChanged.connect(self._summary_changed)
        self.provider.currentIndexChanged.connect(self._provider_picked)
        self.scenario.currentIndexChanged.connect(lambda _i: self.refresh_provider_hint())
        self.profile_editor.provider.currentTextChanged.connect(self._protocol_changed)
        self._devices = devices or _default_devices
        self._device_watcher: Any = None
        self._fill_devices(self._devices)
        if self.profile_editor.picker.findData("default") >= 0:
            self.profile_editor.load("default")
        self.choose_default_provider()
        self._set_state("idle", "")
        self._summary_changed()
        app = QApplication.instance()  # never None: a widget exists only inside one
        if app is not None:
            app.installEventFilter(self)  # the hold-to-talk key
        controller.subscribe(self.bus.post)

    def _build_menus(
        self,
        open_settings: Callable[[QWidget], None] | None,
        open_history: Callable[[QWidget], None] | None,
    ) -> None:
        menu = self.menuBar().addMenu("&File")
        self.history_action = QAction("Session &history…", self)
        self.history_action.setShortcut(QKeySequence("Ctrl+H"))
        self.history_action.setEnabled(open_history is not None)
        if open_history is not None:
            self.history_action.triggered.connect(lambda: open_history(self))
        self.settings_action = QAction("&Settings…", self)
        self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        self.settings_action.setEnabled(open_settings is not None)
        if open_settings is not None:
            self.settings_action.triggered.connect(lambda: open_settings(self))
        self.sip_action = QAction("SIP &phone…", self)
        self.sip_action.setEnabled(False)  # enabled by set_sip_opener (composition root)
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.quit_app)
        self.coverage_action = QAction("&Coverage…", self)
        self.coverage_action.setShortcut(QKeySequence(COVERAGE_KEY))
        self.coverage_action.triggered.connect(self.open_coverage)
        self.call_report_action = QAction("Export call &report…", self)
        self.call_report_action.setToolTip(
            "The last call as one HTML file (voiceprobe report session)"
        )
        self.call_report_action.triggered.connect(lambda: self.export_call_report())
        self.coverage_report_action = QAction("Export co&verage report…", self)
        self.coverage_report_action.setToolTip(
            "Every stored call's coverage as one HTML file (voiceprobe report coverage)"
        )
        self.coverage_report_action.triggered.connect(lambda: self.export_coverage_report())
        for a in (self.history_action, self.coverage_action, self.call_report_action,
                  self.coverage_report_action, self.settings_action, self.sip_action):  # fmt: skip
            menu.addAction(a)
        menu.addSeparator()
        menu.addAction(self.quit_action)

        call = self.menuBar().addMenu("&Call")
        self.call_action = QAction("&Call", self)
        self.call_action.setShortcut(QKeySequence(CALL_KEY))
        self.call_action.triggered.connect(lambda: None if self.in_call else self.toggle_call())
        self.hangup_action = QAction("&Hang up", self)
        self.hangup_action.setShortcut(QKeySequence(HANGUP_KEY))
        self.hangup_action.triggered.connect(lambda: self.toggle_call() if self.in_call else None)
        self.mute_action = QAction("&Mute mic", self)
        self.mute_action.setCheckable(True)
        self.mute_action.setShortcut(QKeySequence(MUTE_KEY))
        self.mute_action.toggled.connect(self.mute.setChecked)
        self.mute.toggled.connect(self.mute_action.setChecked)
        self.ptt_action = QAction("&Push to talk", self)
        self.ptt_action.setCheckable(True)
        self.ptt_action.setShortcut(QKeySequence(PTT_MODE_KEY))
        self.ptt_action.toggled.connect(self.push_to_talk.setChecked)
        self.push_to_talk.toggled.connect(self.ptt_action.setChecked)
        # A held key cannot be a menu shortcut: shown after a tab, handled by eventFilter.
        self.talk_action = QAction(f"Hold to &talk\t{TALK_KEY_NAME} (hold)", self)
        self.talk_action.setEnabled(False)
        self.demo_action = QAction("&Demo call (caller WAV + simulator)", self)
        self.demo_action.setShortcut(QKeySequence(DEMO_KEY))
        self.demo_action.setEnabled(False)  # enabled by set_demo_starter
        self.demo_action.triggered.connect(self.start_demo)
        for a in (self.call_action, self.hangup_action):
            call.addAction(a)
        call.addSeparator()
        for a in (self.mute_action, self.ptt_action, self.talk_action):
            call.addAction(a)
        call.addSeparator()
        call.addAction(self.demo_action)
        call.addSeparator()
        for a in self.verdicts.actions_for_window:
            call.addAction(a)
        self.hangup_action.setEnabled(False)
        self.call_button.setToolTip(f"Call ({CALL_KEY}); hang up ({HANGUP_KEY})")

        view = self.menuBar().addMenu("&View")
        self.presentation_action = QAction("&Presentation mode", self)
        self.presentation_action.setCheckable(True)
        self.presentation_action.setShortcut(QKeySequence(PRESENTATION_KEY))
        self.presentation_action.toggled.connect(self.set_presentation)
        view.addAction(self.presentation_action)
        for a in (
            self.quit_action,
            self.call_action,
            self.hangup_action,
            self.mute_action,
            self.ptt_action,
            self.demo_action,
            self.presentation_action,
            self.history_action,
            self.coverage_action,
            self.settings_action,
            *self.verdicts.actions_for_window,
        ):
            self.addAction(a)  # shortcuts work with the menu closed, in full screen too

    # --- call control -------------------------------------------------------------------

    def set_sip_opener(self, open_sip: Callable[[QWidget], None]) -> None:
        """Enable the "SIP phone…" menu entry (only where pjsua2 is installed)."""
        self.sip_action.triggered.connect(lambda: open_sip(self))
        self.sip_action.setEnabled(True)

    def call_request(self) -> CallRequest:
        """The request :meth:`toggle_call` passes to ``controller.start_call``: the
        pickers (the Provider picker's choice and, for the Simulator, the scenario), the
        tags, then :attr:`extra_options` on top.

        Raises:
            ConfigError: a bad tag (checked like ``--tag``).
        """
        provider = str(self.provider.currentData())
        request = CallRequest(
            profile=self.profile_editor.profile(),
            provider=provider,
            input_device=self.input_device.currentData(),
            output_device=self.output_device.currentData(),
            mute=self.mute.isChecked(),
            push_to_talk=self.push_to_talk.isChecked(),
            half_duplex=self.half_duplex.isChecked(),
            scenario=self.scenario.currentData() if provider == "sim" else None,
            tags=tuple(self.verdicts.call_tags()),
        )
        return with_overrides(request, self.extra_options)

    # --- provider picker ----------------------------------------------------------------

    def set_provider(self, provider: str) -> None:
        """Select ``sim``, ``openai`` or ``gemini`` in the Provider picker."""
        index = self.provider.findData(provider)
        if index >= 0:
            self.provider.setCurrentIndex(index)
        self.refresh_provider_hint()

    def choose_default_provider(self) -> None:
        """Pick the profile's provider when its key or an endpoint URL is set (a URL is
        never ignored: without a key the call asks for one) or when it is a deployed
        agent's stream (no key needed), else the Simulator."""
        protocol = self.profile_editor.provider.currentText()
        real = (
            protocol in KEYLESS_KINDS
            or key_configured(protocol)
            or bool(self.extra_options.get("url"))
        )
        self.set_provider(protocol if real else "sim")

    def refresh_provider_hint(self) -> None:
        """Say, under the picker, what the chosen provider will do (plain text)."""
        provider = str(self.provider.currentData())
        protocol = self.profile_editor.provider.currentText()
        url = str(self.extra_options.get("url") or "")
        self.scenario.setEnabled(provider == "sim" and not self.in_call)
        self.scenario_open.setEnabled(provider == "sim" and not self.in_call)
        if provider == "sim":
            script = self.scenario.currentText() or "demo"
            if not (key_configured("openai") or key_configured("gemini")):
                text = (
                    f"No API key is set, so the simulator answers from a script ({script}). "
                    "Set a key in File → Settings to call a real provider."
                )
            else:
                text = f"The simulator answers from a script ({script}); no API key is used."
            text += f" Caller lines are the script's, marked {SCRIPTED_MARK}."
            if url:
                text += (
                    f" The {PROVIDER_NAMES.get(protocol, protocol)} URL set in Settings is "
                    "not used by the simulator: choose that provider to call it."
                )
        elif provider in KEYLESS_KINDS:
            agent = url or self.profile_editor.profile().url
            text = (
                f"The call goes to the deployed agent at {scrub_url(agent)} as a Twilio "
                "Media Stream; "
                "no API key is sent. It reports audio only: no transcripts, no tool calls."
                if agent
                else "Set the agent's ws:// or wss:// URL in the profile (Agent URL)."
            )
        elif not key_configured(provider):
            text = (
                f"No {PROVIDER_NAMES[provider]} key is set: set it in File → Settings "
                "(the call will ask for it)."
            )
            if url:
                text += f" Endpoint from Settings: {url}"
        else:
            text = f"Endpoint from Settings: {url}" if url else ""
        self.provider_hint.setText(text)
        self.provider_hint.setVisible(bool(text))

    def _provider_picked(self, _index: int) -> None:
        provider = str(self.provider.currentData())
        if provider != "sim" and self.profile_editor.provider.currentText() != provider:
            self.profile_editor.provider.setCurrentText(provider)  # the profile's protocol
        self.refresh_provider_hint()

    def _protocol_changed(self, protocol: str) -> None:
        if str(self.provider.currentData()) not in ("sim", protocol):
            self.set_provider(protocol)
        self.refresh_provider_hint()

    def _open_scenario(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open scenario", "", "Scenarios (*.yaml *.yml);;All files (*)"
        )
        if path:
            if self.scenario.findData(path) < 0:
                self.scenario.addItem(Path(path).stem, path)
            self.scenario.setCurrentIndex(self.scenario.findData(path))

    # --- demo, presentation, windows ----------------------------------------------------

    def set_demo_starter(self, make_options: Callable[[], CallOverrides]) -> None:
        """Enable Call → Demo call: ``make_options()`` returns what the demo sets on the
        call's request (its caller ``port``, ``source``); the call goes to the Simulator."""
        self._demo = make_options
        self.demo_action.setEnabled(True)

    def start_demo(self) -> None:
        """Start the demo call: the caller's WAV and the simulator, both heard on the
        speaker; the window shows the real source and provider."""
        if self._demo is None or self.in_call:
            return
        try:
            options = self._demo()
        except VoiceprobeError as exc:
            self.show_error(f"Demo not started: {exc}")
            return
        self.set_provider("sim")
        self.set_source(str(options.get("source") or "demo"))
        self._demo_running = True
        saved = self.extra_options
        self.extra_options = {**saved, **options, "provider": "sim"}
        try:
            self.toggle_call()
        finally:
            self.extra_options = saved

    def set_source(self, label: str | None) -> None:
        """Show the call's real caller source (a WAV file) in the Microphone picker, or
        (``None``) give the picker back to the microphones."""
        index = self.input_device.findData("__source__")
        if label is None:
            if index >= 0:
                self.input_device.removeItem(index)
            return
        if index < 0:
            self.input_device.insertItem(0, "", "__source__")
            index = 0
        self.input_device.setItemText(index, f"Caller WAV: {label}")
        self.input_device.setCurrentIndex(index)

    def set_presentation(self, on: bool) -> None:
        """Presentation mode: the last turn's voice→voice and the call's p50/p95 in large
        type, larger type everywhere, full screen (F11)."""
        if on == self.presenting:
            return
        self.presenting = on
        if self.presentation_action.isChecked() != on:
            self.presentation_action.setChecked(on)
        if on:
            base = QFontInfo(self._base_font).pointSizeF()
            self.setStyleSheet(f"QWidget {{ font-size: {base * PRESENTATION_SCALE:.1f}pt; }}")
        else:
            self.setStyleSheet("")
        # The room needs the figures, not the settings: the side panel steps aside (the
        # Call menu and its shortcuts still work).
        self.side.setVisible(not on)
        self.presentation.setVisible(on)
        if on and not QApplication.platformName() == "offscreen":
            self.showFullScreen()
        elif not on and self.isFullScreen():
            self.showNormal()

    def data_root(self) -> Path:
        """The data folder calls are stored in (the controller's, else the default)."""
        from app.store.paths import data_dir

        root = getattr(self.controller, "data_root", None)
        return Path(root) if root else data_dir()

    def open_coverage(self) -> None:
        """File → Coverage: the coverage matrix of the data folder, in a window of its own
        (closed with this one)."""
        from ui.views.coverage import CoverageWindow

        try:
            window = CoverageWindow(self.data_root())
        except VoiceprobeError as exc:
            self.show_error(f"Coverage not opened: {exc}")
            return
        self.adopt_window(window)
        window.show()

    def adopt_window(self, window: QWidget) -> None:
        """Close ``window`` (a history or session window) when this window closes; it is
        deleted once closed (:func:`ui.windows.keep_window`)."""
        keep_window(self.windows, window)

    def quit_app(self) -> None:
        """File → Quit: close this window and every window opened from it, and end the
        event loop (the composition root then shuts the core down)."""
        self.close()
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            return
        left = [w for w in app.topLevelWidgets() if w.isVisible()]
        # Closing the last window already ends the loop; a second, stale quit request
        # would end the next event loop of the process at once.
        if left or not app.quitOnLastWindowClosed():
            for w in left:
                w.close()
            app.quit()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        """Push to talk: the agent hears the caller while the talk key is held."""
        kind = event.type()
        if (
            kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease)
            and isinstance(event, QKeyEvent)
            and event.key() == TALK_KEY
            and not event.isAutoRepeat()
            and self.push_to_talk.isChecked()
            and self.isActiveWindow()
        ):
            held = kind == QEvent.Type.KeyPress
            if held != self._talk_held:
                self._talk_held = held
                self.talk_button.setDown(held)
                self.controller.set_push_to_talk_pressed(held)
            return True
        return False

    def toggle_call(self) -> None:
        """Start a call, or hang up the current one."""
        if self.in_call:
            self.controller.hangup()
            self.call_button.setEnabled(False)  # until CallEnded arrives
            return
        self.banner.hide()
        if not self._demo_running:
            self.set_source(None)  # give the Microphone picker back after a demo
        try:
            request = self._key_host_confirmed(self.call_request())
        except VoiceprobeError as exc:  # a bad tag: nothing starts
            self.show_error(f"Call not started: {exc}")
            return
        if request is None:
            return
        self.vm.reset()
        self.verdicts.clear_session()
        try:
            self.controller.start_call(request)
        except VoiceprobeError as exc:
            self.show_error(str(exc))
            return
        self._set_in_call(True)
        # Record on the pad captures the call's own microphone: with no typed text, the
        # provider's transcript of what it heard becomes the probe's text.
        mic_call = request.port is None and request.source == "mic" and not self._demo_running
        self.probe_pad.record_device = request.input_device
        self.probe_pad.set_in_call(True, caller_is_mic=mic_call)
        self._set_state("connecting", "")

    def _key_host_confirmed(self, request: CallRequest) -> CallRequest | None:
        """``request`` with the hosts the user trusted with the API key, or ``None`` when
        the user declined: ask before the key goes to a host that is not the vendor's own
        (a URL from a profile or the settings); remember a yes for this run of the app."""
        request = replace(request, confirmed_hosts=tuple(sorted(self.confirmed_key_hosts)))
        host = self.controller.key_host_to_confirm(request)
        if host is None:
            return request
        if not self.confirm_key_host(host):
            self.show_error(f"call not started: the API key was not sent to {host}")
            return None
        self.confirmed_key_hosts.add(host)
        return replace(request, confirmed_hosts=tuple(sorted(self.confirmed_key_hosts)))

    def confirm_key_host(self, host: str) -> bool:
        """Ask the user whether ``host`` may receive the API key (a modal question)."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Send the API key to another host?")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setText(
            f"This call would send your API key to {host}, which is not the provider's "
            "own host.\n\nSend the key there only if you run or trust that server."
        )
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    def export_call_report(self, path: Path | None = None) -> tuple[bool, str]:
        """File → Export call report: the last call's session as HTML (``path``: no
        dialog). Returns ``(written, message)``; the message is shown (plain text)."""
        folder = self.vm.session_dir
        if not folder:
            ok, message = False, "Report not written: no call yet (place a call first)"
        else:
            ok, message = export_report(
                self, "Export call report", f"{Path(folder).name}.html",
                lambda out: export_session_report(Path(folder), out), path,
            )  # fmt: skip
        self._report_said(ok, message)
        return ok, message

    def export_coverage_report(self, path: Path | None = None) -> tuple[bool, str]:
        """File → Export coverage report: every stored call, language × accent, as HTML
        (the coverage window exports its own filters). Returns ``(written, message)``."""
        ok, message = export_report(
            self, "Export coverage report", "coverage.html",
            lambda out: export_coverage_report(self.data_root(), CoverageQuery(), out), path,
        )  # fmt: skip
        self._report_said(ok, message)
        return ok, message

    def _report_said(self, ok: bool, message: str) -> None:
        if ok:
            self.notice_label.setText(message)
        elif message:
            self.show_error(message)

    def show_error(self, message: str) -> None:
        """Show a plain-text error above the views."""
        self.banner.setText(message)
        self.banner.show()

    def _set_in_call(self, on: bool) -> None:
        self.in_call = on
        self.probe_pad.set_in_call(on)
        self.call_button.setEnabled(True)
        self.call_button.setText("Hang up" if on else "Call")
        self.call_button.setProperty("inCall", "true" if on else "false")
        self.call_button.style().unpolish(self.call_button)
        self.call_button.style().polish(self.call_button)
        self.profile_editor.setEnabled(not on)
        self.provider.setEnabled(not on)
        self.input_device.setEnabled(not on)
        self.output_device.setEnabled(not on)
        self.half_duplex.setEnabled(not on)
        self.call_action.setEnabled(not on)
        self.hangup_action.setEnabled(on)
        self.demo_action.setEnabled(not on and self._demo is not None)
        self.talk_action.setEnabled(on and self.push_to_talk.isChecked())
        self.refresh_provider_hint()
        self.vad_view.set_live(on)
        if on:
            self.pump.start()
        else:
            self.pump.stop()
            self._demo_running = False  # the picker keeps showing what was played

    def _mute_toggled(self, on: bool) -> None:
        if self.in_call:
            self.controller.set_mute(on)

    def _ptt_toggled(self, on: bool) -> None:
        self.talk_button.setEnabled(on)
        self.talk_action.setEnabled(on and self.in_call)

    # --- event-driven updates -----------------------------------------------------------

    def _set_state(self, state: str, detail: str) -> None:
        bg, fg = STATE_COLORS.get(state, STATE_COLORS["idle"])
        self.state_label.setStyleSheet(f"background: {bg}; color: {fg};")
        self.state_label.setText(
            state.capitalize() if not detail else f"{state.capitalize()} — {detail}"
        )  # elided to the panel's width; the whole text is its tooltip

    def _connection_changed(self, state: str, detail: str) -> None:
        self._set_state(state, detail)

    def _call_started(self, session_id: str, provider: str, model: str) -> None:
        own = self.in_call  # started here (a SIP call is only mirrored in this window)
        if not self.in_call:
            self._set_in_call(True)
        self.verdicts.set_live(own)  # tags edited now go to this call's session too
        name = PROVIDER_NAMES.get(provider, provider)
        self.session_label.setText(f"{name} · {model} · {session_id}")

    def _caller_mix(self) -> Any:
        """The running call's caller mix (the probe pad plays into it), if the controller
        offers one."""
        get = getattr(self.controller, "caller_mix", None)
        return get() if callable(get) else None

    def _call_ended(self, reason: str, ok: bool) -> None:
        self.verdicts.set_live(False)  # saves a tag edit still waiting, to this session
        self._set_in_call(False)
        sid = self.verdicts.session_id
        turns = [self.vm.turns.turn(i).to_dict() for i in range(self.vm.turns.rowCount())]
        if sid and self.probe_pad.score_call(self.data_root(), sid, turns):
            self.verdicts.set_session(sid, self.vm.session_dir)  # show the probes' verdicts
        if self.side_tabs.currentWidget() is self.verdicts:
            self.verdicts.refresh_completions()  # this call's tags are offered next time
        failure = self.vm.failure
        self._set_state("closed" if ok else "failed", failure[0] if failure else reason)
        if not ok and failure is None:
            self.show_error(f"Call ended: {reason}")

    def _failed(self, code: str, message: str, fix: str) -> None:
        """Say why the call failed and what to do, in the banner (plain text)."""
        self.show_error(f"Call failed: {message}" + (f"\nWhat to do: {fix}" if fix else ""))
        self.banner.setToolTip(plain_tip(f"error code: {code}"))  # the code may be the server's

    def _notice(self, level: str, message: str) -> None:
        if level == "error":
            self.show_error(message)
        self.notice_label.setText(message)

    def _count_changed(self, n: int) -> None:
        self.events_label.setText(f"{n:,} events")

    def _summary_changed(self) -> None:
        self.latency_label.setText(self.vm.turns.summary_text())

    #: Emitted on the watcher's thread when devices appeared or vanished (delivered queued).
    _devices_changed = Signal()

    def watch_devices(self, interval_s: float = 1.0) -> None:
        """Refresh the device pickers when devices appear or vanish: a watcher thread polls
        (``app.audio.devicewatch``), the pickers refill on the main thread keeping what was
        chosen; stopped when the window closes. Idempotent.

        PulseAudio's sinks and sources show as they come and go; a new ALSA device needs
        PortAudio re-initialised, which the watcher does not do behind a running stream.
        """
        from app.audio.devicewatch import DeviceWatcher

        if self._device_watcher is not None:
            return
        self._devices_changed.connect(self.refresh_devices, Qt.ConnectionType.QueuedConnection)
        self._device_watcher = DeviceWatcher(
            lambda _listing: self._devices_changed.emit(),
            interval_s=interval_s,
            report_first=True,
        )
        self._device_watcher.start()

    def refresh_devices(self) -> None:
        """List the devices again, keeping the chosen ones where they still exist."""
        chosen = [c.currentData() for c in (self.input_device, self.output_device)]
        self._fill_devices(self._devices)
        for combo, data in zip((self.input_device, self.output_device), chosen, strict=True):
            index = combo.findData(data)
            combo.setCurrentIndex(max(index, 0))

    def _fill_devices(self, devices: Callable[[], list[Any]]) -> None:
        for combo in (self.input_device, self.output_device):
            combo.clear()
            combo.addItem("System default", None)
        try:
            found = devices()
        except VoiceprobeError as exc:
            self.notice_label.setText(f"Audio devices: {exc}")
            return
        for d in found:
            label = f"{d.name} ({d.host_api})" if getattr(d, "host_api", "") else d.name
            if d.max_input_channels > 0:
                self.input_device.addItem(label, d.name)
            if d.max_output_channels > 0:
                self.output_device.addItem(label, d.name)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Hang up, close the windows opened from this one, stop timers and stop
        listening to the core."""
        if self.in_call:
            self.controller.hangup()
        close_windows(self.windows)
        sip_window = getattr(self, "_sip_window", None)
        if sip_window is not None:
            sip_window.close()
        instance = QApplication.instance()
        if instance is not None:
            instance.removeEventFilter(self)
        watcher, self._device_watcher = self._device_watcher, None
        if watcher is not None:
            watcher.stop()
        self.pump.stop()
        self.vad_view.set_live(False)
        self.bus.close()
        super().closeEvent(event)
