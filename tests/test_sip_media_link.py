"""The SIP media link: a barge-in's flush is counted exactly, and the end of a call's
received audio is final.

``MediaLink.tx_consumed`` numbers the agent samples handed to pjmedia the way the bridge
numbers the samples it wrote; ``handed_ns`` maps one onto the other for the playback
stamps. A flush the bridge asks of ``tx`` drops what was queued at the request, on the
clock thread, while the bridge may already be writing the next block: that block stays,
and the count still matches the writer's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pjsua2 as pj
import pytest

from app.audio.ringbuffer import RingBuffer
from sip.media_port import FramePort, MediaLink, MediaStats
from sip.port import SipCallPort

pytestmark = pytest.mark.sip  # imports pjsua2


def test_a_flush_drops_what_was_queued_at_the_request_and_counts_it() -> None:
    tx = RingBuffer(64)
    link = MediaLink(RingBuffer(64), tx, MediaStats())
    tx.write(np.arange(10, dtype=np.int16))
    out = np.empty(4, dtype=np.int16)
    tx.read_into(out)  # clock thread: one frame handed over, samples 0..3
    tx.request_drop()  # bridge thread (SipCallPort.flush): samples 4..9 are the cut
    tx.write(np.array([100, 101, 102], dtype=np.int16))  # written before the clock thread runs
    tx.apply_drop()  # clock thread
    assert link.tx_consumed == 10  # 4 sent + 6 dropped, as the writer numbers them
    assert tx.available == 3
    out = np.empty(3, dtype=np.int16)
    tx.read_into(out)
    assert list(out) == [100, 101, 102]
    assert link.tx_consumed == tx.written == 13
    tx.apply_drop()  # nothing pending: no effect
    assert link.tx_consumed == 13


def _frame(pcm: np.ndarray | None) -> pj.MediaFrame:
    """A frame as pjmedia's conference bridge hands it over (no audio: type NONE, empty)."""
    f = pj.MediaFrame()
    if pcm is None:
        f.type = pj.PJMEDIA_FRAME_TYPE_NONE
        return f
    v = pj.ByteVector()
    for b in pcm.astype("<i2").tobytes():
        v.append(b)
    f.buf, f.size, f.type = v, len(v), pj.PJMEDIA_FRAME_TYPE_AUDIO
    return f


class Clock:
    """A FramePort on the SIP thread of a running endpoint, as pjmedia's clock thread
    would call it: pjsua2 objects must be made, called and freed on a pjlib thread."""

    def __init__(self, ep: Any, port: SipCallPort) -> None:
        self._run = ep.run
        self._fp: list[FramePort] = []
        self._run(lambda: self._fp.append(FramePort(port.rate, port.link)))

    def deliver(self, pcm: np.ndarray | None) -> None:
        self._run(lambda: self._fp[0].onFrameReceived(_frame(pcm)))

    def free(self) -> None:
        """What SipEndpoint does as it frees a retired port."""
        def run() -> None:
            if self._fp:
                self._fp.pop().end_rx()

        self._run(run)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Any]:
    from sip.endpoint import SipEndpoint

    ep = SipEndpoint()
    ep.start()
    yield ep
    ep.shutdown()


@pytest.fixture
def port(endpoint: Any) -> Iterator[tuple[SipCallPort, Clock]]:
    p = SipCallPort(rate=8000)
    clock = Clock(endpoint, p)
    yield p, clock
    clock.free()


def test_a_hung_up_call_is_exhausted_for_good_after_its_last_audio(
        port: tuple[SipCallPort, Clock]) -> None:
    """The far end's last audio (in the jitter buffer at the BYE) is still received, and
    ``exhausted`` waits for it; once true, a late frame cannot turn it false again (it did,
    when the clock thread delivered one more frame after the hang-up: CI seed 711106407)."""
    p, clock = port
    speech = (np.arange(160) % 50 * 100).astype(np.int16)
    clock.deliver(speech)
    p.disconnected.set()
    p.link.rx_closing = True  # SIP thread, at the disconnect (SipEndpoint._retire)
    assert len(p.read(0)) == 1
    assert not p.exhausted  # the stream may still hand over its jitter buffer
    clock.deliver(speech)  # the far end's last frame
    assert not p.exhausted
    frames = p.read(0)
    assert len(frames) == 1 and np.array_equal(frames[0].pcm, speech)
    clock.deliver(None)  # the stream is gone: nothing transmits to the port
    assert p.exhausted
    clock.deliver(speech)  # whatever comes later is not audio of this call
    assert p.exhausted and p.read(0) == []
    assert p.link.stats.errors == 0


def test_rx_ends_when_the_media_port_is_freed(
        port: tuple[SipCallPort, Clock]) -> None:
    p, clock = port
    p.link.rx_closing = True
    assert not p.exhausted  # no empty frame yet: the clock may still deliver audio
    clock.free()
    assert p.exhausted
