"""Mic-mode calls against the simulator with a room echo between speaker and mic.

The agent's replies play loud through the port's speaker (``vsink``); the rig
(tests/echo_rig.py) sends them back into the microphone through a simulated room, mixed
with the caller's lines. With echo cancellation the agent never interrupts itself (no
barge-in over six turns); without it, its own echo cuts it off.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from app.audio.aec import AudioProcessing
from app.audio.processing.room import block_erle_db
from app.audio.wavio import read_wav, read_wav_channels
from app.bridge.controller import CallController
from app.bridge.request import CallRequest
from app.events import CallEnded, Event, Notice, TurnCompleted
from app.profile import load_profile
from app.sim.caller import caller_track
from app.sim.scenario import load_scenario
from tests.echo_rig import RIG_RATE, EchoRig

#: Echo figures need a device that never underflows: an overloaded CPU starves PortAudio
#: and the canceller re-converges, so these run alone (serial phase, scripts/test.sh).
pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.serial]

LINES = [
    ("Hi, I'd like to check my order.", "Sure. Your order shipped this morning."),
    ("When will it arrive?", "It should arrive on Thursday afternoon."),
    ("Can I change the address?", "Yes, I can update the delivery address for you."),
    ("Please use my office.", "Done. It will go to your office instead."),
    ("Thank you very much.", "You're welcome. Anything else today?"),
    ("No, that's all.", "Great, have a lovely day. Goodbye."),
]


def _call(pulse_server, tmp_path: Path, processing, turns: int):
    from app.audio.deviceport import DevicePort

    scenario_path = tmp_path / "talk.yaml"
    scenario_path.write_text(
        yaml.safe_dump(
            {"name": "talk", "turns": [{"hears": h, "reply": r} for h, r in LINES[:turns]]}
        )
    )
    # Lines start a second after each reply is expected to end (room and device latency).
    track, lines = caller_track(load_scenario(str(scenario_path)), RIG_RATE, endpointing_ms=1500)
    barge_ins: list[Notice] = []
    done = threading.Event()
    completed: set[int] = set()

    def on_event(ev: Event) -> None:
        if isinstance(ev, Notice) and ev.message.startswith("barge-in"):
            barge_ins.append(ev)
        if isinstance(ev, TurnCompleted):
            completed.add(ev.turn.index)
            if len(completed) >= turns:
                done.set()
        if isinstance(ev, CallEnded):
            done.set()

    controller = CallController(data_root=tmp_path / "data")
    controller.subscribe(on_event)
    port = DevicePort(input_device="pulse", output_device="pulse", processing=processing)
    rig = EchoRig(pulse_server, delay_ms=60, gain_db=-6)
    rig.start()
    try:
        controller.start_call(
            CallRequest(
                profile=load_profile(None),
                provider="sim",
                scenario=str(scenario_path),
                port=port,
            )
        )
        rig.say(track)
        done.wait(20 + 8 * turns)
        controller.hangup()
        summary = controller.wait(30)
    finally:
        controller.shutdown()
        rig.stop()
    assert summary is not None and rig.said_at
    # A barge-in while the caller speaks is real; any other is the agent's own echo.
    t0 = rig.said_at[0]
    spoken = [
        (t0 + u.start * 10**9 // RIG_RATE, t0 + u.end * 10**9 // RIG_RATE + 400_000_000)
        for u in lines
    ]
    false = [b for b in barge_ins if not any(a <= b.t_ns <= e for a, e in spoken)]
    return summary, false, port


def test_six_turns_with_aec_have_no_false_barge_in(pulse_server, tmp_path: Path) -> None:
    summary, false, port = _call(pulse_server, tmp_path, AudioProcessing(), 6)
    print(f"false barge-ins with AEC over {len(summary['turns'])} turns: {len(false)}")
    print(f"reference gaps {port.reference_gaps}, xruns {port.xruns()}")
    assert port.processing_state == "echo cancellation"
    assert len(summary["turns"]) >= 6
    assert [b.message for b in false] == []
    # Both sides of the processor are in the session folder, on one timeline.
    folder = Path(summary["session_dir"])
    raw, rate = read_wav(folder / "mic_raw.wav")
    stereo, _ = read_wav_channels(folder / "audio.wav")
    # mic_raw.wav ends with the last caller frame; audio.wav may run on with the agent.
    assert rate == 16000 and 0 < len(raw) <= len(stereo)
    n = min(len(raw), len(stereo))
    # Where the agent plays (right channel loud) and the caller is quiet, the raw mic is
    # the echo and what was sent is what is left of it.
    erle = block_erle_db(raw[:n], stereo[:n, 0], 1600)
    agent_loud = np.sqrt(
        np.mean(stereo[: n // 1600 * 1600, 1].astype(np.float64).reshape(-1, 1600) ** 2, axis=1)
    ) > 1000
    echo_blocks = erle[agent_loud & ~np.isnan(erle)]
    print(f"ERLE in the call: median {np.median(echo_blocks):.1f} dB over {len(echo_blocks)}")
    assert len(echo_blocks) > 20
    assert float(np.median(echo_blocks)) >= 25.0

def test_without_aec_the_agent_interrupts_itself(pulse_server, tmp_path: Path) -> None:
    summary, false, port = _call(pulse_server, tmp_path, None, 2)
    print(f"false barge-ins without AEC over {len(summary['turns'])} turns: {len(false)}")
    assert port.processing_state == "off"
    assert len(false) > 0
