"""VadTracker: edges of synthesised speech, re-chunking, hangover, config errors."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.resample import resample
from app.audio.vad import VadEdge, VadTracker, speech_segments
from app.errors import ConfigError
from tests.audio_fixtures import energy_edges, espeak_pcm16k, silence

TOL = 16000 * 60 // 1000  # ±60 ms in samples at 16 kHz
UTTERANCE = "Hello, I would like to book a table for two people tonight."


def test_one_utterance_edges_within_60ms() -> None:
    x = np.concatenate([silence(1.0), espeak_pcm16k(UTTERANCE), silence(1.0)])
    true_start, true_end = energy_edges(x)
    segments = speech_segments(x, 16000)
    assert len(segments) == 1
    start, end = segments[0]
    assert abs(start - true_start) <= TOL, (start, true_start)
    assert abs(end - true_end) <= TOL, (end, true_end)


def test_two_utterances_with_a_gap_give_two_segments() -> None:
    a = espeak_pcm16k("Can you check my order status please?")
    b = espeak_pcm16k("Thanks, that is all.")
    x = np.concatenate([silence(1.0), a, silence(1.0), b, silence(1.0)])
    segments = speech_segments(x, 16000)
    assert len(segments) == 2
    first = energy_edges(x[: 16000 + len(a) + 8000])
    second = energy_edges(x[16000 + len(a) + 8000 :])
    offset = 16000 + len(a) + 8000
    assert abs(segments[0][0] - first[0]) <= TOL
    assert abs(segments[0][1] - first[1]) <= TOL
    assert abs(segments[1][0] - (second[0] + offset)) <= TOL
    assert abs(segments[1][1] - (second[1] + offset)) <= TOL


def test_streamed_in_odd_chunks_matches_whole() -> None:
    x = np.concatenate([silence(0.5), espeak_pcm16k("Good morning."), silence(0.6)])
    whole = VadTracker()
    expected = whole.feed(x) + whole.finish()
    tracker = VadTracker()
    got: list[VadEdge] = []
    rng = np.random.default_rng(3)
    i = 0
    while i < len(x):
        n = int(rng.integers(1, 700))
        got += tracker.feed(x[i : i + n])
        i += n
        assert tracker.position == min(i, len(x))
    got += tracker.finish()
    assert got == expected
    assert [e.speaking for e in got] == [True, False]


def test_speaking_property_and_finish_closes_open_speech() -> None:
    tracker = VadTracker()
    speech = espeak_pcm16k("This sentence is cut off in the middle")
    edges = tracker.feed(np.concatenate([silence(0.3), speech[: len(speech) // 2]]))
    assert [e.speaking for e in edges] == [True]
    assert tracker.speaking
    closing = tracker.finish()
    assert len(closing) == 1 and not closing[0].speaking
    assert closing[0].sample <= tracker.position
    assert not tracker.speaking


def test_quiet_noise_is_not_speech() -> None:
    rng = np.random.default_rng(0)
    hiss = (rng.normal(0, 30, 16000 * 2)).astype(np.int16)  # about -61 dBFS
    assert speech_segments(hiss, 16000) == []


def test_short_blip_shorter_than_start_ms_is_ignored() -> None:
    speech = espeak_pcm16k("Hello there")
    blip = speech[len(speech) // 3 : len(speech) // 3 + 320]  # 20 ms
    x = np.concatenate([silence(0.5), blip, silence(0.5)])
    assert speech_segments(x, 16000, start_ms=30) == []


@pytest.mark.parametrize("rate", [8000, 32000, 48000])
def test_other_rates(rate: int) -> None:
    speech = espeak_pcm16k("One two three")
    x = np.concatenate([silence(0.5, rate), resample(speech, 16000, rate), silence(0.5, rate)])
    segments = speech_segments(x, rate, frame_ms=20)
    assert len(segments) == 1
    assert abs(segments[0][0] - rate // 2) <= rate * 60 // 1000 + rate // 50


@pytest.mark.parametrize(
    "kwargs", [{"rate": 44100}, {"rate": 16000, "frame_ms": 15}, {"aggressiveness": 4}]
)
def test_bad_config_raises_config_error(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        VadTracker(**kwargs)
