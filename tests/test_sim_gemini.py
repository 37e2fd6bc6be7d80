"""The simulator's Gemini Live dialect over real ``wss://`` on loopback.

Every message the simulator sends validates against ``google.genai.types.LiveServerMessage``
and parses cleanly in our :class:`GeminiProtocol`; every message our protocol sends
validates against ``LiveClientMessage``. Covers a full session (turn, tool call, barge-in),
VAD edges in audio time, manual activity, refusals, ``goAway`` and session resumption,
binary frames, the certificate, ``run_sim``, and the official ``google-genai`` client
holding a live session with the simulator.

Client audio is streamed faster than real time: the simulator's VAD runs on audio time.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.audio.pcm import int16_to_bytes
from app.clock import MONOTONIC
from app.errors import ConfigError
from app.events import ProviderErrorEvent, UnknownMessage
from app.profile import Profile, ToolSpec, TurnDetection
from app.providers.base import HistoryItem, Outgoing
from app.providers.gemini.protocol import GeminiProtocol
from app.sim.scenario import Scenario, scenario_from_dict
from app.sim.server import SimServer, SimThread
from app.sim.tls import make_self_signed
from app.sim.tts import synthesize
from tests.audio_fixtures import energy_edges
from tests.conftest import REPO, TIME_SCALE
from tests.gemini_oracle import validate_gemini_client, validate_gemini_server

RATE = 16000
EDGE_TOL_MS = 60
LEAD_S = 0.5

SCRIPT: dict[str, Any] = {
    "turns": [
        {"hears": "Hello, can you hear me?", "reply": "Yes, I can hear you."},
        {"hears": "What's the weather in Paris?", "reply": "Let me check.",
         "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"},
                       "after_result": "It is sunny in Paris.",
                       "followup_first_audio_ms": 150}},
        {"hears": "Tell me a long story.",
         "reply": "Once upon a time there was a very long story that went on and on for "
                  "a long while, and nobody could stop it.",
         "timing": {"realtime_factor": 1.0}},
    ],
    "timing": {"realtime_factor": 8.0, "response_delay_ms": 80, "first_audio_ms": 150,
               "transcript_delay_ms": 60},
}

PROFILE = Profile(
    name="gemini-test", provider="gemini", model="gemini-live-test", voice="Puck",
    tools=(ToolSpec(name="get_weather", description="Weather for a city.",
                    parameters={"type": "object", "properties": {"city": {"type": "string"}},
                                "required": ["city"]}),),
)


def utterance(text: str, lead_s: float = LEAD_S, tail_s: float = 1.0) -> NDArray[np.int16]:
    """espeak-ng speech at 16 kHz between silences (a different voice rate than replies)."""
    speech = synthesize(text, RATE, 150)
    return np.concatenate([
        np.zeros(int(lead_s * RATE), np.int16), speech, np.zeros(int(tail_s * RATE), np.int16)
    ])


def kind_of(msg: dict[str, Any]) -> str:
    """``serverContent.<field>`` or the top-level key (the simulator's fault names)."""
    key = next(iter(msg))
    if key == "serverContent":
        return "serverContent." + next(iter(msg[key]))
    return key


class Client:
    """A raw Gemini client over wss: our protocol out, every server message checked twice
    (the SDK model, and our protocol parsing it without complaint)."""

    def __init__(self, ws: ClientConnection, profile: Profile, handle: str | None = None,
                 expect_binary: bool = False) -> None:
        self.ws = ws
        self.protocol = GeminiProtocol(profile, MONOTONIC, resumption_handle=handle)
        self.expect_binary = expect_binary
        self.messages: list[dict[str, Any]] = []
        self.events: list[Any] = []
        self.closed = asyncio.Event()
        self._new = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                t = time.monotonic_ns()
                assert isinstance(frame, bytes) == self.expect_binary
                msg = json.loads(frame)
                validate_gemini_server(msg)
                events = self.protocol.receive(frame, t)
                bad = [e for e in events if isinstance(e, ProviderErrorEvent | UnknownMessage)]
                assert not bad, bad
                msg["_t"] = t
                async with self._new:
                    self.messages.append(msg)
                    self.events.extend(events)
                    self._new.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            async with self._new:
                self._new.notify_all()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if kind in _kinds(m)]

    def kinds(self) -> list[str]:
        return [k for m in self.messages for k in _kinds(m) if k != "serverContent.modelTurn"]

    async def wait(self, kind: str, count: int = 1, limit_s: float = 10.0) -> list[dict[str, Any]]:
        async def enough() -> list[dict[str, Any]]:
            async with self._new:
                while len(self.of(kind)) < count:
                    if self.closed.is_set():
                        raise AssertionError(f"closed before {count} {kind}: {self.kinds()}")
                    await self._new.wait()
                return self.of(kind)

        return await asyncio.wait_for(enough(), limit_s * TIME_SCALE)

    async def send(self, out: list[Outgoing]) -> None:
        for o in out:
            validate_gemini_client(json.loads(o.text))
            await self.ws.send(o.text)

    async def setup(self) -> None:
        await self.send(self.protocol.open())
        await self.wait("setupComplete")

    async def stream(self, x: NDArray[np.int16], chunk_ms: int = 20) -> None:
        step = RATE * chunk_ms // 1000
        for i in range(0, len(x), step):
            await self.send(self.protocol.audio(int16_to_bytes(x[i : i + step])))

    async def close(self) -> None:
        await self.ws.close()
        await self._task


