"""The turn timeline as a pure state machine: spans, barge-in, late transcripts."""

from __future__ import annotations

from app.events import (
    AgentAudio,
    AgentTranscript,
    BargeIn,
    InputCommitted,
    LocalSpeechStarted,
    LocalSpeechStopped,
    PlaybackStarted,
    PlaybackStopped,
    ResponseFinished,
    ResponseStarted,
    ServerSpeechStarted,
    ServerSpeechStopped,
    ToolCallFinished,
    ToolCallRequested,
    UserTranscript,
)
from app.metrics.percentile import percentile
from app.metrics.timeline import Timeline, summarize

MS = 1_000_000


def audio(t: int, rid: str, item: str) -> AgentAudio:
    return AgentAudio(
        t_ns=t * MS, response_id=rid, item_id=item, pcm=b"\0\0" * 240, sample_rate=24000
    )


def test_spans_of_a_plain_turn_name_their_events() -> None:
    tl = Timeline()
    for ev in [
        LocalSpeechStarted(t_ns=1000 * MS, sample=16000),
        ServerSpeechStarted(t_ns=1300 * MS, item_id="u1", audio_start_ms=700),
        LocalSpeechStopped(t_ns=2000 * MS, sample=32000),
        ServerSpeechStopped(t_ns=2500 * MS, item_id="u1", audio_end_ms=2500),
        InputCommitted(t_ns=2501 * MS, item_id="u1"),
        ResponseStarted(t_ns=2620 * MS, response_id="r1"),
        audio(2920, "r1", "a1"),
        PlaybackStarted(t_ns=2940 * MS, item_id="a1", response_id="r1"),
        AgentTranscript(t_ns=2950 * MS, response_id="r1", item_id="a1", text="Hi", final=True),
        ResponseFinished(t_ns=3000 * MS, response_id="r1"),
        PlaybackStopped(t_ns=4000 * MS, item_id="a1", played_samples=16000, sample_rate=16000),
        UserTranscript(t_ns=4100 * MS, item_id="u1", text="Hello?", final=True),
    ]:
        tl.feed(ev)
    (turn,) = tl.to_list()
    spans = turn["spans"]
    assert spans["user_speech"]["ms"] == 1000
    assert spans["end_of_turn_delay"]["ms"] == 500
    assert (spans["end_of_turn_delay"]["from"], spans["end_of_turn_delay"]["to"]) == (
        "LocalSpeechStopped",
        "ServerSpeechStopped",
    )
    assert spans["response_start"]["ms"] == 120
    assert spans["ttfb"]["ms"] == 300
    assert spans["playback_latency"]["ms"] == 20
    assert spans["agent_speech"]["ms"] == 1060
    assert spans["voice_to_voice"]["ms"] == 940
    assert turn["user_transcript"] == "Hello?"  # arrived late, still on its turn
    assert turn["agent_transcript"] == "Hi"
    assert turn["server_audio_end_ms"] == 2500


def test_tool_turn_has_tool_and_followup_spans() -> None:
    tl = Timeline()
    for ev in [
        LocalSpeechStarted(t_ns=0, sample=0),
        LocalSpeechStopped(t_ns=1000 * MS, sample=16000),
        ServerSpeechStopped(t_ns=1500 * MS, item_id="u1"),
        ResponseStarted(t_ns=1600 * MS, response_id="r1"),
        ToolCallRequested(
            t_ns=1700 * MS, call_id="c1", name="get_weather", arguments="{}", response_id="r1"
        ),
        ResponseFinished(t_ns=1701 * MS, response_id="r1"),
        ToolCallFinished(
            t_ns=1950 * MS,
            call_id="c1",
            name="get_weather",
            arguments="{}",
            status="ok",
            output="{}",
            ms=250,
        ),
        ResponseStarted(t_ns=1960 * MS, response_id="r2"),
        audio(2200, "r2", "a2"),
        PlaybackStarted(t_ns=2210 * MS, item_id="a2"),
        ResponseFinished(t_ns=2300 * MS, response_id="r2"),
    ]:
        tl.feed(ev)
    turn = tl.to_list()[0]
    assert turn["spans"]["tool:get_weather"]["ms"] == 250
    assert turn["spans"]["tool_followup"]["ms"] == 250
    assert turn["spans"]["ttfb"]["ms"] == 240  # response r2 → its first audio
    assert turn["tool_calls"][0]["status"] == "ok"


def test_barge_in_closes_the_turn_and_opens_the_next() -> None:
    tl = Timeline()
    done = []
    for ev in [
        LocalSpeechStarted(t_ns=0, sample=0),
        LocalSpeechStopped(t_ns=1000 * MS, sample=16000),
        ServerSpeechStopped(t_ns=1500 * MS, item_id="u1"),
        ResponseStarted(t_ns=1600 * MS, response_id="r1"),
        audio(1900, "r1", "a1"),
        PlaybackStarted(t_ns=1920 * MS, item_id="a1"),
        LocalSpeechStarted(t_ns=3000 * MS, sample=48000),
        BargeIn(t_ns=3030 * MS, item_id="a1", played_ms=1110, received_ms=4000, truncate_ms=1110),
        PlaybackStopped(
            t_ns=3030 * MS, item_id="a1", played_samples=17760, sample_rate=16000, interrupted=True
        ),
        ResponseFinished(t_ns=3300 * MS, response_id="r1", status="cancelled"),
        ServerSpeechStarted(t_ns=3300 * MS, item_id="u2"),
        LocalSpeechStopped(t_ns=4000 * MS, sample=64000),
    ]:
        done.extend(tl.feed(ev))
    turns = tl.to_list()
    assert len(turns) == 2
    assert turns[0]["interrupted"] and turns[0]["spans"]["agent_speech"]["ms"] == 1110
    assert turns[1]["spans"]["user_speech"]["ms"] == 1000
    assert [d.turn.index for d in done] == [0]


def test_percentiles() -> None:
    assert percentile([], 50) is None
    assert percentile([10.0], 95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    s = summarize([{"spans": {"voice_to_voice": {"ms": 100.0}}}, {"spans": {}}])
    assert s["count"] == 1 and s["p95_ms"] == 100.0
