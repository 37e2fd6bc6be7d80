"""ToolRunner with mock tools: latency, seeded failures, ceiling, idempotency, bad input."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest

from app.clock import MONOTONIC
from app.profile import ToolImpl, ToolSpec
from app.tools import ToolResult, ToolRunner
from tests.conftest import TIME_SCALE

# A simulated latency never ends early (1 ms for clock rounding) but may end late when
# the machine is loaded: the late side scales with VOICEPROBE_TIME_SCALE.
EARLY_MS = 1.0
LATE_MS = 50.0 * TIME_SCALE


def took(ms: float, expected_ms: float) -> bool:
    """Whether ``ms`` is ``expected_ms`` within the early/late tolerances."""
    return expected_ms - EARLY_MS <= ms <= expected_ms + LATE_MS


def mock(name: str = "lookup", **impl: object) -> ToolSpec:
    return ToolSpec(name=name, impl=ToolImpl(type="mock", **impl))  # type: ignore[arg-type]


def test_mock_returns_result_after_its_latency() -> None:
    runner = ToolRunner((mock(result={"balance": 42}, latency_ms=120),), 10, MONOTONIC)

    async def go() -> tuple[ToolResult, float]:
        t0 = time.monotonic()
        res = await runner.run("c1", "lookup", '{"account": "x"}')
        return res, (time.monotonic() - t0) * 1000

    res, wall_ms = asyncio.run(go())
    assert res.status == "ok" and res.ok
    assert json.loads(res.output) == {"balance": 42}
    assert took(res.ms, 120), res.ms
    assert took(wall_ms, 120), wall_ms
    assert res.ms <= wall_ms + EARLY_MS  # the runner's stamps lie inside the caller's wait
    assert (res.call_id, res.name, res.arguments) == ("c1", "lookup", '{"account": "x"}')
    assert res.idempotency_key == "vp-c1"


def test_failure_rate_follows_the_seeded_rng() -> None:
    def failures(seed: int) -> list[bool]:
        runner = ToolRunner((mock(failure_rate=0.3),), 10_000, MONOTONIC, random.Random(seed))

        async def go() -> list[ToolResult]:
            return [await runner.run(f"c{i}", "lookup", "{}") for i in range(1000)]

        results = asyncio.run(go())
        for r in results:
            if r.status == "error":
                assert json.loads(r.output) == {"error": "simulated failure of lookup"}
        return [r.status == "error" for r in results]

    a = failures(7)
    assert sum(a) / len(a) == pytest.approx(0.3, abs=0.05)
    assert failures(7) == a  # same seed, same failures
    assert failures(8) != a


def test_call_ceiling_and_idempotent_repeats() -> None:
    runner = ToolRunner((mock(result="fine"),), 3, MONOTONIC, session_id="S1")

    async def go() -> list[ToolResult]:
        out = [await runner.run(f"c{i}", "lookup", "{}") for i in range(5)]
        out.append(await runner.run("c0", "lookup", "{}"))  # a repeat is not a new call
        return out

    results = asyncio.run(go())
    assert [r.status for r in results] == ["ok", "ok", "ok", "limit", "limit", "ok"]
    assert results[5] is results[0]
    assert json.loads(results[0].output) == "fine"
    assert json.loads(results[3].output) == {"error": "tool call limit of 3 reached"}
    assert runner.calls == 5
    assert results[0].idempotency_key == "vp-S1-c0"


def test_concurrent_repeats_share_one_run() -> None:
    runner = ToolRunner((mock(latency_ms=50, failure_rate=0.5),), 10, MONOTONIC, random.Random(1))

    async def go() -> list[ToolResult]:
        return list(await asyncio.gather(*(runner.run("same", "lookup", "{}") for _ in range(5))))

    results = asyncio.run(go())
    assert all(r is results[0] for r in results)
    assert runner.calls == 1


def test_bad_input_never_raises() -> None:
    runner = ToolRunner((mock(),), 10, MONOTONIC)

    async def go() -> dict[str, ToolResult]:
        return {
            "unknown": await runner.run("a", "nope", "{}"),
            "not_json": await runner.run("b", "lookup", '{"x": '),
            "not_object": await runner.run("c", "lookup", "[1, 2]"),
            "empty": await runner.run("d", "lookup", ""),
        }

    r = asyncio.run(go())
    assert r["unknown"].status == "unknown_tool"
    assert json.loads(r["unknown"].output) == {"error": "unknown tool 'nope'"}
    assert r["not_json"].status == "bad_arguments"
    assert r["not_object"].status == "bad_arguments"
    assert r["empty"].status == "ok" and json.loads(r["empty"].output) == {"ok": True}
    for res in r.values():
        json.loads(res.output)


def test_mock_slower_than_its_timeout_times_out() -> None:
    runner = ToolRunner((mock(latency_ms=2000, timeout_ms=100),), 10, MONOTONIC)
    res = asyncio.run(runner.run("t", "lookup", "{}"))
    assert res.status == "timeout"
    assert took(res.ms, 100), res.ms
    assert json.loads(res.output) == {"error": "tool lookup timed out after 100 ms"}


def test_caller_cancellation_does_not_lose_the_result() -> None:
    runner = ToolRunner((mock(latency_ms=60, result=1),), 10, MONOTONIC)

    async def go() -> ToolResult:
        first = asyncio.create_task(runner.run("k", "lookup", "{}"))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await runner.run("k", "lookup", "{}")  # joins the same run

    res = asyncio.run(go())
    assert res.status == "ok" and runner.calls == 1


def test_aclose_cancels_running_calls() -> None:
    runner = ToolRunner((mock(latency_ms=5000, timeout_ms=0),), 10, MONOTONIC)

    async def go() -> None:
        task = asyncio.create_task(runner.run("z", "lookup", "{}"))
        await asyncio.sleep(0)  # let run() start its call task
        t0 = time.monotonic()
        await runner.aclose()
        assert time.monotonic() - t0 < 0.5 * TIME_SCALE  # far below the 5 s latency
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert runner.results == {}
