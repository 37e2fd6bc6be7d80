"""Listen-in against a sound card on another clock: the call's frames (its RTP clock) are
fed to :meth:`sip.listen.ListenIn.caller` from a thread paced 800 ppm fast or slow by
``time.monotonic``, while the ``vsink`` null sink drains the ring on the daemon's clock.

Uncompensated, the ring gains or loses 0.8 ms a second, and only a dropped block (a
click, past ``MAX_AHEAD_MS``) or a re-prebuffer after running dry (a gap) bounds it. With
the drift compensation the ring stays near its level: never more than 100 ms ahead, no
block dropped, no underrun after the start, and the measured drift is the rig's.

No pjsua2 here: :class:`~sip.listen.ListenIn` is fed directly.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.pulse import PulseServer

# Serial: the drift figure is coarse, and load skews it further (docs/audio.md).
pytestmark = [pytest.mark.device, pytest.mark.slow, pytest.mark.serial]

PORT_RATE = 16000
FRAME = PORT_RATE // 50  # one 20 ms call frame
#: How long the call's frames are fed (s).
LISTEN_S = 40.0


def _feed(listen: object, ppm: float, seconds: float, stop: threading.Event) -> None:
    """Call ``listen.caller`` with a continuous tone, one 20 ms frame per period of a clock
    ``ppm`` fast (frame ``k`` due at ``t0 + k * 0.02 / (1 + ppm / 1e6)``: absolute
    deadlines, so a late wake-up never accumulates)."""
    period = 0.020 / (1.0 + ppm / 1e6)
    t = np.arange(int(seconds / 0.020) * FRAME) / PORT_RATE
    tone = (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    t0 = time.monotonic()
    for k in range(len(tone) // FRAME):
        if stop.wait(max(0.0, t0 + k * period - time.monotonic())):  # pacing, not sync
            return
        listen.caller(tone[k * FRAME : (k + 1) * FRAME])  # type: ignore[attr-defined]


#: The drift figure's range: the right sign, within this factor of the truth either way.
#: The ring's level cannot see PulseAudio's own stream buffer, which wanders by tens of
#: milliseconds over the run (10 ms over 40 s is 250 ppm): on 2026-12-04 eight readings
#: of a true ±800 ppm ran from 0.40x to 1.85x of it, alone or beside other tests, so the
#: figure is a coarse one (docs/audio.md). The queue bounds below are held exactly.
DRIFT_FACTOR = 2.5


@pytest.mark.parametrize("ppm", [800.0, -800.0], ids=["call-fast", "call-slow"])
def test_listen_in_ring_stays_bounded_against_a_drifting_call_clock(
    pulse_server: PulseServer, ppm: float
) -> None:
    from sip.listen import ListenIn

    # The sink's clock against the call's, as ListenIn.drift_ppm counts it (positive: the
    # sound card drains faster than the call feeds it).
    true_ppm = (1.0 / (1.0 + ppm / 1e6) - 1.0) * 1e6
    listen = ListenIn(PORT_RATE, device="pulse")  # the default sink: vsink
    listen.start()
    stop = threading.Event()
    feeder = threading.Thread(
        target=_feed, args=(listen, ppm, LISTEN_S, stop), name="rtp-clock-feeder"
    )
    try:
        feeder.start()
        feeder.join(LISTEN_S + 30)
        assert not feeder.is_alive(), "the feeder fell behind"
    finally:
        stop.set()
        feeder.join(5)
        listen.stop()
    print(
        f"call {ppm:+.0f} ppm: drift {listen.drift_ppm:+.1f} ppm (true {true_ppm:+.1f}); "
        f"peak {listen.peak_ahead_ms:.1f} ms ahead, underruns {listen.underruns}, "
        f"dropped {listen.dropped}, errors {listen.errors}"
    )
    assert listen.errors == 0
    assert listen.peak_ahead_ms <= 100.0
    assert listen.dropped == 0
    assert listen.underruns == 0
    ratio = listen.drift_ppm / true_ppm
    assert 1 / DRIFT_FACTOR <= ratio <= DRIFT_FACTOR, ratio
