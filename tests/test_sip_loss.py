"""Call quality under packet loss: a relay on the RTP path drops every 5th packet.

voiceprobe dials baresip through :class:`tests.sip_peers.LossyRelay`, which rewrites the
INVITE's SDP so that baresip's RTP toward voiceprobe passes through it. The same call
without drops is the baseline. One :class:`SipEndpoint` serves the module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sip.config import SipAccountConfig
from sip.events import CallQuality
from tests.sip_peers import HOST, LossyRelay, have, make_speech_wav, run_baresip, wait_until

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(not have("baresip", "espeak-ng", "sox"), reason="SIP peers not installed"),
]

CALL_SECONDS = 4.0
CALLER_TEXT = "One two three four five six seven eight nine ten. " * 3


class Qualities:
    """Collects CallQuality events (SIP thread)."""

    def __init__(self) -> None:
        self.events: list[CallQuality] = []
        self.cond = threading.Condition()

    def __call__(self, ev: Any) -> None:
        if isinstance(ev, CallQuality):
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()

    def of(self, call_id: str) -> list[CallQuality]:
        with self.cond:
            return [e for e in self.events if e.call_id == call_id]


@pytest.fixture(scope="module")
def sip() -> Iterator[tuple[Any, Any, Qualities]]:
    from sip.endpoint import SipEndpoint

    q = Qualities()
    ep = SipEndpoint(on_event=q, media_rate=16000, quality_interval=1.0)
    ep.start()
    try:
        acc = ep.add_account(SipAccountConfig(uri="sip:loss@127.0.0.1"))
        yield ep, acc, q
    finally:
        ep.shutdown()


@pytest.fixture(scope="module")
def caller_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_speech_wav(tmp_path_factory.mktemp("wav") / "caller.wav", CALLER_TEXT, 8000)


def _call_through_relay(tmp: Path, sip: tuple[Any, Any, Qualities], wav: Path,
                        drop_every: int) -> tuple[CallQuality, LossyRelay]:
    ep, acc, q = sip
    with run_baresip(tmp, wav, user="bob") as bob, \
            LossyRelay((HOST, bob.sip_port), drop_every) as relay:
        call = ep.make_call(acc, f"sip:bob@{HOST}:{relay.sip_port}")
        assert call.wait_confirmed(5.0), f"{call.code} {call.reason}"
        # Let RTP flow; the call's own end is the synchronisation point.
        assert not call.ended.wait(CALL_SECONDS), "far end hung up early"
        wait_until(lambda: bool(q.of(call.call_id)), 5.0, "a CallQuality sample")
        call.hangup()
        call.wait_ended(5.0)
    samples = q.of(call.call_id)
    assert samples, "no CallQuality for the call"
    assert call.port.stats.errors == 0
    return samples[-1], relay


def test_loss_figure_follows_injected_loss(
        tmp_path: Path, sip: tuple[Any, Any, Qualities], caller_wav: Path) -> None:
    clean, relay0 = _call_through_relay(tmp_path / "clean", sip, caller_wav, drop_every=0)
    lossy, relay5 = _call_through_relay(tmp_path / "lossy", sip, caller_wav, drop_every=5)
    print(f"clean: {clean}; relay forwarded {relay0.forwarded}")
    print(f"lossy: {lossy}; relay forwarded {relay5.forwarded} dropped {relay5.dropped}")
    # The RTP really went through the relay, and the relay really dropped 1 in 5.
    assert relay0.forwarded > 100 and relay0.dropped == 0
    assert relay5.forwarded > 100
    injected = 100.0 * relay5.dropped / (relay5.dropped + relay5.forwarded)
    assert injected == pytest.approx(20.0, abs=1.0)
    assert clean.loss_pct < 1.0
    assert lossy.loss_pct == pytest.approx(injected, abs=5.0)
    assert clean.codec == lossy.codec == "PCMU/8000"
    # E-model: 20 % random loss on G.711 with PLC costs about 1.8 MOS points.
    assert clean.mos > 4.0
    assert lossy.mos < clean.mos - 1.0
    assert 1.0 <= lossy.mos < 3.2
