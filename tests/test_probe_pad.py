"""The probe pad: probe files, and a probe played into a live mic call as the caller.

The end-to-end test places a mic-mode call on the PulseAudio null sinks of
``tests/pulse.py`` against the built-in simulator, plays a rendered pad probe into it
through the bridge's caller mix, and finds the probe's text as that turn's expected
transcript (scored and filed as the turn's automatic verdict) and its audio in the left
channel of the recording.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PySide6.QtCore import Qt

from app.audio.callermix import CallerMix
from app.audio.resample import resample
from app.audio.wavio import read_wav_channels
from app.errors import ConfigError
from app.events import CallStarted, EventBase, PlaybackStopped
from app.probes.pad import (
    import_wav,
    list_probes,
    load_audio,
    render_to_pad,
    score_plays,
    store_pad_run,
)

TEXT = "Hello, can you hear me?"


def test_a_file_that_is_not_audio_is_one_line_and_stores_nothing(tmp_path: Path) -> None:
    pad = tmp_path / "probes"
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not a wav file\n")
    with pytest.raises(ConfigError) as err:
        import_wav(pad, bad, "hola", "es-MX")
    assert "\n" not in str(err.value) and "notes.wav" in str(err.value)
    assert not pad.exists() or not any(pad.iterdir())


def test_render_and_import_store_shareable_files(tmp_path: Path) -> None:
    pad = tmp_path / "probes"
    spoken = render_to_pad(pad, "Buenos días", "es_mx", "mexican", cache_dir=tmp_path / "c")
    assert spoken.wav.is_file() and (pad / f"{spoken.name}.json").is_file()
    pcm, rate = load_audio(spoken)
    assert rate == 16000 and len(pcm) > 8000
    copy = import_wav(pad, spoken.wav, "Buenos días", "es-MX", name="mine")
    shown = {p.name: p for p in list_probes(pad)}
    assert set(shown) == {spoken.name, "mine"}
    assert shown["mine"].source == "import" and shown[spoken.name].source == "tts"
    assert shown[spoken.name].language == "es-MX" and shown[spoken.name].accent == "mexican"
    assert json.loads((pad / "mine.json").read_text())["text"] == "Buenos días"
    assert copy.wav.stat().st_size > 1000


def test_caller_mix_plays_clips_in_order_across_frames() -> None:
    mix = CallerMix(16000)
    a = mix.play(np.full(500, 1000, np.int16), 16000, {"name": "a"})
    b = mix.play(np.full(100, -2000, np.int16), 16000, {"name": "b"})
    frame = np.full(320, 30000, np.int16)
    got = mix.take(320, 1_000_000_000)
    assert got is not None and (got == 1000).all() and a.start_ns == 1_000_000_000
    got = mix.take(320, 1_020_000_000)
    assert got is not None and (got[:180] == 1000).all() and (got[180:280] == -2000).all()
    assert (got[280:] == 0).all() and a.done and b.done
    assert b.start_ns == 1_020_000_000 + 180 * 1_000_000_000 // 16000
    assert mix.take(320, 1_040_000_000) is None and not mix.busy
    assert [c.meta["name"] for c in mix.plays()] == ["a", "b"]
    from app.audio.callermix import mix as add

    assert add(frame, np.full(320, 10000, np.int16)).max() == 32767


def _pad(qtbot: Any, tmp_path: Path, mix: list[CallerMix | None]) -> Any:
    from ui.views.probe_pad import ProbePad

    pad = ProbePad(tmp_path / "data" / "probes", lambda: mix[0], cache_dir=tmp_path / "cache")
    qtbot.addWidget(pad)
    pad.show()
    return pad


def test_pad_renders_imports_and_refuses_a_file_that_is_not_audio(qtbot, tmp_path) -> None:
    pad = _pad(qtbot, tmp_path, [None])
    pad.text.setText("¿Dónde está mi pedido?")
    pad.language.setText("es-MX")
    pad.accent.setText("mexican")
    qtbot.mouseClick(pad.render_button, Qt.MouseButton.LeftButton)
    assert pad.list.count() == 1 and pad.selected() is not None
    rendered = pad.selected()
    assert rendered.source == "tts" and rendered.language == "es-MX"
    assert "Dónde" in pad.list.item(0).text()

    before = sorted(p.name for p in pad.folder.iterdir())
    bad = tmp_path / "notes.wav"
    bad.write_text("<script>alert(1)</script> not audio")
    assert pad.import_file(bad) is None
    assert "notes.wav" in pad.message.text() and pad.message.textFormat() == Qt.TextFormat.PlainText
    assert sorted(p.name for p in pad.folder.iterdir()) == before and pad.list.count() == 1

    pad.text.setText("where is my order")
    pad.language.setText("en-GB")
    imported = pad.import_file(rendered.wav)
    assert imported is not None and imported.source == "import"
    assert pad.list.count() == 2 and pad.selected() == imported

    pad.text.setText("   ")
    assert pad.render_probe() is None and "empty" in pad.message.text()
    assert pad.list.count() == 2


def test_play_is_enabled_only_in_a_call_and_hands_the_probe_to_it(qtbot, tmp_path) -> None:
    mix: list[CallerMix | None] = [None]
    pad = _pad(qtbot, tmp_path, mix)
    pad.text.setText(TEXT)
    probe = pad.render_probe()
    assert probe is not None
    assert not pad.play_button.isEnabled()  # no call
    mix[0] = CallerMix(16000)
    pad.set_in_call(True)
    assert pad.play_button.isEnabled()
    with qtbot.waitSignal(pad.played, timeout=2000) as blocker:
        qtbot.mouseClick(pad.play_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [probe.name] and mix[0].busy
    clip = mix[0].take(320, 5_000_000_000)  # the call's first frame after Play
    assert clip is not None and mix[0].plays()[0].meta["text"] == TEXT
    pad.set_in_call(False)
    assert not pad.play_button.isEnabled()

    turn = {"index": 0, "user_transcript": TEXT, "agent_transcript": "Yes, I can hear you.",
            "spans": {"user_speech": {"start_ns": 5_100_000_000, "end_ns": 6_000_000_000,
                                      "ms": 900.0}}}  # fmt: skip
    scored = pad.score_call(tmp_path / "data", "20261203-200000-abcd", [turn])
    assert [(r["turn"], r["expected"], r["wer"]) for r in scored] == [(1, TEXT, 0.0)]
    assert "turn 1: WER 0.00" in pad.message.text()
    assert (tmp_path / "data" / "suite-runs" / "pad-20261203-200000-abcd.json").is_file()


def _normalized_xcorr(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Cosine similarity of ``seg`` with every window of ``x`` (loud places do not win)."""
    corr = np.correlate(x, seg, mode="valid")
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    norms = np.sqrt(np.maximum(energy[len(seg) :] - energy[: -len(seg)], 0.0))
    return corr / (norms * np.linalg.norm(seg) + 1e-9)


