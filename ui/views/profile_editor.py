"""Profile picker and editor: provider, model, voice, instructions, VAD, language, tools."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.errors import ConfigError
from app.profile import (
    EAGERNESS,
    PROVIDERS,
    RESOURCES,
    STREAM_PROVIDERS,
    VAD_TYPES,
    Profile,
    load_profile,
)
from ui.views.labels import banner_label

MODELS = {
    "openai": ("gpt-realtime", "gpt-realtime-mini"),
    "gemini": ("gemini-2.5-flash-native-audio-preview-09-2025", "gemini-live-2.5-flash-preview"),
}
VOICES = {
    "openai": (
        "marin",
        "cedar",
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "sage",
        "shimmer",
        "verse",
    ),
    "gemini": ("Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr"),
}
VAD_LABELS = {
    "server_vad": "Server VAD",
    "semantic_vad": "Semantic VAD",
    "none": "None (commit on local VAD)",
}


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped in ``resources/profiles``."""
    return sorted(p.stem for p in (RESOURCES / "profiles").glob("*.yaml"))


class ProfileEditor(QWidget):
    """Edits one :class:`~app.profile.Profile`; :meth:`profile` returns the edited copy.

    Tools are shown read-only (they are edited in the profile file). Load errors appear in
    a plain-text line under the picker. Main thread only.
    """

    profileLoaded = Signal(object)  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._base = Profile()
        self.picker = QComboBox(self)
        for name in builtin_profiles():
            self.picker.addItem(name, name)
        self.picker.activated.connect(lambda _i: self.load(self.picker.currentData()))
        self.open_button = QPushButton("Open…", self)
        self.open_button.setToolTip("Load a profile file (YAML or JSON)")
        self.open_button.clicked.connect(self._open_file)
        self.error = banner_label(self)

        self.provider = QComboBox(self)
        self.provider.addItems(list(PROVIDERS))
        self.provider.currentTextChanged.connect(self._provider_changed)
        self.model = QComboBox(self)
        self.model.setEditable(True)
        self.voice = QComboBox(self)
        self.voice.setEditable(True)
        self.instructions = QPlainTextEdit(self)
        self.instructions.setFixedHeight(64)
        self.vad = QComboBox(self)
        for value in VAD_TYPES:
            self.vad.addItem(VAD_LABELS.get(value, value), value)
        self.vad.currentIndexChanged.connect(self._vad_changed)
        self.threshold = QDoubleSpinBox(self)
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.05)
        self.prefix = QSpinBox(self)
        self.prefix.setRange(0, 5000)
        self.prefix.setSuffix(" ms")
        self.silence = QSpinBox(self)
        self.silence.setRange(0, 10000)
        self.silence.setSuffix(" ms")
        self.eagerness = QComboBox(self)
        self.eagerness.addItems(list(EAGERNESS))
        self.agent_url = QLineEdit(self)
        self.agent_url.setPlaceholderText("wss://agent.example.com/twilio")
        self.agent_url.setToolTip(
            "The deployed agent's Media Streams URL (Twilio stream provider). Stream "
            "parameters such as a token are set in the profile file (params:)."
        )
        self.language = QLineEdit(self)
        self.language.setPlaceholderText("auto (e.g. en, fr)")
        self.language.setMaxLength(16)
        self.tools = QListWidget(self)
        self.tools.setFixedHeight(54)
        self.tools.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.tools.setToolTip("Tools come from the profile file (read-only here)")

        pick = QHBoxLayout()
        pick.addWidget(self.picker, 1)
        pick.addWidget(self.open_button)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Provider", self.provider)
        form.addRow("Agent URL", self.agent_url)
        self._form = form
        form.addRow("Model", self.model)
        form.addRow("Voice", self.voice)
        form.addRow("Instructions", self.instructions)
        form.addRow("Turn detection", self.vad)
        vad_row = QHBoxLayout()
        vad_row.addWidget(self.threshold)
        vad_row.addWidget(QLabel("Eagerness", self))
        vad_row.addWidget(self.eagerness)
        form.addRow("Threshold", vad_row)
        pad_row = QHBoxLayout()
        pad_row.addWidget(self.prefix)
        pad_row.addWidget(QLabel("Silence", self))
        pad_row.addWidget(self.silence)
        form.addRow("Prefix pad", pad_row)
        form.addRow("Language", self.language)
        form.addRow("Tools", self.tools)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(pick)
        box.addWidget(self.error)
        box.addLayout(form)
        self.set_profile(self._base)

    # --- public API ---------------------------------------------------------------------

    def load(self, name_or_path: str) -> bool:
        """Load a built-in profile name or file; on error show it and keep the current
        one.
        """
        try:
            profile = load_profile(name_or_path)
        except ConfigError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return False
        self.error.hide()
        if self.picker.findData(name_or_path) < 0:
            self.picker.addItem(Path(name_or_path).name, name_or_path)
        self.picker.setCurrentIndex(self.picker.findData(name_or_path))
        self.set_profile(profile)
        self.profileLoaded.emit(profile)
        return True

    def set_profile(self, p: Profile) -> None:
        """Show ``p`` in the editor."""
        self._base = p
        self.provider.setCurrentText(p.provider)
        self._provider_changed(p.provider)
        self.model.setCurrentText(p.model)
        self.voice.setCurrentText(p.voice)
        self.instructions.setPlainText(p.instructions)
        td = p.turn_detection
        self.vad.setCurrentIndex(max(0, self.vad.findData(td.type)))
        self.threshold.setValue(td.threshold)
        self.prefix.setValue(td.prefix_padding_ms)
        self.silence.setValue(td.silence_duration_ms)
        self.eagerness.setCurrentText(td.eagerness)
        self.language.setText(p.transcription.language)
        self.agent_url.setText(p.url if p.provider in STREAM_PROVIDERS else "")
        self.tools.clear()
        for tool in p.tools:
            self.tools.addItem(f"{tool.name}  ({tool.impl.type})")
        if not p.tools:
            self.tools.addItem("(no tools)")
        self._vad_changed()

    def profile(self) -> Profile:
        """The edited profile (a new frozen value; the loaded one is unchanged)."""
        p = self._base
        td = replace(
            p.turn_detection,
            type=str(self.vad.currentData()),
            threshold=round(self.threshold.value(), 3),
            prefix_padding_ms=self.prefix.value(),
            silence_duration_ms=self.silence.value(),
            eagerness=self.eagerness.currentText(),
        )
        provider = self.provider.currentText()
        stream = provider in STREAM_PROVIDERS
        url = p.url if p.provider not in STREAM_PROVIDERS else ""  # a vendor endpoint stays
        return replace(
            p,
            provider=provider,
            url=self.agent_url.text().strip() if stream else url,
            params=p.params if stream else {},
            model=self.model.currentText().strip() or p.model,
            voice=self.voice.currentText().strip() or p.voice,
            instructions=self.instructions.toPlainText(),
            turn_detection=td,
            transcription=replace(p.transcription, language=self.language.text().strip()),
        )

    # --- internals ----------------------------------------------------------------------

    def _provider_changed(self, provider: str) -> None:
        stream = provider in STREAM_PROVIDERS  # the deployed agent has its own settings
        self._form.setRowVisible(self.agent_url, stream)
        for w in (self.model, self.voice, self.instructions, self.vad, self.language):
            w.setEnabled(not stream)
        model, voice = self.model.currentText(), self.voice.currentText()
        self.model.clear()
        self.model.addItems(list(MODELS.get(provider, ())))
        self.voice.clear()
        self.voice.addItems(list(VOICES.get(provider, ())))
        if model:
            self.model.setCurrentText(
                model if model in MODELS.get(provider, ()) else self.model.itemText(0)
            )
        if voice:
            self.voice.setCurrentText(
                voice if voice in VOICES.get(provider, ()) else self.voice.itemText(0)
            )

    def _vad_changed(self, *_args: object) -> None:
        mode = self.vad.currentData()
        for w in (self.threshold, self.prefix, self.silence):
            w.setEnabled(mode == "server_vad")
        self.eagerness.setEnabled(mode == "semantic_vad")

    def _open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open profile", "", "Profiles (*.yaml *.yml *.json);;All files (*)"
        )
        if path:
            self.load(path)
