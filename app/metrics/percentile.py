"""The one percentile of voiceprobe: every p50/p95/p99 figure (turns, network, tools,
benchmarks, suites, coverage, the desktop's headline) comes from :func:`percentile`, so
two screens never disagree about the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) of ``values`` by linear interpolation between the
    closest ranks (numpy's default); ``None`` when there are no values.
    """
    data = sorted(values)
    if not data:
        return None
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)