@pytest.mark.device
@pytest.mark.slow
def test_a_pad_probe_played_into_a_live_mic_call(pulse_server, tmp_path: Path) -> None:
    from app.audio.deviceport import DevicePort
    from app.bridge.providers import plan_provider
    from app.bridge.session import CallHandle, CallSetup, run_call
    from app.profile import load_profile
    from app.store.index import SessionIndex
    from app.store.verdicts import ingest_suite_runs
    from app.store.writer import INDEX_FILE

    root = tmp_path / "data"
    probe = render_to_pad(root / "probes", TEXT, "en-US", cache_dir=tmp_path / "cache")
    scenario = tmp_path / "one.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {"name": "one", "turns": [{"hears": TEXT, "reply": "Yes, I can hear you clearly."}]}
        )
    )
    plan, profile = plan_provider("sim", load_profile(None), scenario=str(scenario))
    port = DevicePort(input_device="pulse", output_device="pulse")
    handle = CallHandle()
    ready, replied = threading.Event(), threading.Event()
    session: dict[str, Any] = {}

    def on_event(ev: EventBase) -> None:  # the loop thread
        if isinstance(ev, CallStarted):
            session["id"] = ev.session_id
        if handle.bridge is not None and port.opened:
            ready.set()
        if isinstance(ev, PlaybackStopped) and not ev.interrupted:
            replied.set()
            handle.hangup()

    setup = CallSetup(profile=profile, plan=plan, data_root=root, source="mic")
    result: list[dict[str, Any]] = []
    runner = threading.Thread(
        target=lambda: result.append(asyncio.run(run_call(setup, port, [on_event], handle=handle)))
    )
    runner.start()
    try:
        assert ready.wait(60), "the mic call never opened its devices"
        assert handle.bridge is not None
        pcm, rate = load_audio(probe)
        mix = handle.bridge.caller_mix
        mix.play(pcm, rate, probe.meta())  # the pad's Play, from another thread
        assert replied.wait(60), "the agent never answered the probe"
    finally:
        if not replied.is_set() and handle.bridge is not None:
            loop_bridge = handle.bridge
            loop_bridge.hangup("hangup")  # best effort: the call's time limit ends it too
        runner.join(60)
    assert result, "the call did not end"
    summary = result[0]
    plays = mix.plays()
    assert len(plays) == 1 and plays[0].done

    scored = score_plays(plays, summary["turns"], port.rate)
    assert [r["turn"] for r in scored] == [1]
    assert scored[0]["expected"] == TEXT  # the probe's text is that turn's expected transcript
    assert scored[0]["heard"] == TEXT and scored[0]["wer"] == 0.0
    assert scored[0]["reply_language"] == "en"

    # Filed like a suite's checks: the turn's automatic verdict and WER in the index.
    store_pad_run(root, session["id"], scored)
    index = SessionIndex(root / INDEX_FILE)
    assert ingest_suite_runs(root, index) == 1
    auto = [v for v in index.verdicts(session["id"]) if v["source"] == "auto"]
    assert [(v["turn"], v["verdict"]) for v in auto] == [(1, "pass")]

    # The probe is in the recording's left channel, where it was played.
    folder = root / "sessions" / session["id"]
    stereo, rec_rate = read_wav_channels(folder / "audio.wav")
    t0 = json.loads((folder / "session.json").read_text())["audio_t0_ns"]
    left = stereo[:, 0].astype(np.float64)
    ref = resample(pcm, rate, rec_rate).astype(np.float64)
    # Piece by piece: where the capture stamps of the null sink's monitor jump by more
    # than a frame, the recorder inserts silence (``StereoRecorder``), so the probe need
    # not be one contiguous run of samples; most pieces must be there, in order, and the
    # first where the probe was played.
    piece = rec_rate // 20
    loud, starts = 0, []
    for at in range(0, len(ref) - piece + 1, piece):
        seg = ref[at : at + piece]
        if np.sqrt(np.mean(seg * seg)) < 300:
            continue  # a pause matches anywhere
        loud += 1
        near = _normalized_xcorr(left, seg)
        lag = int(np.argmax(near))
        if near[lag] > 0.95:
            starts.append(lag - at)  # where the probe's first sample would be
    assert loud >= 20 and len(starts) >= 0.7 * loud, (loud, len(starts))
    assert starts == sorted(starts), "pieces out of order"
    where_ms = starts[0] * 1000 / rec_rate
    played_ms = (plays[0].start_ns - t0) / 1e6
    assert where_ms == pytest.approx(played_ms, abs=20)


