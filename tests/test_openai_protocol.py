"""OpenAIProtocol: plain function calls, checked against the official SDK models."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any, get_args

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemTruncatedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RateLimitsUpdatedEvent,
    RealtimeErrorEvent,
    RealtimeResponse,
    RealtimeServerEvent,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.realtime_error import RealtimeError
from openai.types.realtime.realtime_response_status import RealtimeResponseStatus
from openai.types.realtime.realtime_response_usage import RealtimeResponseUsage
from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest

from app.clock import FakeClock
from app.errors import ConfigError
from app.events import (
    AgentAudio,
    AgentTranscript,
    InputCommitted,
    ItemTruncated,
    ProviderErrorEvent,
    ResponseFinished,
    ResponseStarted,
    ServerSpeechStarted,
    ServerSpeechStopped,
    SessionConfigured,
    SessionCreated,
    ToolCallRequested,
    UnknownMessage,
    Usage,
    UserTranscript,
)
from app.profile import Profile, ToolSpec, Transcription, TurnDetection
from app.providers.openai.protocol import (
    BETA_SYNONYMS,
    GA_SERVER_TYPES,
    MAX_MESSAGE_SIZE,
    OpenAIProtocol,
)
from tests.sdk_oracle import validate_openai_client, validate_openai_server

BETA_SESSION_KEYS = {
    "modalities",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "temperature",
    "max_response_output_tokens",
    "input_audio_noise_reduction",
    "voice",
    "turn_detection",
    "speed",
}

T = 123_456_789


def proto(**kw: Any) -> OpenAIProtocol:
    return OpenAIProtocol(Profile(**kw), FakeClock())


def parsed(out: Any) -> dict[str, Any]:
    msg = json.loads(out.text)
    assert msg["type"] == out.type
    return msg


def feed(p: OpenAIProtocol, model: Any) -> list[Any]:
    """Send an SDK-built server event through the oracle and the protocol."""
    text = model.model_dump_json(exclude_none=True)
    validate_openai_server(text)
    return p.receive(text, T)


def audio_delta(item_id: str, data: bytes, response_id: str = "resp_1") -> ResponseAudioDeltaEvent:
    return ResponseAudioDeltaEvent(
        type="response.output_audio.delta",
        event_id="ev",
        response_id=response_id,
        item_id=item_id,
        output_index=0,
        content_index=0,
        delta=base64.b64encode(data).decode(),
    )


# --- outgoing ---------------------------------------------------------------------------


def test_open_sends_one_ga_session_update() -> None:
    tool = ToolSpec(
        name="get_weather",
        description="Weather for a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    p = proto(model="gpt-realtime", voice="cedar", instructions="Be brief.", tools=(tool,))
    out = p.open()
    assert len(out) == 1
    msg = parsed(out[0])
    validate_openai_client(msg)
    assert out[0].log == msg
    assert msg["type"] == "session.update" and msg["event_id"]
    s = msg["session"]
    assert s["type"] == "realtime"
    assert s["model"] == "gpt-realtime"
    assert s["instructions"] == "Be brief."
    assert s["output_modalities"] == ["audio"]
    assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "cedar",
    }
    assert s["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert s["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
    }
    assert s["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": tool.parameters,
        }
    ]
    assert s["tool_choice"] == "auto"
    assert not BETA_SESSION_KEYS & set(s)
    assert p.input_rate == p.output_rate == 24000
    assert p.name == "openai"


@pytest.mark.parametrize(
    ("td", "expected"),
    [
        (
            TurnDetection(type="semantic_vad", eagerness="high", create_response=False),
            {
                "type": "semantic_vad",
                "eagerness": "high",
                "create_response": False,
                "interrupt_response": True,
            },
        ),
        (TurnDetection(type="none"), None),
        (
            TurnDetection(threshold=0.7, prefix_padding_ms=100, silence_duration_ms=250),
            {
                "type": "server_vad",
                "threshold": 0.7,
                "prefix_padding_ms": 100,
                "silence_duration_ms": 250,
                "create_response": True,
                "interrupt_response": True,
            },
        ),
    ],
)
def test_turn_detection_shapes(td: TurnDetection, expected: Any) -> None:
    msg = parsed(proto(turn_detection=td).open()[0])
    validate_openai_client(msg)
    assert msg["session"]["audio"]["input"]["turn_detection"] == expected


def test_transcription_language_and_prompt_only_when_set() -> None:
    tr = Transcription(model="gpt-4o-transcribe", language="de", prompt="Bahnhof, Gleis")
    msg = parsed(proto(transcription=tr).open()[0])
    validate_openai_client(msg)
    assert msg["session"]["audio"]["input"]["transcription"] == {
        "model": "gpt-4o-transcribe",
        "language": "de",
        "prompt": "Bahnhof, Gleis",
    }
    # A profile-wide BCP-47 language falls back to its ISO-639-1 part.
    msg = parsed(proto(language="fr-FR").open()[0])
    assert msg["session"]["audio"]["input"]["transcription"]["language"] == "fr"
    # No model: transcription is off (omitted).
    msg = parsed(proto(transcription=Transcription(model="")).open()[0])
    validate_openai_client(msg)
    assert "transcription" not in msg["session"]["audio"]["input"]


@pytest.mark.parametrize(("fmt", "wire"), [("pcmu", "audio/pcmu"), ("pcma", "audio/pcma")])
def test_g711_session_format_and_rates(fmt: str, wire: str) -> None:
    p = proto(audio_format=fmt)
    assert p.input_rate == p.output_rate == 8000
    msg = parsed(p.open()[0])
    validate_openai_client(msg)
    assert msg["session"]["audio"]["input"]["format"] == {"type": wire}
    assert msg["session"]["audio"]["output"]["format"] == {"type": wire}


def test_audio_append_is_base64_pcm_and_not_logged() -> None:
    p = proto()
    pcm = np.arange(-480, 480, dtype="<i2").tobytes()
    (out,) = p.audio(pcm)
    assert out.type == "input_audio_buffer.append"
    assert out.log is None
    msg = parsed(out)
    validate_openai_client(msg)
    assert base64.b64decode(msg["audio"]) == pcm
    assert msg["event_id"]
    assert p.audio(b"") == []


def test_tool_result_item_then_response_create() -> None:
    p = proto()
    out = p.tool_result("call_1", "get_weather", '{"temp_c": 21}')
    assert [o.type for o in out] == ["conversation.item.create", "response.create"]
    msgs = [parsed(o) for o in out]
    for m in msgs:
        validate_openai_client(m)
    assert msgs[0]["item"] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"temp_c": 21}',
    }
    assert all(o.log is not None for o in out)


def test_commit_and_cancel() -> None:
    p = proto(turn_detection=TurnDetection(type="none"))
    commit = p.commit()
    assert [o.type for o in commit] == ["input_audio_buffer.commit", "response.create"]
    (cancel,) = p.cancel()
    assert cancel.type == "response.cancel"
    for o in [*commit, cancel]:
        validate_openai_client(parsed(o))


def test_event_ids_are_unique() -> None:
    p = proto()
    out = p.open() + p.audio(b"\0\0") + p.tool_result("c", "n", "{}") + p.commit() + p.cancel()
    ids = [parsed(o)["event_id"] for o in out]
    assert len(set(ids)) == len(ids)


# --- truncate ---------------------------------------------------------------------------


def test_truncate_without_received_audio_sends_nothing() -> None:
    p = proto()
    assert p.truncate("item_unknown", 500) == []
    assert p.received_audio_ms("item_unknown") == 0


def test_truncate_clamps_to_received_audio() -> None:
    p = proto()
    # 1.5 s of audio in three 0.5 s chunks (24 kHz PCM16 → 24 000 bytes each).
    for _ in range(3):
        p.receive(audio_delta("item_a", b"\1\0" * 12000).model_dump_json(), T)
    assert p.received_audio_ms("item_a") == 1500
    assert p.received_audio_ms("item_other") == 0

    cases = {700: 700, 1500: 1500, 1585: 1500, 60_000: 1500, -20: 0}
    for asked, sent in cases.items():
        (out,) = p.truncate("item_a", asked)
        msg = parsed(out)
        validate_openai_client(msg)
        assert msg["item_id"] == "item_a"
        assert msg["content_index"] == 0
        assert msg["audio_end_ms"] == sent, asked
    # Other items are untouched.
    assert p.truncate("item_b", 10) == []


def test_received_ms_rounds_down() -> None:
    p = proto()
    # 1001 samples at 24 kHz = 41.7 ms → 41 (never report audio not received).
    p.receive(audio_delta("i", b"\0\0" * 1001).model_dump_json(), T)
    assert p.received_audio_ms("i") == 41
    (out,) = p.truncate("i", 42)
    assert parsed(out)["audio_end_ms"] == 41


# --- incoming: SDK-built events --------------------------------------------------------


def test_session_updated() -> None:
    ev = SessionUpdatedEvent(
        type="session.updated",
        event_id="ev1",
        session=RealtimeSessionCreateRequest(type="realtime", model="gpt-realtime"),
    )
    data = json.loads(ev.model_dump_json())
    data["session"]["id"] = "sess_42"
    (out,) = proto().receive(json.dumps(data), T)
    assert out == SessionConfigured(t_ns=T, raw=data, provider="openai", session_id="sess_42")
    (created,) = proto().receive(json.dumps({**data, "type": "session.created"}), T)
    assert isinstance(created, SessionCreated) and created.session_id == "sess_42"


def test_speech_and_commit_events() -> None:
    p = proto()
    (a,) = feed(
        p,
        InputAudioBufferSpeechStartedEvent(
            type="input_audio_buffer.speech_started",
            event_id="e1",
            item_id="item_u1",
            audio_start_ms=1200,
        ),
    )
    (b,) = feed(
        p,
        InputAudioBufferSpeechStoppedEvent(
            type="input_audio_buffer.speech_stopped",
            event_id="e2",
            item_id="item_u1",
            audio_end_ms=2900,
        ),
    )
    (c,) = feed(
        p,
        InputAudioBufferCommittedEvent(
            type="input_audio_buffer.committed",
            event_id="e3",
            item_id="item_u1",
            previous_item_id="item_0",
        ),
    )
    assert isinstance(a, ServerSpeechStarted)
    assert (a.item_id, a.audio_start_ms, a.t_ns) == ("item_u1", 1200, T)
    assert isinstance(b, ServerSpeechStopped)
    assert (b.item_id, b.audio_end_ms) == ("item_u1", 2900)
    assert isinstance(c, InputCommitted)
    assert (c.item_id, c.previous_item_id) == ("item_u1", "item_0")
    assert a.raw is not None and a.raw["audio_start_ms"] == 1200


def test_user_transcripts() -> None:
    p = proto()
    (d,) = feed(
        p,
        ConversationItemInputAudioTranscriptionDeltaEvent(
            type="conversation.item.input_audio_transcription.delta",
            event_id="e",
            item_id="item_u1",
            content_index=0,
            delta="What's the wea",
        ),
    )
    (f,) = feed(
        p,
        ConversationItemInputAudioTranscriptionCompletedEvent(
            type="conversation.item.input_audio_transcription.completed",
            event_id="e",
            item_id="item_u1",
            content_index=0,
            transcript="What's the weather?",
            usage={"type": "duration", "seconds": 1.5},
        ),
    )
    assert d == UserTranscript(
        t_ns=T, raw=d.raw, item_id="item_u1", text="What's the wea", final=False
    )
    # A transcript delta is text, not audio: it is kept as is.
    assert d.raw is not None and d.raw["delta"] == "What's the wea"
    assert isinstance(f, UserTranscript) and f.final and f.text == "What's the weather?"


def test_response_lifecycle() -> None:
    p = proto()
    (started,) = feed(
        p,
        ResponseCreatedEvent(
            type="response.created",
            event_id="e",
            response=RealtimeResponse(id="resp_1", status="in_progress"),
        ),
    )
    assert started == ResponseStarted(t_ns=T, raw=started.raw, response_id="resp_1")

    pcm = np.array([0, 1000, -1000, 32767, -32768], dtype="<i2").tobytes()
    (audio,) = feed(p, audio_delta("item_a1", pcm))
    assert isinstance(audio, AgentAudio)
    assert (audio.response_id, audio.item_id, audio.sample_rate) == ("resp_1", "item_a1", 24000)
    assert audio.pcm == pcm and audio.samples == 5
    assert audio.raw is not None and audio.raw["delta"] == f"<{len(pcm)} bytes>"

    (td,) = feed(
        p,
        ResponseAudioTranscriptDeltaEvent(
            type="response.output_audio_transcript.delta",
            event_id="e",
            response_id="resp_1",
            item_id="item_a1",
            output_index=0,
            content_index=0,
            delta="It is",
        ),
    )
    (tf,) = feed(
        p,
        ResponseAudioTranscriptDoneEvent(
            type="response.output_audio_transcript.done",
            event_id="e",
            response_id="resp_1",
            item_id="item_a1",
            output_index=0,
            content_index=0,
            transcript="It is sunny.",
        ),
    )
    assert td == AgentTranscript(
        t_ns=T, raw=td.raw, response_id="resp_1", item_id="item_a1", text="It is", final=False
    )
    assert isinstance(tf, AgentTranscript) and tf.final and tf.text == "It is sunny."

    usage = RealtimeResponseUsage(total_tokens=30, input_tokens=10, output_tokens=20)
    (billed, done) = feed(
        p,
        ResponseDoneEvent(
            type="response.done",
            event_id="e",
            response=RealtimeResponse(
                id="resp_1",
                status="cancelled",
                status_details=RealtimeResponseStatus(type="cancelled", reason="turn_detected"),
                usage=usage,
            ),
        ),
    )
    assert isinstance(done, ResponseFinished)
    assert (done.response_id, done.status, done.reason) == ("resp_1", "cancelled", "turn_detected")
    assert done.usage == {"total_tokens": 30, "input_tokens": 10, "output_tokens": 20}
    # the usage as a typed event first (no breakdown given: "other", never guessed)
    assert isinstance(billed, Usage) and billed.response_id == "resp_1"
    assert (billed.other_input, billed.other_output) == (10, 20)


def test_tool_call_requested() -> None:
    (ev,) = feed(
        proto(),
        ResponseFunctionCallArgumentsDoneEvent(
            type="response.function_call_arguments.done",
            event_id="e",
            response_id="resp_2",
            item_id="item_f",
            output_index=0,
            call_id="call_9",
            name="get_weather",
            arguments='{"city":"Oslo"}',
        ),
    )
    assert ev == ToolCallRequested(
        t_ns=T,
        raw=ev.raw,
        call_id="call_9",
        name="get_weather",
        arguments='{"city":"Oslo"}',
        response_id="resp_2",
    )


def test_truncated_ack() -> None:
    (ev,) = feed(
        proto(),
        ConversationItemTruncatedEvent(
            type="conversation.item.truncated",
            event_id="e",
            item_id="item_a1",
            content_index=0,
            audio_end_ms=640,
        ),
    )
    assert ev == ItemTruncated(t_ns=T, raw=ev.raw, item_id="item_a1", audio_end_ms=640)


@pytest.mark.parametrize(
    ("code", "fatal"),
    [("session_expired", True), ("rate_limit_exceeded", False), (None, False)],
)
def test_error_events(code: str | None, fatal: bool) -> None:
    err = RealtimeError(type="invalid_request_error", code=code, message="boom")
    (ev,) = feed(proto(), RealtimeErrorEvent(type="error", event_id="e", error=err))
    assert isinstance(ev, ProviderErrorEvent)
    assert ev.code == (code or "invalid_request_error")
    assert ev.message == "boom"
    assert ev.fatal is fatal


def test_known_types_match_the_sdk_union() -> None:
    members = get_args(get_args(RealtimeServerEvent)[0])
    sdk_types = {get_args(m.model_fields["type"].annotation)[0] for m in members}
    assert sdk_types == GA_SERVER_TYPES


def test_known_uninteresting_types_give_nothing_unknown_types_are_kept() -> None:
    p = proto()
    rl = RateLimitsUpdatedEvent(
        type="rate_limits.updated",
        event_id="e",
        rate_limits=[{"name": "tokens", "limit": 100, "remaining": 50, "reset_seconds": 1.0}],
    )
    assert feed(p, rl) == []
    for t in ("conversation.item.added", "response.output_item.done", "response.output_audio.done"):
        assert p.receive(json.dumps({"type": t, "event_id": "e"}), T) == []
    (unk,) = p.receive('{"type":"transcription_session.updated","x":1}', T)
    assert unk == UnknownMessage(
        t_ns=T,
        raw={"type": "transcription_session.updated", "x": 1},
        type="transcription_session.updated",
    )


def test_beta_names_are_read_as_ga() -> None:
    p = proto()
    pcm = b"\x10\x00" * 240
    beta = {
        "type": "response.audio.delta",
        "response_id": "r",
        "item_id": "i",
        "delta": base64.b64encode(pcm).decode(),
    }
    (a,) = p.receive(json.dumps(beta), T)
    assert isinstance(a, AgentAudio) and a.pcm == pcm
    assert a.raw is not None and a.raw["delta"] == "<480 bytes>"
    assert p.received_audio_ms("i") == 10
    (t,) = p.receive('{"type":"response.audio_transcript.delta","item_id":"i","delta":"hi"}', T)
    assert isinstance(t, AgentTranscript) and t.text == "hi" and not t.final
    (x,) = p.receive('{"type":"response.text.delta","item_id":"i","delta":"yo"}', T)
    assert isinstance(x, AgentTranscript) and x.text == "yo"
    assert set(BETA_SYNONYMS.values()) <= GA_SERVER_TYPES


def test_item_audio_is_elided_in_raw() -> None:
    msg = {
        "type": "conversation.item.retrieved",
        "event_id": "e",
        "item": {
            "id": "i",
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "audio": base64.b64encode(b"x" * 10).decode()}],
        },
    }
    p = proto()
    assert p.receive(json.dumps(msg), T) == []
    (unk,) = p.receive(json.dumps({**msg, "type": "x.retrieved"}), T)
    assert unk.raw["item"]["content"][0]["audio"] == "<10 bytes>"


# --- malformed input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1, 2]",
        '"a string"',
        "null",
        "{}",
        '{"type": 7}',
        '{"type": ""}',
        b"\xff\xfe\x00",
        '{"type":"response.output_audio.delta","item_id":"i","delta":"@@not base64@@"}',
        '{"type":"response.output_audio.delta","item_id":"i","delta":12}',
        '{"type":"conversation.item.truncated","item_id":"i","audio_end_ms":"x"}',
        "[" * 100_000,
    ],
)
def test_malformed_messages_become_error_events(text: str | bytes) -> None:
    p = proto()
    (ev,) = p.receive(text, T)
    assert isinstance(ev, ProviderErrorEvent)
    assert ev.code == "malformed_message"
    assert not ev.fatal
    assert ev.t_ns == T
    assert p.received_audio_ms("i") == 0


def test_oversized_message_is_rejected_without_parsing() -> None:
    big = (
        '{"type":"response.output_audio_transcript.delta","delta":"' + "a" * MAX_MESSAGE_SIZE + '"}'
    )
    (ev,) = proto().receive(big, T)
    assert isinstance(ev, ProviderErrorEvent) and ev.code == "malformed_message"
    assert "too large" in ev.message


def test_wrong_field_types_do_not_raise() -> None:
    p = proto()
    for t in sorted(GA_SERVER_TYPES | set(BETA_SYNONYMS)):
        for junk in ({"response": [], "session": 3, "error": "x", "item_id": 5}, {"delta": None}):
            p.receive(json.dumps({"type": t, **junk}), T)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    [
        "delta",
        "item_id",
        "response",
        "session",
        "error",
        "audio_end_ms",
        "audio_start_ms",
        "transcript",
        "arguments",
        "call_id",
        "previous_item_id",
        "usage",
        "status_details",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    mtype=st.sampled_from(sorted(GA_SERVER_TYPES | set(BETA_SYNONYMS))) | st.text(max_size=30),
    fields=st.dictionaries(field_names, json_values, max_size=6),
)
def test_fuzzed_messages_never_raise(mtype: str, fields: dict[str, Any]) -> None:
    out = proto().receive(json.dumps({"type": mtype, **fields}), T)
    assert isinstance(out, list)
    assert all(ev.t_ns == T for ev in out)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_fuzzed_bytes_never_raise(data: str | bytes) -> None:
    assert isinstance(proto().receive(data, T), list)


# --- G.711 on the wire -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pcmu", "pcma"])
def test_g711_round_trip(fmt: str) -> None:
    p = proto(audio_format=fmt)
    t = np.arange(160) / 8000
    pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    (out,) = p.audio(pcm.tobytes())
    msg = parsed(out)
    validate_openai_client(msg)
    wire = base64.b64decode(msg["audio"])
    assert len(wire) == 160  # one byte per sample at 8 kHz

    # The server sends the same bytes back as agent audio: PCM16 at 8 kHz again.
    (ev,) = p.receive(audio_delta("item_g", wire).model_dump_json(), T)
    assert isinstance(ev, AgentAudio)
    assert ev.sample_rate == 8000 and ev.samples == 160
    back = np.frombuffer(ev.pcm, dtype="<i2").astype(np.int32)
    # G.711 is logarithmic: error grows with amplitude, < 3 % of full scale of the signal.
    assert np.max(np.abs(back - pcm.astype(np.int32))) <= 256
    assert p.received_audio_ms("item_g") == 20
    (tr,) = p.truncate("item_g", 500)
    assert parsed(tr)["audio_end_ms"] == 20


def test_profile_with_unknown_format_is_refused() -> None:
    with pytest.raises(ConfigError):
        OpenAIProtocol(replace(Profile(), audio_format="opus"), FakeClock())
