"""Compare a run with an earlier one, per language (pure).

Compared per language (the ``by_language`` figures of both runs' summaries, recomputed
from their cases so a ``--json`` file from an older version still compares):

==================  ==============  =================================================
figure              better when     regression when
==================  ==============  =================================================
pass_rate           higher          (baseline - current) / baseline > max_regression %
v2v_p95_ms          lower           (current - baseline) / baseline > max_regression %
cost_per_call_usd   lower           (current - baseline) / baseline > max_regression %
==================  ==============  =================================================

A figure missing on either side, or a language present in only one run, is shown and not
judged. A baseline of 0 regresses only when the current figure is worse at all (a pass
rate of 0 cannot drop). A run compared with itself has every delta 0 and passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from app.suite.summary import group_figures
from app.textsafe import printable

#: (figure, True when higher is better).
FIGURES = (("pass_rate", True), ("v2v_p95_ms", False), ("cost_per_call_usd", False))


def _by_language(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in run.get("cases", []):
        if not isinstance(c, dict) or "language" not in c:
            continue
        lang = c["language"] if not c.get("accent") else f"{c['language']}/{c['accent']}"
        groups.setdefault(str(lang), []).append(c)
    return {lang: group_figures(cs) for lang, cs in groups.items()}


def compare(
    current: dict[str, Any], baseline: dict[str, Any], max_regression: float
) -> list[dict[str, Any]]:
    """One row per language and figure: ``{language, figure, baseline, current,
    delta_pct, regression}`` (``delta_pct`` signed so that positive is worse)."""
    cur, base = _by_language(current), _by_language(baseline)
    rows: list[dict[str, Any]] = []
    for lang in [*cur, *(k for k in base if k not in cur)]:
        for name, higher_better in FIGURES:
            b = base.get(lang, {}).get(name)
            c = cur.get(lang, {}).get(name)
            delta: float | None = None
            regression = False
            if b is not None and c is not None:
                worse = (b - c) if higher_better else (c - b)
                if b != 0:
                    delta = 100.0 * worse / abs(b)
                    regression = delta > max_regression
                else:
                    delta = 0.0 if worse <= 0 else float("inf")
                    regression = worse > 0 and not higher_better
            rows.append(
                {
                    "language": lang,
                    "figure": name,
                    "baseline": b,
                    "current": c,
                    "delta_pct": None if delta is None else round(delta, 2),
                    "regression": regression,
                }
            )
    return rows


def print_deltas(rows: Sequence[dict[str, Any]], max_regression: float, out: TextIO) -> None:
    """The table of deltas against the baseline (positive delta = worse)."""
    print(
        f"baseline comparison (a figure more than {max_regression:g} % worse fails the run)",
        file=out,
    )
    print(
        f"{'language':<16} {'figure':<18} {'baseline':>10} {'current':>10} {'worse by':>9}",
        file=out,
    )
    for r in rows:
        b = "-" if r["baseline"] is None else f"{r['baseline']:g}"
        c = "-" if r["current"] is None else f"{r['current']:g}"
        d = "-" if r["delta_pct"] is None else f"{r['delta_pct']:+.1f}%"
        flag = "  REGRESSION" if r["regression"] else ""
        print(
            f"{printable(r['language'])[:16]:<16} {r['figure']:<18} {b:>10} {c:>10} {d:>9}{flag}",
            file=out,
        )
