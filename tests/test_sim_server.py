"""The simulator over a real loopback WebSocket: every event validates against the SDK,
timing matches the scenario, VAD edges match the utterance, barge-in, truncate, manual
mode, faults, reconnects, G.711 input, the thread wrapper and the ``run_sim`` entry point.

Client audio is streamed faster than real time: the simulator's VAD runs on audio time.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import signal
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

from app.audio.g711 import ulaw_encode
from app.audio.pcm import int16_to_bytes
from app.audio.resample import resample
from app.sim.scenario import Scenario, scenario_from_dict
from app.sim.server import SimServer, SimThread
from app.sim.tts import synthesize
from tests.audio_fixtures import energy_edges
from tests.conftest import REPO, TIME_SCALE
from tests.sdk_oracle import validate_openai_server

RATE = 24000
TOL_MS = 10 * TIME_SCALE
EDGE_TOL_MS = 60
LEAD_S = 0.5


def utterance(text: str, lead_s: float = LEAD_S, tail_s: float = 1.0) -> NDArray[np.int16]:
    """espeak-ng speech at 24 kHz between silences (a different voice rate than replies)."""
    speech = synthesize(text, RATE, 150)
    return np.concatenate([
        np.zeros(int(lead_s * RATE), np.int16), speech, np.zeros(int(tail_s * RATE), np.int16)
    ])


class Client:
    """A raw GA client that validates every server event and lets tests wait for them."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.raw_invalid: list[str] = []
        self.closed = asyncio.Event()
        self._new = asyncio.Condition()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                assert isinstance(text, str)
                try:
                    msg = json.loads(text)
                except ValueError:
                    self.raw_invalid.append(text)
                    continue
                validate_openai_server(msg)
                msg["_t"] = time.monotonic_ns()
                async with self._new:
                    self.events.append(msg)
                    self._new.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            async with self._new:
                self._new.notify_all()

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]

    async def wait(self, type_: str, count: int = 1, limit_s: float = 10.0) -> list[dict[str, Any]]:
        async def enough() -> list[dict[str, Any]]:
            async with self._new:
                while len(self.of(type_)) < count:
                    if self.closed.is_set():
                        raise AssertionError(f"closed before {count} {type_}: {self.types()}")
                    await self._new.wait()
                return self.of(type_)

        return await asyncio.wait_for(enough(), limit_s * TIME_SCALE)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events if e["type"] != "response.output_audio.delta"]

    async def send(self, type_: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": type_, **fields}))

    async def update(self, **session: Any) -> None:
        await self.send("session.update", session={"type": "realtime", **session})
        n = len(self.of("session.updated")) + 1
        await self.wait("session.updated", n)

    async def stream(self, x: NDArray[np.int16], chunk_ms: int = 20, codec: str = "pcm") -> None:
        rate = RATE if codec == "pcm" else 8000
        if codec != "pcm":
            x = resample(x, RATE, 8000)
        step = rate * chunk_ms // 1000
        for i in range(0, len(x), step):
            piece = x[i : i + step]
            data = int16_to_bytes(piece) if codec == "pcm" else ulaw_encode(piece)
            await self.send("input_audio_buffer.append", audio=base64.b64encode(data).decode())

    async def close(self) -> None:
        await self.ws.close()
        await self._task


async def open_client(url: str) -> Client:
    ws = await connect(url + "?model=gpt-realtime", compression=None,
                       additional_headers={"Authorization": "Bearer sk-test"})
    c = Client(ws)
    await c.wait("session.created")
    return c


async def served(scenario: Scenario) -> tuple[SimServer, str]:
    server = SimServer(scenario)
    return server, await server.start()


def run_async(fn: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Run an async test body on a fresh loop with an overall timeout."""

    @functools.wraps(fn)
    def wrapper() -> None:
        asyncio.run(asyncio.wait_for(fn(), 60 * TIME_SCALE))

    return wrapper


def truth_of(server: SimServer, event: str) -> list[dict[str, Any]]:
    return [r for r in server.truth if r["event"] == event]


SCRIPT = {
    "turns": [
        {"hears": "Hello, can you hear me?", "reply": "Yes, I can hear you."},
        {"hears": "What's the weather in Paris?", "reply": "Let me check.",
         "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"},
                       "after_result": "It is sunny in Paris.",
                       "followup_first_audio_ms": 250}},
    ],
    "timing": {"realtime_factor": 8.0},
}


@run_async
async def test_full_session_validates_times_and_edges() -> None:
    server, url = await served(scenario_from_dict(SCRIPT))
    try:
        c = await open_client(url)
        await c.update(audio={"input": {"turn_detection": {
            "type": "server_vad", "silence_duration_ms": 500, "prefix_padding_ms": 300}}})
        x = utterance("Hello, can you hear me?")
        true_start, true_end = energy_edges(x, RATE)
        await c.stream(x)
        done = await c.wait("response.done")
        assert done[0]["response"]["status"] == "completed"
        started = c.of("input_audio_buffer.speech_started")[0]
        stopped = c.of("input_audio_buffer.speech_stopped")[0]
        assert abs(started["audio_start_ms"] + 300 - true_start / 24) <= EDGE_TOL_MS
        assert abs(stopped["audio_end_ms"] - 500 - true_end / 24) <= EDGE_TOL_MS
        assert started["item_id"] == stopped["item_id"]
        assert c.of("input_audio_buffer.committed")[0]["item_id"] == stopped["item_id"]
        tr = await c.wait("conversation.item.input_audio_transcription.completed")
        assert tr[0]["transcript"] == "Hello, can you hear me?"
        text = "".join(e["delta"] for e in c.of("response.output_audio_transcript.delta"))
        assert text == "Yes, I can hear you."
        audio = b"".join(base64.b64decode(e["delta"]) for e in c.of("response.output_audio.delta"))
        assert abs(len(audio) / 2 / 24 - len(synthesize("Yes, I can hear you.")) / 24) < 1
        usage = done[0]["response"]["usage"]
        assert usage["output_token_details"]["audio_tokens"] == int(len(audio) / 2 / 24 // 50)
        order = c.types()
        expected = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                    "input_audio_buffer.committed", "response.created",
                    "response.output_item.added", "response.content_part.added",
                    "response.output_audio.done", "response.output_audio_transcript.done",
                    "response.content_part.done", "response.output_item.done", "response.done"]
        assert [t for t in order if t in expected] == expected

        # turn 2: spoken part, then a tool call; the follow-up speaks after_result
        n_done = 1
        await c.stream(utterance("What's the weather in Paris?", lead_s=0.2))
        await c.wait("response.done", n_done + 1)
        args = c.of("response.function_call_arguments.done")[0]
        assert args["name"] == "get_weather" and json.loads(args["arguments"]) == {"city": "Paris"}
        out = c.of("response.done")[1]["response"]["output"]
        assert [i["type"] for i in out] == ["message", "function_call"]
        await c.send("conversation.item.create", item={
            "type": "function_call_output", "call_id": args["call_id"], "output": '{"t": 21}'})
        await c.send("response.create")
        await c.wait("response.done", n_done + 2)
        follow = "".join(e["delta"] for e in c.of("response.output_audio_transcript.delta")
                         if e["response_id"] == c.of("response.done")[2]["response"]["id"])
        assert follow == "It is sunny in Paris."
        await c.close()
    finally:
        await server.stop()

    # ground truth: the scenario's delays, to the millisecond
    stops = truth_of(server, "speech_stopped")
    created = truth_of(server, "response.created")
    first = truth_of(server, "first_audio")
    committed = truth_of(server, "committed")
    transcripts = truth_of(server, "transcript")
    assert len(created) == 3 and len(first) == 3
    for i in range(2):
        assert abs((created[i]["t_ns"] - stops[i]["t_ns"]) / 1e6 - 120) <= TOL_MS
        assert abs((first[i]["t_ns"] - created[i]["t_ns"]) / 1e6 - 300) <= TOL_MS
        assert abs((transcripts[i]["t_ns"] - committed[i]["t_ns"]) / 1e6 - 150) <= TOL_MS
    assert created[2]["kind"] == "followup"
    assert abs((first[2]["t_ns"] - created[2]["t_ns"]) / 1e6 - 250) <= TOL_MS
    output = truth_of(server, "function_call_output")[0]
    assert output["call_id"] == truth_of(server, "function_call_arguments.done")[0]["call_id"]
    conn = truth_of(server, "connection")
    assert conn[0]["authorization"] is True and conn[0]["model"] == "gpt-realtime"
    assert [r["state"] for r in conn] == ["open", "close"]
    sent = truth_of(server, "audio_sent")
    assert all(r["ms"] == pytest.approx(r["total_ms"]) for r in sent)


BARGE = {
    "turns": [
        {"hears": "Tell me a story.",
         "reply": "Once upon a time there was a very long story that went on and on and on, "
                  "and nobody could ever stop it until somebody finally interrupted."},
        {"hears": "Stop.", "reply": "Okay."},
    ],
    "timing": {"realtime_factor": 1.0, "first_audio_ms": 100},
}


@run_async
async def test_barge_in_cancels_and_truncate_is_checked() -> None:
    server, url = await served(scenario_from_dict(BARGE))
    try:
        c = await open_client(url)
        await c.update(audio={"input": {"turn_detection": {"type": "server_vad",
                                                           "silence_duration_ms": 400}}})
        await c.stream(utterance("Tell me a story."))
        deltas = await c.wait("response.output_audio.delta", 5)
        item_id = deltas[0]["item_id"]
        await c.stream(utterance("Stop right there.", lead_s=0.1))
        done = await c.wait("response.done")
        resp = done[0]["response"]
        assert resp["status"] == "cancelled"
        assert resp["status_details"]["reason"] == "turn_detected"
        assert resp["output"][0]["status"] == "incomplete"
        started_2 = (await c.wait("input_audio_buffer.speech_started", 2))[1]
        after = [e for e in c.of("response.output_audio.delta") if e["_t"] > started_2["_t"]
                 and e["response_id"] == resp["id"]]
        assert len(after) <= 1  # audio stops at once (one may be in flight)
        sent_ms = truth_of(server, "audio_sent")[0]["ms"]
        assert 400 <= sent_ms < 6000

        await c.send("conversation.item.truncate", item_id=item_id, content_index=0,
                     audio_end_ms=300)
        tr = await c.wait("conversation.item.truncated")
        assert tr[0]["audio_end_ms"] == 300 and tr[0]["item_id"] == item_id
        await c.send("conversation.item.truncate", item_id=item_id, content_index=0,
                     audio_end_ms=60_000)
        err = await c.wait("error")
        msg = err[0]["error"]["message"]
        assert msg == "Audio content of 300ms is already shorter than 60000ms"
        await c.send("conversation.item.truncate", item_id="item_unknown", content_index=0,
                     audio_end_ms=10)
        await c.wait("error", 2)
        # the second utterance still gets its reply
        done = await c.wait("response.done", 2)
        assert done[1]["response"]["status"] == "completed"
        await c.close()
    finally:
        await server.stop()
    trunc = truth_of(server, "truncate")
    assert [(r["audio_end_ms"], r["ok"]) for r in trunc] == [
        (300, True), (60000, False), (10, False)]
    assert trunc[0]["sent_ms"] == pytest.approx(sent_ms)


@run_async
async def test_manual_mode_cancel_clear_and_client_errors() -> None:
    script = {"turns": [{"hears": "one", "reply": "First answer is rather long to allow "
                                                  "a cancel in the middle of it."},
                        {"hears": "two", "reply": "Second."}],
              "timing": {"realtime_factor": 1.0, "first_audio_ms": 50}}
    server, url = await served(scenario_from_dict(script))
    try:
        c = await open_client(url)
        await c.update(audio={"input": {"turn_detection": None}})
        await c.send("input_audio_buffer.commit")
        err = await c.wait("error")
        assert err[0]["error"]["code"] == "input_audio_buffer_commit_empty"
        await c.stream(utterance("one"))
        await c.send("input_audio_buffer.commit")
        await c.wait("input_audio_buffer.committed")
        assert not c.of("input_audio_buffer.speech_started")  # no VAD in manual mode
        assert not c.of("response.created")
        await c.send("response.create")
        await c.wait("response.output_audio.delta", 2)
        await c.send("response.create")
        err = await c.wait("error", 2)
        assert err[1]["error"]["code"] == "conversation_already_has_active_response"
        await c.send("response.cancel")
        done = await c.wait("response.done")
        assert done[0]["response"]["status_details"]["reason"] == "client_cancelled"
        await c.send("response.cancel")
        await c.wait("error", 3)

        await c.stream(utterance("two", tail_s=0.2))
        await c.send("input_audio_buffer.clear")
        await c.wait("input_audio_buffer.cleared")
        await c.stream(utterance("two", tail_s=0.2))
        await c.send("input_audio_buffer.commit")
        await c.wait("input_audio_buffer.committed", 2)
        await c.send("response.create")
        done = await c.wait("response.done", 2)
        assert done[1]["response"]["status"] == "completed"
        tr = await c.wait("conversation.item.input_audio_transcription.completed", 2)
        assert [t["transcript"] for t in tr] == ["one", "two"]

        for bad in ["not json", "[1]", '{"no_type": 1}', '{"type": "bogus.event"}',
                    '{"type": "input_audio_buffer.append", "audio": "@@@"}',
                    '{"type": "session.update", "session": {"modalities": ["audio"]}}',
                    '{"type": "session.update", "session": {"type": "realtime", '
                    '"input_audio_format": "pcm16"}}',
                    '{"type": "session.update", "session": {"type": "realtime", "audio": '
                    '{"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}',
                    '{"type": "conversation.item.truncate", "item_id": 5}']:
            n = len(c.of("error")) + 1
            await c.ws.send(bad)
            e = (await c.wait("error", n))[-1]["error"]
            assert e["type"] == "invalid_request_error"
        params = [e["error"]["param"] for e in c.of("error")[-4:]]
        assert params[:3] == ["session.type", "session.input_audio_format",
                              "session.audio.input.format.rate"]
        await c.update()  # still alive
        await c.close()
    finally:
        await server.stop()


@run_async
async def test_fault_close_at_nth_delta_and_reconnect_continues() -> None:
    script = {**SCRIPT, "faults": [{"action": "close", "at": "response.output_audio.delta",
                                    "turn": 1, "nth": 3, "code": 1011, "message": "boom"}]}
    server, url = await served(scenario_from_dict(script))
    try:
        c = await open_client(url)
        await c.update()
        await c.stream(utterance("Hello, can you hear me?"))
        await asyncio.wait_for(c.closed.wait(), 10)
        assert c.ws.close_code == 1011
        assert len(c.of("response.output_audio.delta")) == 2

        c2 = await open_client(url)
        await c2.send("conversation.item.create", item={
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Hello, can you hear me?"}]})
        await c2.wait("conversation.item.done")
        await c2.update()
        await c2.stream(utterance("What's the weather in Paris?"))
        await c2.wait("response.function_call_arguments.done")
        tr = await c2.wait("conversation.item.input_audio_transcription.completed")
        assert tr[0]["transcript"] == "What's the weather in Paris?"
        await c2.close()
    finally:
        await server.stop()
    replayed = truth_of(server, "replayed_item")
    assert len(replayed) == 1 and replayed[0]["text"] == "Hello, can you hear me?"
    assert truth_of(server, "fault")[0]["action"] == "close"
    assert [r["index"] for r in truth_of(server, "connection") if r["state"] == "open"] == [1, 2]


@run_async
async def test_faults_error_malformed_stall_and_session_limit() -> None:
    script = {
        **SCRIPT,
        "turns": [{**SCRIPT["turns"][0], "faults": [
            {"action": "malformed", "at": "response.created"},
            {"action": "stall", "at": "response.output_audio.delta", "ms": 400},
        ]}],
        "faults": [{"action": "error", "at": "time", "after_ms": 50,
                    "code": "rate_limit_exceeded", "message": "Slow down."}],
        "session_limit_ms": 4000,
    }
    server, url = await served(scenario_from_dict(script))
    try:
        c = await open_client(url)
        err = await c.wait("error")
        assert err[0]["error"]["code"] == "rate_limit_exceeded"
        assert err[0]["error"]["type"] == "server_error"
        await c.update()
        await c.stream(utterance("Hello, can you hear me?"))
        await c.wait("response.done")
        assert len(c.raw_invalid) == 1
        assert c.raw_invalid[0].startswith('{"type": "response.created"')
        created = c.of("response.created")[0]["_t"]
        first = c.of("response.output_audio.delta")[0]["_t"]
        assert (first - created) / 1e6 >= 300 + 400 - TOL_MS
        await asyncio.wait_for(c.closed.wait(), 10)
        expired = c.of("error")[-1]["error"]
        assert expired["code"] == "session_expired" and expired["type"] == "invalid_request_error"
        assert c.ws.close_code == 1000
    finally:
        await server.stop()


@run_async
async def test_g711_input_and_output() -> None:
    server, url = await served(scenario_from_dict(SCRIPT))
    try:
        c = await open_client(url)
        await c.update(audio={"input": {"format": {"type": "audio/pcmu"}},
                              "output": {"format": {"type": "audio/pcmu"}}})
        x = utterance("Hello, can you hear me?")
        true_start, true_end = energy_edges(x, RATE)
        await c.stream(x, codec="pcmu")
        await c.wait("response.done")
        stopped = c.of("input_audio_buffer.speech_stopped")[0]
        assert abs(stopped["audio_end_ms"] - 500 - true_end / 24) <= EDGE_TOL_MS
        audio = b"".join(base64.b64decode(e["delta"]) for e in c.of("response.output_audio.delta"))
        assert abs(len(audio) / 8 - len(synthesize("Yes, I can hear you.")) / 24) < 2  # 8 kHz
        await c.close()
    finally:
        await server.stop()


def test_truth_log_keeps_no_credential_and_is_private(tmp_path: Any) -> None:
    """A Gemini client sends its key as ``?key=`` too: the truth file keeps the path but
    not the key, and is readable by its owner only."""
    truth = tmp_path / "truth.jsonl"
    sim = SimThread(scenario_from_dict(SCRIPT), truth_path=str(truth))
    url = sim.start()
    try:

        async def dial() -> None:
            async with connect(f"{url}?model=gpt-realtime&key=AIza-secret-123"):
                pass

        asyncio.run(dial())
        (opened,) = [r for r in sim.wait_for("connection") if r["state"] == "open"]
    finally:
        sim.stop()
    assert opened["path"] == "/v1/realtime?model=gpt-realtime&key=***"
    assert "AIza-secret-123" not in truth.read_text()
    assert truth.stat().st_mode & 0o777 == 0o600


def test_sim_thread_and_greeting() -> None:
    sim = SimThread(scenario_from_dict({"greeting": "Welcome to the simulator.",
                                        "timing": {"realtime_factor": 0}}))
    url = sim.start()
    try:
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/v1/realtime")

        async def talk() -> list[str]:
            c = await open_client(url)
            await c.update()
            await c.wait("response.done")
            await c.close()
            return [e["delta"] for e in c.of("response.output_audio_transcript.delta")]

        assert "".join(asyncio.run(talk())) == "Welcome to the simulator."
        recs = sim.wait_for("response.done")
        assert recs[0]["turn"] == 0 and recs[0]["status"] == "completed"
        assert isinstance(sim.truth(), list) and sim.truth() is not sim.truth()
    finally:
        sim.stop()


def test_run_sim_prints_url_first_and_stops_on_sigterm(tmp_path: Any) -> None:
    truth = tmp_path / "truth.jsonl"
    code = ("import asyncio; from app.sim.server import run_sim; "
            f"asyncio.run(run_sim(None, '127.0.0.1', 0, 'openai', {str(truth)!r}))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         cwd=REPO, env=env)
    try:
        assert p.stdout is not None
        line = p.stdout.readline().strip()
        assert line.startswith("ws://127.0.0.1:") and line.endswith("/v1/realtime")

        async def hello() -> None:
            c = await open_client(line)
            await c.close()

        asyncio.run(hello())
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    kinds = [json.loads(s)["event"] for s in truth.read_text().splitlines()]
    assert kinds == ["connection", "connection"]


@run_async
async def test_tool_only_turn_and_slow_pong() -> None:
    script = {"turns": [{"hears": "Weather?", "reply": "",
                         "tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"},
                                       "after_result": "Cold."}}],
              "timing": {"realtime_factor": 0},
              "faults": [{"action": "slow_pong", "ms": 300}]}
    server, url = await served(scenario_from_dict(script))
    try:
        c = await open_client(url)
        t0 = time.monotonic()
        await (await c.ws.ping())
        assert time.monotonic() - t0 >= 0.3 - TOL_MS / 1000
        await c.update()
        await c.stream(utterance("Weather?"))
        done = (await c.wait("response.done"))[0]["response"]
        assert [i["type"] for i in done["output"]] == ["function_call"]
        assert not c.of("response.output_audio.delta")
        added = c.of("response.output_item.added")[0]
        assert added["output_index"] == 0 and added["item"]["type"] == "function_call"
        call_id = c.of("response.function_call_arguments.done")[0]["call_id"]
        await c.send("conversation.item.create", item={
            "type": "function_call_output", "call_id": call_id, "output": "{}"})
        await c.send("response.create")
        done = await c.wait("response.done", 2)
        assert done[1]["response"]["output"][0]["content"][0]["transcript"] == "Cold."
        await c.close()
    finally:
        await server.stop()
