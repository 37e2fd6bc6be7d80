"""The official ``openai`` SDK client holds a GA session with the simulator: speech in
(paced audio, counted in audio time), VAD events, transcript, response audio, a tool call
answered with function_call_output + response.create, and the follow-up audio."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import numpy as np
import pytest
from openai import AsyncOpenAI

from app.audio.pcm import int16_to_bytes
from app.sim.scenario import load_scenario
from app.sim.server import SimServer
from app.sim.tts import synthesize
from tests.audio_fixtures import energy_edges
from tests.conftest import REPO, TIME_SCALE
from tests.sdk_oracle import validate_openai_server

RATE = 24000
CHUNK = RATE // 50  # 20 ms


class Events:
    """Collects SDK events from ``async for event in conn`` and wakes waiters."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.cond = asyncio.Condition()

    async def pump(self, conn: Any) -> None:
        async for event in conn:
            async with self.cond:
                self.items.append(event)
                self.cond.notify_all()

    def of(self, type_: str) -> list[Any]:
        return [e for e in self.items if e.type == type_]

    async def wait(self, type_: str, count: int = 1, limit_s: float = 20.0) -> list[Any]:
        async def enough() -> list[Any]:
            async with self.cond:
                await self.cond.wait_for(lambda: len(self.of(type_)) >= count)
                return self.of(type_)

        return await asyncio.wait_for(enough(), limit_s * TIME_SCALE)


async def stream(conn: Any, x: np.ndarray, speed: float) -> int:
    """Append ``x`` in 20 ms chunks, paced at ``speed`` x real time; return the start stamp."""
    t0 = time.monotonic_ns()
    for i in range(0, len(x), CHUNK):
        due = t0 + int(i / RATE / speed * 1e9)
        delay = (due - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        b64 = base64.b64encode(int16_to_bytes(x[i : i + CHUNK])).decode()
        await conn.input_audio_buffer.append(audio=b64)
    return t0


def utterance(text: str) -> np.ndarray:
    speech = synthesize(text, RATE, 150)
    return np.concatenate([np.zeros(RATE // 2, np.int16), speech, np.zeros(RATE, np.int16)])


SESSION = {
    "type": "realtime",
    "instructions": "Be brief.",
    "output_modalities": ["audio"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24000},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500,
                               "prefix_padding_ms": 300, "create_response": True,
                               "interrupt_response": True},
        },
        "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
    },
    "tools": [{"type": "function", "name": "get_weather", "description": "Weather in a city",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
}


async def _session(speed: float) -> None:
    scenario = load_scenario(REPO / "resources" / "scenarios" / "demo.yaml")
    server = SimServer(scenario)
    url = await server.start()
    base = url.rsplit("/realtime", 1)[0]
    client = AsyncOpenAI(api_key="sk-test", websocket_base_url=base)
    ev = Events()
    try:
        async with client.realtime.connect(model="gpt-realtime") as conn:
            pump = asyncio.create_task(ev.pump(conn))
            await ev.wait("session.created")
            await conn.session.update(session=SESSION)
            updated = (await ev.wait("session.updated"))[0]
            assert updated.session.audio.input.turn_detection.silence_duration_ms == 500

            x1 = utterance("Hello, can you hear me?")
            true_start, true_end = energy_edges(x1, RATE)
            t_sent = await stream(conn, x1, speed)
            await ev.wait("input_audio_buffer.speech_started")
            stopped = (await ev.wait("input_audio_buffer.speech_stopped"))[0]
            await ev.wait("input_audio_buffer.committed")
            tr = await ev.wait("conversation.item.input_audio_transcription.completed")
            assert tr[0].transcript == "Hello, can you hear me?"
            done = await ev.wait("response.done")
            assert done[0].response.status == "completed"
            assert ev.of("response.created") and len(ev.of("response.output_audio.delta")) > 5
            words = "".join(e.delta for e in ev.of("response.output_audio_transcript.delta"))
            assert words == scenario.turns[0].reply
            assert abs(stopped.audio_end_ms - 500 - true_end / 24) <= 60

            x2 = utterance("What's the weather in Paris?")
            await stream(conn, x2, speed)
            call = (await ev.wait("response.function_call_arguments.done"))[0]
            assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
            await ev.wait("response.done", 2)
            await conn.conversation.item.create(item={
                "type": "function_call_output", "call_id": call.call_id,
                "output": json.dumps({"sky": "sunny", "celsius": 21})})
            await conn.response.create()
            done = await ev.wait("response.done", 3)
            follow_id = done[2].response.id
            audio = [e for e in ev.of("response.output_audio.delta") if e.response_id == follow_id]
            assert len(audio) > 5
            words = "".join(e.delta for e in ev.of("response.output_audio_transcript.delta")
                            if e.response_id == follow_id)
            tool = scenario.turns[1].tool_call
            assert tool is not None and words == tool.after_result
            pump.cancel()
    finally:
        await server.stop()

    # every event the SDK received, re-serialised, is a valid GA server event
    for e in ev.items:
        validate_openai_server(e.model_dump(exclude_unset=True))
    truth = server.truth
    stop_rec = next(r for r in truth if r["event"] == "speech_stopped")
    if speed == 1.0:
        # the edge's clock time is when the client sent that sample (paced in real time)
        expect = t_sent + int(true_end / RATE * 1e9)
        assert abs(stop_rec["speech_end_t_ns"] - expect) / 1e6 <= 60 * TIME_SCALE
    created = [r for r in truth if r["event"] == "response.created"]
    first = [r for r in truth if r["event"] == "first_audio"]
    assert [r["kind"] for r in created] == ["turn", "turn", "followup"]
    assert abs((first[2]["t_ns"] - created[2]["t_ns"]) / 1e6 - 250) <= 10 * TIME_SCALE
    assert any(r["event"] == "function_call_output" for r in truth)


@pytest.mark.parametrize("speed", [pytest.param(1.0, marks=pytest.mark.slow), 4.0])
def test_official_sdk_holds_a_session(speed: float) -> None:
    asyncio.run(asyncio.wait_for(_session(speed), 90 * TIME_SCALE))
