"""The one percentile of voiceprobe: every p50/p95/p99 figure (turns, network, tools,
benchmarks, suites, coverage, the desktop's headline) comes from :func:`percentile`, so
two screens never disagree about the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) of ``values`` by linear interpolation between the
    closest ranks (numpy's default); ``None`` when there are no values.
    """
    return sorted_percentile(sorted(values), q)


def sorted_percentile(data: Sequence[float], q: float) -> float | None:
    """:func:`percentile` of values already sorted ascending, in O(1) (for figures kept
    sorted as they arrive, such as the desktop's live headline)."""
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def delay_figures(values_ns: Sequence[int]) -> dict[str, float | int | None]:
    """``count``, ``p50_ms``, ``p95_ms`` and ``max_ms`` of delay samples in nanoseconds (the
    figures in milliseconds, ``None`` when there are no samples)."""
    ms = [v / 1e6 for v in values_ns]
    return {
        "count": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "max_ms": max(ms) if ms else None,
    }
