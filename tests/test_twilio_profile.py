"""A deployed agent behind Twilio Media Streams named by a profile (``provider:
twilio-ws``): ``call`` and ``suite run`` reach it with no ``--provider``, its token never
reaches a file, suites that need transcripts are refused up front, and bad profiles are
clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.bridge.controller import provider_for
from app.bridge.providers import DEFAULT_SCENARIO, plan_provider
from app.errors import ConfigError
from app.profile import load_profile, profile_from_dict
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.suite_helpers import run_cli, run_json
from tests.twilio_helpers import CLIENT_LATE_MS, SERVED_JITTER_MS, ServeTwilio

SUITE = """\
name: deployed-smoke
profile: {profile}
conversations:
  - id: hello
    turns:
      - say: {{en: "Hello there, what is the weather in Paris"}}
        expect:
{expect}
matrix:
  language: [en-US]
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeTwilio, Path]]:
    """A served agent and a profile that names it (its token as ``voiceprobe_token``)."""
    tmp = tmp_path_factory.mktemp("twilio-profile")
    server = ServeTwilio(tmp, truth=False)
    profile = tmp / "deployed.yaml"
    profile.write_text(
        f"name: deployed\nprovider: twilio-ws\nurl: {server.url}\n"
        f"params: {{voiceprobe_token: {server.token}, team: qa}}\n",
        encoding="utf-8",
    )
    try:
        yield server, profile
    finally:
        server.stop()


def _written(root: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file()
    )


