"""The command-line helpers every command shares: public names in two modules, one
summary printer for headless and SIP calls, the agent side as a typed record, and
start-up recovery as a store function."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.cli_output import print_summary
from app.cli_support import AgentSetup, Parser, UsageError, add_agent_options, agent_setup
from app.errors import ConfigError
from tests.conftest import REPO

ESC = "\x1b[31m"


def _summary(**extra: Any) -> dict[str, Any]:
    turn = {
        "index": 0,
        "user_transcript": "hello",
        "agent_transcript": f"hi {ESC}there",
        "interrupted": False,
        "spans": {"voice_to_voice": {"start_ns": 0, "end_ns": 812_000_000, "ms": 812.0}},
        "tool_calls": [],
    }
    return {
        "session_id": "s1",
        "session_dir": "/tmp/x/sessions/s1",
        "provider": "openai",
        "turns": [turn],
        "voice_to_voice": {"count": 1, "p50_ms": 812.0, "p95_ms": 812.0},
        "errors": [{"code": "boom", "message": f"server said {ESC}no", "fix": "retry"}],
        "ok": False,
        **extra,
    }


def test_no_module_imports_a_private_cli_name() -> None:
    private = re.compile(r"from app\.cli\w* import [^\n]*\b_[a-z]")
    found = [
        f"{p.relative_to(REPO)}: {m.group(0)}"
        for folder in ("app", "ui", "sip", "tests")
        for p in sorted((REPO / folder).rglob("*.py"))
        for m in private.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not found, "\n".join(found)


def test_summary_of_a_call_is_inert_text(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary(_summary(), as_json=False)
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err
    assert "voice_to_voice (LocalSpeechStopped → PlaybackStarted): p50 812 ms" in out
    assert out.rstrip().endswith("session s1: /tmp/x/sessions/s1")
    assert "cost: unknown" in out
    assert err.startswith("error: boom: server said") and "(retry)" in err
    assert "call quality" not in out and "bridge delay" not in out


def test_summary_of_a_sip_call_adds_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    quality = {"codec": "PCMU", "jitter_ms": 1.5, "loss_pct": 0.0, "rtt_ms": None, "mos": 4.4}
    delay = {"sip_in_to_provider": {"count": 3, "p50_ms": 2.0, "p95_ms": 3.0}}
    print_summary(_summary(call_quality=quality, sip_bridge_delay=delay), as_json=False)
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err
    assert "call quality: PCMU, jitter 1.5 ms, loss 0.0 %, rtt -, MOS 4.40" in out
    assert "bridge delay: SIP in → provider p50 2.0 / p95 3.0 ms; provider → SIP out -" in out


def test_summary_says_what_an_empty_or_cut_off_table_means(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A call cut off by --max-seconds, and one in which nobody was heard, say so on
    stderr (stdout keeps its table and last line); a whole call adds nothing."""
    none = {"count": 0, "p50_ms": None, "p95_ms": None}
    print_summary(_summary(ok=True, errors=[], turns=[], voice_to_voice=none,
                           reason="max_duration"), as_json=False)  # fmt: skip
    out, err = capsys.readouterr()
    assert out.rstrip().endswith("session s1: /tmp/x/sessions/s1")
    assert err.splitlines() == [
        "note: the call ended at its time limit (--max-seconds)",
        "note: no caller speech was detected, so there are no turns: check that the input "
        "holds speech and is loud enough",
    ]
    print_summary(_summary(ok=True, errors=[], reason="completed"), as_json=False)
    assert capsys.readouterr().err == ""
    print_summary(_summary(ok=True, errors=[], reason="max_duration"), as_json=True)
    assert capsys.readouterr().err == ""  # --json: the summary's reason says it


def test_summary_as_json_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    summary = _summary(call_quality={"codec": "PCMU"})
    print_summary(summary, as_json=True)
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "\x1b" not in out
    assert json.loads(out) == summary
    assert err.startswith("error: boom:")  # errors stay on stderr with --json too


def _agent_args(tmp_path: Path, *argv: str) -> argparse.Namespace:
    p = Parser(prog="t")
    add_agent_options(p)
    return p.parse_args(["--out", str(tmp_path), *argv])


def test_agent_setup_is_a_typed_record(tmp_path: Path, home: Path) -> None:
    setup = agent_setup(_agent_args(tmp_path, "--max-seconds", "12"))
    assert isinstance(setup, AgentSetup)
    assert setup.data_root == tmp_path
    assert setup.options.max_seconds == 12.0
    assert setup.plan.label == "sim"
    assert setup.profile.provider == "openai"


@pytest.mark.parametrize(
    "argv",
    [("--max-seconds", "0"), ("--max-seconds", "nan"), ("--max-seconds", "inf"),
     ("--tag", "bad tag=")],
)
def test_agent_setup_refuses_bad_input(tmp_path: Path, home: Path, argv: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as err:
        agent_setup(_agent_args(tmp_path, *argv))
    assert "\n" not in str(err.value)


def test_recovery_needs_only_the_data_folder(tmp_path: Path) -> None:
    from app.store import recover_unfinished

    assert recover_unfinished(tmp_path) == []


def test_parser_errors_are_one_line() -> None:
    p = Parser(prog="voiceprobe x")
    p.add_argument("--n", type=int)
    with pytest.raises(UsageError) as err:
        p.parse_args(["--n", "many"])
    assert str(err.value).startswith("voiceprobe x: error:") and "\n" not in str(err.value)
