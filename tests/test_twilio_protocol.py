"""The sans-I/O Twilio Media Streams dialect, both directions, with plain function calls.

Field names follow Twilio's published message reference ("Media Streams - WebSocket
Messages"); every bad input is an error event or a tolerated, logged oddity, never an
exception.
"""

from __future__ import annotations

import base64
import json

import numpy as np

from app.events import (
    AgentAudio,
    AgentInterrupted,
    LocalSpeechStarted,
    LocalSpeechStopped,
    Notice,
    PlaybackStarted,
    ProviderErrorEvent,
    ResponseFinished,
    UnknownMessage,
)
from app.metrics.timeline import Timeline
from app.providers.twilio.protocol import (
    CallerMedia,
    StreamNote,
    StreamStarted,
    StreamStopped,
    TwilioCallerProtocol,
    TwilioStreamProtocol,
)

MS = 1_000_000


def ulaw_b64(n: int = 160, value: int = 0x55) -> str:
    return base64.b64encode(bytes([value]) * n).decode()


def agent_media(sid: str, n: int = 160) -> str:
    return json.dumps({"event": "media", "streamSid": sid, "media": {"payload": ulaw_b64(n)}})


def test_caller_sends_connected_start_media_dtmf_stop_as_the_reference_shows() -> None:
    p = TwilioCallerProtocol({"voiceprobe_token": "t", "lang": "fr"})
    connected, start = (json.loads(o.text) for o in p.open())
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert start["streamSid"] == start["start"]["streamSid"] == p.stream_sid
    body = start["start"]
    assert body["accountSid"].startswith("AC") and body["callSid"].startswith("CA")
    assert body["tracks"] == ["inbound"]
    assert body["customParameters"] == {"voiceprobe_token": "t", "lang": "fr"}
    assert body["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    # 30 ms of PCM16 at 8 kHz: one 160-byte media now, the rest waits for the next frame.
    out = p.audio(np.zeros(240, dtype=np.int16).tobytes())
    assert len(out) == 1 and out[0].log is None
    media = json.loads(out[0].text)
    assert media["sequenceNumber"] == "2" and media["streamSid"] == p.stream_sid
    assert media["media"]["track"] == "inbound"
    assert (media["media"]["chunk"], media["media"]["timestamp"]) == ("1", "0")
    assert len(base64.b64decode(media["media"]["payload"])) == 160
    second = json.loads(p.audio(np.zeros(80, dtype=np.int16).tobytes())[0].text)
    assert (second["sequenceNumber"], second["media"]["chunk"], second["media"]["timestamp"]) == (
        "3",
        "2",
        "20",
    )
    dtmf = json.loads(p.dtmf("5")[0].text)
    assert (
        dtmf["dtmf"] == {"track": "inbound_track", "digit": "5"} and dtmf["sequenceNumber"] == "4"
    )
    assert p.dtmf("x") == []
    stop = json.loads(p.stop()[0].text)
    assert stop["stop"] == {"accountSid": body["accountSid"], "callSid": body["callSid"]}
    assert p.stop() == [] and p.audio(b"\0\0" * 160) == []


def test_caller_maps_agent_media_and_answers_marks_once_played() -> None:
    p = TwilioCallerProtocol()
    evs = p.receive(agent_media(p.stream_sid, 800), 1000 * MS)  # 100 ms of agent audio
    audio = [e for e in evs if isinstance(e, AgentAudio)]
    assert audio[0].sample_rate == 8000 and audio[0].samples == 800
    item = audio[0].item_id
    mark = json.dumps({"event": "mark", "streamSid": p.stream_sid, "mark": {"name": "m1"}})
    assert any(isinstance(e, Notice) for e in p.receive(mark, 1001 * MS))
    assert p.data_to_send() == []
    assert p.played(item, 50) == []  # half played: not yet
    echo = p.played(item, 100)
    assert [json.loads(o.text)["mark"] for o in echo] == [{"name": "m1"}]
    # A mark with nothing queued is answered at once.
    p.receive(mark.replace("m1", "m2"), 1002 * MS)
    assert [json.loads(o.text)["mark"]["name"] for o in p.data_to_send()] == ["m2"]
    # The burst ends after a quiet spell.
    assert p.tick(1100 * MS) == []
    done = p.tick(1600 * MS)
    assert isinstance(done[0], ResponseFinished) and done[0].response_id == item


def test_caller_clear_is_a_barge_in_only_while_audio_is_queued_and_answers_marks() -> None:
    p = TwilioCallerProtocol()
    clear = json.dumps({"event": "clear", "streamSid": p.stream_sid})
    idle = p.receive(clear, 1 * MS)
    assert not any(isinstance(e, AgentInterrupted) for e in idle)
    p.receive(agent_media(p.stream_sid, 1600), 2 * MS)
    p.receive(json.dumps({"event": "mark", "mark": {"name": "end"}}), 3 * MS)
    evs = p.receive(clear, 4 * MS)
    assert any(isinstance(e, AgentInterrupted) for e in evs)
    assert any(isinstance(e, ResponseFinished) and e.status == "cancelled" for e in evs)
    assert [json.loads(o.text)["mark"]["name"] for o in p.data_to_send()] == ["end"]


def test_caller_bad_input_is_an_error_event_or_an_oddity_never_an_exception() -> None:
    p = TwilioCallerProtocol()
    cases = [
        b"\x00\x01binary",
        "not json",
        "[1, 2]",
        '{"no": "event"}',
        json.dumps({"event": "media", "media": {"payload": "***"}}),
        json.dumps({"event": "media", "media": "x"}),
        json.dumps({"event": "mark", "mark": {}}),
        "[" * 100000,
        "x" * (2 * 1024 * 1024),
    ]
    for bad in cases:
        evs = p.receive(bad, 1)
        assert len(evs) == 1 and isinstance(evs[0], ProviderErrorEvent), bad[:40]
        assert not evs[0].fatal and evs[0].message
    unknown = p.receive(json.dumps({"event": "playAudio"}), 1)
    assert isinstance(unknown[0], UnknownMessage)
    # Media of another stream is played, with one warning.
    evs = p.receive(agent_media("MZother"), 2)
    assert any(isinstance(e, AgentAudio) for e in evs)
    assert any(isinstance(e, Notice) and e.level == "warning" for e in evs)


def start_msg(**fmt: object) -> str:
    media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **fmt}
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "start": {
                "streamSid": "MZ1",
                "accountSid": "AC1",
                "callSid": "CA1",
                "tracks": ["inbound"],
                "customParameters": {"voiceprobe_token": "abc"},
                "mediaFormat": media_format,
            },
            "streamSid": "MZ1",
        }
    )


