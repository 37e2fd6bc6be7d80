"""Helpers for the Twilio tests: processes whose first stdout line is a WebSocket URL
(``serve twilio``, ``sim``, the Pipecat bot), and stopping them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO


def start_line(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """Start a process whose first stdout line is its URL; return it and the line."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # the process prints it once it listens
    assert line.startswith("ws://"), line
    return proc, line


def stop(proc: subprocess.Popen[str]) -> None:
    """Terminate ``proc`` (kill it if it does not end within 10 s)."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class ServeTwilio:
    """A ``voiceprobe serve twilio --provider sim`` process: its URL, TwiML and token."""

    def __init__(self, tmp: Path, truth: bool = True) -> None:
        self.out = tmp / "data"
        self.truth = tmp / "truth.jsonl"
        args = [sys.executable, "-m", "app.cli", "serve", "twilio", "--provider", "sim"]
        if truth:
            args += ["--truth", str(self.truth)]
        self.proc = subprocess.Popen(
            [*args, "--out", str(self.out), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("ws://127.0.0.1:") and self.url.endswith("/twilio")
        self.twiml = self.proc.stdout.readline() + self.proc.stdout.readline()
        assert "<Connect><Stream url=" in self.twiml
        self.token = self.twiml.split('value="')[1].split('"')[0]
        assert len(self.token) >= 24

    def next_call(self) -> dict[str, Any]:
        """The next finished call's summary (one JSON line per call)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the server prints it when the call ends
        assert line, "server exited"
        return dict(json.loads(line))

    def sessions(self) -> list[Path]:
        """The server's session folders."""
        root = self.out / "sessions"
        return sorted(root.iterdir()) if root.exists() else []

    def stop(self) -> None:
        """Stop the server."""
        stop(self.proc)
