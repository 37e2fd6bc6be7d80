"""Settings (store + dialog) and session history over a real session folder."""

from __future__ import annotations

import json  # noqa: E402
import wave  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QLineEdit  # noqa: E402

from app import events as E  # noqa: E402
from app.errors import ConfigError  # noqa: E402
from tests.conftest_qt import FakeController  # noqa: F401  (sets QT_QPA_PLATFORM first)
from ui.demo import demo_events  # noqa: E402
from ui.history import HistoryWindow  # noqa: E402
from ui.settings_dialog import SettingsDialog  # noqa: E402
from ui.settings_store import Settings, load_settings, save_settings  # noqa: E402

DISPLAY = Qt.ItemDataRole.DisplayRole


class FakeSecrets:
    def __init__(
        self,
        available: bool,
        stored: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ):
        self.available, self.stored, self.env = available, dict(stored or {}), dict(env or {})

    def keyring_available(self) -> bool:
        return self.available

    def get_secret(self, name, env_vars=None):
        if name in self.stored:
            return self.stored[name]
        return next((self.env[v] for v in (env_vars or ()) if v in self.env), None)

    def set_secret(self, name, value):
        if not self.available:
            raise ConfigError("no OS keyring available")
        self.stored[name] = value


def test_settings_round_trip_keeps_unknown_keys(tmp_path: Path):
    path = tmp_path / "settings.json"
    assert load_settings(path) == Settings()
    path.write_text(json.dumps({"future_key": 1, "recording": False}))
    s = load_settings(path)
    assert s.recording is False
    save_settings(Settings(openai_url="ws://127.0.0.1:9/v1/realtime", slow_turn_ms=900), path)
    data = json.loads(path.read_text())
    assert data["future_key"] == 1 and data["slow_turn_ms"] == 900
    assert load_settings(path).openai_url == "ws://127.0.0.1:9/v1/realtime"
    path.write_text('{"recording": "yes"}')
    with pytest.raises(ConfigError, match="recording"):
        load_settings(path)


def test_settings_file_honours_voiceprobe_home(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICEPROBE_HOME", str(tmp_path))
    p = save_settings(Settings(recording=False))
    assert p == tmp_path / "config" / "settings.json"
    assert load_settings().recording is False


def test_dialog_without_keyring_says_so_and_disables_keys(qtbot, tmp_path):
    secrets = FakeSecrets(False, env={"OPENAI_API_KEY": "sk-env-secret-123"})
    dlg = SettingsDialog(Settings(), settings_path=tmp_path / "s.json", secrets=secrets)
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.keyring_notice.isVisible()
    assert "OPENAI_API_KEY" in dlg.keyring_notice.text()
    for field in dlg.key_fields.values():
        assert not field.isEnabled() and field.echoMode() == QLineEdit.EchoMode.Password
    assert "environment" in dlg.key_status["openai"].text()
    assert all("sk-env-secret-123" not in w.text() for w in dlg.findChildren(QLineEdit))
    assert (
        dlg.disclosure.textFormat() == Qt.TextFormat.PlainText
        and "recorded" in dlg.disclosure.text()
    )


def test_dialog_stores_keys_in_keyring_and_never_echoes_them(qtbot, tmp_path):
    secrets = FakeSecrets(True, stored={"gemini_api_key": "AIza-stored-key"})
    path = tmp_path / "s.json"
    dlg = SettingsDialog(Settings(), settings_path=path, secrets=secrets)
    qtbot.addWidget(dlg)
    assert not dlg.keyring_notice.isVisibleTo(dlg)
    assert dlg.key_fields["gemini"].text() == ""  # a stored key is never read back
    assert "stored in the OS keyring" in dlg.key_status["gemini"].text()
    dlg.key_fields["openai"].setText("sk-new-key-456")
    dlg.url_fields["gemini"].setText("wss://127.0.0.1:9443/ws")
    dlg.recording.setChecked(False)
    assert dlg.save()
    assert secrets.stored["openai_api_key"] == "sk-new-key-456"
    assert dlg.key_fields["openai"].text() == ""
    saved = path.read_text()
    assert "sk-new-key-456" not in saved and "AIza" not in saved
    assert json.loads(saved)["gemini_url"] == "wss://127.0.0.1:9443/ws"
    assert json.loads(saved)["recording"] is False


def _write_session(root: Path, sid: str) -> None:
    d = root / sid
    d.mkdir(parents=True)
    events = demo_events()
    (d / "session.json").write_text(
        json.dumps(
            {
                "session_id": sid,
                "provider": "sim",
                "model": "m",
                "started_at": "2026-11-27T10:00:00Z",
                "status": "complete",
            }
        )
    )
    with open(d / "events.jsonl", "w") as f:
        for ev in events:
            f.write(json.dumps(E.event_to_dict(ev)) + "\n")
    turns = [ev.turn.to_dict() for ev in events if isinstance(ev, E.TurnCompleted)]
    (d / "turns.json").write_text(json.dumps(turns))
    with wave.open(str(d / "audio.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(16000 * 4))


class ListIndex:
    def __init__(self, rows):
        self.rows = rows
        self.queries = []

    def list(self, limit=50, query=None):
        self.queries.append(query)
        return [r for r in self.rows if not query or query in r["id"]][:limit]


def test_history_reopens_a_stored_session_read_only(qtbot, tmp_path):
    from app.store.reader import load_session

    _write_session(tmp_path, "20261127-100000-abcd")
    index = ListIndex(
        [
            {
                "id": "20261127-100000-abcd",
                "started_at": "2026-11-27T10:00:00Z",
                "provider": "sim",
                "model": "m",
                "profile": "default",
                "turns": 4,
                "p50_v2v_ms": 862.5,
                "p95_v2v_ms": 1376.75,
                "errors": 0,
                "status": "complete",
            }
        ]
    )
    hist = HistoryWindow(index, tmp_path, loader=load_session)
    qtbot.addWidget(hist)
    assert hist.model.rowCount() == 1
    assert hist.model.index(0, 6).data(DISPLAY) == "862 ms"
    hist.search.setText("nomatch")
    assert hist.model.rowCount() == 0 and index.queries[-1] == "nomatch"
    hist.search.setText("")
    viewer = hist.open_row(0)
    qtbot.addWidget(viewer)
    assert viewer.applied == len(demo_events())
    assert viewer.vm.turns.rowCount() == 4
    assert len(viewer.waterfall.row_layouts()) == 4
    assert viewer.vm.tools.rowCount() == 1
    assert viewer.play_button.isEnabled()
    data, rate = viewer.player.load(viewer.record.audio_path)
    assert data.shape == (16000, 2) and rate == 16000


def test_history_shows_store_errors(qtbot, tmp_path):
    from app.store.reader import load_session

    index = ListIndex([{"id": "missing-session"}])
    hist = HistoryWindow(index, tmp_path, loader=load_session)
    qtbot.addWidget(hist)
    assert hist.open_row(0) is None
    assert hist.error.isVisibleTo(hist) and "missing-session" in hist.error.text()