def inbound(payload: str, chunk: str = "1") -> str:
    media = {"track": "inbound", "chunk": chunk, "timestamp": "0", "payload": payload}
    return json.dumps({"event": "media", "sequenceNumber": "2", "media": media, "streamSid": "MZ1"})


def test_stream_reads_start_media_mark_dtmf_stop_and_builds_replies() -> None:
    s = TwilioStreamProtocol()
    assert (
        s.receive(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}), 1)
        == []
    )
    started = s.receive(start_msg(), 2)[0]
    assert isinstance(started, StreamStarted)
    assert (started.stream_sid, started.call_sid, started.account_sid) == ("MZ1", "CA1", "AC1")
    assert started.custom_parameters == {"voiceprobe_token": "abc"}
    media = s.receive(inbound(ulaw_b64()), 3)[0]
    assert isinstance(media, CallerMedia) and len(media.pcm) == 160 and media.chunk == 1
    mark = s.receive(json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": "vp-1"}}), 4)
    assert isinstance(mark[0], StreamNote) and mark[0].mark == "vp-1"
    dtmf = json.dumps(
        {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "7"}}
    )
    assert s.receive(dtmf, 5)[0].digit == "7"  # type: ignore[union-attr]
    assert isinstance(s.receive(json.dumps({"event": "stop", "stop": {}}), 6)[0], StreamStopped)
    out = json.loads(s.media(np.zeros(160, dtype=np.int16)))
    assert out["event"] == "media" and out["streamSid"] == "MZ1"
    assert len(base64.b64decode(out["media"]["payload"])) == 160
    text, name = s.mark()
    assert json.loads(text) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": name}}
    assert json.loads(s.clear()) == {"event": "clear", "streamSid": "MZ1"}


def test_stream_bad_input_is_refused_or_tolerated_once() -> None:
    s = TwilioStreamProtocol()
    early = s.receive(inbound(ulaw_b64()), 1)
    assert isinstance(early[0], StreamNote) and "before start" in early[0].message
    assert s.receive(inbound(ulaw_b64()), 2) == []  # logged once
    wrong = TwilioStreamProtocol().receive(start_msg(sampleRate=16000), 3)[0]
    assert isinstance(wrong, StreamNote) and wrong.fatal and "mediaFormat" in wrong.message
    s.receive(start_msg(), 4)
    for bad in (b"\x01binary", "not json", json.dumps({"event": "nope"})):
        notes = s.receive(bad, 5)
        assert len(notes) == 1 and isinstance(notes[0], StreamNote) and not notes[0].fatal
    assert isinstance(s.receive(inbound("%%%"), 6)[0], StreamNote)  # not base64: dropped
    odd = s.receive(inbound(ulaw_b64(100)), 7)  # not 160 bytes: played, noted once
    assert isinstance(odd[0], StreamNote) and isinstance(odd[1], CallerMedia)
    assert len(s.receive(inbound(ulaw_b64(100)), 8)) == 1


def test_timeline_barge_in_reaction_and_no_ttfb_without_a_response_event() -> None:
    tl = Timeline()
    tl.feed(LocalSpeechStarted(t_ns=0, sample=0))
    tl.feed(LocalSpeechStopped(t_ns=1000 * MS, sample=16000))
    tl.feed(
        AgentAudio(t_ns=1500 * MS, response_id="tw1", item_id="tw1", pcm=b"\0\0", sample_rate=8000)
    )
    tl.feed(PlaybackStarted(t_ns=1520 * MS, item_id="tw1", response_id="tw1"))
    tl.feed(LocalSpeechStarted(t_ns=2000 * MS, sample=32000))
    tl.feed(AgentInterrupted(t_ns=2350 * MS, response_id="tw1"))
    spans = tl.turns[0].spans()
    assert spans["end_of_turn_delay"].ms == 500.0
    assert spans["voice_to_voice"].ms == 520.0
    assert "ttfb" not in spans
    assert spans["barge_in_reaction"].ms == 350.0
    assert spans["barge_in_reaction"].start_event == "LocalSpeechStarted"
    assert spans["barge_in_reaction"].end_event == "AgentInterrupted"
