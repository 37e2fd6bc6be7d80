"""RingBuffer: FIFO order, wrap-around, overrun counts, zero padding, two-thread stress."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.audio.ringbuffer import RingBuffer


def test_fifo_and_wrap_around() -> None:
    rb = RingBuffer(10)
    assert (rb.available, rb.free) == (0, 10)
    assert rb.write(np.arange(7, dtype=np.int16)) == 7
    assert list(rb.read(5)) == [0, 1, 2, 3, 4]
    assert rb.write(np.arange(7, 14, dtype=np.int16)) == 7  # wraps
    assert (rb.available, rb.free) == (9, 1)
    assert list(rb.read(100)) == list(range(5, 14))
    assert rb.available == 0


def test_overrun_drops_excess_and_counts() -> None:
    rb = RingBuffer(8)
    assert rb.write(np.ones(5, np.int16)) == 5
    assert rb.write(np.full(6, 2, np.int16)) == 3
    assert rb.overruns == 3
    assert rb.write(np.ones(4, np.int16)) == 0
    assert rb.overruns == 7
    assert list(rb.read(8)) == [1] * 5 + [2] * 3


def test_read_into_zero_pads_a_short_block() -> None:
    rb = RingBuffer(16)
    rb.write(np.array([5, 6, 7], np.int16))
    out = np.full(5, 99, np.int16)
    assert rb.read_into(out) == 3
    assert list(out) == [5, 6, 7, 0, 0]
    assert rb.read_into(np.empty(0, np.int16)) == 0
    rb.write(np.arange(4, dtype=np.int16))
    out = np.empty(4, np.int16)
    assert rb.read_into(out) == 4 and list(out) == [0, 1, 2, 3]


def test_a_drop_keeps_what_was_written_after_the_request() -> None:
    rb = RingBuffer(8)
    rb.write(np.arange(3, dtype=np.int16))
    rb.request_drop()  # writer: drop the 3 samples so far
    rb.write(np.array([7, 8], dtype=np.int16))  # written after the request: kept
    assert rb.kept == 2 and rb.available == 5  # the reader has not honoured it yet
    assert rb.apply_drop() == 3  # the position dropped up to
    assert rb.available == 2 and rb.free == 6 and rb.consumed == 3
    assert list(rb.read(5)) == [7, 8]
    assert rb.apply_drop() is None  # already honoured
    assert rb.written == 5 and rb.consumed == 5


def test_clear() -> None:
    rb = RingBuffer(4)
    rb.write(np.arange(3, dtype=np.int16))
    rb.clear()
    assert rb.available == 0 and rb.free == 4
    assert len(rb.read(3)) == 0


def test_bad_capacity() -> None:
    with pytest.raises(ValueError):
        RingBuffer(0)


def test_two_thread_stress_keeps_order_without_loss() -> None:
    total = 100_000
    rb = RingBuffer(1000)
    data = (np.arange(total) % 32000).astype(np.int16)
    received = np.empty(total, np.int16)
    got = 0
    done = threading.Event()

    def producer() -> None:
        pos = 0
        rng = np.random.default_rng(1)
        while pos < total:
            n = min(int(rng.integers(1, 300)), total - pos, rb.free)
            pos += rb.write(data[pos : pos + n])
        done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    rng = np.random.default_rng(2)
    block = np.empty(400, np.int16)
    while got < total:
        want = int(rng.integers(1, 400))
        n = rb.read_into(block[:want])
        received[got : got + n] = block[:n]
        got += n
        if n == 0 and done.is_set() and rb.available == 0:
            break
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert got == total
    assert rb.overruns == 0
    assert np.array_equal(received, data)
