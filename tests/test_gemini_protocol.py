"""Gemini Live: the sans-I/O protocol (plain calls, fake clock), its SDK oracle, the URL /
TLS / auth rules, and one dial over a real loopback ``wss://`` socket."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
from typing import Any

import pytest
import trustme
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve

from app.clock import MONOTONIC, FakeClock
from app.errors import ConfigError
from app.events import (
    AgentAudio,
    AgentInterrupted,
    AgentTranscript,
    ConnectionState,
    Event,
    GoAway,
    ProviderErrorEvent,
    ResponseFinished,
    ResponseStarted,
    ResumptionUpdate,
    ServerSpeechStarted,
    ServerSpeechStopped,
    SessionConfigured,
    ToolCallCancelled,
    ToolCallRequested,
    UnknownMessage,
    Usage,
    UserTranscript,
)
from app.profile import Profile, ToolSpec, Transcription, TurnDetection
from app.providers.gemini import GeminiProtocol, connect_gemini, gemini_url
from app.providers.gemini import messages as ops
from app.providers.gemini.connection import auth_headers
from app.providers.gemini.messages import MAX_MESSAGE_SIZE, parse_duration_ms
from app.providers.gemini.session_setup import DEFAULT_MODEL, to_gemini_schema
from app.providers.gemini.usage import usage_counts
from tests.gemini_oracle import validate_gemini_client, validate_gemini_server

TIME_SCALE = float(os.environ.get("VOICEPROBE_TEST_TIME_SCALE", "1"))
WAIT = 5.0 * TIME_SCALE

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city"],
        "additionalProperties": False,
    },
)
PROFILE = Profile(
    name="g",
    provider="gemini",
    model="gemini-2.5-flash-native-audio-preview-12-2025",
    voice="Kore",
    instructions="Be brief.",
    language="en-US",
    tools=(WEATHER, ToolSpec(name="hang_up")),
)


def make(profile: Profile = PROFILE, handle: str | None = None) -> GeminiProtocol:
    return GeminiProtocol(profile, FakeClock(1_000), resumption_handle=handle)


def wire(msg: types.LiveServerMessage) -> dict[str, Any]:
    """SDK model → wire JSON. The SDK dumps bytes as URL-safe base64; the server sends
    standard base64, so audio is re-encoded the way it arrives on the wire."""
    out = msg.model_dump(mode="json", by_alias=True, exclude_none=True)
    turn = out.get("serverContent", {}).get("modelTurn", {})
    for part in turn.get("parts", []):
        blob = part.get("inlineData")
        if blob and "data" in blob:
            blob["data"] = base64.b64encode(base64.urlsafe_b64decode(blob["data"])).decode()
    validate_gemini_server(out)
    return out


def feed(proto: GeminiProtocol, msg: dict[str, Any] | types.LiveServerMessage, t: int = 5):
    if isinstance(msg, types.LiveServerMessage):
        msg = wire(msg)
    return proto.receive(json.dumps(msg), t)


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]


def audio_msg(pcm: bytes, rate: int = 24000) -> types.LiveServerMessage:
    blob = types.Blob(data=pcm, mime_type=f"audio/pcm;rate={rate}")
    content = types.Content(role="model", parts=[types.Part(inline_data=blob)])
    return types.LiveServerMessage(server_content=types.LiveServerContent(model_turn=content))


def content(**kw: Any) -> types.LiveServerMessage:
    return types.LiveServerMessage(server_content=types.LiveServerContent(**kw))


def input_tx(text: str, finished: bool | None = None) -> types.LiveServerMessage:
    return content(input_transcription=types.Transcription(text=text, finished=finished))


def output_tx(text: str) -> types.LiveServerMessage:
    return content(output_transcription=types.Transcription(text=text))


def sent(outs: list[Any]) -> list[dict[str, Any]]:
    msgs = [json.loads(o.text) for o in outs]
    for m in msgs:
        validate_gemini_client(m)
    return msgs


# --- client messages ----------------------------------------------------------------------


def test_setup_validates_and_carries_the_profile() -> None:
    (out,) = make().open()
    assert out.type == "setup" and out.log == json.loads(out.text)
    (msg,) = sent([out])
    setup = msg["setup"]
    assert setup["model"] == "models/gemini-2.5-flash-native-audio-preview-12-2025"
    gen = setup["generationConfig"]
    assert gen["responseModalities"] == ["AUDIO"]
    assert gen["speechConfig"] == {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}},
        "languageCode": "en-US",
    }
    assert setup["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    decls = setup["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in decls] == ["get_weather", "hang_up"]
    assert "parameters" not in decls[1]  # no arguments: no (empty) object schema
    params = decls[0]["parameters"]
    assert params["type"] == "OBJECT" and params["required"] == ["city"]
    assert "additionalProperties" not in params
    assert params["properties"]["unit"] == {"type": "STRING", "nullable": True, "enum": ["c", "f"]}
    assert params["properties"]["days"] == {"type": "INTEGER", "minimum": 1, "maximum": 7}
    types.Schema.model_validate(params)
    assert setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {
            "disabled": False,
            "prefixPaddingMs": 300,
            "silenceDurationMs": 500,
        },
        "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
    }
    assert setup["inputAudioTranscription"] == {} and setup["outputAudioTranscription"] == {}
    assert setup["sessionResumption"] == {}
    assert setup["contextWindowCompression"] == {"slidingWindow": {}}


def test_setup_matches_what_the_sdk_itself_sends() -> None:
    """Our setup and the SDK converter's, for the same settings, name the same fields."""
    from google.genai import Client, _common
    from google.genai import _live_converters as conv

    config = types.LiveConnectConfig(
        response_modalities=["AUDIO"],
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore")
            ),
            language_code="en-US",
        ),
        system_instruction="Be brief.",
        realtime_input_config=types.RealtimeInputConfig(
            automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
        ),
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(handle="h1"),
        context_window_compression=types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow()
        ),
    )
    # As live.py's AsyncLive.connect builds its setup (google-genai 3.6.1), offline.
    params = types.LiveConnectParameters(model="models/m", config=config)
    client = Client(api_key="test-key")._api_client
    request = conv._LiveConnectParameters_to_mldev(
        api_client=client, from_object=params.model_dump(exclude_none=True)
    )
    theirs = json.loads(json.dumps(_common.convert_to_dict(request)))["setup"]
    profile = Profile(
        provider="gemini",
        model="m",
        voice="Kore",
        instructions="Be brief.",
        language="en-US",
        turn_detection=TurnDetection(type="none"),
    )
    ours = make(profile, handle="h1").setup_message()["setup"]

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(w.title() for w in rest)

    # The SDK sends some nested objects in snake_case; proto-JSON accepts both spellings.
    def paths(d: Any, prefix: str = "") -> set[str]:
        if not isinstance(d, dict) or not d:
            return {prefix}
        return set().union(*(paths(v, f"{prefix}.{camel(k)}") for k, v in d.items()))

    skip = {".systemInstruction.role", ".realtimeInputConfig.activityHandling"}
    skip_prefix = (".systemInstruction.parts",)
    assert {p for p in paths(theirs) if p not in skip and not p.startswith(skip_prefix)} == {
        p for p in paths(ours) if p not in skip and not p.startswith(skip_prefix)
    }
    assert ours["model"] == theirs["model"]
    assert ours["generationConfig"]["responseModalities"] == ["AUDIO"]
    assert theirs["generationConfig"]["responseModalities"] == ["AUDIO"]


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (TurnDetection(type="none"), {"disabled": True}),
        (
            TurnDetection(threshold=0.8, prefix_padding_ms=100, silence_duration_ms=700),
            {
                "disabled": False,
                "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
                "prefixPaddingMs": 100,
                "silenceDurationMs": 700,
            },
        ),
        (
            TurnDetection(type="semantic_vad", threshold=0.2, eagerness="high"),
            {
                "disabled": False,
                "startOfSpeechSensitivity": "START_SENSITIVITY_HIGH",
                "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH",
                "prefixPaddingMs": 300,
                "silenceDurationMs": 500,
            },
        ),
    ],
)
def test_turn_detection_mapping(td: TurnDetection, expected: dict[str, Any]) -> None:
    proto = make(Profile(provider="gemini", model="m", turn_detection=td))
    (msg,) = sent(proto.open())
    assert msg["setup"]["realtimeInputConfig"]["automaticActivityDetection"] == expected


