"""Recordings are private: everything voiceprobe creates in its data folder is 0700/0600.

A real headless call against the simulator, with the usual umask 022, must leave no
folder or file under ``VOICEPROBE_HOME`` that another user could read.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SCENARIO = """
name: perms
timing: {response_delay_ms: 50, first_audio_ms: 50, transcript_delay_ms: 20, realtime_factor: 0}
turns:
  - hears: "Hello there."
    reply: "Fine."
"""


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"VOICEPROBE_HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        umask=0o022,
    )


def modes(home: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(home):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            found[str(p.relative_to(home))] = oct(stat.S_IMODE(p.lstat().st_mode))
    return found


def test_call_leaves_only_private_paths(tmp_path: Path) -> None:
    home = tmp_path / "home"
    scenario = tmp_path / "perms.yaml"
    scenario.write_text(SCENARIO)
    sample = cli(home, "sample", "--scenario", str(scenario))  # default: <home>/samples/
    assert sample.returncode == 0, sample.stderr
    wav = Path(sample.stdout.strip())
    assert wav.is_relative_to(home)
    call = cli(home, "call", "--input", str(wav), "--provider", "sim", "--scenario", str(scenario))
    assert call.returncode == 0, call.stderr
    listed = cli(home, "sessions", "list")  # opens the index again (WAL files)
    assert listed.returncode == 0, listed.stderr
    found = modes(home)
    names = {Path(k).name for k in found}
    for expected in ("sessions", "session.json", "events.jsonl", "audio.wav", "turns.json",
                     "sessions.db", "samples", "perms.wav"):  # fmt: skip
        assert expected in names, (expected, found)
    bad = {
        k: m
        for k, m in found.items()
        if m != ("0o700" if (home / k).is_dir() and not (home / k).is_symlink() else "0o600")
    }
    assert not bad, bad


def test_existing_loose_folders_are_tightened(tmp_path: Path) -> None:
    """A data folder left by an older voiceprobe (0755 folders, 0644 files) is tightened
    on the next start: the sessions folder, the index, and the session folders in it."""
    home = tmp_path / "home"
    loose = home / "sessions" / "20260101-000000-0000"
    loose.mkdir(parents=True)
    (loose / "session.json").write_text('{"session_id": "20260101-000000-0000", '
                                        '"status": "complete"}')  # fmt: skip
    os.chmod(home / "sessions", 0o755)
    os.chmod(loose, 0o755)
    os.chmod(loose / "session.json", 0o644)
    listed = cli(home, "sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert "20260101-000000-0000" in listed.stdout
    found = modes(home)
    assert found["sessions"] == "0o700", found
    assert found["sessions.db"] == "0o600", found
