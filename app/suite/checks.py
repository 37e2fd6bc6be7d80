"""Score one case: match the call's turns to the probes, then evaluate the expectations.

Pure functions over the call summary (:func:`app.bridge.session.run_call`'s ``--json``
object) and the caller port's turn windows. The rules are in ``docs/suites.md``:

- timeline turns are matched to probes by time: a turn belongs to the probe whose window
  (from its first frame to the next probe's first frame) holds the turn's caller-speech
  start (``user_speech`` span, else its earliest span); several turns in one window (a
  probe the agent heard as two utterances) are merged: transcripts joined, tool calls
  concatenated, interrupted if any was, and each span taken from the first turn that has
  it;
- a turn is *finished* when the caller moved on from it (the agent's answer was over, or
  the turn's wait timed out), or when the agent's answer to it had been heard to its end
  (:attr:`app.suite.caller.TurnWindow.over_ns`). A call that did not end normally
  (interrupted, failed) is judged only on its finished turns: a turn that never played,
  or whose answer was cut off, gets no checks (the session has no finished turn to judge);
- each check yields ``{turn, name, passed, value, limit, message}`` (``turn`` is None for
  call-level checks).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.metrics.percentile import percentile
from app.metrics.records import Span, ToolCallRecord, TurnRecord
from app.probes.lang import primary_subtag
from app.probes.scoring import (
    MIN_LETTERS,
    detect_language,
    error_rate,
    letter_weight,
    uses_cer,
)
from app.suite.caller import TurnWindow
from app.suite.expand import Case
from app.suite.model import Bounds, CallExpect, ToolExpectation

_FLAGS = re.IGNORECASE | re.UNICODE


@dataclass(slots=True)
class TurnResult:
    """The call's view of one probe turn (merged timeline turns)."""

    index: int
    expected: str
    heard: str = ""
    said: str = ""
    interrupted: bool = False
    spans: dict[str, Span] = field(default_factory=dict)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    timed_out: bool = False
    finished: bool = False
    found: bool = False
    wer: float | None = None
    reply_language: str | None = None
    cost_usd: float | None = None

    def ms(self, span: str) -> float | None:
        """A span's figure in ms, or None."""
        s = self.spans.get(span)
        return None if s is None else float(s.ms)


def match_turns(
    case: Case, turns: Sequence[Mapping[str, Any]], windows: Sequence[TurnWindow]
) -> list[TurnResult]:
    """One :class:`TurnResult` per probe of ``case`` (rules in the module docstring).

    ``turns`` are the call's priced turn records in their JSON form (``cost_usd`` beside
    the record's fields)."""
    out = [TurnResult(t.index, t.text) for t in case.turns]
    starts = [w.start_ns for w in windows]
    for priced in turns:
        turn = TurnRecord.from_dict(priced)
        t = turn.start_ns
        if t is None or not starts:
            continue
        slot = None
        for i, s in enumerate(starts):
            if t >= s - 20_000_000:
                slot = i
        if slot is None or windows[slot].index > len(out):
            continue
        res = out[windows[slot].index - 1]
        if turn.user_transcript:
            res.heard = f"{res.heard} {turn.user_transcript}".strip()
        if turn.agent_transcript:
            res.said = f"{res.said} {turn.agent_transcript}".strip()
        res.interrupted = res.interrupted or turn.interrupted
        for name, span in turn.spans.items():
            res.spans.setdefault(name, span)
        res.tool_calls.extend(turn.tool_calls)
        cost = priced.get("cost_usd")
        if isinstance(cost, int | float):
            res.cost_usd = (res.cost_usd or 0.0) + float(cost)
        res.found = True
    for w in windows:
        if 1 <= w.index <= len(out):
            out[w.index - 1].timed_out = w.timed_out
            out[w.index - 1].finished = w.next_ns is not None or w.over_ns is not None
    for res, ct in zip(out, case.turns, strict=True):
        res.wer = error_rate(ct.text, res.heard, case.language).value
        res.reply_language = detect_language(res.said) if res.said else None
    return out


def _check(
    turn: int | None, name: str, passed: bool, value: Any, limit: Any, message: str
) -> dict[str, Any]:
    return {
        "turn": turn,
        "name": name,
        "passed": passed,
        "value": value,
        "limit": limit,
        "message": message,
    }