def test_no_interrupt_response_maps_to_no_interruption() -> None:
    td = TurnDetection(interrupt_response=False)
    (msg,) = sent(make(Profile(model="m", turn_detection=td)).open())
    assert msg["setup"]["realtimeInputConfig"]["activityHandling"] == "NO_INTERRUPTION"


def test_openai_names_fall_back_to_gemini_defaults() -> None:
    profile = Profile(
        voice="marin", model="gpt-realtime", transcription=Transcription(language="fr-FR")
    )
    (msg,) = sent(make(profile).open())
    setup = msg["setup"]
    assert setup["model"] == f"models/{DEFAULT_MODEL}"
    assert setup["generationConfig"]["speechConfig"]["voiceConfig"] == {
        "prebuiltVoiceConfig": {"voiceName": "Puck"}
    }
    assert setup["generationConfig"]["speechConfig"]["languageCode"] == "fr-FR"
    assert "tools" not in setup


def test_model_prefix_is_not_doubled() -> None:
    assert make(Profile(model="models/x")).setup_message()["setup"]["model"] == "models/x"
    vertex = "projects/p/locations/us-central1/publishers/google/models/gemini-live-2.5-flash"
    assert make(Profile(model=vertex)).setup_message()["setup"]["model"] == vertex


def test_resumption_handle_goes_into_setup() -> None:
    (msg,) = sent(make(handle="abc").open())
    assert msg["setup"]["sessionResumption"] == {"handle": "abc"}


