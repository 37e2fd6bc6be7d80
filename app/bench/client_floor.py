"""Benchmark client: the least work any Python client can do on the same live call.

Not a product a user would run: a lower bound measured beside the others in the same run.
Before the call, the caller WAV is converted to 24 kHz (the provider's rate: a capture
at that rate needs no conversion) and cut into 20 ms frames. During the call the client
sleeps until each frame falls due, base64-encodes it into an ``input_audio_buffer.append``
message (the one step no live client can do ahead) and hands it to the socket
(``websockets``, the library voiceprobe uses, on asyncio's default loop); it reads every
server message off the socket, drops an audio delta unread (no JSON, no base64, no
queue) and parses every other message to follow the open responses, so the call ends as
the others' do. Every client that streams live audio does at least this per frame: its
CPU per call is the floor under the comparison's CPU figures (``app.bench.compare``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from app.bench.client_sdk import FRAME_BYTES
from app.bench.client_sdk import prepare as prepare_frames
from app.bench.harness import ClientRun, PacedSink, pace

#: The message around a frame's base64 (``type`` first, as the SDK sends it).
_HEAD, _TAIL = b'{"type":"input_audio_buffer.append","audio":"', b'"}'
#: How an audio delta starts on the wire (the simulator, like the API, sends ``type``
#: first); only the head of a message is looked at.
_DELTA = '"response.output_audio.delta"'


def prepare(wav: Path) -> list[bytes]:
    """The caller track as 20 ms frames of PCM16 at 24 kHz (done before the call)."""
    return prepare_frames(wav)


async def run(frames: list[bytes], url: str, session: dict[str, Any]) -> ClientRun:
    """Hold one call with the simulator at ``url`` (its WebSocket URL)."""
    from websockets.asyncio.client import connect

    out = ClientRun()
    open_responses: set[str] = set()
    updated = asyncio.Event()
    async with connect(
        f"{url}?model=gpt-realtime", additional_headers={"Authorization": "Bearer bench-key"}
    ) as ws:

        async def receive() -> None:
            async for message in ws:
                if isinstance(message, bytes) or _DELTA in message[:48]:
                    continue
                event = json.loads(message)
                kind = event.get("type")
                if kind == "response.created":
                    open_responses.add(event["response"]["id"])
                elif kind == "response.done":
                    open_responses.discard(event["response"]["id"])
                elif kind == "session.updated":
                    updated.set()

        async def send(frame: bytes, due: int) -> None:
            # ASCII bytes, sent as a text frame without a decode and re-encode.
            await ws.send(_HEAD + base64.b64encode(frame) + _TAIL, text=True)
            out.send_ns.append(time.monotonic_ns() - due)

        def idle(now: int) -> bool:
            return not open_responses

        reader = asyncio.create_task(receive())
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        await asyncio.wait_for(updated.wait(), 10)
        await pace(frames, bytes(FRAME_BYTES), send, PacedSink(FRAME_BYTES), idle, out)
        reader.cancel()
    return out
