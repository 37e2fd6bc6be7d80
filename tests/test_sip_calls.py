"""Calls against real peers: baresip through kamailio both ways, rejects, sipp load, DTMF.

One :class:`SipEndpoint` serves the whole module (pjsua2 allows one per process and
aborts on a bad teardown); every test leaves no call behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sip.config import SipAccountConfig
from sip.events import CallQuality, CallState, Dtmf
from tests.sip_peers import (
    Kamailio,
    active_seconds,
    have,
    make_speech_wav,
    read_wav,
    rms,
    run_baresip,
    run_kamailio,
    run_sipp_uac,
    speech_span,
    wait_until,
)

pytestmark = [
    pytest.mark.sip,
    pytest.mark.slow,
    pytest.mark.skipif(not have("kamailio", "baresip", "sipp", "espeak-ng", "sox"),
                       reason="SIP peers not installed"),
]

PASSWORD = "call-pw-123"
RATE = 16000
CALLER_TEXT = ("Hello, this is a test call from the far end. "
               "The quick brown fox jumps over the lazy dog.")
REPLY_TEXT = "Thank you for calling. How can I help?"


class Recorder:
    """Collects endpoint events (SIP thread) for assertions on the test thread."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.cond = threading.Condition()

    def __call__(self, ev: Any) -> None:
        with self.cond:
            self.events.append(ev)
            self.cond.notify_all()

    def of(self, kind: type, **match: Any) -> list[Any]:
        with self.cond:
            return [e for e in self.events if isinstance(e, kind)
                    and all(getattr(e, k) == v for k, v in match.items())]

    def wait_for(self, kind: type, count: int = 1, timeout: float = 10.0, **match: Any) -> list:
        with self.cond:
            self.cond.wait_for(lambda: len(self.of(kind, **match)) >= count, timeout)
        return self.of(kind, **match)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("wavs")
    return {
        "caller8k": make_speech_wav(d / "caller8k.wav", CALLER_TEXT, 8000),
        "reply16k": make_speech_wav(d / "reply16k.wav", REPLY_TEXT, RATE),
        "reply8k": make_speech_wav(d / "reply8k.wav", REPLY_TEXT, 8000),
    }


@pytest.fixture(scope="module")
def registrar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    with run_kamailio(tmp_path_factory.mktemp("kamailio"), PASSWORD) as k:
        yield k


@pytest.fixture(scope="module")
def sip(registrar: Kamailio) -> Iterator[tuple[Any, Any, Recorder]]:
    from sip.endpoint import SipEndpoint

    rec = Recorder()
    ep = SipEndpoint(on_event=rec, media_rate=RATE)
    ep.start()
    try:
        acc = ep.add_account(SipAccountConfig(
            uri=registrar.aor("vp"), registrar=f"sip:{registrar.domain}", password=PASSWORD))
        st = acc.wait_registration(5.0)
        assert st is not None and st.code == 200, st
        yield ep, acc, rec
    finally:
        ep.shutdown()


@pytest.fixture(autouse=True)
def no_call_left(sip: tuple[Any, Any, Recorder]) -> Iterator[None]:
    """Each test starts with no call running and no incoming call left untaken (a later
    test's ``wait_incoming`` must get its own call, in any test order)."""
    yield
    ep = sip[0]
    for call in ep.active_calls:
        call.hangup()
    wait_until(lambda: not ep.active_calls, 5.0, "calls to end")
    while ep.wait_incoming(0) is not None:
        pass


def _pump(call: Any, seconds: float, reply: np.ndarray | None = None,
          reply_at: float = 0.3) -> tuple[np.ndarray, int | None]:
    """Read the call's port for ``seconds`` (or until it ends); write ``reply`` once."""
    frames = []
    t0 = time.monotonic()
    play_ns = None
    while time.monotonic() - t0 < seconds and not call.port.exhausted:
        frames += call.port.read(time.monotonic_ns())
        if reply is not None and play_ns is None and time.monotonic() - t0 >= reply_at:
            play_ns = call.port.write(reply, time.monotonic_ns())
        call.ended.wait(0.02)  # paces the loop; wakes at once on hang-up
    frames += call.port.read(time.monotonic_ns())
    pcm = np.concatenate([f.pcm for f in frames]) if frames else np.zeros(0, np.int16)
    stamps = [f.t_ns for f in frames]
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False)), "stamps not increasing"
    return pcm, play_ns