def test_audio_and_activity_messages() -> None:
    proto = make()
    pcm = bytes(range(256)) * 4
    (out,) = proto.audio(pcm)
    assert out.log is None and out.type == "realtimeInput"
    (msg,) = sent([out])
    assert msg == {
        "realtimeInput": {
            "audio": {"data": base64.b64encode(pcm).decode(), "mimeType": "audio/pcm;rate=16000"}
        }
    }
    assert sent(proto.activity_start()) == [{"realtimeInput": {"activityStart": {}}}]
    assert sent(proto.activity_end()) == [{"realtimeInput": {"activityEnd": {}}}]
    assert sent(proto.audio_stream_end()) == [{"realtimeInput": {"audioStreamEnd": True}}]
    assert proto.truncate("gturn-1", 500) == []
    assert (proto.name, proto.input_rate, proto.output_rate) == ("gemini", 16000, 24000)


@pytest.mark.parametrize(
    ("output", "response"),
    [
        ('{"temp_c": 21}', {"output": {"temp_c": 21}}),
        ("[1, 2]", {"output": [1, 2]}),
        ('{"error": "timeout"}', {"error": "timeout"}),
        ("sunny, not JSON", {"output": "sunny, not JSON"}),
    ],
)
def test_tool_result(output: str, response: dict[str, Any]) -> None:
    (msg,) = sent(make().tool_result("call-1", "get_weather", output))
    assert msg == {
        "toolResponse": {
            "functionResponses": [{"id": "call-1", "name": "get_weather", "response": response}]
        }
    }


# --- server messages ----------------------------------------------------------------------


def test_setup_complete() -> None:
    msg = types.LiveServerMessage(setup_complete=types.LiveServerSetupComplete(session_id="s-9"))
    (ev,) = feed(make(), msg, t=42)
    assert isinstance(ev, SessionConfigured)
    assert (ev.provider, ev.session_id, ev.t_ns) == ("gemini", "s-9", 42)
    (ev,) = make().receive('{"setupComplete": {}}', 1)
    assert isinstance(ev, SessionConfigured) and ev.session_id == ""


