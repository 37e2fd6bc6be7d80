"""Benchmark client: the bare official ``openai`` realtime client (a floor to compare with).

The caller WAV is converted to 24 kHz once, before the call, and cut into 20 ms frames;
during the call each frame is base64-encoded and sent as ``input_audio_buffer.append``
(``conn.input_audio_buffer.append``) when it falls due; every message is read with
``recv_bytes`` (stamped), parsed by the SDK (``parse_event``), and audio deltas are
decoded and queued on a paced sink. No VAD, no resampling, no recording: the least a
client can do. Dev dependency only (``openai``).
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

from app.audio.resample import resample
from app.audio.wavio import read_wav
from app.bench.harness import ClientRun, PacedSink, pace

RATE = 24000
FRAME_BYTES = RATE // 50 * 2


def prepare(wav: Path) -> list[bytes]:
    """The caller track as 20 ms frames of PCM16 at 24 kHz (done before the call)."""
    pcm, rate = read_wav(wav)
    data = resample(pcm, rate, RATE).tobytes()
    return [data[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
            for i in range(0, len(data), FRAME_BYTES)]


async def run(frames: list[bytes], base: str, session: dict[str, Any]) -> ClientRun:
    """Hold one call with the simulator at ``base`` (its ``websocket_base_url``)."""
    from openai import AsyncOpenAI

    out = ClientRun()
    sink = PacedSink(FRAME_BYTES)
    updated = asyncio.Event()
    open_responses: set[str] = set()
    client = AsyncOpenAI(api_key="bench-key", websocket_base_url=base)
    async with client.realtime.connect(model="gpt-realtime") as conn:

        async def receive() -> None:
            while True:
                data = await conn.recv_bytes()
                t = time.monotonic_ns()
                event: Any = conn.parse_event(data)
                kind = event.type
                if kind == "response.output_audio.delta":
                    sink.push(base64.b64decode(event.delta))
                    out.recv_ns.append(time.monotonic_ns() - t)
                elif kind == "response.created":
                    open_responses.add(event.response.id)
                elif kind == "response.done":
                    open_responses.discard(event.response.id)
                elif kind == "session.updated":
                    updated.set()

        async def send(frame: bytes, due: int) -> None:
            await conn.input_audio_buffer.append(audio=base64.b64encode(frame).decode("ascii"))
            out.send_ns.append(time.monotonic_ns() - due)

        def idle(now: int) -> bool:
            return not open_responses and not sink.queued

        reader = asyncio.create_task(receive())
        await conn.session.update(session=session)  # type: ignore[arg-type]
        await asyncio.wait_for(updated.wait(), 10)
        await pace(frames, bytes(FRAME_BYTES), send, sink, idle, out)
        reader.cancel()
    return out
