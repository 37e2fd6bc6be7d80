"""Cost: token usage from both vendors' wire messages, the price table, and a priced call.

Usage messages are built with the official SDK models (``openai.types.realtime``,
``google.genai.types``) and validated before the protocols read them; the end-to-end
calls compare ``cost_usd`` with a figure computed here from the usage the simulator
says it sent (its ground truth) and the price table read here with plain YAML.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.genai import types
from openai.types.realtime import RealtimeResponse, ResponseDoneEvent
from openai.types.realtime.realtime_response_usage import RealtimeResponseUsage
from openai.types.realtime.realtime_response_usage_input_token_details import (
    CachedTokensDetails,
    RealtimeResponseUsageInputTokenDetails,
)
from openai.types.realtime.realtime_response_usage_output_token_details import (
    RealtimeResponseUsageOutputTokenDetails,
)

from app.bridge.providers import DEFAULT_SCENARIO
from app.clock import FakeClock
from app.errors import ConfigError
from app.events import (
    ProviderErrorEvent,
    ResponseFinished,
    ResponseStarted,
    Usage,
)
from app.metrics.cost import (
    SHIPPED_PRICES,
    load_price_table,
    price_call,
    price_usage,
    usage_record,
)
from app.metrics.timeline import Timeline
from app.profile import RESOURCES, Profile
from app.providers.gemini import GeminiProtocol
from app.providers.openai.protocol import OpenAIProtocol
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.conftest import REPO
from tests.gemini_oracle import validate_gemini_server
from tests.sdk_oracle import validate_openai_server

T = 1_000


# --- protocol parsing --------------------------------------------------------------------


def openai_done(usage: RealtimeResponseUsage, rid: str = "resp_1") -> str:
    msg = ResponseDoneEvent(
        type="response.done",
        event_id="ev_1",
        response=RealtimeResponse(id=rid, status="completed", usage=usage),
    )
    text = msg.model_dump_json(exclude_none=True)
    validate_openai_server(text)
    return text


def full_openai_usage() -> RealtimeResponseUsage:
    return RealtimeResponseUsage(
        total_tokens=1234 + 567,
        input_tokens=1234,
        output_tokens=567,
        input_token_details=RealtimeResponseUsageInputTokenDetails(
            text_tokens=200,
            audio_tokens=1034,
            image_tokens=0,
            cached_tokens=900,
            cached_tokens_details=CachedTokensDetails(
                text_tokens=150, audio_tokens=750, image_tokens=0
            ),
        ),
        output_token_details=RealtimeResponseUsageOutputTokenDetails(
            text_tokens=67, audio_tokens=500
        ),
    )


def test_openai_response_done_usage_becomes_a_usage_event_before_the_finish() -> None:
    proto = OpenAIProtocol(Profile(model="gpt-realtime-1.5"), FakeClock())
    evs = proto.receive(openai_done(full_openai_usage()), T)
    assert [e.kind for e in evs] == ["Usage", "ResponseFinished"]
    usage, done = evs
    assert usage == Usage(
        t_ns=T,
        raw=usage.raw,
        provider="openai",
        response_id="resp_1",
        model="gpt-realtime-1.5",
        text_input=200,
        audio_input=1034,
        cached_text_input=150,
        cached_audio_input=750,
        text_output=67,
        audio_output=500,
    )
    assert isinstance(done, ResponseFinished) and done.usage is not None  # raw kept


def test_openai_usage_without_details_is_unattributed_not_invented() -> None:
    proto = OpenAIProtocol(Profile(model="gpt-realtime-1.5"), FakeClock())
    usage = RealtimeResponseUsage(total_tokens=30, input_tokens=10, output_tokens=20)
    (ev, _) = proto.receive(openai_done(usage), T)
    assert isinstance(ev, Usage)
    assert (ev.other_input, ev.other_output, ev.text_input, ev.audio_output) == (10, 20, 0, 0)
    # cached tokens with no breakdown are unattributed too
    usage = RealtimeResponseUsage(
        input_tokens=10,
        output_tokens=0,
        input_token_details=RealtimeResponseUsageInputTokenDetails(
            text_tokens=4, audio_tokens=6, cached_tokens=5
        ),
    )
    (ev, _) = proto.receive(openai_done(usage), T)
    assert isinstance(ev, Usage)
    assert (ev.text_input, ev.audio_input, ev.cached_other_input) == (4, 6, 5)


def test_openai_malformed_usage_is_reported_and_the_response_still_finishes() -> None:
    proto = OpenAIProtocol(Profile(), FakeClock())
    text = json.dumps(
        {"type": "response.done", "event_id": "e",
         "response": {"id": "r", "status": "completed", "usage": {"input_tokens": "many"}}}
    )  # fmt: skip
    evs = proto.receive(text, T)
    assert [e.kind for e in evs] == ["ProviderErrorEvent", "ResponseFinished"]
    assert isinstance(evs[0], ProviderErrorEvent) and "input_tokens" in evs[0].message
    assert not evs[0].fatal


def gemini_usage(**kw: Any) -> types.UsageMetadata:
    return types.UsageMetadata(**kw)


def gemini_wire(msg: types.LiveServerMessage) -> str:
    out = msg.model_dump(mode="json", by_alias=True, exclude_none=True)
    validate_gemini_server(out)
    return json.dumps(out)


def detail(modality: str, n: int) -> types.ModalityTokenCount:
    return types.ModalityTokenCount(modality=types.MediaModality(modality), token_count=n)


def audio_part() -> types.LiveServerMessage:
    blob = types.Blob(data=b"\x01\x00" * 240, mime_type="audio/pcm;rate=24000")
    content = types.Content(role="model", parts=[types.Part(inline_data=blob)])
    return types.LiveServerMessage(server_content=types.LiveServerContent(model_turn=content))


def test_gemini_usage_metadata_is_a_snapshot_per_model_turn() -> None:
    proto = GeminiProtocol(Profile(provider="gemini", model="gemini-live-test"), FakeClock())
    first = gemini_usage(
        prompt_token_count=100,
        response_token_count=10,
        total_token_count=110,
        prompt_tokens_details=[detail("TEXT", 40), detail("AUDIO", 60)],
        response_tokens_details=[detail("AUDIO", 10)],
    )
    second = gemini_usage(
        prompt_token_count=100,
        response_token_count=50,
        thoughts_token_count=5,
        tool_use_prompt_token_count=7,
        total_token_count=162,
        prompt_tokens_details=[detail("TEXT", 40), detail("AUDIO", 60)],
        tool_use_prompt_tokens_details=[detail("TEXT", 7)],
        response_tokens_details=[detail("AUDIO", 50)],
    )
    # usage rides on content frames (documented: "Server messages may have a
    # usageMetadata field but will otherwise include exactly one of the other fields")
    msg = audio_part()
    msg.usage_metadata = first
    evs = proto.receive(gemini_wire(msg), 1)
    assert [e.kind for e in evs] == ["ResponseStarted", "AgentAudio"]  # held to the end
    done = types.LiveServerMessage(
        server_content=types.LiveServerContent(turn_complete=True), usage_metadata=second
    )
    evs = proto.receive(gemini_wire(done), 2)
    assert [e.kind for e in evs] == ["Usage", "ResponseFinished"]
    usage = evs[0]
    assert isinstance(usage, Usage)
    # the later snapshot replaces the earlier one; thoughts are text output, tool-use
    # prompt tokens text input
    assert (usage.response_id, usage.model, usage.provider) == (
        "gturn-1",
        "gemini-live-test",
        "gemini",
    )
    assert (usage.text_input, usage.audio_input, usage.other_input) == (47, 60, 0)
    assert (usage.text_output, usage.audio_output, usage.other_output) == (5, 50, 0)

    # a usage message after the turn closed is a newer snapshot of that same turn
    late = types.LiveServerMessage(
        usage_metadata=gemini_usage(
            prompt_token_count=100, response_token_count=60, total_token_count=160,
            prompt_tokens_details=[detail("AUDIO", 100)],
            response_tokens_details=[detail("AUDIO", 60)],
            cached_content_token_count=30, cache_tokens_details=[detail("AUDIO", 30)],
        )
    )  # fmt: skip
    (ev,) = proto.receive(gemini_wire(late), 3)
    assert isinstance(ev, Usage) and ev.response_id == "gturn-1"
    assert (ev.audio_input, ev.cached_audio_input, ev.audio_output) == (100, 30, 60)

    # counts the details do not explain are unattributed (never guessed)
    bare = types.LiveServerMessage(
        usage_metadata=gemini_usage(prompt_token_count=9, response_token_count=4,
                                    prompt_tokens_details=[detail("AUDIO", 5)])
    )  # fmt: skip
    (ev,) = proto.receive(gemini_wire(bare), 4)
    assert isinstance(ev, Usage)
    assert (ev.audio_input, ev.other_input, ev.other_output) == (5, 4, 4)


def test_gemini_bad_usage_is_reported_without_losing_the_turn_end() -> None:
    proto = GeminiProtocol(Profile(provider="gemini", model="m"), FakeClock())
    proto.receive(gemini_wire(audio_part()), 1)
    text = json.dumps({"serverContent": {"turnComplete": True},
                       "usageMetadata": {"promptTokenCount": -3}})  # fmt: skip
    evs = proto.receive(text, 2)
    assert [e.kind for e in evs] == ["ProviderErrorEvent", "ResponseFinished"]


# --- the timeline ------------------------------------------------------------------------


def usage_ev(rid: str, t: int, **counts: int) -> Usage:
    return Usage(
        t_ns=t, raw=None, provider="openai", response_id=rid, model="gpt-realtime-1.5", **counts
    )


def test_timeline_attaches_usage_to_the_turn_of_its_response() -> None:
    tl = Timeline()
    tl.feed(ResponseStarted(t_ns=1, response_id="r1"))
    from app.events import LocalSpeechStarted

    tl.feed(LocalSpeechStarted(t_ns=2, sample=0))  # barge-in: turn 1 opens
    tl.feed(ResponseStarted(t_ns=3, response_id="r2"))
    # r1's usage arrives late, after turn 1 opened: it still belongs to turn 0
    tl.feed(usage_ev("r1", 4, text_input=10, audio_output=5))
    tl.feed(usage_ev("r2", 5, audio_input=7))
    tl.feed(usage_ev("r2", 6, audio_input=8))  # a newer snapshot replaces, never adds
    turns = tl.to_list()
    assert turns[0]["usage"]["text_input"] == 10 and turns[0]["usage"]["audio_output"] == 5
    assert turns[0]["usage"]["responses"] == 1
    assert turns[1]["usage"]["audio_input"] == 8 and turns[1]["usage"]["total_tokens"] == 8
    tl2 = Timeline()
    tl2.feed(ResponseStarted(t_ns=1, response_id="x"))
    assert tl2.to_list()[0]["usage"] is None


# --- pricing -----------------------------------------------------------------------------


def test_pricing_against_hand_computed_figures() -> None:
    table = load_price_table(config_folder=Path("/nonexistent"))
    usage = usage_record(
        [usage_ev("r", 1, text_input=1000, cached_text_input=400, audio_input=2000,
                  cached_audio_input=500, text_output=300, audio_output=1200)]
    )  # fmt: skip
    # gpt-realtime-1.5: text 4 / cached 0.40 / out 16; audio 32 / cached 0.40 / out 64
    # 600·4 + 400·0.4 + 1500·32 + 500·0.4 + 300·16 + 1200·64 = 132360 (per 1M)
    priced = price_usage(usage, table)
    assert priced.usd == pytest.approx(0.13236, abs=1e-12)
    assert priced.notice is None and priced.price is not None
    assert priced.price.source.startswith("https://developers.openai.com/")


def test_unknown_model_has_no_cost_and_one_notice() -> None:
    table = load_price_table(config_folder=Path("/nonexistent"))
    turns = [
        {"index": i, "usage": usage_record([Usage(t_ns=1, provider="openai", response_id=f"r{i}",
                                                  model="gpt-nonesuch", audio_input=100)])}
        for i in range(3)
    ]  # fmt: skip
    call = price_call(turns, table)
    assert call.cost_usd is None
    assert [t["cost_usd"] for t in call.turns] == [None, None, None]
    assert call.notice is not None and "gpt-nonesuch" in call.notice
    assert call.usage is not None and call.usage["notice"] == call.notice
    # a needed figure the table lacks (null) is unknown too, not zero
    mini = usage_record(
        [Usage(t_ns=1, provider="openai", response_id="r", model="gpt-realtime-mini",
               audio_input=10)]
    )  # fmt: skip
    priced = price_usage(mini, table)
    assert priced.usd is None and priced.notice and "audio input" in priced.notice
    # other modalities have no price
    img = usage_record([usage_ev("r", 1, other_input=3)])
    assert price_usage(img, table).usd is None


def test_user_prices_override_the_shipped_table(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "prices.yaml").write_text(
        "models:\n  gpt-realtime-1.5:\n    audio_input: 1.0\n    audio_output: 2.0\n"
        "    source: my contract\n    retrieved: 2026-12-01\n"
        "  my-model:\n    text_input: 1\n    aliases: [models/my-model-001]\n"
    )
    table = load_price_table(config_folder=config)
    usage = usage_record([usage_ev("r", 1, audio_input=1_000_000, audio_output=1_000_000)])
    priced = price_usage(usage, table)
    assert priced.usd == pytest.approx(3.0)
    assert priced.price is not None and priced.price.table == str(config / "prices.yaml")
    assert priced.price.retrieved == "2026-12-01"
    assert table.lookup("models/my-model-001") is table.lookup("my-model")
    # the entry is replaced whole: figures the user did not give are unknown
    assert table.lookup("gpt-realtime-1.5").figures["text_input"] is None  # type: ignore[union-attr]
    # an explicit file wins over the config folder's
    explicit = tmp_path / "mine.yaml"
    explicit.write_text("models:\n  gpt-realtime-1.5:\n    audio_input: 5\n    audio_output: 5\n")
    table = load_price_table(explicit, config_folder=config)
    assert price_usage(usage, table).usd == pytest.approx(10.0)
    # other shipped models are untouched
    assert table.lookup("gpt-realtime-2") is not None


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("models:\n  m:\n    audio_input: -1\n", "models.m.audio_input"),
        ("models:\n  m:\n    audio_inptu: 1\n", "models.m.audio_inptu"),
        ("models: [1]\n", "models"),
        ("modles: {}\n", "modles"),
        ("models:\n  m:\n    text_input: yes\n", "models.m.text_input"),
    ],
)
def test_a_bad_price_file_is_one_line_naming_the_field(
    tmp_path: Path, text: str, field: str
) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_price_table(path, config_folder=tmp_path / "none")
    assert field in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_the_shipped_table_says_where_each_figure_comes_from() -> None:
    data = yaml.safe_load(SHIPPED_PRICES.read_text())
    for name, entry in data["models"].items():
        assert entry["source"].startswith("https://"), name
        assert entry["retrieved"], name
        if any(entry.get(k) is None for k in ("text_input", "audio_input", "audio_output")):
            assert entry.get("note"), f"{name}: a missing figure must be explained"


def test_turn_table_shows_cost() -> None:
    from app.cli_output import print_turn_table

    out = io.StringIO()
    print_turn_table(
        [{"index": 0, "spans": {}, "cost_usd": 0.01234}, {"index": 1, "spans": {}}], out
    )
    lines = out.getvalue().splitlines()
    assert "cost" in lines[0] and "$" in lines[1]
    assert "0.0123" in lines[2] and lines[3].rstrip().endswith("-")
    from app.cli_output import cost_line

    usage = {"input_tokens": 5, "output_tokens": 1, "price": None,
             "notice": "cost unknown: no price for model 'x' in the price table"}  # fmt: skip
    assert cost_line({"cost_usd": None, "usage": usage}) == (
        "cost: unknown (5 in / 1 out tokens; no price for model 'x' in the price table)"
    )
    usage["price"] = {"model": "m", "source": "https://p", "retrieved": "2026-12-03"}
    assert cost_line({"cost_usd": 0.04123, "usage": usage}).startswith("cost: $0.0412 (5 in")


# --- end to end --------------------------------------------------------------------------

TABLE = yaml.safe_load((RESOURCES / "prices.yaml").read_text())["models"]


def expected_openai_cost(wire_usage: dict[str, Any], p: dict[str, float]) -> float:
    """Price a ``response.done`` usage by hand (cached is a subset of input)."""
    i, o = wire_usage["input_token_details"], wire_usage["output_token_details"]
    c = i["cached_tokens_details"]
    return (
        float(
            (i["text_tokens"] - c["text_tokens"]) * p["text_input"]
            + c["text_tokens"] * p["text_cached_input"]
            + (i["audio_tokens"] - c["audio_tokens"]) * p["audio_input"]
            + c["audio_tokens"] * p["audio_cached_input"]
            + o["text_tokens"] * p["text_output"]
            + o["audio_tokens"] * p["audio_output"]
        )
        / 1e6
    )


def expected_gemini_cost(meta: dict[str, Any], p: dict[str, float]) -> float:
    def by(key: str) -> dict[str, int]:
        return {d["modality"]: d["tokenCount"] for d in meta.get(key, [])}

    pr, rs = by("promptTokensDetails"), by("responseTokensDetails")
    assert sum(pr.values()) == meta["promptTokenCount"]
    assert sum(rs.values()) == meta["responseTokenCount"]
    return (
        pr.get("TEXT", 0) * p["text_input"]
        + pr.get("AUDIO", 0) * p["audio_input"]
        + rs.get("TEXT", 0) * p["text_output"]
        + rs.get("AUDIO", 0) * p["audio_output"]
    ) / 1e6


def sim_call(tmp: Path, profile: dict[str, Any], home: Path) -> tuple[dict[str, Any], list[Any]]:
    scenario = load_scenario(str(DEFAULT_SCENARIO))
    wav = tmp / "caller.wav"
    write_caller_wav(scenario, wav, barge_in={2: 1500})
    prof = tmp / "profile.yaml"
    prof.write_text(yaml.safe_dump(profile))
    truth = tmp / "truth.jsonl"
    env = {**os.environ, "VOICEPROBE_HOME": str(home)}
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "call", "--input", str(wav), "--provider", "sim",
         "--profile", str(prof), "--json", "--out", str(tmp / "data"), "--truth", str(truth)],
        capture_output=True, text=True, timeout=240, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in truth.read_text().splitlines()]
    return json.loads(proc.stdout), records


def default_profile(**kw: Any) -> dict[str, Any]:
    data = yaml.safe_load((RESOURCES / "profiles" / "default.yaml").read_text())
    data.update(kw)
    return dict(data)


@pytest.mark.slow
def test_openai_call_costs_what_the_simulator_billed(tmp_path: Path) -> None:
    summary, truth = sim_call(tmp_path, default_profile(model="gpt-realtime-1.5"), tmp_path / "h")
    sent = [r for r in truth if r["event"] == "usage"]
    assert len(sent) >= 4
    for r in sent:  # the simulator's usage validates against the SDK model
        RealtimeResponseUsage.model_validate(r["usage"])
    seen = {rid for t in summary["turns"] for rid in t["response_ids"]}
    assert {r["response_id"] for r in sent} <= seen  # the bridge saw every response
    price = TABLE["gpt-realtime-1.5"]
    expected = sum(expected_openai_cost(r["usage"], price) for r in sent)
    assert expected > 0
    assert any(r["usage"]["input_token_details"]["cached_tokens"] > 0 for r in sent)
    assert summary["cost_usd"] == pytest.approx(expected, abs=1e-9)
    turn_costs = [t["cost_usd"] for t in summary["turns"]]
    assert all(isinstance(c, float) for c in turn_costs)
    assert sum(turn_costs) == pytest.approx(expected, abs=1e-9)
    usage = summary["usage"]
    assert usage["model"] == "gpt-realtime-1.5" and usage["responses"] == len(sent)
    assert usage["audio_output"] == sum(
        r["usage"]["output_token_details"]["audio_tokens"] for r in sent
    )
    assert usage["price"]["source"] == price["source"] and usage["notice"] is None
    folder = Path(summary["session_dir"])
    stored = json.loads((folder / "turns.json").read_text())
    stored_turns = stored["turns"] if isinstance(stored, dict) else stored
    assert [t["cost_usd"] for t in stored_turns] == turn_costs
    meta = json.loads((folder / "session.json").read_text())
    assert meta["summary"]["cost_usd"] == pytest.approx(expected, abs=1e-9)
    assert meta["summary"]["usage"]["total_tokens"] == usage["total_tokens"]


@pytest.mark.slow
def test_gemini_call_is_priced_by_the_users_own_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    mine = {"text_input": 0.5, "audio_input": 3.0, "text_output": 2.0, "audio_output": 12.0}
    (home / "config" / "prices.yaml").write_text(
        yaml.safe_dump({"models": {"gemini-live-test": {**mine, "source": "test"}}})
    )
    profile = default_profile(provider="gemini", model="gemini-live-test", voice="Puck")
    summary, truth = sim_call(tmp_path, profile, home)
    sent = [r for r in truth if r["event"] == "usage"]
    assert len(sent) >= 3
    for r in sent:
        types.UsageMetadata.model_validate(r["usage"])  # extra='forbid': exact shapes
    expected = sum(expected_gemini_cost(r["usage"], mine) for r in sent)
    assert expected > 0
    assert summary["cost_usd"] == pytest.approx(expected, abs=1e-9)
    assert summary["usage"]["price"]["table"] == str(home / "config" / "prices.yaml")


def test_a_bad_prices_file_stops_the_call_before_it_starts(tmp_path: Path) -> None:
    import numpy as np

    from app.audio.wavio import write_wav

    wav = tmp_path / "caller.wav"
    write_wav(wav, np.zeros(1600, dtype=np.int16), 16000)
    bad = tmp_path / "prices.yaml"
    bad.write_text("models:\n  gpt-realtime-1.5:\n    audio_output: lots\n")
    env = {**os.environ, "VOICEPROBE_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "call", "--input", str(wav), "--provider", "sim",
         "--prices", str(bad), "--out", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "models.gpt-realtime-1.5.audio_output" in lines[-1] and "Traceback" not in proc.stderr
    assert not (tmp_path / "data" / "sessions").exists() or not any(
        (tmp_path / "data" / "sessions").iterdir()
    )