def _dec_recording(peer: Any) -> np.ndarray:
    wait_until(lambda: bool(peer.recordings("dec")), 5.0, "baresip recording")
    x, r = read_wav(peer.recordings("dec")[-1])
    assert r == 8000
    return x


def test_baresip_calls_voiceprobe_through_kamailio(
        tmp_path: Path, registrar: Kamailio, sip: tuple, wavs: dict[str, Path]) -> None:
    ep, acc, rec = sip
    src, _ = read_wav(wavs["caller8k"])
    reply, _ = read_wav(wavs["reply16k"])
    with run_baresip(tmp_path, wavs["caller8k"], user="bob", registrar=registrar) as bob:
        bob.dial(registrar.aor("vp"))
        call = ep.wait_incoming(5.0)
        assert call is not None and call.direction == "in"
        assert call.wait_confirmed(5.0), call.reason
        bob.wait_event("CALL_ESTABLISHED", 5.0)
        # baresip hangs up when its WAV ends: the far end hangs up here. The limit is
        # generous (a peer starved of CPU ends late); the loop stops at the hang-up.
        pcm, play_ns = _pump(call, seconds=len(src) / 8000 + 20.0, reply=reply)
        final = call.wait_ended(5.0)
        bob.wait_event("CALL_CLOSED", 5.0)
        dec = _dec_recording(bob)
    assert final.state == "disconnected" and call.port.exhausted
    assert play_ns is not None
    # Caller audio reached SipCallPort.read: the WAV's speech, at 16 kHz.
    src_span = speech_span(src, 8000)
    assert rms(pcm) > 500
    assert speech_span(pcm, RATE) == pytest.approx(src_span, rel=0.2)
    assert active_seconds(pcm, RATE) > 0.5 * active_seconds(src, 8000)
    # Agent audio written to the port was recorded by baresip.
    reply_span = speech_span(reply, RATE)
    assert rms(dec) > 300
    assert speech_span(dec, 8000) == pytest.approx(reply_span, rel=0.2)
    # RTP statistics were reported for the call.
    q = rec.of(CallQuality, call_id=call.call_id)
    assert q, "no CallQuality event"
    assert q[-1].codec == "PCMU/8000" and q[-1].loss_pct < 1.0
    assert 0.0 <= q[-1].jitter_ms < 20.0 and q[-1].mos > 4.0
    assert call.port.stats.errors == 0
    # The clock thread delivered 20 ms frames steadily; the callbacks stayed cheap.
    jit = call.port.stats.jitter_summary()
    cost = call.port.stats.cost_summary()
    print(f"frame interval {jit}; callback cost {cost}")
    assert jit["mean_ms"] == pytest.approx(20.0, abs=1.0) and jit["p99_ms"] < 60.0
    assert cost["rx_mean_us"] < 2000 and cost["tx_mean_us"] < 2000
    states = [e.state for e in rec.of(CallState, call_id=call.call_id)]
    assert states[0] == "incoming" and "confirmed" in states and states[-1] == "disconnected"


def test_voiceprobe_calls_baresip_and_hangs_up(
        tmp_path: Path, registrar: Kamailio, sip: tuple, wavs: dict[str, Path]) -> None:
    ep, acc, rec = sip
    reply, _ = read_wav(wavs["reply16k"])
    with run_baresip(tmp_path, wavs["caller8k"], user="carol", registrar=registrar) as carol:
        call = ep.make_call(acc, registrar.aor("carol"))
        assert call.direction == "out"
        assert call.wait_confirmed(5.0), f"{call.code} {call.reason}"
        carol.wait_event("CALL_ESTABLISHED", 5.0)
        reply_s = len(reply) / RATE
        pcm, _ = _pump(call, seconds=reply_s + 1.0, reply=reply, reply_at=0.2)
        assert not call.ended.is_set(), "far end hung up too early"
        assert call.port.queued_samples == 0
        call.port.stop()  # hang-up from our side
        final = call.wait_ended(5.0)
        closed = carol.wait_event("CALL_CLOSED", 5.0)
        dec = _dec_recording(carol)
    assert final.state == "disconnected"
    assert closed["type"] == "CALL_CLOSED"
    assert rms(pcm) > 500 and active_seconds(pcm, RATE) > 1.0
    assert speech_span(dec, 8000) == pytest.approx(speech_span(reply, RATE), rel=0.2)


