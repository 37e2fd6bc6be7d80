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


#: The widest a dimension's column grows (a longer value is cut, ending in ``…``).
MAX_KEY_WIDTH = 40


def _fit(text: str, width: int) -> str:
    """``text`` padded to ``width``, or cut to it with ``…`` as its last character (two
    values that differ only past the cut must not look the same)."""
    return f"{text:<{width}}" if len(text) <= width else text[: width - 1] + "…"


def _widths(by: list[str], keys: list[dict[str, str]]) -> list[int]:
    """Each dimension's column: as wide as its heading and values, at most
    :data:`MAX_KEY_WIDTH`."""
    return [
        min(MAX_KEY_WIDTH, max([len(d)] + [len(printable(k.get(d) or "-")) for k in keys]))
        for d in by
    ]


def _key_cells(by: list[str], key: dict[str, str], widths: list[int]) -> str:
    return " ".join(_fit(printable(key.get(d) or "-"), w) for d, w in zip(by, widths, strict=True))


def print_coverage(result: dict[str, Any], out: Any) -> None:
    """One row per cell (dimensions, then the figures), then the total."""
    by = result["by"]
    widths = _widths(by, [cell["key"] for cell in result["cells"]])
    head = " ".join(_fit(d, w) for d, w in zip(by, widths, strict=True))
    print(head + " " + " ".join(f"{h:>8}" for h, _, _ in COLUMNS), file=out)
    if not result["cells"]:
        print("no sessions match", file=out)
        return
    for cell in result["cells"]:
        figures = " ".join(f"{fmt(cell[f], p):>8}" for _, f, p in COLUMNS)
        print(_key_cells(by, cell["key"], widths) + " " + figures, file=out)
    total = result["total"]
    label = "all".ljust(sum(widths) + len(by) - 1)
    print(label + " " + " ".join(f"{fmt(total[f], p):>8}" for _, f, p in COLUMNS), file=out)


def _signed(value: Any, pattern: str) -> str:
    if value is None:
        return "-"
    text = pattern.format(value)
    return text if text.startswith("-") else "+" + text


def print_compare(result: dict[str, Any], out: Any) -> None:
    """One row per cell: pass %, WER and v2v p50/p95 of both versions, and the deltas."""
    a, b = (printable(v) for v in result["versions"])
    by = result["by"]
    widths = _widths(by, [row["key"] for row in result["compare"]])
    figs = (("pass %", "pass_rate", "{:.1f}"), ("WER", "mean_wer", "{:.3f}"),
            ("v2v p50", "v2v_p50_ms", "{:.0f}"), ("v2v p95", "v2v_p95_ms", "{:.0f}"))  # fmt: skip
    head = " ".join(_fit(d, w) for d, w in zip(by, widths, strict=True))
    cols = " ".join(f"{h + ' ' + s:>14}" for h, _, _ in figs for s in (a[:5], b[:5], "Δ"))
    print(f"{head} {cols}", file=out)
    for row in result["compare"]:
        cells = []
        for _, f, p in figs:
            va = row["a"][f] if row["a"] else None
            vb = row["b"][f] if row["b"] else None
            cells += [fmt(va, p), fmt(vb, p), _signed(row["delta"][f], p)]
        print(_key_cells(by, row["key"], widths) + " " + " ".join(f"{c:>14}" for c in cells),
              file=out)  # fmt: skip
