"""The settings dialog: API keys (OS keyring), endpoints, data folder, recording.

Key fields are password fields that start empty: a stored key is never read back into the
UI, only its presence is shown. Without a keyring backend the dialog says so and points to
the environment variables.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import VoiceprobeError
from ui.settings_store import DISCLOSURE_LINE, Settings, save_settings
from ui.views.labels import banner_label, plain_label

#: provider → (secret name, environment variables, default endpoint shown as a hint)
KEYS = {
    "openai": ("openai_api_key", ("OPENAI_API_KEY",), "wss://api.openai.com/v1/realtime"),
    "gemini": (
        "gemini_api_key",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        "wss://generativelanguage.googleapis.com/ws/"
        "google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
    ),
}
RECORDING_DISCLOSURE = (
    "When on, every call is saved to the data folder: both sides of the audio (caller and "
    "agent), transcripts, tool calls and all protocol events. Tell the people on a call "
    "that it is being recorded. API keys are never recorded."
)


def _secrets_module() -> ModuleType:
    import app.secrets

    return app.secrets


class SettingsDialog(QDialog):
    """Edits :class:`~ui.settings_store.Settings` and stores API keys in the keyring.

    ``secrets`` is :mod:`app.secrets` (or an object with the same ``get_secret``,
    ``set_secret``, ``keyring_available``). Main thread only; never shows a stored key.
    """

    def __init__(
        self,
        settings: Settings,
        parent: QWidget | None = None,
        settings_path: Path | None = None,
        secrets: Any = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("voiceprobe settings")
        self.setMinimumWidth(560)
        self._settings = settings
        self._path = settings_path
        self._secrets = secrets if secrets is not None else _secrets_module()
        self.keyring_ok = bool(self._secrets.keyring_available())

        keys = QGroupBox("API keys", self)
        form = QFormLayout(keys)
        self.keyring_notice = plain_label(
            "No OS keyring backend is available on this system, so keys cannot be stored "
            "here. Set OPENAI_API_KEY or GEMINI_API_KEY in the environment before starting "
            "voiceprobe.",
            keys,
            "banner",
        )
        self.keyring_notice.setVisible(not self.keyring_ok)
        form.addRow(self.keyring_notice)
        self.key_fields: dict[str, QLineEdit] = {}
        self.key_status: dict[str, QLabel] = {}
        for provider, (name, env_vars, _url) in KEYS.items():
            field = QLineEdit(keys)
            field.setEchoMode(QLineEdit.EchoMode.Password)
            field.setEnabled(self.keyring_ok)
            stored = self._secrets.get_secret(name, ()) if self.keyring_ok else None
            env = self._secrets.get_secret(name, env_vars) if not stored else None
            if stored:
                status = "stored in the OS keyring — type a new key to replace it"
            elif env:
                status = f"taken from the environment ({' / '.join(env_vars)})"
            else:
                status = f"not set (keyring or {' / '.join(env_vars)})"
            field.setPlaceholderText("paste a key to store it" if self.keyring_ok else "")
            self.key_fields[provider] = field
            self.key_status[provider] = plain_label(status, keys, "hint")
            title = "OpenAI API key" if provider == "openai" else "Gemini API key"
            form.addRow(title, field)
            form.addRow("", self.key_status[provider])

        ends = QGroupBox("Endpoints", self)
        eform = QFormLayout(ends)
        self.url_fields: dict[str, QLineEdit] = {}
        for provider, (_name, _env, url) in KEYS.items():
            field = QLineEdit(getattr(settings, f"{provider}_url"), ends)
            field.setPlaceholderText(f"default: {url}")
            field.setToolTip("Regional, Azure or Vertex endpoint, a proxy, or the simulator")
            self.url_fields[provider] = field
            eform.addRow(
                "OpenAI Realtime URL" if provider == "openai" else "Gemini Live URL", field
            )

        data = QGroupBox("Data and recording", self)
        dform = QFormLayout(data)
        self.data_dir = QLineEdit(settings.data_dir, data)
        self.data_dir.setPlaceholderText("default: $VOICEPROBE_HOME or the platform data folder")
        browse = QPushButton("Browse…", data)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.data_dir, 1)
        row.addWidget(browse)
        dform.addRow("Data folder", row)
        self.recording = QCheckBox("Record calls", data)
        self.recording.setChecked(settings.recording)
        dform.addRow("", self.recording)
        self.disclosure = plain_label(RECORDING_DISCLOSURE, data, "hint")
        dform.addRow("", self.disclosure)
        self.announce = QCheckBox(f'Show "{DISCLOSURE_LINE}" when a call starts', data)
        self.announce.setChecked(settings.recording_disclosure)
        self.announce.setEnabled(settings.recording)
        self.recording.toggled.connect(self.announce.setEnabled)
        dform.addRow("", self.announce)

        self.error = banner_label(self)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self._save_clicked)
        buttons.rejected.connect(self.reject)

        box = QVBoxLayout(self)
        for w in (keys, ends, data, self.error):
            box.addWidget(w)
        box.addWidget(buttons)

    def edited_settings(self) -> Settings:
        """The settings as edited (not saved)."""
        return replace(
            self._settings,
            openai_url=self.url_fields["openai"].text().strip(),
            gemini_url=self.url_fields["gemini"].text().strip(),
            data_dir=self.data_dir.text().strip(),
            recording=self.recording.isChecked(),
            recording_disclosure=self.announce.isChecked(),
        )

    def save(self) -> bool:
        """Store typed keys in the keyring and write the settings file. On failure the
        reason is shown in the dialog (never the key) and ``False`` is returned.
        """
        try:
            for provider, field in self.key_fields.items():
                value = field.text().strip()
                if value:
                    self._secrets.set_secret(KEYS[provider][0], value)
                    field.clear()
                    self.key_status[provider].setText("stored in the OS keyring")
            self._settings = self.edited_settings()
            save_settings(self._settings, self._path)
        except VoiceprobeError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return False
        self.error.hide()
        return True

    @property
    def settings(self) -> Settings:
        return self._settings

    def _save_clicked(self) -> None:
        if self.save():
            self.accept()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder", self.data_dir.text())
        if folder:
            self.data_dir.setText(folder)
