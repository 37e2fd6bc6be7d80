"""Helpers for the suite tests: suite files, and running ``voiceprobe suite`` as a real
subprocess (its exit code, stdout, stderr)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
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


# -- per-case record-keeping without calls --------------------------------------------------

#: A suite of ``LANGS`` x ``repeat: REPEAT`` two-turn cases (no simulator text needed: the
#: synthetic runner below places no call).
BIG_SUITE = """\
name: big
repeat: REPEAT
conversations:
  - id: thanks
    turns:
      - say: {en: "Thank you very much", es: "Muchas gracias", fr: "Merci beaucoup"}
        expect: {heard: {max_wer: 0.3}, says: ["welcome"], v2v_ms: {max: 1500}}
      - say: {en: "Goodbye", es: "Adiós", fr: "Au revoir"}
        expect: {heard: {max_wer: 0.3}, says: ["bye"]}
matrix:
  language: [LANGS]
"""


def synthetic_result(case: Any) -> dict[str, Any]:
    """A finished case's result shaped (and sized, about 2.5 KB) like a real one: two
    judged turns, five checks, the bridge's figures. ``case`` is a
    :class:`app.suite.expand.Case`."""

    def check(turn: int | None, name: str, value: Any, limit: Any) -> dict[str, Any]:
        return {"turn": turn, "name": name, "passed": True, "value": value, "limit": limit,
                "message": f"{name}: {value} (limit {limit})"}  # fmt: skip

    turns = [
        {
            "turn": t.index,
            "expected": t.text,
            "heard": t.text,
            "said": "You are welcome.",
            "wer": 0.0,
            "reply_language": "en",
            "v2v_ms": 812.5 + t.index,
            "ttfb_ms": 301.25,
            "interrupted": False,
            "timed_out": False,
            "tool_calls": [],
        }  # fmt: skip
        for t in case.turns
    ]
    stats = {"count": 250, "p50_ms": 0.61, "p95_ms": 0.90, "max_ms": 2.01}
    return {
        "index": case.index, "id": case.id, "conversation": case.conversation.id,
        "language": case.language, "accent": case.accent, "noise": case.noise,
        "line": case.line, "speed": case.speed, "level": case.level,
        "condition": case.condition, "repeat": case.repeat,
        "session_id": f"20261204-120000-{case.index:04x}",
        "session_dir": f"/home/tester/.local/share/voiceprobe/sessions/s{case.index:06d}",
        "passed": True, "status": "passed",
        "checks": [check(1, "heard", 0.0, 0.3), check(1, "says", "welcome", "welcome"),
                   check(1, "v2v_ms", 813.5, "<= 1500"), check(2, "heard", 0.0, 0.3),
                   check(2, "says", "bye", "bye")],
        "wer": 0.0, "reply_language": "en", "reply_language_match": True,
        "v2v_p50_ms": 813.0, "v2v_p95_ms": 814.4, "cost_usd": 0.0123, "error": None,
        "audio_s": 9.5, "wall_s": 9.61,
        "bridge": {"caller_capture_to_ws_send": stats, "ws_receive_to_playout": stats,
                   "frames": 475, "unsent_frames": 0,
                   "loop_lag": {"count": 475, "p99_ms": 0.5, "max_ms": 0.9}},
        "turns": turns, "unjudged_turns": [],
    }  # fmt: skip


def synthetic_runner(
    folder: Path,
    languages: str,
    repeat: int,
    parallel: int = 8,
    on_case: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Any, list[Any]]:
    """A :class:`app.suite.runner.SuiteRunner` over :data:`BIG_SUITE` (written into
    ``folder``; data folder ``folder / "home"``) whose cases place no call: each returns
    :func:`synthetic_result` at once, so :meth:`run` does only the per-case record-keeping
    (store writes, ``on_case``). Returns the runner and the items for its ``run``."""
    from app.bridge.providers import plan_provider
    from app.profile import load_profile
    from app.suite.expand import expand
    from app.suite.load import load_suite
    from app.suite.runner import Prepared, RunSettings, SuiteRunner

    class NoCalls(SuiteRunner):
        async def _call(self, item: Prepared) -> dict[str, Any]:
            return synthetic_result(item.case)

    path = folder / "big.yaml"
    path.write_text(BIG_SUITE.replace("REPEAT", str(repeat)).replace("LANGS", languages),
                    encoding="utf-8")  # fmt: skip
    suite = load_suite(path)
    cases = expand(suite)
    plan, profile = plan_provider("sim", load_profile(suite.profile), None, None)
    settings = RunSettings(parallel, folder / "home")
    runner = NoCalls(suite, cases, profile, plan, settings, "20261204-120000-abcd", on_case)
    return runner, [Prepared(c, [], None) for c in cases]


def bytes_written() -> int:
    """Bytes this process has passed to ``write`` calls so far (every thread's), from
    ``/proc/self/io`` (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")
