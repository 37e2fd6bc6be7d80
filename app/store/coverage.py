"""The coverage matrix: what was tested (language x accent, x scenario, x condition...) and
how it went, from the SQLite index alone (pure queries + arithmetic; no folder is read).

Figures of a cell (rules in ``docs/coverage.md``):

- ``calls``: sessions in the cell; ``turns``: their turns (the index's count);
- ``judged`` / ``passed`` / ``pass_rate``: turns with a verdict, the passing ones, and
  passed / judged in percent; per turn the manual verdict wins over the suite's;
- ``mean_wer``: mean of the turns' WER where known (suite cases record it);
- ``reply_language_match``: percent of the turns whose reply language was judged that
  matched the session's language;
- ``v2v_p50_ms`` / ``v2v_p95_ms``: linear-interpolated percentiles of the turns'
  ``voice_to_voice``;
- ``cost_per_call_usd``: mean ``cost_usd`` of the calls whose cost is known.

The desktop's coverage view and the CLI share this module.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.errors import ConfigError
from app.metrics.percentile import percentile
from app.store.index import TAG_COLUMNS, SessionIndex
from app.textsafe import printable

#: Dimensions a matrix may be built over: the indexed tags, the condition (noise/line),
#: the provider and the model.
DIMENSIONS = (*TAG_COLUMNS, "condition", "provider", "model")
DEFAULT_BY = ("language", "accent")
#: Figures compared between two agent versions (``delta`` = b - a).
DELTA_FIGURES = ("pass_rate", "mean_wer", "reply_language_match", "v2v_p50_ms", "v2v_p95_ms",
                 "cost_per_call_usd")  # fmt: skip

_EXPR = {d: f"COALESCE(s.{d}, '')" for d in TAG_COLUMNS}
_EXPR.update(
    provider="COALESCE(s.provider, '')",
    model="COALESCE(s.model, '')",
    condition="CASE WHEN COALESCE(s.noise,'') = '' AND COALESCE(s.line,'') = '' THEN '' "
    "ELSE COALESCE(NULLIF(s.noise,''), '-') || '/' || COALESCE(NULLIF(s.line,''), '-') END",
)


@dataclass(frozen=True, slots=True)
class CoverageQuery:
    """Which sessions, grouped how.

    Attributes:
        by: the dimensions of the matrix (from :data:`DIMENSIONS`), rows first.
        since / until: ISO dates (``2026-12-01``), both inclusive, on the session start.
        agent_version / provider / model: keep only sessions with this value.
    """

    by: tuple[str, ...] = DEFAULT_BY
    since: str | None = None
    until: str | None = None
    agent_version: str | None = None
    provider: str | None = None
    model: str | None = None


def parse_by(text: str) -> tuple[str, ...]:
    """``--by language,accent`` as a tuple of dimensions.

    Raises:
        ConfigError: an empty list, an unknown or repeated dimension.
    """
    dims = tuple(d.strip() for d in text.split(","))
    if not dims or any(not d for d in dims):
        raise ConfigError(
            f"--by needs dimensions separated by commas (one of {', '.join(DIMENSIONS)})"
        )
    for d in dims:
        if d not in DIMENSIONS:
            raise ConfigError(
                f"--by: unknown dimension {printable(d[:40])!r} (one of {', '.join(DIMENSIONS)})"
            )
    if len(set(dims)) != len(dims):
        raise ConfigError("--by names a dimension twice")
    return dims


def parse_day(text: str, option: str) -> date:
    """An ISO date (``2026-12-01``) given to ``option``: a whole day, as the filters are
    (a time of day would be dropped without a word, so it is refused).

    Raises:
        ConfigError: not a date.
    """
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} takes a date such as 2026-12-01 (a whole day, no time), "
            f"got {printable(text[:40])!r}"
        ) from None


def check_days(since: str | None, until: str | None, names: tuple[str, str]) -> None:
    """Check a ``since``/``until`` pair (``None``: not given; an empty text is an error):
    each a day, and not ``since`` after ``until`` (a range with no day in it).

    Raises:
        ConfigError: one line naming the option(s) (``names``).
    """
    first = parse_day(since, names[0]) if since is not None else None
    last = parse_day(until, names[1]) if until is not None else None
    if first is not None and last is not None and first > last:
        raise ConfigError(
            f"{names[0]} {first.isoformat()} is after {names[1]} {last.isoformat()}: "
            "no day is in between"
        )


def _where(q: CoverageQuery, agent_version: str | None) -> tuple[str, list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if q.since:
        where.append("s.started_at >= ?")
        params.append(parse_day(q.since, "--since").isoformat())
    if q.until:
        where.append("s.started_at < ?")
        params.append((parse_day(q.until, "--until") + timedelta(days=1)).isoformat())
    for col, value in (("agent_version", agent_version), ("provider", q.provider),
                       ("model", q.model)):  # fmt: skip
        if value is not None:
            where.append(f"{_EXPR[col]} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(where)) if where else "", params


# Row layout of :func:`_rows`: fixed columns, then one per dimension.
_TURNS, _COST, _LANG, _JUDGED, _PASSED, _WER_SUM, _WER_N, _LANG_N, _LANG_OK, _V2V, _DIMS = range(11)


def _rows(index: SessionIndex, q: CoverageQuery, agent_version: str | None) -> list[Any]:
    """One row per session (its turn figures are rolled up on its index row)."""
    dims = "".join(f", {_EXPR[d]}" for d in q.by)
    where, params = _where(q, agent_version)
    sql = (
        "SELECT s.turns, s.cost_usd, COALESCE(s.language, ''), s.judged, s.passed, "
        f"s.wer_sum, s.wer_n, s.lang_n, s.lang_matched, s.v2v_list{dims} FROM sessions s{where}"
    )
    return index.query(sql, params)[1]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class _Acc:
    """Running figures of one cell (rows as laid out by :func:`_rows`)."""

    __slots__ = ("calls", "costs", "judged", "lang_n", "lang_ok", "passed", "turns", "v2v",
                 "wer_n", "wer_sum")  # fmt: skip

    def __init__(self) -> None:
        self.calls = self.turns = 0
        self.costs: list[float] = []
        self.judged = self.passed = self.lang_n = self.lang_ok = self.wer_n = 0
        self.wer_sum = 0.0
        self.v2v: list[float] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self.calls += 1
        self.turns += row[_TURNS] or 0
        if row[_COST] is not None:
            self.costs.append(row[_COST])
        self.judged += row[_JUDGED] or 0
        self.passed += row[_PASSED] or 0
        if row[_WER_N]:
            self.wer_n += row[_WER_N]
            self.wer_sum += row[_WER_SUM]
        self.lang_n += row[_LANG_N] or 0
        self.lang_ok += row[_LANG_OK] or 0
        if row[_V2V]:
            self.v2v.extend(map(float, row[_V2V].split(",")))

    def figures(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "turns": self.turns,
            "judged": self.judged,
            "passed": self.passed,
            "pass_rate": _round(100.0 * self.passed / self.judged if self.judged else None, 1),
            "mean_wer": _round(self.wer_sum / self.wer_n if self.wer_n else None, 4),
            "reply_language_match": _round(
                100.0 * self.lang_ok / self.lang_n if self.lang_n else None, 1
            ),
            "v2v_p50_ms": _round(percentile(self.v2v, 50), 1),
            "v2v_p95_ms": _round(percentile(self.v2v, 95), 1),
            "cost_per_call_usd": _round(statistics.fmean(self.costs) if self.costs else None, 6),
        }

    def merge(self, other: _Acc) -> None:
        """Add ``other``'s sessions to this cell."""
        self.calls += other.calls
        self.turns += other.turns
        self.costs += other.costs
        self.judged += other.judged
        self.passed += other.passed
        self.wer_n += other.wer_n
        self.wer_sum += other.wer_sum
        self.lang_n += other.lang_n
        self.lang_ok += other.lang_ok
        self.v2v += other.v2v