def _kinds(msg: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in msg.items():
        if key == "_t":
            continue
        if key == "serverContent":
            out += [f"serverContent.{k}" for k in value]
        else:
            out.append(key)
    return out


def client_context(server: SimServer) -> ssl.SSLContext:
    assert server.cert_path is not None
    return ssl.create_default_context(cafile=str(server.cert_path))


async def open_client(server: SimServer, profile: Profile = PROFILE,
                      handle: str | None = None) -> Client:
    ws = await connect(server.url, ssl=client_context(server), compression=None,
                       additional_headers={"x-goog-api-key": "test-key"})
    c = Client(ws, profile, handle, expect_binary=server.binary)
    await c.setup()
    return c


async def served(scenario: Scenario, binary: bool = False) -> SimServer:
    server = SimServer(scenario, dialect="gemini", binary=binary)
    await server.start()
    return server


def run_async(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body on a fresh loop with an overall timeout."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 60 * TIME_SCALE))

    return wrapper


def truth_of(server: SimServer, event: str) -> list[dict[str, Any]]:
    return [r for r in server.truth if r["event"] == event]


def audio_of(msgs: list[dict[str, Any]]) -> bytes:
    out = b""
    for m in msgs:
        for part in m["serverContent"]["modelTurn"]["parts"]:
            assert part["inlineData"]["mimeType"] == "audio/pcm;rate=24000"
            out += base64.b64decode(part["inlineData"]["data"])
    return out


@pytest.mark.parametrize("binary", [False, True], ids=["text-frames", "binary-frames"])
@run_async
async def test_full_session_validates_and_follows_the_service(binary: bool) -> None:
    server = await served(scenario_from_dict(SCRIPT), binary=binary)
    try:
        assert server.url.startswith("wss://127.0.0.1:")
        assert server.url.endswith(
            "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent")
        c = await open_client(server)
        setup = truth_of(server, "client_event")[0]
        assert setup["type"] == "setup" and setup["model"] == "models/gemini-live-test"
        assert setup["tools"] == ["get_weather"] and setup["vad"]

        # turn 1: speech, transcript, audio with its transcription, the end of the turn
        x = utterance("Hello, can you hear me?")
        _, true_end = energy_edges(x, RATE)
        await c.stream(x)
        await c.wait("sessionResumptionUpdate")
        kinds = c.kinds()
        assert kinds == [
            "setupComplete", "serverContent.inputTranscription",
            *["serverContent.outputTranscription"] * kinds.count(
                "serverContent.outputTranscription"),
            "serverContent.generationComplete", "usageMetadata", "serverContent.turnComplete",
            "sessionResumptionUpdate",
        ], kinds
        tx = c.of("serverContent.inputTranscription")[0]["serverContent"]["inputTranscription"]
        assert tx == {"text": "Hello, can you hear me?", "finished": True}
        said = "".join(m["serverContent"]["outputTranscription"]["text"]
                       for m in c.of("serverContent.outputTranscription"))
        assert said == "Yes, I can hear you."
        audio = audio_of(c.of("serverContent.modelTurn"))
        assert abs(len(audio) / 2 - len(synthesize("Yes, I can hear you."))) < 24
        first = c.messages.index(c.of("serverContent.modelTurn")[0])
        assert kind_of(c.messages[first - 1]) == "serverContent.inputTranscription"
        usage = c.of("usageMetadata")[0]["usageMetadata"]
        assert usage["responseTokensDetails"][0]["modality"] == "AUDIO"
        assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["responseTokenCount"]
        update = c.of("sessionResumptionUpdate")[0]["sessionResumptionUpdate"]
        assert update["resumable"] is True and update["newHandle"]
        assert c.protocol.latest_handle == update["newHandle"]
        # ground truth: the edge in audio time, the response at its first message
        stopped = truth_of(server, "speech_stopped")[0]
        assert abs(stopped["edge_ms"] - true_end / 16) <= EDGE_TOL_MS
        created = truth_of(server, "response.created")[0]
        fa = truth_of(server, "first_audio")[0]
        assert created["t_ns"] == fa["t_ns"]  # the turn begins with its audio
        assert 0 <= c.of("serverContent.modelTurn")[0]["_t"] - created["t_ns"] < 50e6
        gap_ms = (created["t_ns"] - stopped["t_ns"]) / 1e6
        assert gap_ms == pytest.approx(80 + 150, abs=25 * TIME_SCALE)

        # turn 2: spoken part, toolCall, nothing until the toolResponse, then the follow-up
        await c.stream(utterance("What's the weather in Paris?", lead_s=0.2))
        call_msg = (await c.wait("toolCall"))[0]
        call = call_msg["toolCall"]["functionCalls"][0]
        assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}
        n_before = len(c.messages)
        assert "serverContent.generationComplete" not in _kinds(c.messages[-1])
        await c.send(c.protocol.tool_result(call["id"], "get_weather", '{"sky": "sunny"}'))
        await c.wait("sessionResumptionUpdate", 2)
        after = [k for m in c.messages[n_before:] for k in _kinds(m)]
        assert after[0] == "serverContent.modelTurn"
        assert after[-3:] == ["usageMetadata", "serverContent.turnComplete",
                              "sessionResumptionUpdate"]
        assert after.count("serverContent.generationComplete") == 1
        out = truth_of(server, "function_call_output")[0]
        assert out["call_id"] == call["id"] and out["known"]
        followup = [r for r in truth_of(server, "response.created") if r["kind"] == "followup"]
        assert followup and followup[0]["t_ns"] > out["t_ns"]

        # turn 3: the caller talks over a long reply: interrupted, turnComplete, no
        # generationComplete
        await c.stream(utterance("Tell me a long story.", lead_s=0.2, tail_s=0.8))
        n_gen = len(c.of("serverContent.generationComplete"))
        await c.wait("serverContent.modelTurn", len(c.of("serverContent.modelTurn")) + 3)
        await c.stream(utterance("Wait, stop please.", lead_s=0.0, tail_s=1.0))
        await c.wait("serverContent.interrupted")
        await c.wait("serverContent.turnComplete", 3)
        assert len(c.of("serverContent.generationComplete")) == n_gen
        cut = truth_of(server, "interrupted")[0]
        assert cut["turn"] == 3 and cut["sent_ms"] < truth_of(server, "audio_sent")[-1][
            "total_ms"]
        await c.close()
    finally:
        await server.stop()
    assert server.cert_path is not None and not server.cert_path.exists()


@run_async
async def test_manual_activity_and_refusals() -> None:
    server = await served(scenario_from_dict(SCRIPT))
    try:
        manual = Profile(name="manual", provider="gemini", model="gemini-live-test",
                         turn_detection=TurnDetection(type="none"))
        c = await open_client(server, manual)
        assert not truth_of(server, "client_event")[0]["vad"]
        x = utterance("Hello, can you hear me?", lead_s=0.1, tail_s=0.1)
        await c.send(c.protocol.activity_start())
        await c.stream(x)
        await c.send(c.protocol.activity_end())
        await c.wait("serverContent.turnComplete")
        stopped = truth_of(server, "speech_stopped")[0]
        assert stopped["turn"] == 1
        created = truth_of(server, "response.created")[0]
        assert (created["t_ns"] - stopped["t_ns"]) / 1e6 == pytest.approx(230, abs=25)
        await c.close()

        # activity messages while automatic detection is on: refused like the service
        c = await open_client(server)
        await c.send(c.protocol.activity_start())
        await asyncio.wait_for(c.closed.wait(), 5)
        assert c.ws.close_code == 1007
        assert c.ws.close_reason is not None and "automatic activity" in c.ws.close_reason

        # an unknown setup field, and audio before setup
        ctx = client_context(server)
        for first, why in (({"setup": {"model": "models/x", "bogus": 1}}, 'Unknown name "bogus"'),
                           ({"realtimeInput": {"audioStreamEnd": True}}, "must be setup")):
            async with connect(server.url, ssl=ctx) as ws:
                await ws.send(json.dumps(first))
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1007
                assert ws.close_reason is not None and why in ws.close_reason
    finally:
        await server.stop()


async def truth_until(server: SimServer, event: str, count: int,
                      limit_s: float = 5.0) -> list[dict[str, Any]]:
    """Wait (polling the log) until ``count`` records of ``event`` exist."""
    deadline = time.monotonic() + limit_s * TIME_SCALE
    while len(truth_of(server, event)) < count:
        assert time.monotonic() < deadline, f"fewer than {count} {event} records"
        await asyncio.sleep(0.01)
    return truth_of(server, event)


@run_async
async def test_replayed_history_is_logged_and_not_answered() -> None:
    server = await served(scenario_from_dict(SCRIPT))
    try:
        c = await open_client(server)
        history = [
            HistoryItem("user", "What's the weather in Paris?"),
            HistoryItem("assistant", "Let me check."),
            HistoryItem("tool_call", call_id="c1", name="get_weather",
                        arguments='{"city": "Paris"}'),
            HistoryItem("tool_result", '{"sky": "sunny"}', call_id="c1", name="get_weather"),
        ]
        await c.send(c.protocol.replay(history))
        items = await truth_until(server, "replayed_item", 4)
        assert [(r["role"], r["item_type"]) for r in items] == [
            ("user", "text"), ("model", "text"), ("model", "functionCall"),
            ("user", "functionResponse")]
        assert items[0]["text"] == "What's the weather in Paris?"
        # turnComplete false: the model does not answer the replayed turns
        await c.stream(utterance("Hello, can you hear me?"))
        await c.wait("serverContent.turnComplete")
        assert [r["kind"] for r in truth_of(server, "response.created")] == ["turn"]
        assert truth_of(server, "response.created")[0]["turn"] == 1
        await c.close()
    finally:
        await server.stop()


GO_AWAY = {**SCRIPT, "faults": [
    {"action": "go_away", "at": "sessionResumptionUpdate", "turn": 1, "ms": 300}]}


@run_async
async def test_go_away_then_resume_continues_the_conversation() -> None:
    server = await served(scenario_from_dict(GO_AWAY))
    try:
        c = await open_client(server)
        await c.stream(utterance("Hello, can you hear me?"))
        go = (await c.wait("goAway"))[0]
        assert go["goAway"]["timeLeft"] == "0.3s"
        go_events = [e for e in c.events if e.kind == "GoAway"]
        assert len(go_events) == 1 and go_events[0].time_left_ms == 300
        # goAway comes before this turn's update; the server closes 300 ms later
        await asyncio.wait_for(c.closed.wait(), 5)
        assert c.ws.close_code == 1011 and c.ws.close_reason == "Deadline expired"
        handle = c.protocol.latest_handle
        assert handle

        resumed = await open_client(server, handle=handle)
        rec = truth_of(server, "resumed")
        assert rec and rec[0]["handle"] == handle and rec[0]["index"] == 2
        assert rec[0]["turn"] == 2
        await resumed.stream(utterance("What's the weather in Paris?", lead_s=0.2))
        await resumed.wait("toolCall")  # the script went on at turn 2
        await resumed.close()

        # a handle this server never issued is refused
        ws = await connect(server.url, ssl=client_context(server))
        forged = GeminiProtocol(PROFILE, MONOTONIC, resumption_handle="made-up")
        await ws.send(forged.open()[0].text)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1007
    finally:
        await server.stop()


def test_go_away_fault_is_validated() -> None:
    sc = scenario_from_dict({"faults": [{"action": "go_away", "at": "time", "after_ms": 10,
                                         "ms": 2000, "code": 1001}]})
    assert sc.faults[0].ms == 2000 and sc.faults[0].code == 1001
    for bad, field in (
        ({"action": "go_away", "at": "toolCall"}, "faults[0].ms"),
        ({"action": "go_away", "at": "toolCall", "ms": 0}, "faults[0].ms"),
        ({"action": "go_away", "at": "toolCall", "ms": 5, "code": 99}, "faults[0].code"),
        ({"action": "go_away", "ms": 5}, "faults[0].at"),
    ):
        with pytest.raises(ConfigError) as info:
            scenario_from_dict({"faults": [bad]})
        assert info.value.field == field, (bad, info.value)


def test_certificate_is_for_loopback_and_verifies() -> None:
    cert = make_self_signed()
    try:
        assert oct(cert.key_path.stat().st_mode & 0o777) == "0o600"
        # the client context verifies it against 127.0.0.1 and localhost (SAN)
        ctx = cert.client_context()
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        info = ssl._ssl._test_decode_cert(str(cert.cert_path))  # type: ignore[attr-defined]
        sans = {v for _, v in info["subjectAltName"]}
        assert {"127.0.0.1", "localhost"} <= sans or {"127.0.0.1\n", "localhost"} <= sans
    finally:
        cert.cleanup()
    assert not cert.folder.exists()


def test_sim_thread_exposes_the_certificate() -> None:
    sim = SimThread(scenario_from_dict(SCRIPT), dialect="gemini")
    url = sim.start()
    try:
        assert url.startswith("wss://") and sim.cert_path is not None
        assert sim.cert_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    finally:
        sim.stop()


def test_run_sim_prints_the_wss_url_and_the_ca_file() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--dialect", "gemini"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        ca_line = proc.stdout.readline().strip()
        assert url.startswith("wss://127.0.0.1:") and url.endswith(
            "GenerativeService.BidiGenerateContent")
        assert ca_line.startswith("# ca-file: ")
        ca = ca_line.removeprefix("# ca-file: ")

        async def talk() -> str:
            ctx = ssl.create_default_context(cafile=ca)
            async with connect(url, ssl=ctx) as ws:
                await ws.send(json.dumps({"setup": {"model": "models/x"}}))
                reply = await asyncio.wait_for(ws.recv(), 10)
                return reply if isinstance(reply, str) else reply.decode()

        assert json.loads(asyncio.run(talk())) == {"setupComplete": {}}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert proc.returncode == 0
    assert not os.path.exists(ca)


@run_async
async def test_official_sdk_holds_a_session_with_the_simulator() -> None:
    from google import genai
    from google.genai import types

    server = await served(scenario_from_dict(SCRIPT))
    try:
        port = server.url.split(":")[2].split("/")[0]
        client = genai.Client(api_key="test", http_options={
            "base_url": f"https://127.0.0.1:{port}",
            "async_client_args": {"ssl": client_context(server)},
        })
        weather = types.FunctionDeclaration(
            name="get_weather", description="Weather for a city.",
            parameters=types.Schema(type=types.Type.OBJECT,
                                    properties={"city": types.Schema(type=types.Type.STRING)}),
        )
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            tools=[types.Tool(function_declarations=[weather])],
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig(),
        )
        async with client.aio.live.connect(model="gemini-live-test", config=config) as session:

            async def speak(text: str) -> None:
                x = utterance(text, lead_s=0.2)
                for i in range(0, len(x), 320):
                    await session.send_realtime_input(audio=types.Blob(
                        data=int16_to_bytes(x[i : i + 320]), mime_type="audio/pcm;rate=16000"))

            async def one_turn() -> dict[str, Any]:
                got: dict[str, Any] = {"audio": b"", "in": "", "out": "", "calls": [],
                                       "handles": []}
                async for msg in session.receive():  # stops after each turnComplete
                    sc = msg.server_content
                    if msg.data:
                        got["audio"] += msg.data
                    if sc and sc.input_transcription and sc.input_transcription.text:
                        got["in"] += sc.input_transcription.text
                    if sc and sc.output_transcription and sc.output_transcription.text:
                        got["out"] += sc.output_transcription.text
                    if msg.tool_call and msg.tool_call.function_calls:
                        for fc in msg.tool_call.function_calls:
                            got["calls"].append(fc)
                            await session.send_tool_response(function_responses=[
                                types.FunctionResponse(id=fc.id, name=fc.name,
                                                       response={"output": {"sky": "sunny"}})])
                    if msg.session_resumption_update:
                        got["handles"].append(msg.session_resumption_update.new_handle)
                return got

            await speak("Hello, can you hear me?")
            t1 = await one_turn()
            assert t1["in"] == "Hello, can you hear me?"
            assert t1["out"] == "Yes, I can hear you." and len(t1["audio"]) > 24000
            await speak("What's the weather in Paris?")
            t2 = await one_turn()
            assert [fc.name for fc in t2["calls"]] == ["get_weather"]
            assert t2["calls"][0].args == {"city": "Paris"}
            assert t2["out"] == "Let me check.It is sunny in Paris."
            assert len(t2["audio"]) > len(synthesize("Let me check.")) * 2
        conn = truth_of(server, "connection")[0]
        assert conn["path"].startswith("/ws/google.ai.generativelanguage.")
        assert conn["authorization"]
        out = truth_of(server, "function_call_output")
        assert out and out[0]["known"]
    finally:
        await server.stop()
