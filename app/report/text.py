"""The coverage matrix as text tables (``voiceprobe coverage``); every value shown through
:func:`app.textsafe.printable` (tag values come from outside)."""

from __future__ import annotations

from typing import Any

from app.textsafe import printable

#: (heading, figure, format) of a table row.
COLUMNS = (
    ("calls", "calls", "{:d}"),
    ("turns", "turns", "{:d}"),
    ("pass %", "pass_rate", "{:.1f}"),
    ("judged", "judged", "{:d}"),
    ("WER", "mean_wer", "{:.3f}"),
    ("lang %", "reply_language_match", "{:.1f}"),
    ("v2v p50", "v2v_p50_ms", "{:.0f}"),
    ("v2v p95", "v2v_p95_ms", "{:.0f}"),
)


def fmt(value: Any, pattern: str) -> str:
    """``value`` formatted with ``pattern``, ``-`` when unknown."""
    return "-" if value is None else pattern.format(value)


def _key_cells(key: dict[str, str], width: int) -> str:
    return " ".join(f"{printable(v or '-')[:width]:<{width}}" for v in key.values())


def print_coverage(result: dict[str, Any], out: Any) -> None:
    """One row per cell (dimensions, then the figures), then the total."""
    by = result["by"]
    width = 16
    head = " ".join(f"{d[:width]:<{width}}" for d in by)
    print(head + " " + " ".join(f"{h:>8}" for h, _, _ in COLUMNS), file=out)
    if not result["cells"]:
        print("no sessions match", file=out)
        return
    for cell in result["cells"]:
        figures = " ".join(f"{fmt(cell[f], p):>8}" for _, f, p in COLUMNS)
        print(_key_cells(cell["key"], width) + " " + figures, file=out)
    total = result["total"]
    label = "all".ljust(width * len(by) + len(by) - 1)
    print(label + " " + " ".join(f"{fmt(total[f], p):>8}" for _, f, p in COLUMNS), file=out)


def _signed(value: Any, pattern: str) -> str:
    if value is None:
        return "-"
    text = pattern.format(value)
    return text if text.startswith("-") else "+" + text


def print_compare(result: dict[str, Any], out: Any) -> None:
    """One row per cell: pass %, WER and v2v p50/p95 of both versions, and the deltas."""
    a, b = (printable(v) for v in result["versions"])
    width = 16
    figs = (("pass %", "pass_rate", "{:.1f}"), ("WER", "mean_wer", "{:.3f}"),
            ("v2v p50", "v2v_p50_ms", "{:.0f}"), ("v2v p95", "v2v_p95_ms", "{:.0f}"))  # fmt: skip
    head = " ".join(f"{d[:width]:<{width}}" for d in result["by"])
    cols = " ".join(f"{h + ' ' + s:>14}" for h, _, _ in figs for s in (a[:5], b[:5], "Δ"))
    print(f"{head} {cols}", file=out)
    for row in result["compare"]:
        cells = []
        for _, f, p in figs:
            va = row["a"][f] if row["a"] else None
            vb = row["b"][f] if row["b"] else None
            cells += [fmt(va, p), fmt(vb, p), _signed(row["delta"][f], p)]
        print(_key_cells(row["key"], width) + " " + " ".join(f"{c:>14}" for c in cells), file=out)
