"""bridge_sip_call in-process: a pjsua2 call between two local accounts, one leg bridged
to the simulator, the other played by the test (speech in, DTMF, hang-up).

One :class:`SipEndpoint` serves the module (pjsua2 allows one per process).
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

from app.bridge.call import BridgeOptions
from app.bridge.providers import plan_provider
from app.bridge.session import CallSetup
from app.events import Event, PlaybackStopped
from app.profile import load_profile
from app.sim.caller import caller_track
from app.sim.scenario import load_scenario
from sip.config import SipAccountConfig
from sip.events import Dtmf
from tests.sip_peers import have, wait_until

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(not have("espeak-ng"), reason="espeak-ng not installed"),
]

SCENARIO = """name: bridge-one-turn
turns:
  - hears: "Hello, can you hear me?"
    reply: "Yes, I can."
"""


@pytest.fixture(scope="module")
def sip() -> Iterator[tuple[Any, Any, Any]]:
    from sip.endpoint import SipEndpoint

    ep = SipEndpoint(on_incoming=lambda call: 180, media_rate=16000)
    ep.start()
    try:
        a = ep.add_account(SipAccountConfig(uri="sip:caller@127.0.0.1"))
        b = ep.add_account(SipAccountConfig(uri="sip:agent@127.0.0.1"))
        yield ep, a, b
    finally:
        ep.shutdown()


@pytest.fixture(autouse=True)
def no_call_left(sip: tuple[Any, Any, Any]) -> Iterator[None]:
    yield
    ep = sip[0]
    for call in ep.active_calls:
        call.hangup()
    wait_until(lambda: not ep.active_calls, 5.0, "calls to end")


def _setup(tmp_path: Path, options: BridgeOptions | None = None) -> tuple[CallSetup, Any]:
    sc = tmp_path / "scenario.yaml"
    sc.write_text(SCENARIO)
    plan, profile = plan_provider("sim", load_profile(None), scenario=str(sc))
    setup = CallSetup(profile=profile, plan=plan, data_root=tmp_path / "data",
                      options=options or BridgeOptions())
    return setup, load_scenario(str(sc))


def _dial(sip: tuple[Any, Any, Any]) -> tuple[Any, Any]:
    ep, a, b = sip
    out = ep.make_call(a, f"sip:agent@{b.contact.removeprefix('sip:')}")
    incoming = ep.wait_incoming(5.0)
    assert incoming is not None and incoming.direction == "in"
    return out, incoming


def _events(summary: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(summary["session_dir"]) / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_bridged_call_records_sip_events_dtmf_and_ends_on_remote_hangup(
    tmp_path: Path, sip: tuple[Any, Any, Any]
) -> None:
    from sip.bridge import bridge_sip_call

    setup, scenario = _setup(tmp_path)
    speech, _ = caller_track(scenario, rate=16000)
    out, incoming = _dial(sip)
    marks: dict[str, float] = {}

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        played = asyncio.Event()
        digits: list[str] = []
        got_digits = asyncio.Event()

        def watch(ev: Event) -> None:  # loop thread
            if isinstance(ev, PlaybackStopped):
                played.set()
            elif isinstance(ev, Dtmf):
                digits.append(ev.digit)
                if len(digits) == 3:
                    got_digits.set()

        async def far_end() -> None:
            # Rings until the agent is ready: answered only after the session is set up.
            answered = await loop.run_in_executor(None, out.wait_confirmed, 10.0)
            assert answered
            out.port.write(speech, time.monotonic_ns())  # the caller speaks, in real time
            await asyncio.wait_for(played.wait(), 15.0)
            await loop.run_in_executor(None, out.send_dtmf, "12#")
            await asyncio.wait_for(got_digits.wait(), 5.0)
            marks["hangup"] = time.monotonic()
            out.hangup()

        peer = asyncio.create_task(far_end())
        summary = await bridge_sip_call(incoming, setup, [watch])
        marks["ended"] = time.monotonic()
        await peer
        return summary

    summary = asyncio.run(main())
    assert summary["ok"] and summary["reason"] == "remote_hangup"
    assert summary["turns"][0]["user_transcript"] == "Hello, can you hear me?"
    assert summary["turns"][0]["agent_transcript"]
    assert summary["call_quality"]["dtmf"] == "12#"
    assert summary["call_quality"]["codec"] and summary["call_quality"]["mos"] > 3.5
    assert summary["sip"]["answered"] and summary["sip"]["direction"] == "in"
    # The session ended promptly once the far end hung up.
    assert marks["ended"] - marks["hangup"] < 2.0
    events = _events(summary)
    kinds = [e["kind"] for e in events]
    states = [e["state"] for e in events if e["kind"] == "CallState"]
    assert states[0] == "incoming" and "confirmed" in states
    assert [e["digit"] for e in events if e["kind"] == "Dtmf"] == ["1", "2", "#"]
    assert kinds[0] == "CallStarted" and "CallEnded" in kinds
    delay = summary["sip_bridge_delay"]
    assert delay["provider_to_sip_out"]["count"] == 1
    assert delay["sip_in_to_provider"]["p95_ms"] < 50
    assert summary["cpu"]["loop_thread_s"] > 0


def test_session_end_hangs_up_the_call(tmp_path: Path, sip: tuple[Any, Any, Any]) -> None:
    from app.bridge.session import CallHandle
    from sip.bridge import bridge_sip_call
    from sip.events import CallState

    setup, _ = _setup(tmp_path)
    out, incoming = _dial(sip)
    handle = CallHandle()

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        def watch(ev: Event) -> None:  # loop thread: end the session once answered
            if isinstance(ev, CallState) and ev.state == "confirmed":
                loop.call_soon(handle.hangup)

        return await bridge_sip_call(incoming, setup, [watch], handle=handle)

    summary = asyncio.run(main())
    assert summary["ok"] and summary["reason"] == "hangup"
    final = out.wait_ended(5.0)  # the far end saw our BYE
    assert final.state == "disconnected"
    assert incoming.ended.is_set() and summary["sip"]["answered"]
    # Each SIP event once, although both legs share the Call-ID in this loopback call.
    states = [(e["t_ns"], e["state"]) for e in _events(summary) if e["kind"] == "CallState"]
    assert len(set(states)) == len(states)
    assert [s for _, s in states].count("confirmed") == 1


def test_caller_gone_before_answer_is_not_answered(
    tmp_path: Path, sip: tuple[Any, Any, Any]
) -> None:
    from sip.bridge import bridge_sip_call

    setup, _ = _setup(tmp_path)
    out, incoming = _dial(sip)
    out.hangup()  # CANCEL while ringing
    incoming.wait_ended(5.0)
    summary = asyncio.run(bridge_sip_call(incoming, setup, []))
    assert not summary["ok"] and summary["reason"] == "not_answered"
    assert summary["errors"][-1]["code"].startswith("sip_")
    assert np.isfinite(summary["cpu"]["wall_s"])
