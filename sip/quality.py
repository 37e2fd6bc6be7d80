"""Call quality: the E-model (ITU-T G.107) from loss and delay, and RTP stats to numbers.

:func:`e_model_mos` is pure. :func:`sample_quality` reads pjsua2 stream statistics and
must run on the SIP thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Equipment impairment ``Ie`` and packet-loss robustness ``Bpl`` per codec (ITU-T G.113
#: Appendix I; G.711 and G.722 with packet loss concealment, as pjmedia runs PLC).
CODEC_IMPAIRMENT: dict[str, tuple[float, float]] = {
    "PCMU": (0.0, 25.1),
    "PCMA": (0.0, 25.1),
    "G722": (0.0, 25.1),
    "GSM": (20.0, 10.0),
    "ILBC": (11.0, 32.0),
    "SPEEX": (11.0, 20.0),
    "L16": (0.0, 4.3),
}
_DEFAULT_IMPAIRMENT = (10.0, 10.0)


def r_factor(one_way_delay_ms: float, loss_pct: float, ie: float = 0.0, bpl: float = 25.1,
             burst_r: float = 1.0) -> float:
    """Transmission rating ``R = 93.2 − Id − Ie_eff`` (G.107 simplified, defaults elsewhere).

    ``Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)`` for one-way delay ``d`` (ms), and
    ``Ie_eff = Ie + (95 − Ie)·Ppl / (Ppl/BurstR + Bpl)`` for packet loss ``Ppl`` (%).
    """
    d = max(0.0, one_way_delay_ms)
    idd = 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    ppl = min(max(0.0, loss_pct), 100.0)
    ie_eff = ie + (95.0 - ie) * ppl / (ppl / burst_r + bpl)
    return 93.2 - idd - ie_eff


def mos_from_r(r: float) -> float:
    """Map an R factor to a MOS (G.107 Annex B): 1.0 below 0, 4.5 above 100."""
    if r <= 0.0:
        return 1.0
    if r >= 100.0:
        return 4.5
    return 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)


def e_model_mos(one_way_delay_ms: float, loss_pct: float, codec: str = "PCMU") -> float:
    """Estimated MOS of a call with the given one-way delay (ms), loss (%) and codec."""
    name = codec.split("/")[0].upper()
    ie, bpl = CODEC_IMPAIRMENT.get(name, _DEFAULT_IMPAIRMENT)
    return round(mos_from_r(r_factor(one_way_delay_ms, loss_pct, ie, bpl)), 3)


@dataclass(frozen=True, slots=True)
class QualitySample:
    """Numbers read from one audio stream (see :class:`sip.events.CallQuality`)."""

    codec: str
    jitter_ms: float
    loss_pct: float
    rtt_ms: float | None
    mos: float
    rx_packets: int


def sample_quality(call: Any, med_idx: int) -> QualitySample:
    """Read pjsua2 ``StreamInfo``/``StreamStat`` of ``call``'s audio stream ``med_idx``.

    Runs on the SIP thread only. One-way delay for the E-model is half the RTCP round trip
    (0 before the first report) plus the jitter buffer's mean delay plus one 20 ms frame of
    packetisation.
    """
    info = call.getStreamInfo(med_idx)
    stat = call.getStreamStat(med_idx)
    codec = f"{info.codecName}/{info.codecClockRate}"
    rtcp = stat.rtcp
    rx = rtcp.rxStat
    pkt, lost = int(rx.pkt), int(rx.loss)
    loss_pct = 100.0 * lost / (pkt + lost) if pkt + lost > 0 else 0.0
    jitter_ms = float(rx.jitterUsec.mean) / 1000.0 if rx.jitterUsec.n > 0 else 0.0
    rtt_ms = float(rtcp.rttUsec.mean) / 1000.0 if rtcp.rttUsec.n > 0 else None
    jb_ms = float(stat.jbuf.avgDelayMsec)
    delay = (rtt_ms or 0.0) / 2.0 + jb_ms + 20.0
    return QualitySample(
        codec=codec,
        jitter_ms=round(jitter_ms, 3),
        loss_pct=round(loss_pct, 3),
        rtt_ms=None if rtt_ms is None else round(rtt_ms, 3),
        mos=e_model_mos(delay, loss_pct, info.codecName),
        rx_packets=pkt,
    )
