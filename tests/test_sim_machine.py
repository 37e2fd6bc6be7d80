"""The simulator's script state machine, driven without real time or sockets.

:class:`app.sim.script.Script` is fed caller audio stamped by a :class:`FakeClock` that
moves exactly as a real-time client would send it (one 20 ms chunk per 20 ms), so every
figure below is computed from the audio alone: where the VAD put the speech edges, how long
the endpointing silence was, which turn the utterance took, and which fault fires there.
"""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from numpy.typing import NDArray

from app.audio.pcm import int16_to_bytes
from app.audio.resample import StreamResampler
from app.audio.vad import speech_segments
from app.clock import FakeClock
from app.sim.audio_input import VAD_RATE, InputConfig
from app.sim.faults import FaultPlan, session_expired_message, timed_schedule
from app.sim.openai_dialect import OpenAIConversation
from app.sim.scenario import scenario_from_dict
from app.sim.script import (
    Action,
    Commit,
    Interrupt,
    Script,
    SimState,
    SpeechStarted,
    SpeechStopped,
)
from app.sim.truth import TruthLog
from app.sim.tts import synthesize

RATE = 24000  # the "pcm" input codec
CHUNK = RATE // 50  # 20 ms
T0 = 5_000_000_000  # the fake clock's start: any value, nothing here reads a real clock

SCENARIO = {
    "timing": {"response_delay_ms": 120, "first_audio_ms": 300},
    "turns": [
        {"hears": "Hello there.", "reply": "Hi, how can I help?"},
        {"hears": "Book a table.", "reply": "For how many?", "timing": {"endpointing_ms": 800},
         "faults": [{"action": "close", "at": "response.output_audio.delta", "code": 1011}]},
        {"hears": "Four people.", "reply": "Done."},
    ],
}


