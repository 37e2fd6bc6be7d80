"""Gemini's locally made events are drained right after the call that made them.

``activity_start()`` (the local VAD starting the caller's turn) closes a user item that
was already answered, which yields that item's final transcript. That event must be
available from :meth:`GeminiProtocol.events_received` at once, and the shared WebSocket
connection must put it on the event stream when it sends the call's messages, not when
(or if) the server next says something.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from app.clock import MONOTONIC, FakeClock
from app.events import ClientMessageSent, Event, UserTranscript
from app.profile import Profile, TurnDetection
from app.providers.base import HistoryItem
from app.providers.gemini import GeminiProtocol, connect_gemini
from tests.conftest import TIME_SCALE

WAIT = 5.0 * TIME_SCALE

PROFILE = Profile(
    name="manual",
    provider="gemini",
    model="gemini-live-test",
    turn_detection=TurnDetection(type="none"),
)

SETUP_COMPLETE = {"setupComplete": {}}
HEARD_ONE = {"serverContent": {"inputTranscription": {"text": "One"}}}
AUDIO = {
    "serverContent": {
        "modelTurn": {
            "parts": [
                {
                    "inlineData": {
                        "mimeType": "audio/pcm;rate=24000",
                        "data": base64.b64encode(b"\x01\x00" * 240).decode("ascii"),
                    }
                }
            ]
        }
    }
}
HEARD_TWO = {"serverContent": {"inputTranscription": {"text": "Two"}}}


def feed(proto: GeminiProtocol, msg: dict[str, Any], t: int = 5) -> list[Event]:
    return proto.receive(json.dumps(msg), t)


def answered(clock: FakeClock) -> GeminiProtocol:
    """A protocol whose user item ``guser-1`` ("One") has been answered by ``gturn-1``."""
    proto = GeminiProtocol(PROFILE, clock)
    feed(proto, HEARD_ONE)
    feed(proto, AUDIO)
    assert proto.events_received() == []
    return proto


@pytest.mark.parametrize("call", ["activity_start", "manual_turn_start"])
def test_activity_start_events_are_available_at_once(call: str) -> None:
    clock = FakeClock(7)
    proto = answered(clock)
    out = getattr(proto, call)()
    assert [json.loads(o.text) for o in out] == [{"realtimeInput": {"activityStart": {}}}]
    evs = proto.events_received()
    assert [(type(e), e.item_id, e.text, e.final, e.t_ns) for e in evs] == [  # type: ignore[attr-defined]
        (UserTranscript, "guser-1", "One", True, 7)
    ]
    assert proto.events_received() == []  # drained
    # The next server message gives its own events only: nothing held back, nothing twice.
    evs = feed(proto, HEARD_TWO, t=9)
    assert [(e.item_id, e.final, e.t_ns) for e in evs] == [("guser-2", False, 9)]  # type: ignore[attr-defined]


def test_calls_that_make_no_events_leave_the_drain_empty() -> None:
    proto = GeminiProtocol(PROFILE, FakeClock(3))
    proto.open()
    proto.activity_start()  # nothing answered yet: no item closes
    proto.audio(b"\x00\x00" * 160)
    proto.activity_end()
    proto.manual_turn_end()
    proto.audio_stream_end()
    proto.truncate("gturn-1", 100)
    proto.replay([HistoryItem(role="user", text="hi")])
    assert proto.events_received() == []
    proto = answered(FakeClock(3))
    proto.tool_result("fc-1", "get_weather", '{"ok": true}')
    assert proto.events_received() == []


def test_an_undrained_event_still_comes_before_the_next_message() -> None:
    """A driver that never drains loses nothing: receive() hands out what is waiting
    first, in order."""
    proto = answered(FakeClock(7))
    proto.activity_start()
    evs = feed(proto, HEARD_TWO, t=9)
    assert [(e.item_id, e.final, e.t_ns) for e in evs] == [  # type: ignore[attr-defined]
        ("guser-1", True, 7),
        ("guser-2", False, 9),
    ]
    assert proto.events_received() == []


def test_the_connection_emits_the_drained_event_when_it_sends() -> None:
    """Over a real loopback socket: after the client sends ``activityStart`` the server
    says nothing more, yet the closed item's final transcript reaches the event stream."""
    got_start = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        json.loads(await ws.recv())  # setup
        for msg in (SETUP_COMPLETE, HEARD_ONE, AUDIO):
            await ws.send(json.dumps(msg))
        async for text in ws:
            if "activityStart" in json.loads(text).get("realtimeInput", {}):
                got_start.set()
        # silent until the client closes

    async def main() -> tuple[list[Event], bool]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            provider = connect_gemini(PROFILE, "", MONOTONIC, url=f"ws://127.0.0.1:{port}")
            await provider.connect()
            events: list[Event] = []
            stream = provider.events()
            try:
                async for ev in stream:
                    events.append(ev)
                    if ev.kind == "AgentAudio":
                        await provider.send(provider.protocol.manual_turn_start())
                        break
                async with asyncio.timeout(WAIT):
                    async for ev in stream:
                        events.append(ev)
                        if isinstance(ev, ClientMessageSent) and ev.type == "realtimeInput":
                            break
                async with asyncio.timeout(WAIT):
                    await got_start.wait()
                return events, got_start.is_set()
            finally:
                await provider.close()

    events, started = asyncio.run(main())
    assert started
    final = [e for e in events if isinstance(e, UserTranscript) and e.final]
    assert [(e.item_id, e.text) for e in final] == [("guser-1", "One")]
    # Stamped when activity_start() ran, just before its message went out.
    sent = [e for e in events if isinstance(e, ClientMessageSent) and e.type == "realtimeInput"]
    assert len(sent) == 1
    assert events.index(final[0]) < events.index(sent[0])
    assert final[0].t_ns <= sent[0].t_ns
