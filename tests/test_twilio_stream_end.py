"""How a served Twilio stream ends, and what the call records for it (``serve twilio``).

The stream's end decides the call's: ``stop`` ends it ``completed``; the caller closing
without ``stop`` ends it ``caller_hangup``; a lost connection or an error close fails it
(``connection_closed``); the server shutting down leaves the session ``interrupted``. Each
is said in ``events.jsonl`` and on stderr, the call ends as soon as the stream is gone,
and no agent audio is counted as played after it. Media after ``stop`` is ignored, and
caller audio is held to real time. The end-to-end tests run real WebSocket clients on
loopback against a ``serve twilio`` process started without ``--provider`` (the
simulator, as for ``call``); the port and the close mapping are also tested with plain
calls.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from app.events import Notice
from app.providers.twilio.protocol import CallerMedia, TwilioStreamProtocol
from app.serve.twilio_port import AHEAD_MS, StreamEnd, TwilioStreamPort, stream_end_of_close
from tests.conftest import REPO, TIME_SCALE
from tests.twilio_helpers import (
    AFTER_LINE_1,
    ULAW,
    UTTERANCES,
    WAIT_S,
    Caller,
    S,
    Served,
    events_of,
    notices,
)

#: How soon after the stream is gone the call's summary must be out (the agent's reply
#: and the 1.5 s tail used to run on for several seconds).
PROMPT_S = 3.0 * TIME_SCALE


# --- the port and the close mapping, with plain calls ---------------------------------


def _port(start_ns: int, ended: list[StreamEnd] | None = None) -> TwilioStreamPort:
    port = TwilioStreamPort(
        TwilioStreamProtocol(),
        lambda _text: None,
        lambda: start_ns,
        start_ns=start_ns,
        on_end=(ended.append if ended is not None else None),
    )
    return port


def _media(t_ns: int, samples: int, value: int = 1000) -> CallerMedia:
    return CallerMedia(
        t_ns=t_ns, pcm=np.full(samples, value, np.int16), chunk=None, timestamp_ms=None
    )


def test_an_oversized_payload_is_cut_to_real_time_and_never_stamped_before_start() -> None:
    start = 5 * S
    port = _port(start)
    logged: list[Any] = []
    port.emit = logged.append
    port.feed(_media(start + 20_000_000, 160))
    port.feed(_media(start + 2 * S, 700_000))  # 87.5 s of audio, 2 s into the stream
    frames = port.read(start + 2 * S)
    allowed = (2 * S + AHEAD_MS * 1_000_000) * 8000 // S
    assert sum(len(f.pcm) for f in frames) == allowed
    assert port.dropped_samples == 160 + 700_000 - allowed
    stamps = [f.t_ns for f in frames]
    assert stamps == sorted(stamps) and stamps[0] >= start and stamps[-1] == start + 2 * S
    warnings = [e for e in logged if isinstance(e, Notice) and e.level == "warning"]
    assert len(warnings) == 1 and "87500 ms" in warnings[0].message
    assert "dropped" in warnings[0].message
    # Audio at the pace of real time afterwards passes untouched (no second warning).
    port.feed(_media(start + 3 * S, 8000))
    assert sum(len(f.pcm) for f in port.read(start + 3 * S)) == 8000
    assert len([e for e in logged if isinstance(e, Notice)]) == 1


def test_normal_media_is_kept_whole_and_stamped_at_arrival() -> None:
    start = S
    port = _port(start)
    for i in range(1, 51):
        port.feed(_media(start + i * 20_000_000, 160))
    frames = port.read(start + S)
    assert len(frames) == 50 and port.dropped_samples == 0
    assert [f.t_ns for f in frames] == [start + i * 20_000_000 for i in range(1, 51)]


def test_the_end_is_reported_once_every_frame_before_it_was_read() -> None:
    ended: list[StreamEnd] = []
    port = _port(S, ended)
    port.start(S)  # the bridge is reading
    port.feed(_media(S + 20_000_000, 160))
    port.end(StreamEnd(kind="stop", t_ns=S + 30_000_000))
    port.end(StreamEnd(kind="dropped", t_ns=S + 40_000_000, code=1006))  # the first counts
    port.feed(_media(S + 50_000_000, 160))  # after the end: ignored
    assert len(port.read(S + 60_000_000)) == 1 and not ended  # the bridge handles it first
    assert port.read(S + 80_000_000) == [] and [e.kind for e in ended] == ["stop"]
    port.read(S + 100_000_000)
    assert len(ended) == 1


def test_an_end_before_the_bridge_reads_is_reported_at_once() -> None:
    ended: list[StreamEnd] = []
    port = _port(S, ended)
    port.end(StreamEnd(kind="hangup", t_ns=S, code=1000))
    assert [e.kind for e in ended] == ["hangup"]


@pytest.mark.parametrize(
    ("exc", "kind", "code", "words"),
    [
        (ConnectionClosedOK(Close(1000, ""), Close(1000, ""), True), "hangup", 1000, "caller"),
        (ConnectionClosedOK(Close(1001, "bye"), Close(1001, ""), True), "hangup", 1001, "bye"),
        (ConnectionClosedError(None, None), "dropped", 1006, "connection lost"),
        (
            ConnectionClosedError(Close(1009, "too big"), Close(1009, "too big"), False),
            "dropped",
            1009,
            "voiceprobe closed",
        ),
        (ConnectionClosedError(None, Close(1011, "ping")), "dropped", 1011, "voiceprobe"),
        (ConnectionClosedError(Close(4000, "x\x1b[2J"), None), "dropped", 4000, "caller"),
    ],
)
def test_a_close_without_stop_says_who_closed_and_how(
    exc: ConnectionClosed, kind: str, code: int, words: str
) -> None:
    end = stream_end_of_close(exc, 7)
    assert (end.kind, end.code, end.t_ns) == (kind, code, 7)
    assert "without stop" in end.message and words in end.message
    assert f"close code {code}" in end.message and "\x1b" not in end.message


# --- end to end: real clients against `serve twilio` ----------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("serve-end"))
    try:
        yield server
    finally:
        server.stop()


def _session(summary: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads((Path(summary["session_dir"]) / "session.json").read_text()))


def _wav_s(summary: dict[str, Any]) -> float:
    with wave.open(str(Path(summary["session_dir"]) / "audio.wav")) as w:
        return float(w.getnframes() / w.getframerate())


def _nothing_played_for_the_unanswered_line(summary: dict[str, Any]) -> None:
    events = events_of(summary)
    assert not [e for e in events if e["kind"] == "PlaybackStarted"]
    for turn in summary["turns"]:
        assert "playback_latency" not in turn["spans"] and "voice_to_voice" not in turn["spans"]
    assert summary["voice_to_voice"]["count"] == 0


@pytest.mark.slow
def test_a_caller_closing_without_stop_is_a_hangup_said_and_the_call_ends_at_once(
    served: Served,
) -> None:
    async def run() -> tuple[Close | None, float]:
        caller = await Caller.dial(served.url, served.token, "CAhangup")
        await caller.play(0, AFTER_LINE_1)
        await caller.ws.close()  # 1000, no stop
        closed_at = time.monotonic()
        return await caller.wait_closed(), closed_at

    close, closed_at = asyncio.run(run())
    summary = served.call("CAhangup")
    assert time.monotonic() - closed_at < PROMPT_S
    assert close is not None and close.code == 1000
    assert summary["provider"] == "sim"  # no --provider: the simulator, as for `call`
    assert (summary["ok"], summary["reason"], summary["errors"]) == (True, "caller_hangup", [])
    assert summary["twilio"]["end"]["kind"] == "hangup"
    assert summary["twilio"]["end"]["close_code"] == 1000
    assert _session(summary)["summary"]["reason"] == "caller_hangup"
    warned = notices(events_of(summary), "warning", "without stop")
    assert len(warned) == 1 and "close code 1000" in warned[0]["message"]
    assert "CAhangup: twilio stream ended without stop" in served.stderr()
    assert summary["turns"]  # what was recorded is kept
    # The recording holds the caller's audio from its sample 0 to the hang-up; what came
    # while the session was being set up, before sample 0, is not in it.
    (started,) = notices(events_of(summary), "info", "of call CAhangup started")
    before_s = max(0.0, (_session(summary)["audio_t0_ns"] - started["t_ns"]) / S)
    assert _wav_s(summary) > AFTER_LINE_1 - before_s - 0.2, before_s
    _nothing_played_for_the_unanswered_line(summary)


@pytest.mark.slow
def test_a_lost_connection_fails_the_call_with_its_close_code(served: Served) -> None:
    async def run() -> float:
        caller = await Caller.dial(served.url, served.token, "CAlost")
        await caller.play(0, AFTER_LINE_1)
        caller.ws.transport.abort()  # as a killed client: no close frame
        lost_at = time.monotonic()
        await caller.wait_closed()
        return lost_at

    lost_at = asyncio.run(run())
    summary = served.call("CAlost")
    assert time.monotonic() - lost_at < PROMPT_S
    assert (summary["ok"], summary["reason"]) == (False, "failed")
    assert [e["code"] for e in summary["errors"]] == ["connection_closed"]
    assert "1006" in summary["errors"][0]["message"]
    assert _session(summary)["status"] == "failed"
    events = events_of(summary)
    assert len(notices(events, "warning", "connection lost (close code 1006")) == 1
    assert [e["code"] for e in events if e["kind"] == "CallFailed"] == ["connection_closed"]
    assert "CAlost: twilio stream ended without stop: connection lost" in served.stderr()
    _nothing_played_for_the_unanswered_line(summary)


@pytest.mark.slow
def test_a_frame_over_the_size_limit_closes_1009_and_fails_the_call(served: Served) -> None:
    async def run() -> Close | None:
        caller = await Caller.dial(served.url, served.token, "CAbig")
        await caller.play(0, 1.0)
        await caller.media(b"\xff" * 900_000)  # 1.2 MB of base64: over the 1 MiB limit
        return await caller.wait_closed()

    close = asyncio.run(run())
    summary = served.call("CAbig")
    assert close is not None and close.code == 1009
    assert (summary["ok"], summary["reason"]) == (False, "failed")
    assert summary["twilio"]["end"] == {
        "kind": "dropped",
        "close_code": 1009,
        "message": summary["errors"][0]["message"],
    }
    assert (
        "voiceprobe closed the socket (close code 1009, message too big"
        in (summary["errors"][0]["message"])
    )
    assert len(notices(events_of(summary), "warning", "close code 1009")) == 1


@pytest.mark.slow
def test_media_after_stop_is_ignored_and_said_once(served: Served) -> None:
    line_2 = UTTERANCES[1]

    async def run() -> None:
        caller = await Caller.dial(served.url, served.token, "CAafter")
        await caller.play(0, AFTER_LINE_1)
        await caller.stop()
        for i in range(line_2.start // 160, line_2.end // 160):  # the next line, spoken
            await caller.media(ULAW[i * 160 : (i + 1) * 160])
        await caller.wait_closed()

    asyncio.run(run())
    summary = served.call("CAafter")
    assert (summary["ok"], summary["reason"]) == (True, "completed")
    assert summary["twilio"]["end"]["kind"] == "stop"
    events = events_of(summary)
    assert len(notices(events, "warning", "media after stop (ignored)")) == 1
    (stop,) = notices(events, "info", "twilio stop")
    heard = [e for e in events if e["kind"] in ("LocalSpeechStarted", "BargeIn")]
    assert heard and all(e["t_ns"] <= stop["t_ns"] for e in heard)
    assert len(summary["turns"]) == 1
    (started,) = notices(events, "info", "twilio stream MZend of call CAafter started")
    assert _wav_s(summary) <= (stop["t_ns"] - started["t_ns"]) / S + 0.05
    assert "CAafter" not in served.stderr()  # a clean end: nothing to warn about


@pytest.mark.slow
def test_an_oversized_payload_cannot_claim_more_time_than_has_passed(served: Served) -> None:
    # 87.5 s of the caller's speech in one message 2 s into the call (under the frame limit).
    speech = ULAW[UTTERANCES[0].start : UTTERANCES[0].end]
    huge = (speech * (700_000 // len(speech) + 1))[:700_000]

    async def run() -> None:
        caller = await Caller.dial(served.url, served.token, "CAhuge")
        await caller.play(0, 2.0)
        await caller.media(huge)
        await caller.play(2.0, 6.0)
        await caller.stop()
        await caller.wait_closed()

    asyncio.run(run())
    summary = served.call("CAhuge")
    assert summary["ok"] and summary["reason"] == "completed"
    assert summary["twilio"]["caller_ms_dropped"] >= 87_500 - 2_000 - AHEAD_MS
    events = events_of(summary)
    (warned,) = notices(events, "warning", "more audio than real time allows")
    assert "87500 ms" in warned["message"] and "dropped" in warned["message"]
    (started,) = notices(events, "info", "twilio stream MZend of call CAhuge started")
    speech_at = [e["t_ns"] for e in events if e["kind"] == "LocalSpeechStarted"]
    assert speech_at and min(speech_at) >= started["t_ns"]
    for turn in summary["turns"]:
        assert all(span["ms"] >= 0 for span in turn["spans"].values()), turn["spans"]
    stream_s = (_session(summary)["ended_ns"] - started["t_ns"]) / S
    assert _wav_s(summary) <= stream_s + AHEAD_MS / 1000 + 0.05


@pytest.mark.slow
def test_a_server_shutdown_mid_call_leaves_the_session_interrupted(tmp_path: Path) -> None:
    server = Served(tmp_path)
    try:

        async def run() -> Close | None:
            caller = await Caller.dial(server.url, server.token, "CAterm")
            await caller.play(0, 1.5)
            server.proc.terminate()  # SIGTERM
            return await caller.wait_closed()

        close = asyncio.run(run())
        summary = server.call("CAterm")
        assert server.proc.wait(WAIT_S) == 0
    finally:
        server.stop()
    assert close is not None and (close.code, close.reason) == (1001, "server shutting down")
    assert (summary["ok"], summary["reason"]) == (False, "interrupted")
    assert summary["twilio"]["end"]["kind"] == "shutdown"
    assert _session(summary)["status"] == "interrupted"
    assert len(notices(events_of(summary), "warning", "server shuts down (1001)")) == 1
    assert "CAterm: twilio stream closed by voiceprobe" in server.stderr()


# --- which agent `serve twilio` bridges to ---------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_the_help_names_the_agents_serve_bridges_to() -> None:
    proc = _cli("serve", "twilio", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "sim | openai | gemini (default: sim" in text
    assert "twilio-ws (default" not in text


def test_param_is_no_serve_option() -> None:
    # --param gives `call --provider twilio-ws` its customParameters: meaningless here.
    text = " ".join(_cli("serve", "twilio", "--help").stdout.split())
    assert "--param" not in text and "customParameters" not in text
    proc = _cli("serve", "twilio", "--port", "0", "--param", "a=b")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert "error: --param only applies to `call --provider twilio-ws`" in proc.stderr


def test_twilio_ws_is_refused_named_or_from_the_profile(tmp_path: Path) -> None:
    named = _cli("serve", "twilio", "--port", "0", "--provider", "twilio-ws")
    assert named.returncode == 2 and "invalid choice: 'twilio-ws'" in named.stderr
    profile = tmp_path / "deployed.yaml"
    profile.write_text("name: deployed\nprovider: twilio-ws\nurl: ws://127.0.0.1:9/twilio\n")
    from_profile = _cli("serve", "twilio", "--port", "0", "--profile", str(profile))
    assert from_profile.returncode == 2
    assert "--provider must be sim | openai | gemini" in from_profile.stderr
    assert "the profile's agent is twilio-ws" in from_profile.stderr