def test_model_turn_audio_transcript_and_usage() -> None:
    proto = make()
    pcm1, pcm2 = b"\x01\x00" * 2400, b"\x02\x00" * 1200
    evs = feed(proto, audio_msg(pcm1), t=10)
    assert kinds(evs) == ["ResponseStarted", "AgentAudio"]
    started, audio = evs
    assert isinstance(started, ResponseStarted) and started.response_id == "gturn-1"
    assert isinstance(audio, AgentAudio)
    assert (audio.response_id, audio.item_id, audio.sample_rate) == ("gturn-1", "gturn-1", 24000)
    assert audio.pcm == pcm1 and audio.t_ns == 10
    assert audio.raw is not None
    part = audio.raw["serverContent"]["modelTurn"]["parts"][0]
    assert part["inlineData"]["data"] == f"<{len(pcm1)} bytes>"

    evs = feed(proto, audio_msg(pcm2), t=11)
    assert kinds(evs) == ["AgentAudio"]  # one ResponseStarted per turn
    assert proto.received_audio_ms("gturn-1") == 150  # 3600 samples at 24 kHz
    assert proto.received_audio_ms("nope") == 0

    assert kinds(feed(proto, output_tx("Hi "))) == ["AgentTranscript"]
    feed(proto, output_tx("there."))
    assert feed(proto, content(generation_complete=True)) == []

    usage = types.UsageMetadata(
        prompt_token_count=10, response_token_count=20, total_token_count=30
    )
    done = types.LiveServerMessage(
        server_content=types.LiveServerContent(turn_complete=True), usage_metadata=usage
    )
    evs = feed(proto, done, t=20)
    assert kinds(evs) == ["AgentTranscript", "Usage", "ResponseFinished"]
    final, billed, finished = evs
    assert isinstance(billed, Usage) and billed.response_id == "gturn-1"
    assert isinstance(final, AgentTranscript) and final.final and final.text == "Hi there."
    assert isinstance(finished, ResponseFinished)
    assert (finished.response_id, finished.status, finished.t_ns) == ("gturn-1", "completed", 20)
    assert finished.usage == {
        "promptTokenCount": 10,
        "responseTokenCount": 20,
        "totalTokenCount": 30,
    }

    evs = feed(proto, audio_msg(pcm2))
    assert [getattr(e, "response_id", None) for e in evs] == ["gturn-2", "gturn-2"]


def test_interrupted_then_turn_complete_is_cancelled() -> None:
    proto = make()
    feed(proto, audio_msg(b"\x00\x00" * 480))
    evs = feed(proto, content(interrupted=True), t=30)
    assert kinds(evs) == ["AgentInterrupted"]
    assert isinstance(evs[0], AgentInterrupted) and evs[0].response_id == "gturn-1"
    evs = feed(proto, content(turn_complete=True), t=31)
    assert kinds(evs) == ["ResponseFinished"]
    assert isinstance(evs[0], ResponseFinished)
    assert (evs[0].response_id, evs[0].status) == ("gturn-1", "cancelled")
    evs = feed(proto, audio_msg(b"\x00\x00" * 480))
    assert kinds(evs) == ["ResponseStarted", "AgentAudio"] and evs[0].response_id == "gturn-2"


def test_interrupted_and_turn_complete_in_one_message() -> None:
    proto = make()
    feed(proto, audio_msg(b"\x00\x00" * 480))
    evs = feed(proto, content(interrupted=True, turn_complete=True))
    assert kinds(evs) == ["AgentInterrupted", "ResponseFinished"]
    assert evs[1].status == "cancelled"


def test_content_after_interrupted_opens_a_new_turn() -> None:
    proto = make()
    feed(proto, audio_msg(b"\x00\x00" * 480))
    feed(proto, content(interrupted=True))
    evs = feed(proto, audio_msg(b"\x00\x00" * 480))
    assert kinds(evs) == ["ResponseFinished", "ResponseStarted", "AgentAudio"]
    assert (evs[0].response_id, evs[0].status) == ("gturn-1", "cancelled")
    assert evs[1].response_id == "gturn-2"


def test_late_input_transcription_keeps_its_user_item() -> None:
    proto = make()
    (ev,) = feed(proto, input_tx("What's the"))
    assert isinstance(ev, UserTranscript) and (ev.item_id, ev.final) == ("guser-1", False)
    feed(proto, audio_msg(b"\x00\x00" * 480))  # the answer starts…
    (ev,) = feed(proto, input_tx(" weather?"))  # …and the transcript is late
    assert isinstance(ev, UserTranscript) and ev.item_id == "guser-1"
    evs = feed(proto, content(turn_complete=True))
    assert kinds(evs) == ["ResponseFinished", "UserTranscript"]
    final = evs[1]
    assert isinstance(final, UserTranscript)
    assert (final.item_id, final.text, final.final) == ("guser-1", "What's the weather?", True)
    (ev,) = feed(proto, input_tx("Thanks"))
    assert ev.item_id == "guser-2"


def test_finished_input_transcription_closes_the_item() -> None:
    proto = make()
    evs = feed(proto, input_tx("Hello", finished=True))
    assert [(e.item_id, e.text, e.final) for e in evs] == [
        ("guser-1", "Hello", False),
        ("guser-1", "Hello", True),
    ]
    (ev,) = feed(proto, input_tx("Again"))
    assert ev.item_id == "guser-2"


