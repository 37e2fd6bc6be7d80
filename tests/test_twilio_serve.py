"""``voiceprobe serve twilio`` bridged to the simulator, called by voiceprobe's own
``twilio-ws`` client and by a minimal Twilio-side client written here from Twilio's
published message reference ("Media Streams - WebSocket Messages")."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.bridge.providers import DEFAULT_SCENARIO
from app.sim.caller import caller_track, write_caller_wav
from app.sim.scenario import load_scenario
from tests.call_e2e_helpers import truth_by
from tests.conftest import REPO, TIME_SCALE
from tests.twilio_helpers import ServeTwilio as Server
from tests.twilio_helpers import stop

#: Spans checked against ground truth to ±20 ms: run alone (see scripts/test.sh).
pytestmark = pytest.mark.paired

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the reference's μ-law, independent of app.audio.g711

TOL_MS = 20 * TIME_SCALE


@pytest.fixture(scope="module")
def own_client_call(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("serve-own")
    server = Server(tmp)
    try:
        wav = tmp / "caller.wav"
        write_caller_wav(load_scenario(str(DEFAULT_SCENARIO)), wav, barge_in={2: 1500})
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "app.cli",
                "call",
                "--provider",
                "twilio-ws",
                "--url",
                server.url,
                "--param",
                f"voiceprobe_token={server.token}",
                "--input",
                str(wav),
                "--out",
                str(tmp / "client"),
                "--json",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=240,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        served = server.next_call()
        truth = [json.loads(x) for x in server.truth.read_text().splitlines()]
        yield {
            "client": json.loads(proc.stdout),
            "served": served,
            "truth": truth,
            "server": server,
        }
    finally:
        stop(server.proc)


@pytest.mark.slow
def test_own_client_through_the_server_every_turn_answered_marks_and_clear(
    own_client_call: dict[str, Any],
) -> None:
    client, served = own_client_call["client"], own_client_call["served"]
    assert client["ok"] and served["ok"], (client["errors"], served["errors"])
    assert len(client["turns"]) == len(served["turns"]) == 4
    assert [t["interrupted"] for t in client["turns"]] == [False, False, True, False]
    assert "barge_in_reaction" in client["turns"][2]["spans"]  # the server's clear
    assert served["twilio"]["marks_echoed"] >= 3 and served["twilio"]["marks_unanswered"] == 0
    session = Path(served["session_dir"])
    text = (session / "events.jsonl").read_text() + (session / "session.json").read_text()
    assert own_client_call["server"].token not in text  # the token is recorded nowhere
    client_text = (Path(client["session_dir"]) / "session.json").read_text()
    assert own_client_call["server"].token not in client_text


@pytest.mark.slow
def test_served_spans_match_the_simulators_ground_truth(own_client_call: dict[str, Any]) -> None:
    turns, truth = own_client_call["served"]["turns"], own_client_call["truth"]
    stopped = truth_by(truth, "speech_stopped")
    created = truth_by(truth, "response.created")
    first_audio = {r["response_id"]: r for r in truth_by(truth, "first_audio")}
    for i, turn in enumerate(turns):
        spans, st = turn["spans"], stopped[i]
        eot = (st["t_ns"] - st["speech_end_t_ns"]) / 1e6
        assert spans["end_of_turn_delay"]["ms"] == pytest.approx(eot, abs=TOL_MS), i
        cr = next(r for r in created if r["response_id"] == turn["response_ids"][0])
        assert spans["response_start"]["ms"] == pytest.approx(
            (cr["t_ns"] - st["t_ns"]) / 1e6, abs=TOL_MS
        ), i
        fa = min(
            (first_audio[r] for r in turn["response_ids"] if r in first_audio),
            key=lambda r: r["t_ns"],
        )
        cr_fa = next(r for r in created if r["response_id"] == fa["response_id"])
        assert spans["ttfb"]["ms"] == pytest.approx((fa["t_ns"] - cr_fa["t_ns"]) / 1e6, abs=TOL_MS)
    bridge = own_client_call["served"]["bridge"]["caller_capture_to_ws_send"]
    assert bridge["p95_ms"] < 20 * TIME_SCALE


def _msg(seq: int, event: str, **body: Any) -> str:
    return json.dumps({"event": event, "sequenceNumber": str(seq), **body, "streamSid": "MZtest"})


async def independent_client(
    url: str, token: str, fmt: dict[str, Any] | None = None, close_after_s: float | None = None
) -> dict[str, Any]:
    """A Twilio-side client from the message reference: connected, start, media every
    20 ms, marks answered once the audio before them has played, clear honoured, stop."""
    pcm, utterances = caller_track(
        load_scenario(str(DEFAULT_SCENARIO)), rate=8000, barge_in={2: 1500}
    )
    got: dict[str, Any] = {"media": 0, "loud": 0, "clears": [], "marks": 0, "close": None}
    media_format = fmt or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    start = {
        "streamSid": "MZtest",
        "accountSid": "ACtest",
        "callSid": "CAtest",
        "tracks": ["inbound"],
        "customParameters": {"voiceprobe_token": token},
        "mediaFormat": media_format,
    }
    async with connect(url) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(_msg(1, "start", start=start))
        t0 = time.monotonic()
        play_until = [t0]
        pending: list[tuple[float, str]] = []
        seq = [1]

        async def receive() -> None:
            try:
                async for text in ws:
                    m = json.loads(text)
                    now = time.monotonic()
                    if m["event"] == "media":
                        n = len(base64.b64decode(m["media"]["payload"]))
                        got["media"] += 1
                        got["loud"] += int(
                            np.abs(
                                np.frombuffer(
                                    audioop.ulaw2lin(base64.b64decode(m["media"]["payload"]), 2),
                                    dtype="<i2",
                                )
                            ).max()
                            > 300
                        )
                        play_until[0] = max(play_until[0], now) + n / 8000
                    elif m["event"] == "mark":
                        pending.append((play_until[0], m["mark"]["name"]))
                    elif m["event"] == "clear":
                        got["clears"].append(now - t0)
                        play_until[0] = now
                        pending[:] = [(now, name) for _, name in pending]
            except ConnectionClosed as exc:
                got["close"] = exc.rcvd.code if exc.rcvd else None
            if ws.close_code is not None:
                got["close"] = ws.close_code

        rx = asyncio.create_task(receive())
        try:
            for i in range(len(pcm) // 160):
                if close_after_s is not None and i * 0.02 >= close_after_s:
                    await ws.close()  # hang up mid-turn, no stop
                    break
                frame = audioop.lin2ulaw(pcm[i * 160 : (i + 1) * 160].tobytes(), 2)
                media = {
                    "track": "inbound",
                    "chunk": str(i + 1),
                    "timestamp": str(i * 20),
                    "payload": base64.b64encode(frame).decode(),
                }
                seq[0] += 1
                await ws.send(_msg(seq[0], "media", media=media))
                now = time.monotonic()
                for due, name in [p for p in pending if p[0] <= now]:
                    pending.remove((due, name))
                    seq[0] += 1
                    got["marks"] += 1
                    await ws.send(_msg(seq[0], "mark", mark={"name": name}))
                await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
            else:
                seq[0] += 1
                await ws.send(
                    _msg(seq[0], "stop", stop={"accountSid": "ACtest", "callSid": "CAtest"})
                )
        except ConnectionClosed:
            pass
        await asyncio.wait_for(rx, 60)
    got["barge_in_s"] = utterances[3].start / 8000
    return got


@pytest.mark.slow
def test_independent_client_audio_both_ways_marks_and_clear(tmp_path: Path) -> None:
    server = Server(tmp_path)
    try:
        got = asyncio.run(independent_client(server.url, server.token))
        served = server.next_call()
    finally:
        stop(server.proc)
    assert served["ok"] and len(served["turns"]) == 4, served["errors"]
    assert got["loud"] > 100  # agent audio came back
    assert got["marks"] >= 3 and served["twilio"]["marks_echoed"] == got["marks"]
    assert any(c >= got["barge_in_s"] for c in got["clears"])  # clear at the barge-in
    assert served["turns"][2]["interrupted"]


@pytest.mark.slow
def test_a_stream_without_the_secret_or_with_another_format_is_refused_and_recorded_nowhere(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path)
    try:
        bad = asyncio.run(independent_client(server.url, "wrong-token"))
        fmt = {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
        other = asyncio.run(independent_client(server.url, server.token, fmt=fmt))
        # A stream that hangs up mid-turn is still a recorded call.
        cut = asyncio.run(independent_client(server.url, server.token, close_after_s=4.0))
        served = server.next_call()
    finally:
        stop(server.proc)
        assert server.proc.stderr is not None
        err = server.proc.stderr.read()
    assert bad["close"] == 1008 and bad["media"] == 0
    assert other["close"] == 1008 and other["media"] == 0
    assert "no valid token" in err and "mediaFormat" in err
    assert len(server.sessions()) == 1  # only the call that was let in
    assert cut["media"] > 0 and served["turns"]
    session = Path(served["session_dir"])
    for name in ("session.json", "events.jsonl", "audio.wav", "turns.json"):
        assert (session / name).exists()
