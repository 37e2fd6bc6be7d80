"""A probe recorded during a call takes its text from the provider's transcription
(issue 14, item 2).

The matching rules are tested with real events and turn records; the pad widget with a
recorder over known samples (stamped on the one clock, as the microphone's is) fed real
events; and one live call: a WAV caller through the bridge to a real OpenAI-dialect
WebSocket server on loopback (the simulator's server, reached as provider ``openai`` so its
``conversation.item.input_audio_transcription.completed`` text counts as the provider's
transcription), with the pad following the call's events through the window's event bus.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PySide6.QtCore import Qt

from app.events import (
    CallEnded,
    CallStarted,
    EventBase,
    LocalSpeechStarted,
    TurnCompleted,
    UserTranscript,
)
from app.metrics.records import Span, TurnRecord
from app.probes.pad import list_probes, save_pending, set_text
from app.probes.transcribed import REASONS, SLACK_NS, CallTranscripts

MS = 1_000_000
T0 = 50_000 * MS


def _turn(index: int, start_ms: int, end_ms: int, items: tuple[str, ...] = (), text: str = "",
          ) -> TurnRecord:  # fmt: skip
    speech = Span.between(T0 + start_ms * MS, T0 + end_ms * MS, "LocalSpeechStarted",
                          "LocalSpeechStopped")  # fmt: skip
    return TurnRecord(index=index, user_transcript=text, spans={"user_speech": speech},
                      user_item_ids=items)  # fmt: skip


def _call(*events: EventBase, provider: str = "openai") -> CallTranscripts:
    heard = CallTranscripts()
    heard.feed(CallStarted(t_ns=T0, session_id="s", provider=provider, model="gpt-realtime"))
    for ev in events:
        heard.feed(ev)
    return heard


def _final(item: str, text: str, at_ms: int = 0) -> UserTranscript:
    return UserTranscript(t_ns=T0 + at_ms * MS, item_id=item, text=text, final=True)


# --- the rules -----------------------------------------------------------------------------


def test_a_recording_waits_for_the_final_transcript_then_takes_it() -> None:
    heard = _call(LocalSpeechStarted(t_ns=T0 + 1000 * MS, sample=16000))
    rec = (T0 + 900 * MS, T0 + 3000 * MS)
    # Speech started in the recording but its turn is not complete: wait.
    assert heard.match(*rec).status == "waiting"
    heard.feed(UserTranscript(t_ns=T0 + 2600 * MS, item_id="i1", text="book a", final=False))
    heard.feed(TurnCompleted(t_ns=T0 + 5000 * MS, turn=_turn(0, 1000, 2500, ("i1",), "book a")))
    assert heard.match(*rec).status == "waiting"  # only a delta so far
    heard.feed(_final("i1", " Book a table for two. ", 5200))
    got = heard.match(*rec)
    assert (got.status, got.text, got.turns) == ("found", "Book a table for two.", (1,))
    assert got.reason == ""


def test_turns_inside_are_joined_in_order_and_turns_outside_are_left_out() -> None:
    heard = _call(
        TurnCompleted(t_ns=T0, turn=_turn(0, 0, 800, ("a",))),  # before the recording
        TurnCompleted(t_ns=T0, turn=_turn(2, 6000, 7000, ("c",))),
        TurnCompleted(t_ns=T0, turn=_turn(1, 3000, 4000, ("b",))),
        TurnCompleted(t_ns=T0, turn=_turn(3, 9000, 9500, ("d",))),  # after it
        _final("a", "hello"), _final("b", "first part"), _final("c", "second part"),
        _final("d", "later"),
    )  # fmt: skip
    got = heard.match(T0 + 2000 * MS, T0 + 8000 * MS)
    assert (got.status, got.text, got.turns) == ("found", "first part second part", (2, 3))
    # Speech a little outside the interval (within the slack) still counts.
    slack_ms = SLACK_NS // MS - 50
    got = heard.match(T0 + (3000 + slack_ms) * MS, T0 + (4000 - slack_ms) * MS)
    assert (got.status, got.text) == ("found", "first part")


def test_a_turn_the_recording_cuts_is_not_used() -> None:
    heard = _call(TurnCompleted(t_ns=T0, turn=_turn(0, 1000, 4000, ("a",))), _final("a", "x y z"))
    got = heard.match(T0 + 2000 * MS, T0 + 6000 * MS)  # started speaking before Record
    assert (got.status, got.turns, got.text) == ("cut", (1,), "")
    assert "type its text" in got.reason


def test_a_scripted_transcript_is_never_used() -> None:
    heard = _call(TurnCompleted(t_ns=T0, turn=_turn(0, 1000, 2000, ("a",))),
                  _final("a", "the scenario's line"), provider="sim")  # fmt: skip
    assert heard.scripted
    got = heard.match(T0, T0 + 5000 * MS)
    assert (got.status, got.text) == ("scripted", "")
    assert "script" in got.reason and "not a transcription" in got.reason


def test_at_call_end_a_recording_without_a_transcript_is_missing() -> None:
    heard = _call(LocalSpeechStarted(t_ns=T0 + 1000 * MS, sample=0),
                  TurnCompleted(t_ns=T0, turn=_turn(0, 1000, 2000, ("a",))))  # fmt: skip
    assert heard.match(T0, T0 + 3000 * MS).status == "waiting"
    heard.feed(CallEnded(t_ns=T0 + 9000 * MS, session_id="s", reason="completed"))
    got = heard.match(T0, T0 + 3000 * MS)
    assert got.status == "missing" and got.reason == REASONS["missing"]
    assert _call(CallEnded(t_ns=T0, session_id="s", reason="hangup")).match(T0, T0 + MS).status \
        == "missing"  # fmt: skip
    # A provider that gives no item ids: the turn record's transcript, once the call ended.
    heard = _call(TurnCompleted(t_ns=T0, turn=_turn(0, 1000, 2000, (), "hola qué tal")))
    assert heard.match(T0, T0 + 3000 * MS).status == "waiting"
    heard.feed(CallEnded(t_ns=T0 + 9000 * MS, session_id="s", reason="completed"))
    assert heard.match(T0, T0 + 3000 * MS).text == "hola qué tal"


def test_a_new_call_forgets_the_last_one() -> None:
    heard = _call(TurnCompleted(t_ns=T0, turn=_turn(0, 1000, 2000, ("a",))), _final("a", "old"),
                  CallEnded(t_ns=T0, session_id="s", reason="completed"))  # fmt: skip
    heard.feed(CallStarted(t_ns=T0, session_id="t", provider="gemini", model="m2"))
    assert not heard.ended and (heard.provider, heard.model) == ("gemini", "m2")
    assert heard.match(T0, T0 + 3000 * MS).status == "waiting"


# --- the files -----------------------------------------------------------------------------


def test_a_pending_probe_is_listed_then_filled_with_where_its_text_came_from(tmp_path) -> None:
    pad = tmp_path / "probes"
    tone = (4000 * np.sin(np.arange(16000) / 5)).astype(np.int16)
    probe = save_pending(pad, tone, 16000, "en-US", "", REASONS["waiting"],
                         provider="openai", model="gpt-realtime")  # fmt: skip
    [shown] = list_probes(pad)
    assert shown.is_pending and shown.text == "" and shown.pending == REASONS["waiting"]
    assert (shown.provider, shown.source) == ("openai", "recorded")
    done = set_text(probe, "Book a table", text_source="provider", provider="openai",
                    model="gpt-realtime")  # fmt: skip
    meta = json.loads((pad / f"{probe.name}.json").read_text())
    assert meta["text"] == "Book a table" and meta["text_source"] == "provider"
    assert (meta["provider"], meta["model"], meta["pending"]) == ("openai", "gpt-realtime", "")
    assert list_probes(pad) == [done] and not done.is_pending
    typed = set_text(done, "Book a table, please")
    assert (typed.text_source, typed.provider, typed.model) == ("typed", "", "")


# --- the pad widget ------------------------------------------------------------------------


class ClipRecorder:
    """A recorder over known samples, stamped on the one clock as the microphone's is."""

    made: list[ClipRecorder] = []

    def __init__(self, pcm: np.ndarray) -> None:
        self.pcm = pcm
        self.start_ns = time.monotonic_ns()
        self.end_ns = self.start_ns
        ClipRecorder.made.append(self)

    @property
    def peak(self) -> int:
        return int(np.abs(self.pcm).max(initial=0))

    def stop(self) -> np.ndarray:
        self.end_ns = time.monotonic_ns()
        return self.pcm