def _utterance(text: str, silence_ms: int = 1200) -> NDArray[np.int16]:
    """``text`` spoken at 24 kHz, 200 ms of silence before and ``silence_ms`` after."""
    speech = synthesize(text, RATE)
    pad = np.zeros(RATE // 5, dtype=np.int16)
    return np.concatenate([pad, speech, np.zeros(RATE * silence_ms // 1000, dtype=np.int16)])


class _Caller:
    """Feeds audio to a script in 20 ms chunks, each stamped when a real-time client
    would have sent its last sample; records each action with the audio time it came at."""

    def __init__(self, script: Script, clock: FakeClock) -> None:
        self.script, self.clock = script, clock
        self.sent = 0  # samples fed so far
        self.log: list[tuple[float, Action]] = []  # (input ms fed when it came, action)

    def say(self, x: NDArray[np.int16]) -> list[Action]:
        out: list[Action] = []
        for i in range(0, len(x), CHUNK):
            piece = x[i : i + CHUNK]
            self.sent += len(piece)
            self.clock.advance_ms(len(piece) * 1000 / RATE)
            acts = self.script.feed_audio(int16_to_bytes(piece), self.clock.now_ns())
            self.log += [(self.sent * 1000 / RATE, a) for a in acts]
            out += acts
        return out


def _script(**overrides: object) -> tuple[Script, _Caller, SimState]:
    scenario = scenario_from_dict({**SCENARIO, **overrides})
    state = SimState()
    clock = FakeClock(T0)
    script = Script(scenario, state, clock)
    return script, _Caller(script, clock), state


def test_endpointing_after_silence_commits_the_turn_with_its_reply() -> None:
    script, caller, _ = _script()
    audio = _utterance("Hello there, is anybody listening?")
    acts = caller.say(audio)
    kinds = [type(a) for a in acts]
    assert kinds == [SpeechStarted, Interrupt, SpeechStopped, Commit]
    started, stopped, commit = acts[0], acts[2], acts[3]
    assert isinstance(started, SpeechStarted) and isinstance(stopped, SpeechStopped)
    assert isinstance(commit, Commit)
    # The VAD's edges sit where the speech is (webrtcvad on the same audio at 16 kHz).
    (a, b), *_ = speech_segments(synthesize("Hello there, is anybody listening?", VAD_RATE),
                                 VAD_RATE)
    true_start_ms, true_end_ms = 200 + a * 1000 / VAD_RATE, 200 + b * 1000 / VAD_RATE
    assert abs(started.edge.ms - true_start_ms) <= 30
    assert abs(stopped.edge.ms - true_end_ms) <= 30
    # Audio time maps to the fake clock exactly as the chunks were stamped (less the
    # resampler's group delay: the edge is found in the resampled stream).
    delay_ms = StreamResampler(RATE, VAD_RATE).delay_ms
    for e in (started.edge, stopped.edge):
        assert abs(e.t_ns - (T0 + (e.ms - delay_ms) * 1e6)) <= 1000
    # The client's default turn detection: prefix 300 ms, silence 500 ms.
    assert started.audio_start_ms == max(0, round(started.edge.ms - 300))
    assert stopped.hangover_ms == 500
    assert stopped.audio_end_ms == round(stopped.edge.ms + 500)
    # The end is decided only after 500 ms of silence was fed (within one chunk + frame).
    decided_ms = next(ms for ms, act in caller.log if isinstance(act, SpeechStopped))
    assert stopped.edge.ms + 500 <= decided_ms <= stopped.edge.ms + 500 + 30
    # The utterance is turn 1, one item from start to commit, with all the audio fed.
    assert started.turn == stopped.turn == commit.turn == 1
    assert started.item_id == stopped.item_id == commit.item_id
    assert commit.audio_ms == pytest.approx(decided_ms)  # all the audio fed by then
    assert not commit.manual and commit.at_ns is None
    assert commit.respond is not None and commit.respond.text == "Hi, how can I help?"
    assert commit.respond.timing.response_delay_ms == 120
    assert script.peek_turn() == 2


def test_a_turn_s_own_endpointing_takes_over_for_its_utterance() -> None:
    script, caller, _ = _script()
    caller.say(_utterance("Hello there, is anybody listening?"))
    assert script.audio.hangover_ms == 800  # turn 2's endpointing, set when turn 1 was taken
    acts = caller.say(_utterance("I would like to book a table for tonight."))
    stopped = next(a for a in acts if isinstance(a, SpeechStopped))
    assert stopped.turn == 2 and stopped.hangover_ms == 800
    assert stopped.audio_end_ms == round(stopped.edge.ms + 800)
    decided_ms = next(ms for ms, act in caller.log[4:] if isinstance(act, SpeechStopped))
    assert stopped.edge.ms + 800 <= decided_ms <= stopped.edge.ms + 800 + 30
    assert script.audio.hangover_ms == 500  # turn 3 goes back to the client's setting


def test_barge_in_cancels_only_when_the_client_lets_speech_interrupt() -> None:
    script, caller, _ = _script()
    acts = caller.say(_utterance("Hello there, is anybody listening?"))
    assert [type(a) for a in acts[:2]] == [SpeechStarted, Interrupt]
    assert acts[1] == Interrupt("turn_detected")

    script, caller, _ = _script()
    script.configure(InputConfig(interrupt_response=False))
    acts = caller.say(_utterance("Hello there, is anybody listening?"))
    assert [type(a) for a in acts] == [SpeechStarted, SpeechStopped, Commit]


def test_a_manual_commit_while_speaking_swallows_the_speech_end() -> None:
    script, caller, _ = _script()
    speech = _utterance("Hello there, is anybody listening?", silence_ms=0)
    half = len(speech) // 2
    acts = caller.say(speech[:half])
    assert [type(a) for a in acts] == [SpeechStarted, Interrupt]
    assert script.audio.speaking
    at = caller.clock.now_ns()
    (commit,) = script.commit(at)
    assert isinstance(commit, Commit)
    assert commit.manual and commit.at_ns == at and commit.turn == 1
    assert commit.item_id == acts[0].item_id  # type: ignore[union-attr]
    assert commit.respond is None and script.pending_turn == (1, commit.item_id)
    # The rest of the utterance ends without a second commit.
    rest = caller.say(np.concatenate([speech[half:], np.zeros(RATE, dtype=np.int16)]))
    assert rest == []
    assert script.peek_turn() == 2
    # After a clear, too little audio: the commit is refused (the service's 100 ms rule).
    script.clear()
    caller.say(np.zeros(CHUNK * 4, dtype=np.int16))
    assert script.commit(caller.clock.now_ns()) == []


def test_a_fault_fires_at_its_turn_once() -> None:
    script, caller, state = _script()
    plan = FaultPlan(script.scenario.all_faults())
    state.faults = plan
    at = "response.output_audio.delta"
    fired: dict[int, list[str]] = {}
    for text in ("Hello there, is anybody listening?", "I would like to book a table.",
                 "Four people, at eight please."):
        commit = next(a for a in caller.say(_utterance(text)) if isinstance(a, Commit))
        # The runner asks before each audio delta of the turn's reply (three here).
        fired[commit.turn] = [f.action for _ in range(3) for f in plan.at_event(at, commit.turn)]
    assert fired == {1: [], 2: ["close"], 3: []}
    # A reconnecting client that replays turn 2 is not dropped again.
    assert plan.at_event(at, 2) == []


def test_timed_faults_and_the_session_limit_come_in_time_order() -> None:
    scenario = scenario_from_dict({
        "session_limit_ms": 120000,
        "faults": [{"action": "stall", "at": "time", "after_ms": 9000, "ms": 50},
                   {"action": "go_away", "at": "time", "after_ms": 3000, "ms": 500}],
    })
    order = timed_schedule(FaultPlan(scenario.all_faults()), scenario.session_limit_ms)
    assert [(ms, f.action if f else None) for ms, f in order] == [
        (3000, "go_away"), (9000, "stall"), (120000, None)]
    assert session_expired_message(120000) == (
        "Your session hit the maximum duration of 2 minutes.")


class _Wire:
    """An in-memory transport: what the runner sent, no socket."""

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message: str | bytes) -> None:
        self.sent.append(json.loads(message))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


def test_the_runner_stamps_everything_with_the_injected_clock() -> None:
    clock = FakeClock(T0)
    truth = TruthLog(clock=clock)
    wire = _Wire()
    conv = OpenAIConversation(scenario_from_dict(SCENARIO), SimState(), truth, wire, 1,
                              clock=clock)
    update = {"type": "session.update",
              "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}
    audio = _utterance("Hello there, is anybody listening?", silence_ms=0)

    async def scenario() -> None:
        await conv.dialect.handle(json.dumps(update), clock.now_ns())
        clock.advance_ms(len(audio) * 1000 / RATE)
        append = {"type": "input_audio_buffer.append",
                  "audio": base64.b64encode(int16_to_bytes(audio)).decode("ascii")}
        await conv.dialect.handle(json.dumps(append), clock.now_ns())
        clock.advance_ms(7)
        await conv.dialect.handle('{"type": "input_audio_buffer.commit"}', clock.now_ns())
        await conv.shutdown()

    asyncio.run(scenario())
    committed = [r for r in truth.records if r["event"] == "committed"]
    assert [(r["turn"], r["manual"], r["t_ns"]) for r in committed] == [
        (1, True, clock.now_ns())]
    kinds = [m["type"] for m in wire.sent]
    assert kinds == ["session.updated", "input_audio_buffer.committed",
                     "conversation.item.added", "conversation.item.done"]
    assert conv.script.pending_turn == (1, wire.sent[1]["item_id"])
