"""Shared test set-up: a private data folder, offscreen Qt, and the timing unit.

``VOICEPROBE_TIME_SCALE`` (default 1) scales timing tolerances on slow machines, like the
websockets test suite's ``WEBSOCKETS_TESTS_TIMEOUT_FACTOR``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.pulse import pulse_server  # noqa: F401  (session fixture: private PulseAudio)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if "VOICEPROBE_HOME" not in os.environ or os.environ.get("PYTEST_XDIST_WORKER"):
    # Each pytest-xdist worker gets a data folder of its own (sessions.db, sessions).
    os.environ["VOICEPROBE_HOME"] = tempfile.mkdtemp(prefix="voiceprobe-test-")

REPO = Path(__file__).resolve().parent.parent
TIME_SCALE = float(os.environ.get("VOICEPROBE_TIME_SCALE", "1"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh VOICEPROBE_HOME for one test."""
    monkeypatch.setenv("VOICEPROBE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
