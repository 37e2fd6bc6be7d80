"""Helpers for the suite tests: suite files, and running ``voiceprobe suite`` as a real
subprocess (its exit code, stdout, stderr)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO

# Replies are short and the simulator fast, so a case takes a few seconds.
SIM_TIMING = (
    "{response_delay_ms: 50, first_audio_ms: 150, transcript_delay_ms: 50, "
    "realtime_factor: 4, endpointing_ms: 300}"
)

WEATHER_SAY = (
    '{en: "What is the weather in Paris today", es: "Qué tiempo hace en París hoy", '
    'hi: "पेरिस में आज मौसम कैसा है", ar: "كيف الطقس في باريس اليوم", '
    'zh: "巴黎今天天气怎么样", fr: "Quel temps fait il à Paris aujourd\'hui"}'
)
WEATHER_AFTER = (
    '{en: "It is sunny in Paris today.", es: "Hace sol en París hoy.", '
    'hi: "आज पेरिस में धूप खिली है।", ar: "الجو مشمس في باريس اليوم.", '
    'zh: "巴黎今天是晴天。", fr: "Il fait soleil à Paris aujourd\'hui."}'
)
THANKS_SAY = (
    '{en: "Thank you very much", es: "Muchas gracias", hi: "बहुत धन्यवाद", '
    'ar: "شكرا جزيلا", zh: "非常感谢你", fr: "Merci beaucoup"}'
)
THANKS_REPLY = (
    '{en: "You are welcome.", es: "De nada.", hi: "आपका स्वागत है।", ar: "عفوا.", '
    'zh: "不客气。", fr: "De rien."}'
)


def _cli_env(home: Path, env: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, "VOICEPROBE_HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1",
            **(env or {})}  # fmt: skip


def run_cli(
    args: list[str], home: Path, timeout: float = 150.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m app.cli ARGS`` with ``VOICEPROBE_HOME=home``."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=_cli_env(home, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_cli(args: list[str], home: Path) -> subprocess.Popen[str]:
    """Start ``python -m app.cli ARGS`` with ``VOICEPROBE_HOME=home`` (stdout and stderr
    piped, as text), for a test that signals it mid-run."""
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=_cli_env(home, None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def run_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON object a ``--json`` run printed."""
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    return data


def case_checks(run: dict[str, Any], language: str) -> dict[str, list[dict[str, Any]]]:
    """Every check of the cases of ``language``, by check name."""
    out: dict[str, list[dict[str, Any]]] = {}
    for case in run["cases"]:
        if case["language"] == language:
            for check in case["checks"]:
                out.setdefault(check["name"], []).append(check)
    return out
