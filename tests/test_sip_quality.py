"""The E-model (ITU-T G.107, simplified) used for CallQuality.mos."""

from __future__ import annotations

import pytest

from sip.quality import e_model_mos, mos_from_r, r_factor

pytestmark = pytest.mark.sip


def test_perfect_narrowband_call_is_about_4_4() -> None:
    assert r_factor(0.0, 0.0) == pytest.approx(93.2)
    assert e_model_mos(0.0, 0.0) == pytest.approx(4.41, abs=0.01)


def test_delay_beyond_177_ms_costs_more() -> None:
    assert r_factor(100.0, 0.0) == pytest.approx(93.2 - 2.4)
    assert r_factor(300.0, 0.0) == pytest.approx(93.2 - 7.2 - 0.11 * (300 - 177.3))


def test_loss_lowers_mos_monotonically_and_codec_matters() -> None:
    mos = [e_model_mos(40.0, p) for p in (0, 1, 3, 5, 10, 20)]
    assert mos == sorted(mos, reverse=True)
    # G.711 with PLC, 5 % random loss: Ie_eff = 95·5/(5+25.1) = 15.8, R = 76.5
    assert e_model_mos(40.0, 5.0) == pytest.approx(3.88, abs=0.02)
    assert e_model_mos(40.0, 0.0, "GSM/8000") < e_model_mos(40.0, 0.0, "PCMU/8000")


def test_mos_bounds() -> None:
    assert mos_from_r(-5.0) == 1.0 and mos_from_r(120.0) == 4.5
    assert 1.0 <= e_model_mos(2000.0, 100.0) <= 1.5
