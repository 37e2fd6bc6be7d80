"""count/p50/p95/max of nanosecond delay samples, in ms (the bridge's and SIP's figures)."""

from __future__ import annotations

import pytest

from app.metrics.percentile import delay_figures


def test_delay_figures_in_ms() -> None:
    figs = delay_figures([1_000_000, 3_000_000, 2_000_000])
    assert figs == {"count": 3, "p50_ms": 2.0, "p95_ms": pytest.approx(2.9), "max_ms": 3.0}


def test_delay_figures_empty() -> None:
    assert delay_figures([]) == {"count": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
