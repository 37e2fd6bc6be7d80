"""The SIP media link's barge-in flush: what it drops is counted exactly.

``MediaLink.tx_consumed`` numbers the agent samples handed to pjmedia the way the bridge
numbers the samples it wrote; ``handed_ns`` maps one onto the other for the playback
stamps. A flush the bridge asks of ``tx`` drops what was queued at the request, on the
clock thread, while the bridge may already be writing the next block: that block stays,
and the count still matches the writer's.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.ringbuffer import RingBuffer
from sip.media_port import MediaLink, MediaStats

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
