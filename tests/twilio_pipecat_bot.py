"""A real Pipecat bot behind Twilio Media Streams, for the Twilio tests (run as a process).

    python -m tests.twilio_pipecat_bot --llm-url ws://127.0.0.1:PORT/v1/realtime

Pipecat's FastAPI WebSocket transport with its ``TwilioFrameSerializer`` (auto hang-up off:
there is no Twilio account) and its OpenAI Realtime service pointed at ``--llm-url`` (the
voiceprobe simulator), served by uvicorn on a loopback port chosen by the OS. The first
stdout line is the bot's WebSocket URL.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

import uvicorn
from fastapi import FastAPI, WebSocket
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)


def make_app(llm_url: str) -> FastAPI:
    """The bot's FastAPI app: one Pipecat pipeline per Twilio stream on ``/media``."""
    app = FastAPI()

    @app.websocket("/media")
    async def media(ws: WebSocket) -> None:
        await ws.accept()
        _, call = await parse_telephony_websocket(ws)
        serializer = TwilioFrameSerializer(
            stream_sid=call["stream_id"],
            call_sid=call["call_id"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=ws,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=serializer,
            ),
        )
        llm = OpenAIRealtimeLLMService(api_key="sim-local-key", base_url=llm_url)
        context = LLMContext()
        pair = LLMContextAggregatorPair(context)
        pipeline = Pipeline(
            [transport.input(), pair.user(), llm, transport.output(), pair.assistant()]
        )
        task = PipelineTask(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        )

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport: object, _ws: object) -> None:
            await task.cancel()

        await PipelineRunner(handle_sigint=False).run(task)

    return app


def main() -> None:
    """Serve the bot on a loopback port; print its URL first."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm-url", required=True)
    args = ap.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(make_app(args.llm_url), log_level="warning", ws="websockets")
    server = uvicorn.Server(config)
    print(f"ws://127.0.0.1:{port}/media", flush=True)
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    sys.exit(main())
