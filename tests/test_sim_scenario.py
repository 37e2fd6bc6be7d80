"""Scenario loader: the demo loads; every kind of bad input is one ConfigError naming the
field; any data at all gives a Scenario or a ConfigError, never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import ConfigError
from app.sim.scenario import Scenario, load_scenario, scenario_from_dict
from tests.conftest import REPO

DEMO = REPO / "resources" / "scenarios" / "demo.yaml"


def test_demo_loads_with_documented_defaults() -> None:
    s = load_scenario(DEMO)
    assert s.name == "demo"
    assert len(s.turns) == 4
    assert s.turns[0].hears == "Hello, can you hear me?"
    tool = s.turns[1].tool_call
    assert tool is not None and tool.name == "get_weather"
    assert dict(tool.arguments) == {"city": "Paris"}
    assert tool.after_result and tool.followup_first_audio_ms == 250
    t = s.timing
    assert (t.response_delay_ms, t.first_audio_ms, t.chunk_ms, t.realtime_factor) == (
        120, 300, 100, 2.0)
    assert t.transcript_delay_ms == 150 and t.endpointing_ms is None
    assert s.turns[3].hears == "Thanks, goodbye."


def test_turn_timing_overrides_single_keys_and_turn_faults_get_their_turn() -> None:
    s = scenario_from_dict({
        "timing": {"first_audio_ms": 500},
        "turns": [
            {"hears": "a"},
            {"hears": "b", "timing": {"chunk_ms": 40, "endpointing_ms": 800},
             "faults": [{"action": "close", "at": "response.created"}]},
        ],
        "faults": [{"action": "error", "at": "time", "after_ms": 10,
                    "code": "rate_limit_exceeded"}],
    })
    assert s.turns[0].timing.first_audio_ms == 500
    assert s.turns[1].timing.first_audio_ms == 500
    assert s.turns[1].timing.chunk_ms == 40 and s.turns[1].timing.endpointing_ms == 800
    faults = s.all_faults()
    assert [(f.action, f.turn, f.code) for f in faults] == [
        ("error", None, "rate_limit_exceeded"), ("close", 2, 1011)]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"turns": [{"hears": "x", "replies": "typo"}]}, "turns[0].replies"),
        ({"timing": {"first_audio": 10}}, "timing.first_audio"),
        ({"bogus": 1}, "bogus"),
        ({"voice_rate": "fast"}, "voice_rate"),
        ({"voice_rate": True}, "voice_rate"),
        ({"turns": {"hears": "x"}}, "turns"),
        ({"turns": [{"reply": "no hears"}]}, "turns[0].hears"),
        ({"timing": {"response_delay_ms": -5}}, "timing.response_delay_ms"),
        ({"turns": [{"hears": "x", "timing": {"first_audio_ms": -1}}]},
         "turns[0].timing.first_audio_ms"),
        ({"timing": {"chunk_ms": 0}}, "timing.chunk_ms"),
        ({"timing": {"realtime_factor": float("nan")}}, "timing.realtime_factor"),
        ({"faults": [{"action": "explode", "at": "time", "after_ms": 1}]}, "faults[0].action"),
        ({"faults": [{"action": "close"}]}, "faults[0].at"),
        ({"faults": [{"action": "close", "at": "time"}]}, "faults[0].after_ms"),
        ({"faults": [{"action": "stall", "at": "response.created"}]}, "faults[0].ms"),
        ({"faults": [{"action": "close", "at": "x", "code": 99}]}, "faults[0].code"),
        ({"turns": [{"hears": "x", "tool_call": {"arguments": {}}}]}, "turns[0].tool_call.name"),
        ({"turns": [{"hears": "x", "tool_call": {"name": "f", "arguments": [1]}}]},
         "turns[0].tool_call.arguments"),
        ({"session_limit_ms": 0}, "session_limit_ms"),
        ({"turns": [{"hears": "x", "faults": [{"action": "close", "at": "a", "turn": 3}]}]},
         "turns[0].faults[0].turn"),
    ],
)
def test_bad_input_names_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        scenario_from_dict(data, "s.yaml")
    assert err.value.field == field
    assert err.value.path == "s.yaml"
    assert field in str(err.value) and "\n" not in str(err.value)


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError):
        scenario_from_dict(["turns"], "s.yaml")
    with pytest.raises(ConfigError):
        scenario_from_dict(None, "s.yaml")


def test_file_problems_are_config_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="not found") as err:
        load_scenario(missing)
    assert err.value.path == str(missing)

    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("turns: [\n  - hears: 'x'\n  : : :\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="YAML"):
        load_scenario(bad_yaml)

    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_scenario(latin)

    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(ConfigError):
        load_scenario(folder)

    good = tmp_path / "mine.yaml"
    good.write_text("turns:\n  - hears: hi\n    reply: hello\n", encoding="utf-8")
    s = load_scenario(good)
    assert s.name == "mine" and s.turns[0].reply == "hello"


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.text(max_size=8), st.sampled_from(["close", "error", "time", "response.created", "stall"]),
)
_keys = st.sampled_from([
    "name", "voice_rate", "default_reply", "greeting", "timing", "turns", "faults",
    "session_limit_ms", "hears", "reply", "tool_call", "action", "at", "after_ms", "ms",
    "code", "nth", "turn", "first_audio_ms", "chunk_ms", "arguments", "continue_on_reconnect",
]) | st.text(max_size=4) | st.integers()
_data = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_data)
def test_any_data_gives_scenario_or_config_error(data: object) -> None:
    try:
        s = scenario_from_dict(data, "gen.yaml")
    except ConfigError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(s, Scenario)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_file_gives_scenario_or_config_error(tmp_path_factory: pytest.TempPathFactory,
                                                       text: str) -> None:
    p = tmp_path_factory.mktemp("gen") / "s.yaml"
    p.write_text(text, encoding="utf-8")
    try:
        load_scenario(p)
    except ConfigError:
        pass


def test_yaml_roundtrip_of_documented_example() -> None:
    doc = yaml.safe_load("""
name: demo
voice_rate: 175
default_reply: null
greeting: "Hi there"
timing: {response_delay_ms: 120, first_audio_ms: 300, chunk_ms: 100, realtime_factor: 2.0,
         transcript_delay_ms: 150, endpointing_ms: null}
turns:
  - hears: "What's the weather in Paris?"
    reply: "Let me check that for you."
    tool_call: {name: get_weather, arguments: {city: Paris}, after_result: "Sunny.",
                followup_first_audio_ms: 250}
    faults: [{action: stall, at: response.created, ms: 2000}]
faults:
  - {at: "response.output_audio.delta", turn: 2, nth: 3, action: close, code: 1011}
  - {at: time, after_ms: 5000, action: error, code: session_expired,
     message: "Your session hit the maximum duration of 60 minutes."}
  - {action: malformed, at: "response.created", turn: 1}
  - {action: error, code: rate_limit_exceeded, at: response.created}
  - {action: slow_pong, ms: 3000}
session_limit_ms: null
""")
    s = scenario_from_dict(doc)
    assert s.greeting == "Hi there"
    assert [f.action for f in s.all_faults()] == [
        "close", "error", "malformed", "error", "slow_pong", "stall"]