def _pad(qtbot: Any, tmp_path: Path, pcm: np.ndarray) -> Any:
    from ui.views.probe_pad import ProbePad

    ClipRecorder.made.clear()
    pad = ProbePad(tmp_path / "data" / "probes", lambda: None,
                   recorder=lambda _device: ClipRecorder(pcm))  # fmt: skip
    qtbot.addWidget(pad)
    pad.show()
    return pad


TONE = (6000 * np.sin(np.arange(32000) / 4)).astype(np.int16)


def test_outside_a_call_a_recording_needs_typed_text(qtbot, tmp_path: Path) -> None:
    pad = _pad(qtbot, tmp_path, TONE)
    pad.record_button.click()
    pad.record_button.click()  # Stop, with no text typed
    assert "type the probe's text" in pad.message.text() and pad.list.count() == 0
    assert pad.message.textFormat() == Qt.TextFormat.PlainText
    pad.text.setText("testing one two")
    pad.record_button.click()
    pad.record_button.click()
    probe = pad.selected()
    assert probe is not None and (probe.text, probe.text_source) == ("testing one two", "typed")


def test_the_pad_fills_a_pending_recording_from_the_call_transcript(qtbot, tmp_path) -> None:
    pad = _pad(qtbot, tmp_path, TONE)
    pad.set_in_call(True, caller_is_mic=True)
    pad.follow(CallStarted(t_ns=time.monotonic_ns(), session_id="s", provider="openai",
                           model="gpt-realtime"))  # fmt: skip
    pad.record_button.click()
    rec = ClipRecorder.made[-1]
    spoke = time.monotonic_ns()
    pad.follow(LocalSpeechStarted(t_ns=spoke, sample=0))
    pad.record_button.click()  # Stop before the provider has transcribed anything
    probe = pad.selected()
    assert probe is not None and probe.is_pending
    assert "(pending transcript)" in pad.list.item(0).text()
    assert "waiting for the provider" in probe.pending
    assert not pad.play_button.isEnabled() and not pad.play_selected()
    assert "has no text yet" in pad.message.text()

    end = max(spoke + MS, rec.end_ns)  # within the slack after Stop
    turn = TurnRecord(index=0, spans={"user_speech": Span.between(spoke, end, "a", "b")},
                      user_item_ids=("item_1",))  # fmt: skip
    pad.follow(TurnCompleted(t_ns=end, turn=turn))
    assert pad.selected().is_pending  # the final transcript has not come yet
    pad.follow(UserTranscript(t_ns=end, item_id="item_1", text="Table for two", final=True))
    probe = pad.selected()
    assert probe is not None and probe.text == "Table for two", pad.message.text()
    assert (probe.text_source, probe.provider, probe.model) == ("provider", "openai",
                                                                 "gpt-realtime")  # fmt: skip
    assert "text from the provider's transcript" in pad.message.text()