def _matrix(rows: Sequence[tuple[Any, ...]], by: tuple[str, ...]) -> dict[str, Any]:
    # One pass into (cell, language) groups, then merged into cells, languages and the
    # total: each row is added once.
    groups: dict[tuple[Any, ...], _Acc] = {}
    for row in rows:
        key = (row[_LANG], *row[_DIMS:])
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = _Acc()
        acc.add(row)
    cells: dict[tuple[str, ...], _Acc] = {}
    langs: dict[str, _Acc] = {}
    total = _Acc()
    for key, acc in groups.items():
        cells.setdefault(tuple(map(str, key[1:])), _Acc()).merge(acc)
        langs.setdefault(str(key[0]), _Acc()).merge(acc)
        total.merge(acc)
    return {
        "by": list(by),
        "cells": [
            {"key": dict(zip(by, key, strict=True)), **acc.figures()}
            for key, acc in sorted(cells.items())
        ],
        "languages": {k: a.figures() for k, a in sorted(langs.items())},
        "total": total.figures(),
    }


def coverage(index: SessionIndex, q: CoverageQuery) -> dict[str, Any]:
    """The matrix of ``q`` over ``index``: ``{"by", "filters", "cells": [{"key", figures}],
    "languages": {language: figures}, "total": figures}``; cells sorted by key.

    Raises:
        ConfigError: a bad date or dimension in ``q``.
        StoreError: the index cannot be read.
    """
    for d in q.by:
        if d not in DIMENSIONS:
            raise ConfigError(f"unknown dimension {printable(d)!r}")
    out = _matrix(_rows(index, q, q.agent_version), q.by)
    out["filters"] = _filters(q)
    return out