def test_barge_in_with_voice_activity() -> None:
    proto = make()
    feed(proto, input_tx("Tell me a story"))
    feed(proto, audio_msg(b"\x00\x00" * 480))
    start = types.LiveServerMessage(
        voice_activity=types.VoiceActivity(
            voice_activity_type="ACTIVITY_START", audio_offset="12.5s"
        )
    )
    evs = feed(proto, start)
    assert kinds(evs) == ["UserTranscript", "ServerSpeechStarted"]
    assert (evs[0].item_id, evs[0].final) == ("guser-1", True)
    assert isinstance(evs[1], ServerSpeechStarted)
    assert (evs[1].item_id, evs[1].audio_start_ms) == ("guser-2", 12500)
    assert kinds(feed(proto, content(interrupted=True))) == ["AgentInterrupted"]
    (ev,) = feed(proto, input_tx("Stop"))
    assert ev.item_id == "guser-2"  # interrupted does not close the new, unanswered item
    stop = types.LiveServerMessage(
        voice_activity=types.VoiceActivity(voice_activity_type="ACTIVITY_END")
    )
    (ev,) = feed(proto, stop)
    assert isinstance(ev, ServerSpeechStopped) and ev.item_id == "guser-2"
    assert ev.audio_end_ms is None


def test_manual_activity_start_closes_an_answered_user_item() -> None:
    clock = FakeClock(7)
    proto = GeminiProtocol(PROFILE, clock)
    feed(proto, input_tx("One"))
    feed(proto, audio_msg(b"\x00\x00" * 10))
    proto.activity_start()
    evs = feed(proto, input_tx("Two"), t=9)
    assert [(e.kind, e.item_id, e.final, e.t_ns) for e in evs] == [
        ("UserTranscript", "guser-1", True, 7),
        ("UserTranscript", "guser-2", False, 9),
    ]


def test_tool_call_round_trip() -> None:
    proto = make()
    call = types.LiveServerMessage(
        tool_call=types.LiveServerToolCall(
            function_calls=[
                types.FunctionCall(id="fc-1", name="get_weather", args={"city": "Paris"})
            ]
        )
    )
    evs = feed(proto, call, t=50)
    assert kinds(evs) == ["ResponseStarted", "ToolCallRequested"]
    req = evs[1]
    assert isinstance(req, ToolCallRequested)
    assert (req.call_id, req.name, req.response_id) == ("fc-1", "get_weather", "gturn-1")
    assert json.loads(req.arguments) == {"city": "Paris"}
    sent(proto.tool_result("fc-1", "get_weather", '{"temp_c": 21}'))
    evs = feed(proto, audio_msg(b"\x00\x00" * 480), t=60)
    assert kinds(evs) == ["ResponseFinished", "ResponseStarted", "AgentAudio"]
    assert (evs[0].response_id, evs[0].reason) == ("gturn-1", "tool_call")
    assert evs[1].response_id == evs[2].response_id == "gturn-2"
    cancel = types.LiveServerMessage(
        tool_call_cancellation=types.LiveServerToolCallCancellation(ids=["fc-1", "fc-2"])
    )
    (ev,) = feed(proto, cancel)
    assert isinstance(ev, ToolCallCancelled) and ev.call_ids == ("fc-1", "fc-2")


def test_tool_call_without_id_gets_one_that_is_not_sent_back() -> None:
    proto = make()
    evs = proto.receive('{"toolCall": {"functionCalls": [{"name": "hang_up"}]}}', 1)
    req = evs[-1]
    assert isinstance(req, ToolCallRequested) and req.call_id == "gcall-1"
    assert req.arguments == "{}"
    (msg,) = sent(proto.tool_result(req.call_id, "hang_up", "{}"))
    assert msg["toolResponse"]["functionResponses"][0] == {
        "name": "hang_up",
        "response": {"output": {}},
    }


@pytest.mark.parametrize(
    ("text", "ms"),
    [("50s", 50_000), ("1.5s", 1500), ("0s", 0), ("0.000000001s", 0), ("3.0005s", 3000)],
)
def test_go_away(text: str, ms: int) -> None:
    msg = types.LiveServerMessage(go_away=types.LiveServerGoAway(time_left=text))
    (ev,) = feed(make(), msg)
    assert isinstance(ev, GoAway) and ev.time_left_ms == ms


