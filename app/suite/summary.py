"""Aggregates of a suite run: per language, per language x condition, and overall (pure).

Figures of a group of cases (rules in ``docs/suites.md``) count only the cases that ran to
an end: an *interrupted* case (Ctrl-C, SIGTERM mid-call) has no verdict, so it is left out
of every figure below (its finished turns are still scored in its own result and judge
its session's turns); the run's summary counts it in ``interrupted_cases``.

- ``pass_rate``: passed cases / cases, in percent;
- ``mean_wer``: mean of the cases' ``wer`` (each the mean over its turns);
- ``reply_language_match``: percent of the cases whose whole agent transcript was judged
  to be in the case's language, over the cases that could be judged (None if none);
- ``v2v_p50_ms`` / ``v2v_p95_ms``: over every turn's voice_to_voice of the group;
- ``cost_per_call_usd``: mean cost of the calls whose cost is known (None if none).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from app.metrics.percentile import percentile


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def group_figures(cases: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one group of case results, interrupted ones left out (see the module
    docstring)."""
    cases = [c for c in cases if c.get("status") != "interrupted"]
    n = len(cases)
    passed = sum(1 for c in cases if c.get("passed"))
    wers = [float(c["wer"]) for c in cases if c.get("wer") is not None]
    judged = [c["reply_language_match"] for c in cases if c.get("reply_language_match") is not None]
    v2v = [
        float(t["v2v_ms"])
        for c in cases
        for t in c.get("turns") or []
        if t.get("v2v_ms") is not None
    ]
    costs = [float(c["cost_usd"]) for c in cases if c.get("cost_usd") is not None]
    return {
        "cases": n,
        "passed": passed,
        "pass_rate": _round(100.0 * passed / n if n else None, 1),
        "mean_wer": _round(statistics.fmean(wers) if wers else None, 4),
        "reply_language_match": _round(
            100.0 * sum(1 for j in judged if j) / len(judged) if judged else None, 1
        ),
        "v2v_p50_ms": _round(percentile(v2v, 50), 1),
        "v2v_p95_ms": _round(percentile(v2v, 95), 1),
        "cost_per_call_usd": _round(statistics.fmean(costs) if costs else None, 6),
    }


def summarize_run(
    cases: Sequence[dict[str, Any]],
    planned: int,
    interrupted: bool,
    wall_s: float,
    crashed: bool = False,
) -> dict[str, Any]:
    """The ``summary`` object of a run: totals, ``by_language`` and the ``table`` rows
    (language x condition, rows of finished cases only), in first-seen order.

    ``cases`` is the number of finished cases the figures count; ``ran`` every case with
    a result (interrupted ones included) out of ``planned``; ``crashed`` a run whose
    process died (closed out by :func:`app.suite.runs.load_run` and ``list_runs``)."""
    by_lang: dict[str, list[dict[str, Any]]] = {}
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in cases:
        if c.get("status") == "interrupted":
            continue
        lang = c["language"] if not c.get("accent") else f"{c['language']}/{c['accent']}"
        by_lang.setdefault(lang, []).append(c)
        by_cell.setdefault((lang, str(c.get("condition") or "")), []).append(c)
    total = group_figures(cases)
    return {
        **total,
        "planned": planned,
        "ran": len(cases),
        "failed": sum(1 for c in cases if c.get("status") == "failed"),
        "errors": sum(1 for c in cases if c.get("status") == "error"),
        "interrupted": interrupted,
        "crashed": crashed,
        "interrupted_cases": sum(1 for c in cases if c.get("status") == "interrupted"),
        "wall_s": round(wall_s, 3),
        "audio_s": round(sum(float(c.get("audio_s") or 0.0) for c in cases), 3),
        "by_language": {lang: group_figures(cs) for lang, cs in by_lang.items()},
        "table": [
            {"language": lang, "condition": cond, **group_figures(cs)}
            for (lang, cond), cs in by_cell.items()
        ],
    }