def test_the_window_plays_a_pad_probe_and_shows_its_automatic_verdict(qtbot, tmp_path) -> None:
    """The pad's tab in the main window: Play only during a call, into the controller's
    caller mix; when the call ends the probed turn gets its automatic verdict."""
    from app import events as E
    from app.metrics.records import TurnRecord
    from tests.conftest_qt import FakeController
    from tests.coverage_helpers import T0_NS, make_session, turn_record
    from ui.app import build_main_window

    home = tmp_path / "home"
    sid = "20261203-200500-pad1"
    folder = make_session(home, sid, [(TEXT, "Yes, I can hear you clearly.", 700.0)])
    probe = render_to_pad(home / "probes", TEXT, "en-US", cache_dir=tmp_path / "cache")

    class PadController(FakeController):
        data_root = home

        def __init__(self) -> None:
            super().__init__([E.CallStarted(t_ns=1, session_id=sid, provider="sim", model="m",
                                            session_dir=str(folder))])  # fmt: skip
            self.mix = CallerMix(16000)

        def caller_mix(self) -> CallerMix:
            return self.mix

    ctl = PadController()
    win = build_main_window(ctl, devices=lambda: [], settings=False)
    qtbot.addWidget(win)
    win.show()
    pad = win.probe_pad
    win.side_tabs.setCurrentWidget(pad)
    assert [p.name for p in pad.probes] == [probe.name]
    pad.list.setCurrentRow(0)
    assert not pad.play_button.isEnabled()  # no call yet
    win.toggle_call()
    ctl.thread.join(timeout=5)
    qtbot.waitUntil(lambda: win.verdicts.session_id == sid, timeout=5000)
    assert pad.play_button.isEnabled()
    qtbot.mouseClick(pad.play_button, Qt.MouseButton.LeftButton)
    assert ctl.mix.take(320, T0_NS - 50_000_000) is not None  # the call's loop mixes it

    turn = TurnRecord.from_dict(turn_record(0, TEXT, "Yes, I can hear you clearly.", 700.0))
    end = [E.TurnCompleted(t_ns=2, turn=turn),
           E.CallEnded(t_ns=3, session_id=sid, reason="completed")]  # fmt: skip
    core = threading.Thread(target=lambda: [cb(ev) for ev in end for cb in ctl.callbacks])
    core.start()
    core.join(5)
    qtbot.waitUntil(lambda: win.verdicts.model.auto(1) is not None, timeout=5000)
    assert win.verdicts.model.auto(1)["verdict"] == "pass"
    assert not pad.play_button.isEnabled()
    assert "turn 1: WER 0.00" in pad.message.text()


@pytest.mark.device
def test_record_captures_the_microphone_into_a_probe(qtbot, tmp_path, pulse_server) -> None:
    """Record / Stop: the default microphone (the null sink ``vmic``'s monitor, fed a
    tone) becomes a ``recorded`` probe with the typed transcript."""
    from app.audio.wavio import write_wav

    tone_wav = tmp_path / "tone.wav"
    t = np.arange(3 * 48000) / 48000
    write_wav(tone_wav, (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 48000)
    pad = _pad(qtbot, tmp_path, [None])
    pad.text.setText("testing one two three")
    pad.record_button.click()
    assert pad.record_button.text() == "Stop", pad.message.text()
    player = pulse_server.popen("paplay", "-d", "vmic", str(tone_wav))
    try:
        qtbot.waitUntil(lambda: pad.recording_peak > 4000, timeout=15_000)
    finally:
        pad.record_button.click()  # Stop
        player.wait(30)
    probe = pad.selected()
    assert probe is not None and probe.source == "recorded", pad.message.text()
    assert probe.text == "testing one two three"
    pcm, rate = load_audio(probe)
    assert rate == 16000 and np.abs(pcm).max() > 4000
