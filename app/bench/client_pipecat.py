"""Benchmark client: a minimal Pipecat pipeline around its OpenAI Realtime service.

``[source, OpenAIRealtimeLLMService, sink]``: the source pushes the caller WAV's 20 ms
frames (16 kHz ``InputAudioRawFrame``) into the pipeline in real time, the service
resamples them to 24 kHz and sends them, and the sink queues the service's
``TTSAudioRawFrame`` audio on a paced sink (no audio device, no transport). RTVI, turn
tracking and the idle timeout are off and loguru logs at WARNING, so Pipecat does no
work the other clients skip. Dev dependency only (``pipecat-ai``).

Stamps: each input frame carries its due time in ``metadata``; the service's
``_send_user_audio`` is wrapped to stamp the send. The service's WebSocket is wrapped
to stamp every audio delta as it comes off the socket; the sink matches them in order.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from app.audio.wavio import read_wav
from app.bench.harness import ClientRun, PacedSink, pace

IN_RATE = 16000
OUT_BLOCK = 24000 // 50 * 2


def prepare(wav: Path) -> list[bytes]:
    """The caller track as 20 ms frames of PCM16 at 16 kHz (done before the call)."""
    pcm, rate = read_wav(wav)
    assert rate == IN_RATE
    data = pcm.tobytes()
    size = IN_RATE // 50 * 2
    return [data[i : i + size].ljust(size, b"\0") for i in range(0, len(data), size)]


class _StampedSocket:
    """Wraps the service's WebSocket: stamps each audio delta as it is received."""

    def __init__(self, ws: Any, stamps: collections.deque[int]) -> None:
        self._ws = ws
        self._stamps = stamps

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for message in self._ws:
            if 'output_audio.delta"' in message[:64]:
                self._stamps.append(time.monotonic_ns())
            yield message


async def run(frames: list[bytes], url: str, session: dict[str, Any]) -> ClientRun:
    """Run the pipeline for one call with the simulator at ``url`` (…/v1/realtime)."""
    from loguru import logger
    from pipecat.frames.frames import (
        EndFrame,
        Frame,
        InputAudioRawFrame,
        StartFrame,
        TTSAudioRawFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.services.openai.realtime import events
    from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
    from pipecat.workers.runner import WorkerRunner

    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    out = ClientRun()
    sink = PacedSink(OUT_BLOCK)
    stamps: collections.deque[int] = collections.deque()
    ready = asyncio.Event()
    done = asyncio.Event()
    speaking = [False]

    class Service(OpenAIRealtimeLLMService):
        async def _connect(self) -> None:
            await super()._connect()  # type: ignore[no-untyped-call]
            if self._websocket is not None:
                self._websocket = _StampedSocket(self._websocket, stamps)

        async def _handle_evt_session_updated(self, evt: Any) -> None:
            await super()._handle_evt_session_updated(evt)  # type: ignore[no-untyped-call]
            ready.set()

        async def _handle_evt_response_created(self, evt: Any) -> None:
            speaking[0] = True
            await super()._handle_evt_response_created(evt)  # type: ignore[no-untyped-call]

        async def _handle_evt_response_done(self, evt: Any) -> None:
            speaking[0] = False
            await super()._handle_evt_response_done(evt)

        async def _send_user_audio(self, frame: Any) -> None:
            await super()._send_user_audio(frame)
            out.send_ns.append(time.monotonic_ns() - frame.metadata["due_ns"])

    class Source(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            await self.push_frame(frame, direction)
            if isinstance(frame, StartFrame):
                self.create_task(self._call())

        async def _call(self) -> None:
            await asyncio.wait_for(ready.wait(), 10)

            async def send(pcm: bytes, due: int) -> None:
                f = InputAudioRawFrame(audio=pcm, sample_rate=IN_RATE, num_channels=1)
                f.metadata["due_ns"] = due
                await self.push_frame(f)

            def idle(now: int) -> bool:
                return not speaking[0] and not sink.queued

            await pace(frames, bytes(len(frames[0])), send, sink, idle, out)
            done.set()

    class Sink(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TTSAudioRawFrame):
                sink.push(frame.audio)
                out.recv_ns.append(time.monotonic_ns() - stamps.popleft())
            await self.push_frame(frame, direction)

    llm = Service(
        api_key="bench-key",
        base_url=url,
        settings=OpenAIRealtimeLLMService.Settings(
            model="gpt-realtime", session_properties=events.SessionProperties(**session)
        ),
    )
    worker = PipelineWorker(
        Pipeline([Source(), llm, Sink()]),
        params=PipelineParams(audio_in_sample_rate=IN_RATE, audio_out_sample_rate=24000),
        enable_rtvi=False,
        enable_turn_tracking=False,
        idle_timeout_secs=None,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    task = asyncio.create_task(runner.run())
    await done.wait()
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 10)
    return out
