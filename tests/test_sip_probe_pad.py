"""The probe pad of the SIP window: a probe played into a live SIP call as the caller.

A real :class:`~sip.controller.SipController` answers a real baresip peer (which sends
silence) and bridges the call to the built-in simulator. The tester plays a rendered pad
probe from the SIP window's pad; after the call the probe's text is that turn's expected
transcript in the stored session (its automatic verdict), and its audio is in the caller
channel of the recording where it was played.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PySide6.QtCore import Qt

from app.events import CallStarted, Event, PlaybackStopped
from sip.config import SipAccountConfig
from tests.conftest import module_owns_threads
from tests.sip_peers import active_seconds, have, rms, run_baresip

pytestmark = [pytest.mark.sip, pytest.mark.slow]

TEXT = "Hello, can you hear me?"
SCENARIO = {"name": "sip-pad", "turns": [{"hears": TEXT, "reply": "Yes, I can hear you clearly."}]}


@pytest.fixture(scope="module")
def sip_ctl(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[Any, list[Event], Path]]:
    """One real SipController (one pjsua2 endpoint per process), no registrar."""
    from app.bridge.providers import plan_provider
    from app.bridge.session import CallSetup
    from app.profile import load_profile
    from sip.controller import SipController

    tmp = tmp_path_factory.mktemp("sippad")
    sc = tmp / "scenario.yaml"
    sc.write_text(yaml.safe_dump(SCENARIO))
    root = tmp / "data"

    def setup(call: Any) -> CallSetup:
        plan, profile = plan_provider("sim", load_profile(None), scenario=str(sc))
        return CallSetup(profile=profile, plan=plan, data_root=root, tags=["sip"])

    ctl = SipController(setup)
    module_owns_threads(request, "voiceprobe-sip", "asyncio_")
    seen: list[Event] = []
    ctl.subscribe(seen.append)
    try:
        ctl.apply_account(SipAccountConfig(uri="sip:agent@127.0.0.1")).result(15)
        yield ctl, seen, root
    finally:
        ctl.shutdown()


@pytest.mark.skipif(not have("baresip", "espeak-ng"), reason="SIP peers not installed")
def test_a_probe_played_from_the_sip_window_into_a_live_sip_call(
    qtbot: Any, sip_ctl: tuple[Any, list[Event], Path], tmp_path: Path
) -> None:
    from app.audio.resample import resample
    from app.audio.wavio import read_wav_channels, write_wav
    from app.probes.pad import load_audio, render_to_pad
    from app.store.index import SessionIndex
    from app.store.writer import INDEX_FILE
    from ui.sip_window import SipWindow

    ctl, seen, root = sip_ctl
    assert ctl.caller_mix() is None  # no call
    probe = render_to_pad(root / "probes", TEXT, "en-US", cache_dir=tmp_path / "cache")
    silence = tmp_path / "silence8k.wav"
    write_wav(silence, np.zeros(8000 * 40, np.int16), 8000)  # the far end says nothing
    win = SipWindow(ctl, remember=False, secrets=lambda _n, _v: None,
                    pad_folder=root / "probes")  # fmt: skip
    qtbot.addWidget(win)
    win.show()
    pad = win.probe_pad
    win.tabs.setCurrentWidget(pad)
    assert [p.name for p in pad.probes] == [probe.name]
    pad.list.setCurrentRow(0)
    assert not pad.play_button.isEnabled()
    first = len(seen)
    contact = ctl.account.contact.removeprefix("sip:")
    try:
        with run_baresip(tmp_path / "bob", silence, user="bob") as bob:
            win.tabs.setCurrentIndex(0)  # the phone: answer there
            bob.dial(f"sip:agent@{contact}")
            qtbot.waitUntil(win.panel.incoming.isVisible, timeout=10_000)
            win.panel.answer_button.click()
            qtbot.waitUntil(lambda: win.panel.call_status.text().startswith("confirmed"),
                            timeout=20_000)  # fmt: skip
            win.tabs.setCurrentWidget(pad)
            qtbot.waitUntil(pad.play_button.isEnabled, timeout=10_000)
            mix = ctl.caller_mix()
            assert mix is not None
            with qtbot.waitSignal(pad.played, timeout=5000):
                qtbot.mouseClick(pad.play_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(
                lambda: any(isinstance(e, PlaybackStopped) for e in seen[first:]),
                timeout=60_000,
            )  # the agent answered the probe
            win.panel.hangup_button.click()
            qtbot.waitUntil(lambda: "turn 1: WER" in pad.message.text(), timeout=30_000)
        qtbot.waitUntil(lambda: not ctl.in_call, timeout=15_000)
    finally:
        win.detach()
        win.close()
    assert ctl.caller_mix() is None
    assert not pad.play_button.isEnabled()
    sid = next(e for e in seen[first:] if isinstance(e, CallStarted)).session_id
    summary = ctl.last_summary
    assert summary is not None and summary["session_id"] == sid

    # The probe's text is that turn's expected transcript, filed as its automatic verdict.
    run = json.loads((root / "suite-runs" / f"pad-{sid}.json").read_text())
    (case,) = run["cases"]
    assert case["session_id"] == sid
    assert [(t["turn"], t["probe"], t["expected"]) for t in case["turns"]] == [
        (1, probe.name, TEXT)
    ]
    assert case["turns"][0]["heard"] == TEXT and case["turns"][0]["wer"] == 0.0
    auto = [v for v in SessionIndex(root / INDEX_FILE).verdicts(sid) if v["source"] == "auto"]
    assert [(v["turn"], v["verdict"]) for v in auto] == [(1, "pass")]

    # The probe is in the caller (left) channel of the recording, where it was played.
    (clip,) = mix.plays()
    assert clip.done and clip.start_ns is not None
    folder = root / "sessions" / sid
    stereo, rate = read_wav_channels(folder / "audio.wav")
    t0 = json.loads((folder / "session.json").read_text())["audio_t0_ns"]
    left = stereo[:, 0]
    at = (clip.start_ns - t0) * rate // 1_000_000_000
    pcm, prate = load_audio(probe)
    n = len(pcm) * rate // prate
    during, after = left[at : at + n], left[at + n + rate // 10 :]
    spoken = active_seconds(pcm, prate)
    print(f"probe at {at / rate:.2f} s: rms {rms(during):.0f} during, {rms(after):.0f} "
          f"after; active {active_seconds(during, rate):.2f} s of {spoken:.2f} s")  # fmt: skip
    assert len(during) == n and len(after) > rate // 2  # the agent answered, then hang-up
    assert active_seconds(during, rate) >= 0.8 * spoken
    # The probe itself, where its start stamp says (within a 20 ms frame).
    played = resample(pcm, prate, rate).astype(np.float64)
    slack = rate // 50
    x = left[max(0, at - slack) : at + len(played) + slack].astype(np.float64)
    likeness = {
        lag: float(np.corrcoef(x[lag : lag + len(played)], played)[0, 1])
        for lag in range(0, len(x) - len(played) + 1)
    }
    lag = max(likeness, key=lambda k: likeness[k])
    print(f"best match {likeness[lag]:.3f} at {(lag - min(at, slack)) * 1000 / rate:+.1f} ms")
    assert likeness[lag] > 0.9
    assert abs(lag - min(at, slack)) * 1000 / rate <= 20
    assert rms(after) < 100  # the far end's silence
