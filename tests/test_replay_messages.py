"""Conversation replay after a reconnect: every message validates against the SDKs."""

from __future__ import annotations

import json

from app.clock import FakeClock
from app.profile import load_profile
from app.providers.base import HistoryItem
from app.providers.gemini.protocol import GeminiProtocol
from app.providers.openai.protocol import OpenAIProtocol
from tests.gemini_oracle import validate_gemini_client
from tests.sdk_oracle import validate_openai_client

HISTORY = [
    HistoryItem("user", "What's the weather in Paris?"),
    HistoryItem("tool_call", call_id="c1", name="get_weather", arguments='{"city": "Paris"}'),
    HistoryItem("tool_result", '{"temperature_c": 21}', call_id="c1", name="get_weather"),
    HistoryItem("assistant", "It is sunny and 21 degrees."),
]


def test_openai_replay_is_one_valid_item_per_history_entry() -> None:
    proto = OpenAIProtocol(load_profile(None), FakeClock())
    out = proto.replay(HISTORY) + proto.respond()
    msgs = [json.loads(o.text) for o in out]
    for msg in msgs:
        validate_openai_client(msg)
    items = [m["item"] for m in msgs if m["type"] == "conversation.item.create"]
    assert [i["type"] for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert items[0]["content"][0] == {"type": "input_text", "text": HISTORY[0].text}
    assert items[3]["role"] == "assistant"
    assert msgs[-1]["type"] == "response.create"


def test_gemini_replay_is_client_content_unless_resumed() -> None:
    profile = load_profile(None)
    (msg,) = GeminiProtocol(profile, FakeClock()).replay(HISTORY)
    body = json.loads(msg.text)
    validate_gemini_client(body)
    assert body["clientContent"]["turnComplete"] is False
    assert [t["role"] for t in body["clientContent"]["turns"]] == ["user", "model", "user", "model"]
    assert GeminiProtocol(profile, FakeClock(), resumption_handle="h1").replay(HISTORY) == []
    for m in GeminiProtocol(profile, FakeClock()).manual_turn_start():
        validate_gemini_client(json.loads(m.text))
