"""A call that ends while the agent is still talking (the tester hangs up, ``--max-seconds``,
Ctrl-C, a SIP BYE) cut the reply off: the turn says so, and counts only what was heard.

A real call in-process (``run_call``, the simulator over a loopback socket, a WAV-file
port) is hung up 300 ms into the agent's first reply, from a subscriber on the call's own
loop, as the desktop's hang-up button does.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml

from app.audio.fileport import WavFilePort
from app.bridge.providers import plan_provider
from app.bridge.session import CallHandle, CallSetup, run_call
from app.events import EventBase, PlaybackStarted
from app.profile import load_profile
from app.sim.caller import write_caller_wav
from app.sim.scenario import load_scenario
from tests.conftest import TIME_SCALE

#: How long the agent's reply plays before the hang-up (s).
HEARD_S = 0.3
REPLY = (
    "Yes, I can hear you clearly. Your order left the warehouse this morning and should "
    "reach you on Thursday, and you will get a text message the evening before."
)


def _call(tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    scenario = {"name": "cut", "turns": [{"hears": "Hello, can you hear me?", "reply": REPLY}]}
    sc_path = tmp_path / "cut.yaml"
    sc_path.write_text(yaml.safe_dump(scenario))
    wav = tmp_path / "caller.wav"
    write_caller_wav(load_scenario(str(sc_path)), wav)
    plan, profile = plan_provider("sim", load_profile(None), scenario=str(sc_path))
    setup = CallSetup(profile=profile, plan=plan, data_root=tmp_path / "data")
    handle = CallHandle()

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        def on_event(ev: EventBase) -> None:
            if isinstance(ev, PlaybackStarted):
                loop.call_later(HEARD_S, handle.hangup)

        return await run_call(setup, WavFilePort.from_wav(wav, rate=16000), [on_event],
                              handle=handle)  # fmt: skip

    summary = asyncio.run(main())
    folder = Path(summary["session_dir"])
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    return summary, events


def test_a_hang_up_mid_reply_leaves_the_turn_cut_off(tmp_path: Path) -> None:
    summary, events = _call(tmp_path)
    assert summary["reason"] == "hangup", summary
    turn = summary["turns"][0]
    assert turn["interrupted"] is True, turn
    started = [e for e in events if e["kind"] == "PlaybackStarted"]
    stopped = [e for e in events if e["kind"] == "PlaybackStopped"]
    ended = next(e for e in events if e["kind"] == "CallEnded")
    assert len(started) == 1 and len(stopped) == 1, (started, stopped)
    stop = stopped[0]
    assert stop["interrupted"] is True
    # Nothing is stamped after the call's end, and only what was heard counts: about
    # HEARD_S of audio (the hang-up is a timer on a loop that also paces 20 ms frames).
    assert stop["t_ns"] <= ended["t_ns"]
    heard_s = stop["played_samples"] / stop["sample_rate"]
    assert HEARD_S - 0.03 <= heard_s <= HEARD_S + 0.06 * TIME_SCALE, heard_s
    span_s = (stop["t_ns"] - started[0]["t_ns"]) / 1e9
    assert abs(span_s - heard_s) <= 0.025, (span_s, heard_s)
    assert turn["spans"]["agent_speech"]["ms"] / 1000 <= heard_s + 0.025, turn["spans"]