def _filters(q: CoverageQuery) -> dict[str, Any]:
    return {k: v for k, v in (("since", q.since), ("until", q.until),
            ("agent_version", q.agent_version), ("provider", q.provider),
            ("model", q.model)) if v is not None}  # fmt: skip


def compare(index: SessionIndex, q: CoverageQuery, a: str, b: str) -> dict[str, Any]:
    """Two agent versions side by side: ``{"by", "versions": [a, b], "compare": [{"key",
    "a": figures, "b": figures, "delta": {figure: b - a}}]}``, one row per cell either
    version has (figures ``None`` on the side without it)."""
    left = {tuple(c["key"].values()): c for c in coverage_for(index, q, a)}
    right = {tuple(c["key"].values()): c for c in coverage_for(index, q, b)}
    rows = []
    for key in sorted(set(left) | set(right)):
        fa, fb = left.get(key), right.get(key)
        delta = {}
        for name in DELTA_FIGURES:
            va = fa.get(name) if fa else None
            vb = fb.get(name) if fb else None
            delta[name] = None if va is None or vb is None else round(vb - va, 4)
        rows.append({"key": dict(zip(q.by, key, strict=True)), "a": fa, "b": fb, "delta": delta})
    return {"by": list(q.by), "versions": [a, b], "filters": _filters(q), "compare": rows}


def coverage_for(index: SessionIndex, q: CoverageQuery, version: str) -> list[dict[str, Any]]:
    """The cells of ``q`` for one agent version."""
    return list(_matrix(_rows(index, q, version), q.by)["cells"])


def worst_turns(index: SessionIndex, q: CoverageQuery, limit: int = 5) -> list[dict[str, Any]]:
    """The worst turns among ``q``'s sessions: failed verdicts first, then by WER, then by
    ``voice_to_voice`` (slowest first). Each ``{"session_id", "turn", "verdict", "source",
    "reason", "note", "wer", "v2v_ms", "language", "accent"}``."""
    where, params = _where(q, q.agent_version)
    sql = (
        "SELECT s.id AS session_id, f.turn, f.wer, f.v2v_ms, COALESCE(s.language,'') AS "
        "language, COALESCE(s.accent,'') AS accent, "
        "COALESCE(m.verdict, a.verdict) AS verdict, "
        "CASE WHEN m.verdict IS NOT NULL THEN 'manual' WHEN a.verdict IS NOT NULL "
        "THEN 'auto' END AS source, COALESCE(m.reason, a.reason) AS reason, "
        "COALESCE(m.note, a.note) AS note "
        "FROM sessions s JOIN turn_facts f ON f.session_id = s.id "
        "LEFT JOIN verdicts m ON m.session_id = f.session_id AND m.turn = f.turn "
        "AND m.source = 'manual' "
        "LEFT JOIN verdicts a ON a.session_id = f.session_id AND a.turn = f.turn "
        f"AND a.source = 'auto'{where} "
        "ORDER BY (COALESCE(m.verdict, a.verdict) = 'fail') DESC, COALESCE(f.wer, -1) DESC, "
        "COALESCE(f.v2v_ms, -1) DESC, s.id, f.turn LIMIT ?"
    )
    names, rows = index.query(sql, [*params, max(0, int(limit))])
    return [dict(zip(names, r, strict=True)) for r in rows]