def _clip(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _bounds_check(turn: int | None, name: str, value: float | None, b: Bounds, what: str) -> Any:
    limit = {"min": b.min, "max": b.max}
    if value is None:
        return _check(turn, name, False, None, limit, f"no {what} measured")
    ok = b.holds(value)
    rel = "within" if ok else "outside"
    return _check(
        turn, name, ok, round(value, 3), limit, f"{what} {value:.0f} ms {rel} {b.describe()}"
    )


def _args_match(arguments: Any, want: Mapping[str, Any]) -> bool:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return False
    if not isinstance(arguments, Mapping):
        return not want
    for key, expected in want.items():
        if key not in arguments:
            return False
        got = arguments[key]
        if isinstance(expected, str):
            text = got if isinstance(got, str) else json.dumps(got, ensure_ascii=False)
            if re.search(expected, text, _FLAGS) is None:
                return False
        elif got != expected:
            return False
    return True


def _tool_check(turn: int, tr: TurnResult, tool: ToolExpectation) -> dict[str, Any]:
    named = [c for c in tr.tool_calls if c.name == tool.name]
    matching = [c for c in named if _args_match(c.arguments, tool.arguments)]
    n = len(matching)
    limit: int | str
    if tool.count is None:
        ok, limit = n >= 1, ">= 1"
    else:
        ok, limit = n == tool.count, tool.count
    called = ", ".join(sorted({c.name for c in tr.tool_calls})) or "none"
    message = f"{n} matching call(s) of {tool.name} (expected {limit}); tools called: {called}"
    return _check(turn, "tool", ok, n, limit, message)


def judged_turns(results: Sequence[TurnResult], completed: bool) -> list[TurnResult]:
    """The turns to judge: every one when the call ``completed`` normally, else only the
    finished ones (see the module docstring)."""
    return list(results) if completed else [r for r in results if r.finished]


def turn_checks(case: Case, results: Sequence[TurnResult]) -> list[dict[str, Any]]:
    """Evaluate the ``expect:`` of each turn in ``results`` (all of the case's turns, or
    the :func:`judged_turns` among them)."""
    out: list[dict[str, Any]] = []
    for tr in results:
        ct = case.turns[tr.index - 1]
        e, k = ct.spec.expect, ct.index
        if e.max_wer is not None:
            unit = "CER" if uses_cer(case.language) else "WER"
            wer = tr.wer if tr.wer is not None else 1.0
            ok = wer <= e.max_wer
            msg = f"{unit} {wer:.2f} {'<=' if ok else '>'} {e.max_wer:g}; heard {_clip(tr.heard)!r}"
            out.append(_check(k, "heard", ok, round(wer, 4), e.max_wer, msg))
        if e.reply_language is not None:
            want = case.language if e.reply_language is True else str(e.reply_language)
            want_code = primary_subtag(want)
            want_code = "zh" if want_code in ("cmn", "yue") else want_code
            if not tr.said:
                out.append(
                    _check(k, "reply_language", False, None, want_code, "no agent transcript")
                )
            elif tr.reply_language is None:
                weight = letter_weight(tr.said)
                msg = (
                    f"too short to judge ({weight} letters < {MIN_LETTERS})"
                    if weight < MIN_LETTERS
                    else "language could not be detected"
                )
                out.append(_check(k, "reply_language", False, None, want_code, msg))
            else:
                ok = tr.reply_language == want_code
                msg = f"agent answered in {tr.reply_language} (expected {want_code})"
                out.append(_check(k, "reply_language", ok, tr.reply_language, want_code, msg))
        for pat in e.says:
            m = re.search(pat, tr.said, _FLAGS)
            msg = f"{'matched' if m else 'no match'} in {_clip(tr.said)!r}"
            out.append(_check(k, "says", m is not None, m.group(0) if m else None, pat, msg))
        for pat in e.not_says:
            m = re.search(pat, tr.said, _FLAGS)
            msg = f"forbidden {m.group(0)!r} said" if m else "not said"
            out.append(_check(k, "not_says", m is None, m.group(0) if m else None, pat, msg))
        if e.tool is not None:
            out.append(_tool_check(k, tr, e.tool))
        if e.v2v_ms is not None:
            out.append(
                _bounds_check(k, "v2v_ms", tr.ms("voice_to_voice"), e.v2v_ms, "voice_to_voice")
            )
        if e.ttfb_ms is not None:
            out.append(_bounds_check(k, "ttfb_ms", tr.ms("ttfb"), e.ttfb_ms, "ttfb"))
        if e.no_barge_in:
            ok = not tr.interrupted
            msg = "the agent was not interrupted" if ok else "the caller barged in on the agent"
            out.append(_check(k, "no_barge_in", ok, tr.interrupted, False, msg))
    return out


def call_checks(
    expect: CallExpect, summary: Mapping[str, Any], results: Sequence[TurnResult]
) -> list[dict[str, Any]]:
    """Evaluate ``expect_call:`` over the whole call."""
    out: list[dict[str, Any]] = []
    if expect.v2v_p95_ms is not None:
        values = [v for r in results if (v := r.ms("voice_to_voice")) is not None]
        p95 = percentile(values, 95)
        out.append(_bounds_check(None, "v2v_p95_ms", p95, expect.v2v_p95_ms, "voice_to_voice p95"))
    if expect.cost_usd is not None:
        cost = summary.get("cost_usd")
        b = expect.cost_usd
        limit = {"min": b.min, "max": b.max}
        if not isinstance(cost, int | float):
            msg = "cost unknown: the call reported no priced usage"
            out.append(_check(None, "cost_usd", False, None, limit, msg))
        else:
            ok = b.holds(float(cost))
            msg = f"cost ${float(cost):.4f} {'within' if ok else 'outside'} {b.describe()}"
            out.append(_check(None, "cost_usd", ok, float(cost), limit, msg))
    if expect.errors is not None:
        errors = summary.get("errors") or []
        n = len(errors)
        ok = n <= expect.errors
        msg = f"{n} error(s), at most {expect.errors}"
        if errors:
            msg += f"; first: {errors[0].get('code')}: {_clip(str(errors[0].get('message')))}"
        out.append(_check(None, "errors", ok, n, expect.errors, msg))
    if expect.completed is not None:
        done = bool(summary.get("ok")) and summary.get("reason") == "completed"
        missing = [r.index for r in results if not r.found]
        done = done and not missing
        ok = done == expect.completed
        why = f"call ended {summary.get('reason')!r}"
        if missing:
            why += f"; no answer matched to turn(s) {', '.join(map(str, missing))}"
        out.append(_check(None, "completed", ok, done, expect.completed, why))
    return out


def mean(values: Sequence[float | None]) -> float | None:
    """The mean of the known values, or None."""
    known = [float(v) for v in values if v is not None]
    return statistics.fmean(known) if known else None
