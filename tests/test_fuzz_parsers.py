"""Property-based tests: every parser of outside input either works or raises our own error.

* The provider protocols (``OpenAIProtocol.receive``, ``GeminiProtocol.receive``) never
  raise: arbitrary text and bytes, arbitrary JSON, and real event shapes with fields
  deleted, retyped or replaced all come back as a list of events, and every event can be
  written to a session's ``events.jsonl``.
* The profile and scenario loaders and the WAV reader raise nothing but
  :class:`~app.errors.VoiceprobeError` subclasses, whatever the file holds.

Example counts are chosen so the whole file runs in well under a minute on two cores.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.audio.wavio import read_wav, read_wav_channels, wav_header
from app.clock import FakeClock
from app.errors import AudioFormatError, ConfigError, VoiceprobeError
from app.events import Event, ProviderErrorEvent
from app.profile import Profile, load_profile, profile_from_dict
from app.providers.gemini.protocol import GeminiProtocol
from app.providers.openai.protocol import MAX_MESSAGE_SIZE, OpenAIProtocol
from app.sim.scenario import load_scenario, scenario_from_dict
from app.store.reader import read_events
from app.store.writer import SessionWriter

FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
FUZZ_FEW = settings(FUZZ, max_examples=150)

# --- strategies ----------------------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e308, -1e308, 5e-324, 2**63, -(2**63), 10**30])
    | st.text(max_size=40)
    | st.sampled_from(["", "\ud800", "\x00", "AAAA", "1.5s", "-3s", "1e999s", "NaN", "rate=0"])
)

#: Any JSON-representable value (Python side: dict keys are text).
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def _b64(n: int) -> str:
    return base64.b64encode(bytes(range(256)) * (n // 256) + bytes(n % 256)).decode()


OPENAI_SHAPES: list[dict[str, Any]] = [
    {"type": "session.created", "event_id": "e1", "session": {"id": "sess_1", "type": "realtime"}},
    {
        "type": "session.updated",
        "session": {"id": "sess_1", "audio": {"output": {"voice": "marin"}}},
    },
    {"type": "input_audio_buffer.speech_started", "item_id": "i1", "audio_start_ms": 120},
    {"type": "input_audio_buffer.speech_stopped", "item_id": "i1", "audio_end_ms": 900},
    {"type": "input_audio_buffer.committed", "item_id": "i1", "previous_item_id": None},
    {"type": "conversation.item.input_audio_transcription.delta", "item_id": "i1", "delta": "hi"},
    {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "i1",
        "content_index": 0,
        "transcript": "hello there",
    },
    {
        "type": "conversation.item.input_audio_transcription.failed",
        "item_id": "i1",
        "error": {"message": "nope", "code": "x"},
    },
    {"type": "response.created", "response": {"id": "r1", "status": "in_progress"}},
    {
        "type": "response.output_audio.delta",
        "response_id": "r1",
        "item_id": "a1",
        "output_index": 0,
        "content_index": 0,
        "delta": _b64(480),
    },
    {"type": "response.audio.delta", "response_id": "r1", "item_id": "a1", "delta": _b64(7)},
    {
        "type": "response.output_audio_transcript.delta",
        "response_id": "r1",
        "item_id": "a1",
        "delta": "Hel",
    },
    {
        "type": "response.output_audio_transcript.done",
        "response_id": "r1",
        "item_id": "a1",
        "transcript": "Hello",
    },
    {"type": "response.output_text.done", "response_id": "r1", "item_id": "a1", "text": "Hello"},
    {
        "type": "response.function_call_arguments.done",
        "response_id": "r1",
        "item_id": "f1",
        "call_id": "c1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    },
    {
        "type": "response.done",
        "response": {
            "id": "r1",
            "status": "cancelled",
            "status_details": {"type": "cancelled", "reason": "turn_detected"},
            "usage": {"total_tokens": 10},
            "output": [{"type": "message", "content": [{"type": "output_audio", "audio": "AAAA"}]}],
        },
    },
    {
        "type": "conversation.item.truncated",
        "item_id": "a1",
        "content_index": 0,
        "audio_end_ms": 640,
    },
    {
        "type": "error",
        "event_id": "e9",
        "error": {"type": "invalid_request_error", "code": "session_expired", "message": "expired"},
    },
    {"type": "rate_limits.updated", "rate_limits": [{"name": "tokens", "remaining": 5}]},
    {"type": "some.future.event", "x": 1},
]

GEMINI_SHAPES: list[dict[str, Any]] = [
    {"setupComplete": {}},
    {"setupComplete": {"sessionId": "s1"}},
    {
        "serverContent": {
            "modelTurn": {
                "parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": _b64(960)}}]
            }
        }
    },
    {
        "server_content": {
            "model_turn": {"parts": [{"inline_data": {"mime_type": "audio/pcm", "data": "AAAA"}}]}
        }
    },
    {"serverContent": {"inputTranscription": {"text": "hello", "finished": False}}},
    {"serverContent": {"outputTranscription": {"text": "Hi there"}}},
    {"serverContent": {"interrupted": True}},
    {"serverContent": {"generationComplete": True}},
    {"serverContent": {"turnComplete": True, "turnCompleteReason": "NEED_MORE_INPUT"}},
    {
        "toolCall": {
            "functionCalls": [{"id": "fc1", "name": "get_weather", "args": {"city": "Paris"}}]
        }
    },
    {"toolCallCancellation": {"ids": ["fc1"]}},
    {"goAway": {"timeLeft": "10s"}},
    {"goAway": {"timeLeft": {"seconds": 3, "nanos": 500000000}}},
    {"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}},
    {"usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 9}},
    {"voiceActivity": {"voiceActivityType": "ACTIVITY_START", "audioOffset": "1.25s"}},
    {"voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_EOS", "audioOffset": 2.5}},
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path (tuple of keys/indices) into a nested JSON value, the root excluded."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@st.composite
def near_valid(draw: st.DrawFn, shapes: list[dict[str, Any]]) -> Any:
    """A real message shape with a few fields deleted, retyped or replaced."""
    msg = copy.deepcopy(draw(st.sampled_from(shapes)))
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(msg))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = msg
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["delete", "replace", "wrap", "stringify", "huge"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(JSON_VALUES)
        elif action == "wrap":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"v": parent[key]}
        elif action == "stringify":
            parent[key] = json.dumps(parent[key])
        else:
            parent[key] = draw(st.sampled_from(["x" * 100_000, "A" * 100_001, 10**300, -1e300]))
    if draw(st.integers(0, 9)) == 0:
        return [msg]  # right content, wrong top-level type
    return msg


def _encode(value: Any, as_bytes: bool) -> str | bytes:
    text = json.dumps(value, allow_nan=True)
    return text.encode("utf-8", "surrogatepass") if as_bytes else text


WIRE_OPENAI = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.builds(_encode, JSON_VALUES, st.booleans()),
    st.builds(_encode, near_valid(OPENAI_SHAPES), st.booleans()),
)
WIRE_GEMINI = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200),
    st.builds(_encode, JSON_VALUES, st.booleans()),
    st.builds(_encode, near_valid(GEMINI_SHAPES), st.booleans()),
)

# --- helpers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vp-fuzz-") as d:
        yield Path(d)


@pytest.fixture(scope="module")
def writer(scratch: Path) -> Iterator[SessionWriter]:
    """One session writer all protocol fuzz events are appended to."""
    w = SessionWriter(scratch / "store", "fuzz", {"provider": "fuzz"})
    yield w
    w.finish("complete")
    events, skipped = read_events(w.events_path)
    assert skipped == 0, "every event line written must read back as JSON"
    assert len(events) == w.events_written


def _feed(proto: Any, messages: list[str | bytes], writer: SessionWriter) -> None:
    for i, message in enumerate(messages):
        events = proto.receive(message, 1000 + i)
        assert isinstance(events, list)
        for ev in events:
            assert isinstance(ev, Event)
            writer.append_event(ev)  # storable: serializes and writes as UTF-8


def _openai() -> OpenAIProtocol:
    return OpenAIProtocol(Profile(), FakeClock())


def _gemini() -> GeminiProtocol:
    return GeminiProtocol(Profile(provider="gemini"), FakeClock())


# --- protocols -----------------------------------------------------------------------------


@FUZZ
@given(st.lists(WIRE_OPENAI, min_size=1, max_size=6))
def test_openai_receive_never_raises(writer: SessionWriter, messages: list[str | bytes]) -> None:
    _feed(_openai(), messages, writer)


@FUZZ
@given(st.lists(WIRE_GEMINI, min_size=1, max_size=6))
def test_gemini_receive_never_raises(writer: SessionWriter, messages: list[str | bytes]) -> None:
    _feed(_gemini(), messages, writer)


@FUZZ_FEW
@given(st.lists(st.sampled_from(GEMINI_SHAPES), min_size=1, max_size=12))
def test_gemini_valid_sequences_never_raise(
    writer: SessionWriter, messages: list[dict[str, Any]]
) -> None:
    """Valid messages in any order drive the turn bookkeeping without tripping it."""
    proto = _gemini()
    _feed(proto, [json.dumps(m) for m in messages], writer)
    proto.activity_start()
    proto.tool_result("fc1", "get_weather", '{"ok": true}')
    _feed(proto, [json.dumps(m) for m in messages], writer)


@pytest.mark.parametrize("make", [_openai, _gemini], ids=["openai", "gemini"])
@pytest.mark.parametrize(
    "message",
    [
        pytest.param("[" * 200_000 + "]" * 200_000, id="deep-list"),
        pytest.param('{"a":' * 100_000 + "1" + "}" * 100_000, id="deep-object"),
        pytest.param("x" * (MAX_MESSAGE_SIZE + 1), id="too-large-text"),
        pytest.param(b"\xff" * (MAX_MESSAGE_SIZE + 1), id="too-large-bytes"),
        pytest.param(b"\xff\xfe{\x00}", id="not-utf8"),
        pytest.param(b"\xed\xa0\x80", id="utf8-surrogate"),
        pytest.param('{"type": "error", "error": {"message": "\\ud800"}}', id="lone-surrogate"),
        pytest.param(
            '{"serverContent": {"outputTranscription": {"text": "\\udfff"}}}', id="lone-surrogate-g"
        ),
        pytest.param('{"type": "' + "t" * 1_000_000 + '"}', id="huge-type"),
        pytest.param('{"type": "x", "n": ' + "9" * 5000 + "}", id="huge-int"),
        pytest.param("1" * 10_000, id="huge-int-top"),
        pytest.param('{"goAway": {"timeLeft": 1e308}}', id="goaway-overflow"),
        pytest.param('{"goAway": {"timeLeft": "' + "9" * 400 + 's"}}', id="goaway-huge-text"),
        pytest.param(
            '{"goAway": {"timeLeft": {"seconds": 1, "nanos": ' + "9" * 400 + "}}}",
            id="goaway-nanos",
        ),
        pytest.param(
            '{"voiceActivity": {"voiceActivityType": "ACTIVITY_START", "audioOffset": 1e308}}',
            id="vad-offset-overflow",
        ),
        pytest.param(
            '{"serverContent": {"modelTurn": {"parts": [{"inlineData": '
            '{"mimeType": "audio/pcm;rate=' + "9" * 5000 + '", "data": "AAAA"}}]}}}',
            id="huge-rate",
        ),
        pytest.param("NaN", id="nan"),
        pytest.param("", id="empty"),
        pytest.param(b"", id="empty-bytes"),
    ],
)
def test_hostile_messages(make: Any, message: str | bytes, writer: SessionWriter) -> None:
    proto = make()
    events = proto.receive(message, 5)
    assert events and all(isinstance(ev, Event) for ev in events)
    for ev in events:
        writer.append_event(ev)


def test_malformed_messages_are_reported_as_such() -> None:
    """Not just "no exception": a broken message says so, with the code the bridge counts."""
    for proto in (_openai(), _gemini()):
        for message in ("{", "[]", b"\xff", '{"goAway": {"timeLeft": 1e308}}'):
            if isinstance(proto, OpenAIProtocol) and "goAway" in str(message):
                continue
            (ev,) = proto.receive(message, 1)
            assert isinstance(ev, ProviderErrorEvent)
            assert ev.code == "malformed_message"


# --- profile -------------------------------------------------------------------------------

_PROFILE_SHAPE: dict[str, Any] = {
    "name": "p",
    "provider": "openai",
    "model": "gpt-realtime",
    "voice": "marin",
    "instructions": "be brief",
    "language": "en",
    "audio_format": "pcmu",
    "turn_detection": {
        "type": "semantic_vad",
        "threshold": 0.4,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": False,
    },
    "transcription": {"model": "whisper-1", "language": "en", "prompt": ""},
    "tools": [
        {
            "name": "get_weather",
            "description": "d",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "impl": {"type": "mock", "result": {"t": 1}, "latency_ms": 10, "failure_rate": 0.1},
        },
        {"name": "book", "impl": {"type": "http", "url": "http://127.0.0.1:1/x", "timeout_ms": 50}},
    ],
    "tool_call_limit": 3,
    "url": "ws://127.0.0.1:1/v1",
}


def test_profile_shape_is_valid() -> None:
    assert profile_from_dict(_PROFILE_SHAPE).tools[1].impl.type == "http"


@FUZZ
@given(JSON_VALUES | near_valid([_PROFILE_SHAPE]))
def test_profile_from_dict_raises_only_config_errors(data: Any) -> None:
    try:
        profile = profile_from_dict(data, "fuzz.yaml")
    except ConfigError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
    else:
        assert isinstance(profile, Profile)


def _yamlish() -> st.SearchStrategy[bytes]:
    """Random bytes, random text, and YAML that a parser chokes on in odd ways."""
    tricky = st.sampled_from(
        [
            b"2001-02-30\n",  # timestamp resolver, impossible date
            b"name: 2001-13-45\n",
            b"tool_call_limit: 1" + b"0" * 5000 + b"\n",
            b"turn_detection: {threshold: .nan}\n",
            b"turn_detection: {threshold: .inf}\n",
            b"!!python/object:os.system {}\n",
            b"? [a, b]\n: 1\n",
            b"[" * 5000 + b"]" * 5000,
            b"a: &x [*x]\n",
            b"\xef\xbb\xbfname: bom\n",
            b'name: "\\ud800"\n',
            b"\x00\x01\x02",
            b"\t- x\n",
            b"",
        ]
    )
    yaml_text = st.builds(
        lambda v: json.dumps(v, allow_nan=True).encode("utf-8", "surrogatepass"),
        JSON_VALUES | near_valid([_PROFILE_SHAPE]),
    )
    return st.one_of(
        tricky,
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
        yaml_text,
    )


@FUZZ_FEW
@given(_yamlish())
def test_load_profile_raises_only_config_errors(scratch: Path, blob: bytes) -> None:
    path = scratch / "fuzz-profile.yaml"
    path.write_bytes(blob)
    try:
        profile = load_profile(str(path))
    except ConfigError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
    else:
        assert isinstance(profile, Profile)


# --- scenario ------------------------------------------------------------------------------

_SCENARIO_SHAPE: dict[str, Any] = {
    "name": "fz",
    "voice_rate": 175,
    "default_reply": "ok",
    "greeting": "hello",
    "continue_on_reconnect": False,
    "session_limit_ms": 60000,
    "timing": {
        "response_delay_ms": 120,
        "first_audio_ms": 300,
        "chunk_ms": 100,
        "realtime_factor": 2.0,
        "transcript_delay_ms": 150,
        "endpointing_ms": 500,
    },
    "turns": [
        {
            "hears": "weather?",
            "reply": "Checking.",
            "timing": {"first_audio_ms": 500},
            "tool_call": {
                "name": "get_weather",
                "arguments": {"city": "Paris", "days": [1, 2]},
                "after_result": "Sunny.",
                "followup_first_audio_ms": 250,
            },
            "faults": [
                {"action": "error", "at": "response.created", "code": "rate_limit_exceeded"}
            ],
        }
    ],
    "faults": [
        {"action": "close", "at": "time", "after_ms": 5000, "code": 1011, "message": "bye"},
        {"action": "slow_pong", "ms": 2000},
        {"action": "stall", "at": "response.output_audio.delta", "turn": 1, "nth": 2, "ms": 100},
    ],
}


@pytest.mark.parametrize("key", ["\n", "a\rb", "\x85", "\u2028"])
def test_unknown_keys_with_line_breaks_stay_on_one_line(key: str) -> None:
    for load in (profile_from_dict, scenario_from_dict):
        with pytest.raises(ConfigError) as info:
            load({key: 1}, "f.yaml")
        assert len(str(info.value).splitlines()) == 1, str(info.value)


def test_scenario_shape_is_valid() -> None:
    assert scenario_from_dict(_SCENARIO_SHAPE).turns[0].tool_call is not None


@FUZZ
@given(JSON_VALUES | near_valid([_SCENARIO_SHAPE]))
def test_scenario_from_dict_raises_only_config_errors(data: Any) -> None:
    try:
        scenario_from_dict(data, "fuzz.yaml")
    except ConfigError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)


@FUZZ_FEW
@given(_yamlish())
def test_load_scenario_raises_only_config_errors(scratch: Path, blob: bytes) -> None:
    path = scratch / "fuzz-scenario.yaml"
    path.write_bytes(blob)
    try:
        load_scenario(path)
    except ConfigError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)


@pytest.mark.parametrize("number", [10**400, -(10**400), math.inf, math.nan])
def test_scenario_absurd_numbers(number: float) -> None:
    for field in ("session_limit_ms",):
        with pytest.raises(ConfigError, match=field):
            scenario_from_dict({field: number})
    with pytest.raises(ConfigError, match="timing.first_audio_ms"):
        scenario_from_dict({"timing": {"first_audio_ms": number}})


# --- WAV reader ----------------------------------------------------------------------------

_TAGS = [1, 3, 6, 7, 2, 0x11, 0x55, 0xFFFE, 0, 0xFFFF]


@st.composite
def corrupted_wav(draw: st.DrawFn) -> bytes:
    """A WAV built from plausible and implausible header fields, then damaged."""
    channels = draw(st.sampled_from([0, 1, 2, 3, 255, 65535]))
    rate = draw(st.sampled_from([0, 1, 8000, 16000, 48000, 2**32 - 1]))
    bits = draw(st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64, 65535]))
    tag = draw(st.sampled_from(_TAGS))
    block = draw(st.sampled_from([0, 1, 2, 4, 7, 65535, max(1, channels * bits // 8) % 65536]))
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * block) % 2**32, block, bits)
    if tag == 0xFFFE or draw(st.booleans()):
        sub = draw(st.sampled_from(_TAGS))
        fmt += (
            struct.pack("<HHIH", 22, bits, 3, sub)
            + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x008\x9bq"
        )
    fmt = fmt[: draw(st.sampled_from([len(fmt), 16, 15, 24, 39]))]
    payload = draw(st.binary(max_size=600))
    declared = draw(st.sampled_from([len(payload), 0, 0xFFFFFFFF, len(payload) + 1, 1, 2**31]))
    chunks = [(b"fmt ", fmt, len(fmt)), (b"data", payload, declared)]
    if draw(st.booleans()):
        chunks.insert(0, (b"LIST", b"junk", draw(st.sampled_from([4, 0, 0xFFFFFFF0]))))
    if draw(st.integers(0, 4)) == 0:
        chunks.reverse()
    body = b"".join(
        cid + struct.pack("<I", size) + data + b"\0" * (len(data) & 1) for cid, data, size in chunks
    )
    blob = bytearray(b"RIFF" + struct.pack("<I", (4 + len(body)) % 2**32) + b"WAVE" + body)
    for _ in range(draw(st.integers(0, 3))):
        if not blob:
            break
        pos = draw(st.integers(0, len(blob) - 1))
        blob[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(blob)))
    return bytes(blob[:cut] if draw(st.integers(0, 3)) == 0 else blob)


@st.composite
def pcm16_wav_damaged(draw: st.DrawFn) -> bytes:
    """A valid PCM16 WAV from our own writer, with a few bytes overwritten."""
    frames = draw(st.integers(0, 200))
    channels = draw(st.integers(1, 3))
    data = np.frombuffer(
        draw(st.binary(min_size=frames * channels * 2, max_size=frames * channels * 2)), "<i2"
    )
    blob = bytearray(wav_header(channels, 16000, data.nbytes) + data.tobytes())
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, min(len(blob) - 1, 60)))
        blob[pos] = draw(st.integers(0, 255))
    return bytes(blob)


def _read(scratch: Path, blob: bytes) -> None:
    path = scratch / "fuzz.wav"
    path.write_bytes(blob)
    for reader in (read_wav_channels, read_wav):
        try:
            audio, rate = reader(path)
        except AudioFormatError as exc:
            assert len(str(exc).splitlines()) == 1, str(exc)
        else:
            assert audio.dtype == np.int16 and rate > 0 and len(audio) > 0


@FUZZ
@given(corrupted_wav())
def test_read_wav_corrupted(scratch: Path, blob: bytes) -> None:
    _read(scratch, blob)


@FUZZ_FEW
@given(
    pcm16_wav_damaged()
    | st.binary(max_size=200)
    | st.binary(max_size=60).map(lambda b: b"RIFF\0\0\0\0WAVE" + b)
)
def test_read_wav_random(scratch: Path, blob: bytes) -> None:
    _read(scratch, blob)


def test_errors_are_all_voiceprobe_errors() -> None:
    """The tests above catch these classes; they must stay in the one tree."""
    assert issubclass(AudioFormatError, VoiceprobeError)
    assert issubclass(ConfigError, VoiceprobeError)
