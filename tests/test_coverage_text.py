"""The coverage tables in a terminal (``voiceprobe coverage``): a dimension's column is as
wide as its values (to a limit), and a value cut at the limit says so."""

from __future__ import annotations

import io
from typing import Any

from app.report.text import MAX_KEY_WIDTH, print_compare, print_coverage

FIGURES = {"calls": 1, "turns": 2, "judged": 2, "pass_rate": 50.0, "mean_wer": 0.1,
           "reply_language_match": None, "v2v_p50_ms": 900.0, "v2v_p95_ms": 950.0}  # fmt: skip


def _cell(condition: str, accent: str) -> dict[str, Any]:
    return {"key": {"condition": condition, "accent": accent}, **FIGURES}


def test_values_past_sixteen_characters_are_shown_whole_or_marked_cut() -> None:
    long_a = "x" * (MAX_KEY_WIDTH + 5) + "-a"
    long_b = "x" * (MAX_KEY_WIDTH + 5) + "-b"
    result = {"by": ["condition", "accent"], "total": FIGURES,
              "cells": [_cell("babble@10/wideband", long_a), _cell("babble@10/narrowband", long_b)]}
    out = io.StringIO()
    print_coverage(result, out)
    lines = out.getvalue().splitlines()
    assert "babble@10/wideband " in lines[1] and "babble@10/narrowband " in lines[2]
    cut = "x" * (MAX_KEY_WIDTH - 1) + "…"
    assert cut in lines[1] and cut in lines[2]  # cut, and it says so
    assert len({len(line) for line in lines}) == 1  # columns line up, the total too


def test_compare_rows_use_the_same_columns() -> None:
    row = {"key": {"language": "es-MX-with-a-long-regional-name"},
           "a": FIGURES, "b": FIGURES, "delta": dict.fromkeys(FIGURES, 0.0)}
    out = io.StringIO()
    print_compare({"by": ["language"], "versions": ["v1", "v2"], "compare": [row]}, out)
    assert "es-MX-with-a-long-regional-name " in out.getvalue()
