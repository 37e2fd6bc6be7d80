"""Tags edited while a call runs go to that call's session (``session.json`` and the index,
where ``sessions list``, coverage and reports read them), not only to the next call.

The store tests use the real writer; the window test places a real call (core +
simulator, a WAV file as the caller) and edits the tags while it runs.
"""

from __future__ import annotations

import gc
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from PySide6.QtCore import Qt

from app.errors import ConfigError
from app.store.index import SessionIndex
from app.store.session_tags import set_session_tags
from app.store.writer import INDEX_FILE, SessionWriter
from tests.coverage_helpers import cli, make_session

SID = "20261204-110000-7a9b"


def _tags(folder: Path) -> list[str]:
    return json.loads((folder / "session.json").read_text())["tags"]


def _row(home: Path, sid: str) -> dict[str, Any]:
    """The session's index row with its tag columns (what coverage groups by)."""
    index = SessionIndex(home / INDEX_FILE)
    row = index.get(sid)
    assert row is not None
    cols, rows = index.query("SELECT language, accent, noise FROM sessions WHERE id = ?", [sid])
    return {**row, **dict(zip(cols, rows[0], strict=True))}


def test_tags_set_while_the_writer_runs_survive_its_closing_write(tmp_path: Path) -> None:
    home = tmp_path / "home"
    writer = SessionWriter(home, SID, {"provider": "sim", "tags": ["language=en-US"]})
    stored = set_session_tags(writer.dir, ["language=en-GB", "accent=scottish", "noise=cafe"])
    assert stored == ["language=en-GB", "accent=scottish", "noise=cafe"]
    assert _tags(writer.dir) == stored  # at once, while the call runs
    assert _row(home, SID)["accent"] == "scottish"
    # The writer's own closing write keeps them (it does not put back the tags it began with).
    writer.finish("complete", {"turns": 0})
    assert _tags(writer.dir) == stored
    assert json.loads((writer.dir / "session.json").read_text())["status"] == "complete"
    row = _row(home, SID)
    assert (row["language"], row["accent"], row["noise"]) == ("en-GB", "scottish", "cafe")
    del writer
    gc.collect()
    # A finished session (no writer any more): the same function, the same places.
    set_session_tags(home / "sessions" / SID, ["language=en-GB", "accent=welsh"])
    assert _row(home, SID)["accent"] == "welsh"
    listed = cli(home, "sessions", "list", "--search", "accent=welsh")
    assert listed.returncode == 0 and SID in listed.stdout, listed.stderr


def test_a_bad_tag_changes_nothing_stored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = make_session(home, SID, [("a", "b", 700.0)], tags=["language=en-US"])

    def snapshot() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.iterdir())}  # fmt: skip

    before, row = snapshot(), _row(home, SID)
    for bad in (["=x"], ["language=en-US", "noise=\x07bell"], ["bad key=1"]):
        with pytest.raises(ConfigError) as err:
            set_session_tags(folder, bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="no session"):
        set_session_tags(home / "sessions" / "20261204-110000-none", ["a=b"])
    assert snapshot() == before and _row(home, SID) == row


SCENARIO = {
    "name": "tags-midcall",
    "turns": [
        {"hears": "Hello, can you hear me?", "reply": "Yes, I can hear you clearly."},
        {"hears": "What time is it?", "reply": "It is time to test."},
    ],
}


@pytest.mark.slow
def test_a_tag_added_mid_call_is_kept_with_the_running_session(qtbot: Any, tmp_path: Path) -> None:
    from app.audio.fileport import WavFilePort
    from app.bridge.controller import CallController
    from app.sim.caller import write_caller_wav
    from app.sim.scenario import load_scenario
    from ui.app import build_main_window

    scenario = tmp_path / "two.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(scenario)), wav)
    root = tmp_path / "data"
    controller = CallController(data_root=root, port_factory=lambda _o: WavFilePort.from_wav(wav))
    win = build_main_window(controller, devices=lambda: [])
    qtbot.addWidget(win)
    win.extra_options = {"provider": "sim", "source": "test", "scenario": str(scenario)}
    win.show()
    panel = win.verdicts
    panel.tags.fields["language"].setText("en-GB")  # set before the call
    try:
        qtbot.mouseClick(win.call_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(panel.session_id), timeout=60_000)
        sid = panel.session_id
        assert controller.in_call
        # A bad tag mid-call: said, nothing stored.
        panel.tags.other.setText("=cafe")
        assert "empty key" in panel.message.text()
        with qtbot.waitSignal(panel.tagsStored, timeout=20_000) as stored:
            panel.tags.fields["accent"].setText("scottish")
            panel.tags.other.setText("noise=cafe")
        assert stored.args[0] == sid
        assert controller.in_call, "the call ended before the tags were stored: not mid-call"
        text = panel.message.text()
        assert sid in text and "this call" in text, text  # where the tags went
        assert panel.message.textFormat() == Qt.TextFormat.PlainText
        qtbot.waitUntil(lambda: controller.last_summary is not None, timeout=120_000)
        qtbot.waitUntil(lambda: not win.in_call, timeout=10_000)
    finally:
        win.close()
        controller.shutdown()
    summary = controller.last_summary
    assert summary is not None and summary["ok"], summary and summary["errors"]
    folder = Path(summary["session_dir"])
    assert folder.name == sid
    assert set(_tags(folder)) == {"language=en-GB", "accent=scottish", "noise=cafe"}
    row = _row(root, sid)
    assert (row["language"], row["accent"], row["noise"]) == ("en-GB", "scottish", "cafe")
    listed = cli(root, "sessions", "list", "--search", "noise=cafe")
    assert listed.returncode == 0 and sid in listed.stdout, listed.stderr