def test_a_scripted_call_leaves_the_recording_pending_until_text_is_typed(qtbot, tmp_path):
    pad = _pad(qtbot, tmp_path, TONE)
    pad.set_in_call(True, caller_is_mic=True)
    pad.follow(CallStarted(t_ns=time.monotonic_ns(), session_id="s", provider="sim", model="m"))
    pad.record_button.click()
    pad.record_button.click()
    probe = pad.selected()
    assert probe is not None and probe.is_pending
    assert "not a transcription" in pad.message.text() and "type its text" in probe.pending
    pad.follow(CallEnded(t_ns=time.monotonic_ns(), session_id="s", reason="completed"))
    assert pad.selected().is_pending
    pad.text.setText("hello there")
    qtbot.mouseClick(pad.text_button, Qt.MouseButton.LeftButton)
    probe = pad.selected()
    assert probe is not None and (probe.text, probe.text_source) == ("hello there", "typed")
    assert not probe.is_pending


def test_at_call_end_a_recording_with_no_transcript_says_so(qtbot, tmp_path) -> None:
    pad = _pad(qtbot, tmp_path, TONE)
    pad.set_in_call(True, caller_is_mic=True)
    pad.follow(CallStarted(t_ns=time.monotonic_ns(), session_id="s", provider="openai",
                           model="gpt-realtime"))  # fmt: skip
    pad.record_button.click()
    pad.follow(LocalSpeechStarted(t_ns=time.monotonic_ns(), sample=0))
    pad.record_button.click()
    pad.follow(CallEnded(t_ns=time.monotonic_ns(), session_id="s", reason="completed"))
    probe = pad.selected()
    assert probe is not None and probe.pending == REASONS["missing"]
    assert REASONS["missing"] in pad.message.text()


