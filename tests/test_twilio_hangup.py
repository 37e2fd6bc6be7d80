"""A served Twilio caller hanging up while the agent speaks (``serve twilio``).

The agent's reply is cut off where the stream ended: its turn is ``interrupted`` (in the
summary and ``turns.json``), its playback stops at the end's stamp, and no playback event
is stamped after it, nor is audio counted as played that never went out, even for caller
frames that arrived before the end and are handled after it. The playback and the port
are tested with plain calls; the end-to-end tests run real WebSocket clients on loopback
against a ``serve twilio`` process (the simulator as the agent, its ground truth on).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.bridge.playback import Playback
from app.events import AgentAudio, Event, PlaybackStarted, PlaybackStopped
from app.providers.twilio.protocol import CallerMedia, TwilioStreamProtocol
from app.serve.twilio_port import StreamEnd, TwilioStreamPort
from tests.twilio_helpers import (
    AFTER_LINE_1,
    ULAW,
    WAIT_S,
    Caller,
    S,
    Served,
    events_of,
    notices,
)

MS = 1_000_000
PLAYBACK = ("PlaybackStarted", "PlaybackStopped")


# --- the playback and the port, with plain calls -------------------------------------


class Line:
    """A port and the playback the bridge would drive through it, wired as the server
    wires them: the stream's end stops the playback at once."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.events: list[Event] = []
        self.port = TwilioStreamPort(
            TwilioStreamProtocol(),
            lambda text: self.sent.append(json.loads(text)),
            lambda: S,
            start_ns=S,
            on_gone=lambda end: self.playback.sink_gone(end.t_ns),
            carrying=lambda: self.playback.block_agent_samples > 0,
        )
        self.playback = Playback(self.port, self.events.append)
        self.port.start(S)

    def say(self, item_id: str, ms: int, response_id: str = "resp_1") -> None:
        """One agent chunk of ``ms`` of loud audio (8 kHz, as Twilio's)."""
        pcm = np.full(ms * 8, 3000, dtype="<i2").tobytes()
        self.playback.push(
            AgentAudio(
                t_ns=S,
                response_id=response_id,
                item_id=item_id,
                pcm=pcm,
                sample_rate=8000,
            )
        )

    def caller_frame(self, t_ms: int) -> None:
        self.port.feed(
            CallerMedia(
                t_ns=S + t_ms * MS,
                pcm=np.zeros(160, np.int16),
                chunk=None,
                timestamp_ms=None,
            )
        )

    def handle_frames(self, now_ms: int) -> int:
        """What the bridge does on waking: read the frames, one agent block for each."""
        frames = self.port.read(S + now_ms * MS)
        for frame in frames:
            self.playback.play_frame(S + now_ms * MS, frame.t_ns)
        return len(frames)

    def media_sent(self) -> int:
        return sum(1 for m in self.sent if m["event"] == "media")

    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def test_frames_handled_after_the_end_play_nothing_and_the_reply_is_cut_there() -> None:
    line = Line()
    line.say("item_a", 1000)
    line.say("item_b", 500, "resp_2")  # queued behind it: never heard
    for t in (20, 40):
        line.caller_frame(t)
        assert line.handle_frames(t + 1) == 1
    (started,) = line.of(PlaybackStarted)
    assert started.t_ns == S + 21 * MS and line.media_sent() == 2
    # A frame arrives, then the stream ends before the bridge handles it.
    line.caller_frame(60)
    line.port.end(StreamEnd(kind="stop", t_ns=S + 70 * MS))
    assert line.handle_frames(75) == 1  # the caller's audio is still handled
    assert line.handle_frames(95) == 0
    assert line.media_sent() == 2  # nothing went out after the end...
    assert all(e.t_ns <= S + 70 * MS for e in line.events)  # ...and nothing claims it did
    stopped = {e.item_id: e for e in line.of(PlaybackStopped)}
    assert stopped["item_a"].interrupted and stopped["item_a"].t_ns == S + 70 * MS
    assert stopped["item_a"].played_samples == 2 * 160  # what was sent, no more
    assert stopped["item_b"].interrupted and stopped["item_b"].played_samples == 0
    assert line.playback.queued_samples == 0
    # Audio the agent sends after the end is heard by nobody.
    line.say("item_c", 500, "resp_3")
    line.caller_frame(80)  # after the end: ignored by the port
    assert line.handle_frames(120) == 0
    line.playback.play_frame(S + 120 * MS)
    assert len(line.of(PlaybackStarted)) == 1 and line.playback.queued_samples == 0
    line.playback.sink_gone(S + 200 * MS)  # the first end counts
    assert len(line.of(PlaybackStopped)) == 2


def test_the_part_of_a_block_after_the_end_is_not_counted_as_played() -> None:
    line = Line()
    line.say("item_a", 1000)
    line.caller_frame(40)
    line.handle_frames(41)  # a block sent at 41 ms plays until 61 ms
    line.port.end(StreamEnd(kind="hangup", t_ns=S + 50 * MS, code=1000))
    (stopped,) = line.of(PlaybackStopped)
    assert stopped.interrupted and stopped.t_ns == S + 50 * MS
    assert stopped.played_samples == 160 - 11 * 8