def test_duration_forms() -> None:
    assert parse_duration_ms({"seconds": "2", "nanos": 500_000_000}) == 2500
    assert parse_duration_ms(1.25) == 1250
    for bad in ("50", "s", "1.5 ms", True, None, [], {"seconds": 1.5}):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)


def test_go_away_with_a_bad_duration_is_malformed() -> None:
    (ev,) = make().receive('{"goAway": {"timeLeft": "soon"}}', 1)
    assert isinstance(ev, ProviderErrorEvent) and ev.code == "malformed_message"


def test_resumption_handle_tracking() -> None:
    proto = make(handle="old")
    assert proto.latest_handle == "old"

    def update(handle: str | None, resumable: bool) -> types.LiveServerMessage:
        return types.LiveServerMessage(
            session_resumption_update=types.LiveServerSessionResumptionUpdate(
                new_handle=handle, resumable=resumable
            )
        )

    (ev,) = feed(proto, update("h1", True))
    assert isinstance(ev, ResumptionUpdate) and (ev.handle, ev.resumable) == ("h1", True)
    assert proto.latest_handle == "h1"
    (ev,) = feed(proto, update(None, False))
    assert (ev.handle, ev.resumable) == ("", False)
    assert proto.latest_handle == "h1"  # a non-resumable point keeps the last good handle
    feed(proto, update("h2", True))
    assert proto.latest_handle == "h2"
    # The next connection resumes from it.
    (msg,) = sent(make(handle=proto.latest_handle).open())
    assert msg["setup"]["sessionResumption"] == {"handle": "h2"}


def test_snake_case_and_binary_frames_are_accepted() -> None:
    proto = make()
    pcm = b"\x10\x00" * 160
    msg = {
        "server_content": {
            "model_turn": {
                "parts": [
                    {
                        "inline_data": {
                            "mime_type": "audio/pcm;rate=16000",
                            "data": base64.urlsafe_b64encode(pcm).decode().rstrip("="),
                        }
                    }
                ]
            },
            "turn_complete": True,
        },
        "usage_metadata": {"total_token_count": 5},
    }
    evs = proto.receive(json.dumps(msg).encode(), 3)
    assert kinds(evs) == ["ResponseStarted", "AgentAudio", "Usage", "ResponseFinished"]
    assert evs[1].pcm == pcm and evs[1].sample_rate == 16000
    assert evs[1].raw["server_content"]["model_turn"]["parts"][0]["inline_data"]["data"] == (
        "<320 bytes>"
    )
    assert evs[3].usage == {"total_token_count": 5}
    assert evs[2].other_input == 5  # a bare total: unattributed, never guessed
    assert msg["server_content"]["model_turn"]["parts"][0]["inline_data"]["data"] != "<320 bytes>"


def test_unknown_top_level_key() -> None:
    evs = make().receive('{"somethingNew": {"a": 1}, "goAway": {"timeLeft": "5s"}}', 1)
    assert kinds(evs) == ["UnknownMessage", "GoAway"]
    assert isinstance(evs[0], UnknownMessage) and evs[0].type == "somethingNew"
    assert evs[0].raw == {"somethingNew": {"a": 1}, "goAway": {"timeLeft": "5s"}}


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        '"setupComplete"',
        '{"serverContent": "x"}',
        '{"serverContent": {"modelTurn": {"parts": [{"inlineData": '
        '{"mimeType": "audio/pcm;rate=24000", "data": "!!!"}}]}}}',
        '{"serverContent": {"modelTurn": {"parts": [{"inlineData": '
        '{"mimeType": "audio/pcm;rate=24000", "data": "AAEC"}}]}}}',
        '{"toolCall": {"functionCalls": [{"name": "x", "args": [1]}]}}',
        '{"toolCallCancellation": {"ids": [1]}}',
        '{"sessionResumptionUpdate": {"resumable": "yes"}}',
        "[" * 100_000,
    ],
)
def test_malformed_messages_become_error_events(text: str | bytes) -> None:
    proto = make()
    evs = proto.receive(text, 1)
    assert kinds(evs) == ["ProviderErrorEvent"]
    assert evs[0].code == "malformed_message" and not evs[0].fatal
    # …and the protocol goes on working.
    assert kinds(feed(proto, audio_msg(b"\x00\x00"))) == ["ResponseStarted", "AgentAudio"]