# --- a live call ---------------------------------------------------------------------------

HEARS = "I would like to book a table for two tonight."


@pytest.mark.slow
def test_a_recording_in_a_live_call_takes_the_provider_transcription(
    qtbot, tmp_path: Path, monkeypatch
) -> None:
    """A WAV caller through the bridge to an OpenAI-dialect server on loopback whose input
    transcription is known; Record runs over the caller's speech (the WAV-backed recorder
    gives the caller's samples), Stop after it; the probe is filled from the call."""
    from app.audio.fileport import WavFilePort
    from app.audio.resample import resample
    from app.audio.wavio import read_wav
    from app.bridge.controller import CallController
    from app.bridge.request import CallRequest
    from app.events import LocalSpeechStopped
    from app.profile import load_profile
    from app.sim.caller import write_caller_wav
    from app.sim.scenario import load_scenario
    from app.sim.server import SimThread
    from ui.bus import EventBus

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-pad-transcript-0000")
    scenario_file = tmp_path / "one.yaml"
    reply = "Of course, a table for two tonight. At what time?"
    scenario_file.write_text(
        yaml.safe_dump({"name": "one", "turns": [{"hears": HEARS, "reply": reply}]})
    )
    scenario = load_scenario(str(scenario_file))
    wav = tmp_path / "caller.wav"
    write_caller_wav(scenario, wav)
    caller, rate = read_wav(wav)
    server = SimThread(scenario)
    url = server.start()
    controller = CallController(data_root=tmp_path / "data",
                                port_factory=lambda _r: WavFilePort.from_wav(wav))  # fmt: skip
    pad = _pad(qtbot, tmp_path, resample(caller, rate, 16000) if rate != 16000 else caller)
    bus = EventBus(pad)
    bus.event.connect(pad.follow)
    seen: dict[str, EventBase] = {}
    bus.event.connect(lambda ev: seen.setdefault(ev.kind, ev))
    controller.subscribe(bus.post)
    try:
        request = CallRequest(profile=load_profile(None), provider="openai", url=url,
                              source="test")  # fmt: skip
        host = controller.key_host_to_confirm(request)
        if host is not None:
            request = CallRequest(profile=request.profile, provider="openai", url=url,
                                  source="test", confirmed_hosts=(host,))  # fmt: skip
        pad.set_in_call(True, caller_is_mic=True)  # the WAV plays the microphone's part
        pad.record_button.click()  # Record before the caller speaks
        controller.start_call(request)
        qtbot.waitUntil(lambda: LocalSpeechStopped.__name__ in seen, timeout=60_000)
        assert "CallFailed" not in seen, seen.get("CallFailed")
        pad.record_button.click()  # Stop once the caller has finished
        probe = pad.selected()
        assert probe is not None and probe.source == "recorded", pad.message.text()
        # Pending: the turn completes only after the agent's reply (seconds) has played.
        assert probe.is_pending and "waiting for the provider" in probe.pending
        assert seen["CallStarted"].provider == "openai"  # type: ignore[attr-defined]
        qtbot.waitUntil(lambda: not pad.selected().is_pending, timeout=60_000)
        probe = pad.selected()
        assert probe.text == HEARS, pad.message.text()
        meta = json.loads((pad.folder / f"{probe.name}.json").read_text())
        assert meta["text_source"] == "provider" and meta["provider"] == "openai"
        assert meta["model"] == seen["CallStarted"].model  # type: ignore[attr-defined]
        qtbot.waitUntil(lambda: controller.last_summary is not None, timeout=60_000)
        pad.set_in_call(False)
    finally:
        controller.hangup()
        controller.wait(30)
        controller.shutdown()
        bus.close()
        server.stop()