def test_a_reply_that_finished_playing_before_the_end_is_not_interrupted() -> None:
    line = Line()
    line.say("item_a", 40)
    line.playback.response_finished("resp_1")
    for t in (20, 40, 60):
        line.caller_frame(t)
        line.handle_frames(t + 1)
    (stopped,) = line.of(PlaybackStopped)
    line.port.end(StreamEnd(kind="stop", t_ns=S + 90 * MS))
    assert not stopped.interrupted and line.of(PlaybackStopped) == [stopped]


# --- end to end: real clients against `serve twilio` ----------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("serve-hangup"), truth=True)
    try:
        yield server
    finally:
        server.stop()


async def _talk_until_the_agent_speaks(caller: Caller, blocks: int) -> None:
    """The caller's first line, then the track on in real time until ``blocks`` agent
    media messages came back."""
    await caller.play(0, AFTER_LINE_1)
    t0 = time.monotonic()
    first = i = round(AFTER_LINE_1 * 50)
    while caller.agent_media < blocks:
        assert time.monotonic() - t0 < WAIT_S, "the agent never answered"
        await caller.media(ULAW[i * 160 : (i + 1) * 160])
        i += 1
        await asyncio.sleep(max(0.0, t0 + (i - first) * 0.02 - time.monotonic()))  # pacing


async def _hang_up(caller: Caller, how: str) -> None:
    if how == "stop":
        await caller.stop()
    elif how == "close":
        await caller.ws.close()
    else:
        caller.ws.transport.abort()  # no close frame: 1006
    await caller.wait_closed()


def _end_ns(events: list[dict[str, Any]]) -> int:
    (end,) = notices(events, "info", "twilio stop") + notices(events, "warning", "without stop")
    return int(end["t_ns"])


def _cut_at_the_end(summary: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The checks every hang-up mid-reply shares; returns the PlaybackStopped events and
    the end's stamp."""
    events = events_of(summary)
    end = _end_ns(events)
    late = [e for e in events if e["kind"] in PLAYBACK and e["t_ns"] > end]
    assert late == [], "playback events stamped after the stream's end"
    stopped = [e for e in events if e["kind"] == "PlaybackStopped"]
    assert stopped and all(e["interrupted"] and e["t_ns"] == end for e in stopped)
    turns = json.loads((Path(summary["session_dir"]) / "turns.json").read_text())
    assert summary["turns"][0]["interrupted"] is True and turns[0]["interrupted"] is True
    return stopped, end


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop", "close", "lost"])
def test_a_hangup_mid_reply_interrupts_the_turn_where_the_stream_ended(
    served: Served, how: str
) -> None:
    call_sid = f"CAmid{how}"

    async def run() -> int:
        caller = await Caller.dial(served.url, served.token, call_sid)
        await _talk_until_the_agent_speaks(caller, 25)  # half a second of the reply heard
        await _hang_up(caller, how)
        return caller.agent_media

    heard = asyncio.run(run())
    summary = served.call(call_sid)
    stopped, end = _cut_at_the_end(summary)
    (turn,) = summary["turns"]
    speech = turn["spans"]["agent_speech"]
    assert speech["end_ns"] == end and speech["ms"] >= 24 * 20
    played = sum(e["played_samples"] for e in stopped)
    if how != "lost":  # the caller read every media message sent before the close
        assert (heard - 2) * 160 <= played <= heard * 160, (played, heard)


@pytest.mark.slow
def test_a_reply_that_reached_voiceprobe_during_a_stall_is_not_played_after_the_stop(
    served: Served,
) -> None:
    # The caller's network stalls once the agent has started its reply (the simulator's
    # ground truth says when): the reply reaches voiceprobe, but no caller frame carries
    # it out. Then the held-up frames and `stop` arrive in one read, and the bridge
    # handles those frames after the stream has ended: nothing may be played for them
    # (a PlaybackStarted used to follow the end by a frame, 800 samples counted played).
    seen = served.truth.stat().st_size if served.truth.exists() else 0

    async def truth_shows(event: str, ms: int = 0) -> None:
        deadline = time.monotonic() + WAIT_S
        while True:
            text = served.truth.read_bytes()[seen:] if served.truth.exists() else b""
            lines = [x for x in text.decode().splitlines() if x.endswith("}")]
            if any(r["event"] == event and r.get("ms", 0) >= ms for r in map(json.loads, lines)):
                return
            assert time.monotonic() < deadline, f"no {event} in the simulator's truth"
            await asyncio.sleep(0.02)  # polling the file, with a deadline

    async def run() -> int:
        caller = await Caller.dial(served.url, served.token, "CAstall")
        talking = asyncio.create_task(caller.play(0, 30.0))
        await truth_shows("response.created")  # its first audio is 300 ms away
        talking.cancel()
        await asyncio.gather(talking, return_exceptions=True)
        await truth_shows("audio_sent", ms=600)  # the stall: the reply piles up
        held = [ULAW[k * 160 : (k + 1) * 160] for k in range(caller.chunk, caller.chunk + 5)]
        caller.media_then_stop(held)
        await caller.wait_closed()
        return caller.agent_media

    heard = asyncio.run(run())
    summary = served.call("CAstall")
    assert summary["reason"] == "completed" and heard == 0
    stopped, _end = _cut_at_the_end(summary)
    assert [e["played_samples"] for e in stopped] == [0]
    events = events_of(summary)
    assert not [e for e in events if e["kind"] == "PlaybackStarted"]
    (turn,) = summary["turns"]
    assert "agent_speech" not in turn["spans"] and "voice_to_voice" not in turn["spans"]
    assert summary["voice_to_voice"]["count"] == 0