def test_oversized_message_is_malformed_without_parsing() -> None:
    text = '{"a": "' + "x" * MAX_MESSAGE_SIZE + '"}'
    (ev,) = make().receive(text, 1)
    assert isinstance(ev, ProviderErrorEvent) and "too large" in ev.message


def test_a_message_parses_into_typed_operations_in_the_order_they_apply() -> None:
    """Usage goes after the content that opens the turn and before its turnComplete; the
    parse itself is a pure function of the message."""
    msg = {
        "usageMetadata": {"totalTokenCount": 7},
        "serverContent": {
            "interrupted": True,
            "outputTranscription": {"text": "Hi"},
            "generationComplete": True,
            "turnComplete": True,
            "turnCompleteReason": "STOP",
        },
        "voiceActivity": {"voiceActivityType": "ACTIVITY_START", "audioOffset": "1.5s"},
        "toolCallCancellation": {"ids": ["a"]},
        "bogus": 1,
    }
    assert ops.parse_message(msg) == [
        ops.UnknownKey("bogus"),
        ops.SpeechStarted(1500),
        ops.Interrupted(),
        ops.OutputTranscript("Hi"),
        ops.UsageReport(msg["usageMetadata"], usage_counts(msg["usageMetadata"])),
        ops.TurnComplete("STOP"),
        ops.ToolCancel(("a",)),
    ]
    with pytest.raises(ops.Malformed):
        ops.parse_message({"serverContent": {"generationComplete": "yes"}})


def test_malformed_message_changes_no_state() -> None:
    proto = make()
    bad = {
        "serverContent": {"modelTurn": {"parts": []}},
        "toolCall": {"functionCalls": "nope"},
    }
    assert kinds(proto.receive(json.dumps(bad), 1)) == ["ProviderErrorEvent"]
    assert kinds(feed(proto, audio_msg(b"\x00\x00")))[0] == "ResponseStarted"
    assert proto._turn == "gturn-1"  # the bad message opened no turn


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
known_keys = st.sampled_from(
    [
        "setupComplete", "serverContent", "toolCall", "toolCallCancellation", "usageMetadata",
        "goAway", "sessionResumptionUpdate", "voiceActivity", "voiceActivityDetectionSignal",
        "modelTurn", "parts", "inlineData", "data", "mimeType", "inputTranscription",
        "outputTranscription", "text", "finished", "interrupted", "turnComplete",
        "functionCalls", "args", "id", "name", "ids", "timeLeft", "newHandle", "resumable",
        "voiceActivityType", "audioOffset",
    ]
)  # fmt: skip
shaped_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.just("AAAA"),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(known_keys, children, max_size=4)
    ),
    max_leaves=25,
)


def _only_events(proto: GeminiProtocol, text: str | bytes) -> None:
    for ev in proto.receive(text, 1):
        assert isinstance(ev, Event)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_values | shaped_values, min_size=1, max_size=5))
def test_arbitrary_json_never_raises(values: list[Any]) -> None:
    proto = make()
    for value in values:
        _only_events(proto, json.dumps(value))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_text_never_raises(text: str | bytes) -> None:
    _only_events(make(), text)


# --- schema -------------------------------------------------------------------------------


def test_schema_conversion_keeps_only_the_openapi_subset() -> None:
    schema = {
        "type": "object",
        "$defs": {"x": {}},
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "max_items": 3},
            "mode": {"oneOf": [{"const": 1}], "enum": [1, 2]},
        },
    }
    out = to_gemini_schema(schema)
    assert out == {
        "type": "OBJECT",
        "properties": {
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3},
            "mode": {"enum": ["1", "2"]},
        },
    }
    types.Schema.model_validate(out)


# --- connection ---------------------------------------------------------------------------

PATH_V1BETA = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


def test_gemini_url_rules() -> None:
    assert gemini_url(None) == f"wss://generativelanguage.googleapis.com{PATH_V1BETA}"
    assert gemini_url(None, "v1").endswith("v1.GenerativeService.BidiGenerateContent")
    assert gemini_url("https://127.0.0.1:8443") == f"wss://127.0.0.1:8443{PATH_V1BETA}"
    assert gemini_url("http://127.0.0.1:8443/") == f"ws://127.0.0.1:8443{PATH_V1BETA}"
    full = f"wss://proxy.example:9000{PATH_V1BETA}?alt=x"
    assert gemini_url(full) == full
    vertex = (
        "wss://us-central1-aiplatform.googleapis.com"
        "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
    )
    assert gemini_url(vertex) == vertex
    assert gemini_url("https://us-central1-aiplatform.googleapis.com") == vertex
    for bad in ("ftp://x", "127.0.0.1:8443", "wss://"):
        with pytest.raises(ConfigError):
            gemini_url(bad)


