"""PlayoutBuffer: order, segments, first flags, barge-in cut, discard."""

from __future__ import annotations

import numpy as np

from app.audio.playout import PlayedSegment, PlayoutBuffer


def chunk(value: int, n: int) -> np.ndarray:
    return np.full(n, value, np.int16)


def test_pull_returns_exactly_n_with_segments_and_first_flags() -> None:
    pb = PlayoutBuffer(16000)
    pb.push("a", chunk(1, 300))
    pb.push("a", chunk(2, 100))
    pb.push("b", chunk(3, 150))
    assert pb.queued_samples == 550 and pb.current_item == "a"

    block, segs = pb.pull(320)
    assert len(block) == 320 and (block[:300] == 1).all() and (block[300:] == 2).all()
    assert segs == [PlayedSegment("a", 0, 320, True)]

    block, segs = pb.pull(320)
    assert segs == [PlayedSegment("a", 0, 80, False), PlayedSegment("b", 80, 150, True)]
    assert (block[:80] == 2).all() and (block[80:230] == 3).all() and (block[230:] == 0).all()
    assert pb.queued_samples == 0 and pb.current_item is None
    assert (pb.played_samples("a"), pb.received_samples("a")) == (400, 400)
    assert pb.played_samples("b") == 150

    block, segs = pb.pull(160)
    assert segs == [] and not block.any()


def test_cut_reports_played_and_discards() -> None:
    pb = PlayoutBuffer(24000)
    pb.push("a", chunk(1, 1000))
    pb.push("b", chunk(2, 500))
    pb.push("c", chunk(3, 500))
    pb.pull(480)
    assert pb.cut() == [("a", 480), ("b", 0), ("c", 0)]
    assert pb.queued_samples == 0 and pb.current_item is None
    pb.push("a", chunk(1, 480))  # late chunk of a cut item: ignored
    assert pb.queued_samples == 0 and pb.received_samples("a") == 1000
    assert pb.played_ms("a") == 20
    pb.push("d", chunk(4, 100))  # a new item plays normally
    _, segs = pb.pull(100)
    assert segs == [PlayedSegment("d", 0, 100, True)]
    assert pb.cut() == []


def test_cut_skips_fully_played_items() -> None:
    pb = PlayoutBuffer(16000)
    pb.push("a", chunk(1, 100))
    pb.push("b", chunk(2, 100))
    pb.pull(150)
    assert pb.cut() == [("b", 50)]
    assert not pb.is_discarded("a") and pb.is_discarded("b")


def test_discard_one_item() -> None:
    pb = PlayoutBuffer(16000)
    pb.push("a", chunk(1, 100))
    pb.push("b", chunk(2, 100))
    pb.push("a", chunk(1, 100))
    pb.pull(50)
    pb.discard("a")
    assert pb.queued_samples == 100 and pb.current_item == "b"
    pb.push("a", chunk(1, 10))
    block, segs = pb.pull(100)
    assert (block == 2).all() and segs == [PlayedSegment("b", 0, 100, True)]


def test_interleaved_items_give_separate_segments() -> None:
    pb = PlayoutBuffer(16000)
    pb.push("a", chunk(1, 10))
    pb.push("b", chunk(2, 10))
    pb.push("a", chunk(1, 10))
    _, segs = pb.pull(30)
    assert segs == [
        PlayedSegment("a", 0, 10, True),
        PlayedSegment("b", 10, 10, True),
        PlayedSegment("a", 20, 10, False),
    ]