def test_rejections_give_clear_status_and_endpoint_stays_usable(
        tmp_path: Path, registrar: Kamailio, sip: tuple, wavs: dict[str, Path]) -> None:
    ep, acc, rec = sip
    # 404: nobody registered under this AOR.
    c404 = ep.make_call(acc, registrar.aor("nobody"))
    st = c404.wait_ended(5.0)
    assert (st.state, st.code) == ("disconnected", 404) and st.reason
    # 486: the far end rejects the ringing call.
    with run_baresip(tmp_path / "busy", wavs["caller8k"], user="dave",
                     registrar=registrar, answermode="manual") as dave:
        c486 = ep.make_call(acc, registrar.aor("dave"))
        dave.wait_event("CALL_INCOMING", 5.0)
        dave.hangup()
        st = c486.wait_ended(5.0)
        assert st.code == 486 and st.reason
    # 488: no codec in common (baresip offers only G.726).
    with run_baresip(tmp_path / "g726", wavs["caller8k"], user="erin", registrar=registrar,
                     codecs="G726-32/8000/1", extra_modules=("g726",)) as erin:
        c488 = ep.make_call(acc, registrar.aor("erin"))
        st = c488.wait_ended(5.0)
        assert st.code == 488 and st.reason
        # ... and in the other direction pjsua answers 488 itself, before any callback.
        erin.dial(registrar.aor("vp"))
        erin.wait_event("CALL_CLOSED", 5.0)
        assert not ep.active_calls
    # A bad URI is an error, not a crash.
    from app.errors import SipError

    with pytest.raises(SipError, match="cannot dial"):
        ep.make_call(acc, "not a uri")
    # Still usable: a normal call connects.
    with run_baresip(tmp_path / "ok", wavs["caller8k"], user="frank", registrar=registrar):
        ok = ep.make_call(acc, registrar.aor("frank"))
        assert ok.wait_confirmed(5.0)
        ok.hangup()
        assert ok.wait_ended(5.0).state == "disconnected"


def test_dtmf_between_two_accounts(sip: tuple) -> None:
    ep, _, rec = sip
    a = ep.add_account(SipAccountConfig(uri="sip:dtmf-a@127.0.0.1"))
    b = ep.add_account(SipAccountConfig(uri="sip:dtmf-b@127.0.0.1"))
    try:
        host_port = b.contact.removeprefix("sip:")
        call = ep.make_call(a, f"sip:dtmf-b@{host_port}")
        assert call.wait_confirmed(5.0), call.reason
        wait_until(lambda: len(ep.active_calls) == 2 and all(
            c.confirmed.is_set() for c in ep.active_calls), 5.0, "both legs")
        before = len(rec.of(Dtmf))  # earlier tests' calls sent digits too (sipp's '1')
        call.send_dtmf("12#")
        got = rec.wait_for(Dtmf, count=before + 3, timeout=5.0)
        assert "".join(e.digit for e in got[before:]) == "12#"
        call.hangup()
        call.wait_ended(5.0)
    finally:
        a.remove()
        b.remove()


def test_sipp_four_concurrent_calls(tmp_path: Path, sip: tuple) -> None:
    ep, _, rec = sip
    local = ep.add_account(SipAccountConfig(uri="sip:load@127.0.0.1"))
    try:
        target = local.contact.removeprefix("sip:")
        res = run_sipp_uac(tmp_path, target, calls=4, concurrent=4, service="load")
        assert res.returncode == 0, res.stdout + res.stderr
        new = [c for c in ep.recent_calls if c.direction == "in" and "sipp@" in c.remote_uri]
        assert len(new) == 4, [c.remote_uri for c in ep.recent_calls]
        for c in new:
            assert c.wait_ended(5.0).state == "disconnected"
            assert c.confirmed.is_set()
            assert c.port.stats.errors == 0 and c.port.stats.rx_frames > 100
    finally:
        local.remove()