def test_auth_headers() -> None:
    google = gemini_url(None)
    assert auth_headers(google, "AIza-k") == {"x-goog-api-key": "AIza-k"}
    vertex = gemini_url("https://europe-west4-aiplatform.googleapis.com")
    assert auth_headers(vertex, "ya29.t") == {"Authorization": "Bearer ya29.t"}
    assert auth_headers(google, "auth_tokens/abc") == {"Authorization": "Token auth_tokens/abc"}
    assert auth_headers(google, "") == {}


def test_ephemeral_token_uses_the_constrained_v1alpha_method() -> None:
    provider = connect_gemini(PROFILE, "auth_tokens/abc", MONOTONIC)
    assert provider.url.endswith(
        "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained"
    )
    assert "auth_tokens" not in provider.url


def test_dial_over_loopback_wss(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """connect_gemini against a real TLS WebSocket server on 127.0.0.1 with a test CA."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_ctx)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    seen: dict[str, Any] = {}
    pcm = b"\x05\x00" * 2400

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen["path"] = ws.request.path
        seen["key"] = ws.request.headers.get("x-goog-api-key")
        seen["setup"] = json.loads(await ws.recv())
        await ws.send(json.dumps({"setupComplete": {}}))
        seen["audio"] = json.loads(await ws.recv())
        # Gemini sends JSON in binary frames too.
        await ws.send(json.dumps(wire(audio_msg(pcm))).encode())
        await ws.send(json.dumps({"serverContent": {"turnComplete": True}}))
        await ws.wait_closed()

    async def main() -> list[Event]:
        async with serve(handler, "127.0.0.1", 0, ssl=server_ctx) as server:
            port = server.sockets[0].getsockname()[1]
            provider = connect_gemini(
                PROFILE, "AIza-secret", MONOTONIC, url=f"https://127.0.0.1:{port}", ca_file=str(pem)
            )
            await provider.connect()
            events: list[Event] = []
            stream = provider.events()
            async for ev in stream:
                events.append(ev)
                if isinstance(ev, SessionConfigured):
                    await provider.send_audio(b"\x00\x00" * 160)
                if isinstance(ev, ResponseFinished):
                    await provider.close()
            return events

    events = asyncio.run(asyncio.wait_for(main(), 4 * WAIT))
    # The documented ``?key=`` (ai.google.dev get-started-websocket) and the SDK's header.
    assert seen["path"] == PATH_V1BETA + "?key=AIza-secret"
    assert seen["key"] == "AIza-secret"
    validate_gemini_client(seen["setup"])
    validate_gemini_client(seen["audio"])
    assert "realtimeInput" in seen["audio"]
    names = kinds(events)
    for expected in ("SessionConfigured", "ResponseStarted", "AgentAudio", "ResponseFinished"):
        assert expected in names
    audio = next(e for e in events if isinstance(e, AgentAudio))
    assert audio.pcm == pcm
    last = events[-1]
    assert isinstance(last, ConnectionState) and last.state == "closed"
    assert all("AIza-secret" not in json.dumps(getattr(e, "raw", None) or {}) for e in events)


# --- the oracle itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        {"setup": {"model": "models/m", "bogus": 1}},
        {"setup": {"model": "models/m", "realtimeInputConfig": {"vad": {}}}},
        {"setup": {"model": "models/m"}, "realtimeInput": {"audioStreamEnd": True}},
        {"realtimeInput": {"audioStreamEnd": True, "activityEnd": {}}},
        {"toolResponse": {"functionResponses": [{"id": "1", "result": {}}]}},
        {},
    ],
)
def test_client_oracle_rejects_what_the_api_would_not_know(msg: dict[str, Any]) -> None:
    with pytest.raises(AssertionError):
        validate_gemini_client(msg)


def test_server_oracle_rejects_unknown_fields() -> None:
    with pytest.raises(AssertionError, match="somethingNew"):
        validate_gemini_server({"serverContent": {"somethingNew": True}})
    validate_gemini_server({"serverContent": {"turnComplete": True}})