def _heard_whole(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """The client heard the served reply whole: its ``agent_speech`` is the server's plus
    the zero padding of the reply's last 20 ms message (under a frame) and a frame of
    silence its sink played for each late message
    (tests/test_twilio_span_parity.py holds both to the audio sent). It used to be ~110 ms
    short: the server dropped a reply's trailing silence but counted it as played."""
    served_ms = theirs["spans"]["agent_speech"]["ms"]
    heard_ms = ours["spans"]["agent_speech"]["ms"]
    assert not ours["interrupted"] and served_ms > 1000, (ours, theirs)
    late = 20.0 + CLIENT_LATE_MS  # the last message's padding, then late messages
    assert -SERVED_JITTER_MS <= heard_ms - served_ms < late, (heard_ms, served_ms)


def test_call_with_the_profile_reaches_the_agent_and_writes_no_token(
    agent: tuple[ServeTwilio, Path], tmp_path: Path
) -> None:
    server, profile = agent
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(DEFAULT_SCENARIO)), wav)
    home = tmp_path / "home"
    proc = run_cli(["call", "--profile", str(profile), "--input", str(wav), "--json"], home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = run_json(proc)
    assert summary["provider"] == "twilio-ws"
    assert len(summary["turns"]) >= 3
    served = server.next_call()
    assert served["twilio"]["marks_echoed"] >= 1
    assert server.token not in proc.stdout + proc.stderr + _written(home)
    # The agent's audio comes paced in real time, so the playout queue stays near empty:
    # the call still waits until each reply has been heard whole (it used to end the
    # call, "completed", 1.5 s into the last reply, and 0.3 s into a suite case's: that
    # reply is now cut off and says so).
    assert not any(t["interrupted"] for t in summary["turns"]), summary["turns"]
    for ours, theirs in zip(summary["turns"], served["turns"], strict=True):
        _heard_whole(ours, theirs)


def test_suite_with_the_profile_runs_audio_checks(
    agent: tuple[ServeTwilio, Path], tmp_path: Path
) -> None:
    server, profile = agent
    suite = tmp_path / "suite.yaml"
    expect = "          v2v_ms: {max: 5000}\n          no_barge_in: true"
    suite.write_text(SUITE.format(profile=profile, expect=expect), encoding="utf-8")
    home = tmp_path / "home"
    proc = run_cli(["suite", "run", str(suite), "--json"], home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = run_json(proc)
    (case,) = run["cases"]
    checks = {c["name"]: c for c in case["checks"]}
    assert case["passed"] and checks["v2v_ms"]["passed"]
    assert 100 < checks["v2v_ms"]["value"] < 5000
    served = server.next_call()
    session = next((home / "sessions").iterdir())
    (turn,) = json.loads((session / "turns.json").read_text())
    _heard_whole(turn, served["turns"][0])
    assert server.token not in proc.stdout + proc.stderr + _written(home)


def test_suite_needing_transcripts_is_refused_before_any_call(
    agent: tuple[ServeTwilio, Path], tmp_path: Path
) -> None:
    _, profile = agent
    suite = tmp_path / "suite.yaml"
    expect = "          heard: {max_wer: 0.3}\n          says: [Paris]"
    suite.write_text(SUITE.format(profile=profile, expect=expect), encoding="utf-8")
    proc = run_cli(["suite", "run", str(suite)], tmp_path / "home")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert str(suite) in line and "line 6" in line and "heard, says need" in line
    assert not (tmp_path / "home" / "sessions").exists()


def test_sim_still_stands_in_and_speaks_the_openai_dialect(
    agent: tuple[ServeTwilio, Path],
) -> None:
    _, profile_path = agent
    profile = load_profile(str(profile_path))
    assert provider_for(profile) == "twilio-ws"
    plan, adjusted = plan_provider("sim", profile)
    assert (plan.label, plan.kind, adjusted.provider, adjusted.params) == (
        "sim", "openai", "openai", {}
    )
    plan, adjusted = plan_provider(None, profile, params={"team": "sales"})
    assert plan.kind == "twilio-ws" and plan.url == profile.url
    assert plan.params["team"] == "sales" and plan.params["voiceprobe_token"]
    assert plan.secrets  # the token is redacted from everything written


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"provider": "openai", "params": {"a": "b"}}, "params", "only applies"),
        ({"provider": "twilio-ws", "url": "https://x.test/t"}, "url", "ws:// or wss://"),
        ({"provider": "twilio-ws", "params": ["a"]}, "params", "expected dict"),
        ({"provider": "twilio-ws", "params": {"a": 5}}, "params.a", "expected str"),
        ({"provider": "twilio-ws", "params": {"": "x"}}, "params", "non-empty"),
    ],
)
def test_bad_stream_profiles_are_clear_errors(
    data: dict[str, object], field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        profile_from_dict(data, "p.yaml")
    assert err.value.field == field and words in str(err.value)


def test_a_stream_profile_without_url_needs_one(tmp_path: Path) -> None:
    profile = profile_from_dict({"provider": "twilio-ws"}, "p.yaml")
    with pytest.raises(ConfigError, match="needs --url"):
        plan_provider(None, profile)
    assert json.loads(json.dumps(profile.to_dict()))["params"] == {}


@pytest.mark.slow
def test_desktop_loads_the_profile_and_calls_the_deployed_agent(
    agent: tuple[ServeTwilio, Path], qtbot: Any, tmp_path: Path
) -> None:
    from PySide6.QtCore import Qt

    from app.audio.fileport import WavFilePort
    from app.bridge.controller import CallController
    from ui.app import build_main_window

    server, profile_path = agent
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(DEFAULT_SCENARIO)), wav)
    controller = CallController(
        data_root=tmp_path / "data", port_factory=lambda _o: WavFilePort.from_wav(wav)
    )
    win = build_main_window(controller, devices=lambda: [])
    qtbot.addWidget(win)
    win.show()
    editor = win.profile_editor
    assert editor.load(str(profile_path))
    win.choose_default_provider()
    assert win.provider.currentData() == "twilio-ws"
    assert editor.agent_url.isVisibleTo(editor) and editor.agent_url.text() == server.url
    assert not editor.model.isEnabled() and not editor.instructions.isEnabled()
    hint = win.provider_hint.text()
    assert "deployed agent" in hint and server.token not in hint
    assert editor.profile().params["voiceprobe_token"] == server.token
    qtbot.mouseClick(win.call_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: controller.last_summary is not None, timeout=120_000)
    qtbot.waitUntil(lambda: not win.in_call, timeout=10_000)
    summary = controller.last_summary
    assert summary is not None and summary["ok"], summary
    assert summary["provider"] == "twilio-ws" and len(summary["turns"]) >= 3
    assert len(win.waterfall.row_layouts()) == len(summary["turns"])
    server.next_call()
    assert server.token not in _written(tmp_path / "data")
    win.close()
    controller.shutdown()
