"""Run a suite: every case a real call through :func:`app.bridge.session.run_call`.

Cases run concurrently on one asyncio loop, at most ``parallel`` at a time (a semaphore);
with ``--provider sim`` every call starts its own simulator (a thread of its own) with the
case's scenario (:mod:`app.suite.simulate`). Before the first call the runner renders
every probe (off the loop, cached), builds the language detector and synthesises the
simulator's replies, so no CPU-heavy work competes with running calls' media.

A call that fails (connection refused, server error) makes a failed case with its error;
the run goes on. :meth:`SuiteRunner.interrupt` (Ctrl-C, SIGTERM) starts no new case and
cancels the running ones, which are closed out as ``interrupted`` (their sessions too);
such a case, like one whose call failed, is scored on the turns that finished before the
stop, read from its session (:func:`app.suite.checks.judged_turns`). The run is written to
the store (:mod:`app.suite.runs`) in full as it starts and as it ends, and each finished
case is added to it in place (:class:`app.suite.runs.RunFile`), so record-keeping costs
the same for the last case of a big run as for the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.bridge.call import BridgeOptions
from app.bridge.providers import ProviderPlan
from app.bridge.session import CallSetup, run_call
from app.errors import StoreError, VoiceprobeError
from app.probes.render import RenderedProbe, render_probe
from app.probes.scoring import load_detector
from app.profile import Profile
from app.sim.scenario import Scenario
from app.sim.server import SimThread
from app.sim.tts import synthesize
from app.suite import checks as scoring
from app.suite.caller import ConversationPort
from app.suite.expand import Case
from app.suite.model import Suite
from app.suite.runs import RunFile, run_process
from app.suite.simulate import case_scenario
from app.suite.summary import summarize_run

#: After the caller's last turn the bridge waits this long with the agent idle.
TAIL_MS = 300
#: Added to a case's natural length (probes + every turn's wait) for its hard limit.
CALL_MARGIN_S = 30.0
#: How long after its own limit a call may take to end before the runner gives up on it.
STUCK_GRACE_S = 30.0


@dataclass(slots=True)
class RunSettings:
    """How to run a suite.

    Attributes:
        parallel: calls at a time.
        data_root: the data folder (sessions, suite runs, probe cache).
        tags: extra ``k=v`` tags for every session.
        max_seconds: hard limit on one call.
        cache_dir: the probe render cache (default ``<data dir>/probe-cache``).
    """

    parallel: int
    data_root: Path
    tags: list[str] = field(default_factory=list)
    max_seconds: float = 600.0
    cache_dir: Path | None = None


@dataclass(slots=True)
class Prepared:
    """A case ready to call: its probes and (simulator) scenario."""

    case: Case
    probes: list[RenderedProbe]
    scenario: Scenario | None


class SuiteRunner:
    """One run of ``suite``'s ``cases`` against ``plan`` (see the module docstring).

    Args:
        suite: the validated suite.
        cases: its cases (:func:`app.suite.expand.expand`).
        profile: the agent profile.
        plan: the provider plan (``label == "sim"``: each case gets its own scenario).
        settings: parallelism, data folder, tags.
        run_id: the run's id in the store.
        on_case: called on the loop thread after each case with its result.
    """

    def __init__(
        self,
        suite: Suite,
        cases: list[Case],
        profile: Profile,
        plan: ProviderPlan,
        settings: RunSettings,
        run_id: str,
        on_case: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.suite = suite
        self.cases = cases
        self.profile = profile
        self.plan = plan
        self.settings = settings
        self.run_id = run_id
        self.on_case = on_case
        self.results: list[dict[str, Any]] = []
        self.interrupted = False
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self.wall_s = 0.0
        self._running: dict[int, asyncio.Task[None]] = {}
        self._save_lock = asyncio.Lock()
        self._file = RunFile(settings.data_root, run_id)
        self._t0 = time.monotonic()
        self._process = run_process()

    # -- preparation (before any call) ---------------------------------------------------

    def prepare(self, notify: Callable[[str], None] | None = None) -> list[Prepared]:
        """Render every probe and build every scenario (synchronous; run off the loop).

        Work and memory grow with the distinct audio, not with the cases: a probe is
        rendered once per (probe, conditions) and its samples shared by every case that
        plays it (repeats, conversations sharing a line); a scenario is built once per
        matrix cell and conversation, and shared under each case's name. ``notify`` gets
        one line saying what is being prepared, before the work starts.

        Raises:
            ConfigError: a probe cannot be rendered (missing voice, sox missing...).
        """
        keys = list(dict.fromkeys((t.probe, c.conditions) for c in self.cases for t in c.turns))
        cells = {_cell(c) for c in self.cases} if self.plan.label == "sim" else set()
        if notify is not None:
            what = f"{len(keys)} distinct probe(s)"
            if cells:
                what += f" and {len(cells)} simulator scenario(s)"
            notify(f"preparing {len(self.cases)} case(s): {what}")
        load_detector()
        with ThreadPoolExecutor(max_workers=2) as pool:
            renders = dict(
                zip(
                    keys,
                    pool.map(
                        lambda key: render_probe(
                            key[0],
                            seed=self.suite.seed,
                            conditions=key[1],
                            voices=self.suite.voices,
                            cache_dir=self.settings.cache_dir,
                            base_dir=self.suite.base_dir,
                        ),
                        keys,
                    ),
                    strict=True,
                )
            )
        scenarios: dict[tuple[Any, ...], Scenario] = {}
        probe_lists: dict[tuple[Any, ...], list[RenderedProbe]] = {}
        out: list[Prepared] = []
        for case in self.cases:
            cell = _cell(case)
            probes = probe_lists.get(cell)
            if probes is None:
                probes = [renders[(t.probe, case.conditions)] for t in case.turns]
                probe_lists[cell] = probes
            scenario = None
            if cells:
                shared = scenarios.get(cell)
                if shared is None:
                    shared = scenarios[cell] = case_scenario(self.suite, case, self.plan.kind)
                scenario = dataclasses.replace(shared, name=case.id)
            out.append(Prepared(case, probes, scenario))
        spoken = {
            (text, sc.voice_rate, voice) for sc in scenarios.values() for text, voice in sc.spoken()
        }
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda s: synthesize(s[0], 24000, s[1], s[2]), sorted(spoken)))
        return out

    # -- the run -----------------------------------------------------------------------

    def interrupt(self) -> None:
        """Start no new case; cancel the running ones (loop thread)."""
        self.interrupted = True
        for task in list(self._running.values()):
            task.cancel()

    async def run(self, prepared: list[Prepared]) -> None:
        """Run every prepared case, at most ``parallel`` at a time."""
        self._t0 = time.monotonic()
        # Stored "running" (with this process's identity) before the first call: a run
        # whose process dies is then found and closed out "crashed" (app.suite.runs).
        await self._save()
        slots = asyncio.Semaphore(max(1, self.settings.parallel))
        tasks: list[asyncio.Task[None]] = []
        for item in prepared:
            await slots.acquire()
            if self.interrupted:
                slots.release()
                break
            task = asyncio.create_task(self._case(item, slots), name=f"case-{item.case.index}")
            self._running[item.case.index] = task
            tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.wall_s = time.monotonic() - self._t0
        await self._save(final=True)

    def snapshot(self, final: bool = False) -> dict[str, Any]:
        """The run as stored: the ``--json`` object plus status and metadata."""
        results = sorted(self.results, key=lambda r: int(r["index"]))
        status = "interrupted" if self.interrupted else ("complete" if final else "running")
        return {
            "run_id": self.run_id,
            "suite": self.suite.name,
            "cases": results,
            "summary": summarize_run(results, len(self.cases), self.interrupted, self.wall_s),
            "status": status,
            "started": self.started,
            "finished": datetime.now(UTC).isoformat(timespec="seconds") if final else None,
            "suite_path": str(self.suite.path),
            "provider": self.plan.label,
            "tags": list(self.settings.tags),
            "process": self._process,
        }

    async def _save(self, final: bool = False) -> None:
        """Write the whole run (at its start and its end)."""
        async with self._save_lock:
            data = self.snapshot(final)
            await asyncio.to_thread(self._file.write, data)

    async def _record(self, result: dict[str, Any]) -> None:
        """Add one finished case to the stored run: its own bytes only, whatever the
        number of cases before it (no snapshot, no summary, no rewrite)."""
        async with self._save_lock:
            await asyncio.to_thread(self._file.add, result)

    async def _case(self, item: Prepared, slots: asyncio.Semaphore) -> None:
        try:
            result = await self._call(item)
            self.results.append(result)
            if self.on_case is not None:
                self.on_case(result)
            with contextlib.suppress(VoiceprobeError):
                # Shielded: a Ctrl-C now must not leave the write running in its thread,
                # unlocked, while the run's final write replaces the file.
                await asyncio.shield(self._record(result))
        finally:
            self._running.pop(item.case.index, None)
            slots.release()

    def _tags(self, case: Case) -> list[str]:
        tags = [f"suite={self.suite.name}", f"run={self.run_id}", f"case={case.id}",
                f"language={case.language}"]  # fmt: skip
        if case.accent:
            tags.append(f"accent={case.accent}")
        tags += [f"noise={case.noise}", f"line={case.line}"]
        return tags + list(self.settings.tags)

    def _profile_for(self, case: Case) -> Profile:
        """The profile for ``case``: a fixed transcription language follows the case's."""
        tr = self.profile.transcription
        if not tr.language:
            return self.profile
        primary = case.language.split("-")[0].lower()
        return dataclasses.replace(
            self.profile, transcription=dataclasses.replace(tr, language=primary)
        )

    def _limit_s(self, item: Prepared, timeouts: list[int]) -> float:
        """A case's hard limit: its probes, every turn's wait and a margin, capped by the
        run's ``max_seconds`` (so a stuck call cannot hold the run)."""
        natural = (self.suite.lead_ms + sum(timeouts)) / 1000 + CALL_MARGIN_S
        natural += sum(p.duration_s for p in item.probes)
        return min(self.settings.max_seconds, natural)

    async def _call(self, item: Prepared) -> dict[str, Any]:
        case = item.case
        t0 = time.monotonic()
        error: dict[str, Any] | None = None
        timeouts = [t.spec.timeout_ms or self.suite.turn_timeout_ms for t in case.turns]
        port = ConversationPort(
            [p.samples for p in item.probes],
            16000,
            timeouts_ms=timeouts,
            idle_ms=self.suite.idle_ms,
            lead_ms=self.suite.lead_ms,
        )
        sim: SimThread | None = None
        plan = self.plan
        if item.scenario is not None:
            plan = dataclasses.replace(plan, scenario=item.scenario)
            # Start (and later stop) the case's simulator on a worker thread: done inside
            # run_call it would hold this loop, and every other running call's media,
            # while the server thread starts and joins.
            sim = SimThread(item.scenario, dialect=plan.kind)
            try:
                url = await asyncio.to_thread(sim.start)
            except (OSError, TimeoutError, VoiceprobeError) as exc:
                await asyncio.to_thread(sim.stop)
                error = {"code": "simulator", "message": f"simulator did not start ({exc})"}
                return self._result(case, port, None, {}, error, "error", time.monotonic() - t0, [])
            cert = sim.cert_path
            plan = _RunningSim(**{f: getattr(plan, f) for f in _PLAN_FIELDS})
            plan.url, plan.sim = url, sim
            plan.ca_file = str(cert) if cert else plan.ca_file
        setup = CallSetup(
            profile=self._profile_for(case),
            plan=plan,
            data_root=self.settings.data_root,
            tags=self._tags(case),
            options=BridgeOptions(tail_ms=TAIL_MS, max_seconds=self._limit_s(item, timeouts)),
            source=f"suite:{self.suite.name}:{case.id}",
        )
        session: dict[str, Any] = {}
        summary: dict[str, Any] | None = None
        turns: list[dict[str, Any]] = []
        status = "done"
        try:
            # The bridge bounds the call itself (max_seconds); this outer bound keeps a
            # call stuck in its own teardown from holding the whole run.
            async with asyncio.timeout(setup.options.max_seconds + STUCK_GRACE_S):
                summary = await run_call(
                    setup,
                    port,
                    [port.observe],
                    on_session=lambda sid, folder: session.update(id=sid, dir=str(folder)),
                )
        except TimeoutError:
            status = "error"
            error = {"code": "stuck", "message": "the call did not end within its time limit"}
            turns = _session_turns(session.get("dir"))  # closed out "interrupted" too
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            status = "interrupted"
            error = {"code": "interrupted", "message": "the run was interrupted"}
            # run_call closed the session out with the turns it had: score those.
            turns = _session_turns(session.get("dir"))
        except VoiceprobeError as exc:
            status = "error"
            error = {"code": "setup", "message": str(exc)}
        finally:
            if sim is not None:
                await asyncio.shield(asyncio.to_thread(sim.stop))
        if summary is not None:
            turns = list(summary.get("turns") or [])
            if not summary.get("ok"):
                errs = summary.get("errors") or [{"code": summary.get("reason"), "message": ""}]
                error = {"code": str(errs[0].get("code")), "message": str(errs[0].get("message"))}
                status = "error"
        return self._result(
            case, port, summary, session, error, status, time.monotonic() - t0, turns
        )

    def _result(
        self,
        case: Case,
        port: ConversationPort,
        summary: dict[str, Any] | None,
        session: dict[str, Any],
        error: dict[str, Any] | None,
        status: str,
        wall_s: float,
        turns: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """A case's result from the call's ``turns`` (the summary's, or for an interrupted
        call those its session was closed out with). A call that did not end normally is
        judged on its finished turns only (:func:`app.suite.checks.judged_turns`)."""
        all_turns = scoring.match_turns(case, turns, port.turn_windows)
        results = scoring.judged_turns(all_turns, completed=status == "done")
        checks = scoring.turn_checks(case, results)
        if summary is not None:
            checks += scoring.call_checks(self.suite.expect_call, summary, all_turns)
        v2v = [v for r in results if (v := r.ms("voice_to_voice")) is not None]
        said = " ".join(r.said for r in results if r.said)
        from app.probes.scoring import detect_language, language_matches

        detected = detect_language(said) if said else None
        try:
            match = language_matches(said, case.language) if said else None
        except VoiceprobeError:
            match = None
        passed = status == "done" and error is None and all(c["passed"] for c in checks)
        cost = summary.get("cost_usd") if summary else None
        return {
            "index": case.index,
            "id": case.id,
            "conversation": case.conversation.id,
            "language": case.language,
            "accent": case.accent,
            "noise": case.noise,
            "line": case.line,
            "speed": case.speed,
            "level": case.level,
            "condition": case.condition,
            "repeat": case.repeat,
            "session_id": session.get("id"),
            "session_dir": session.get("dir"),
            "passed": passed,
            "status": "passed" if passed else ("failed" if status == "done" else status),
            "checks": checks,
            "wer": scoring.mean([r.wer for r in results]),
            "reply_language": detected,
            "reply_language_match": match,
            "v2v_p50_ms": _pct(v2v, 50),
            "v2v_p95_ms": _pct(v2v, 95),
            "cost_usd": float(cost) if isinstance(cost, int | float) else None,
            "error": error,
            "audio_s": round(port.audio_s, 3),
            "wall_s": round(wall_s, 3),
            "bridge": summary.get("bridge") if summary else None,
            "turns": [
                {
                    "turn": r.index,
                    "expected": r.expected,
                    "heard": r.heard,
                    "said": r.said,
                    "wer": None if r.wer is None else round(r.wer, 4),
                    "reply_language": r.reply_language,
                    "v2v_ms": r.ms("voice_to_voice"),
                    "ttfb_ms": r.ms("ttfb"),
                    "interrupted": r.interrupted,
                    "timed_out": r.timed_out,
                    "tool_calls": [c.name for c in r.tool_calls],
                }
                for r in results
            ],
            "unjudged_turns": sorted({r.index for r in all_turns} - {r.index for r in results}),
        }


@dataclass(slots=True)
class _RunningSim(ProviderPlan):
    """A simulator plan whose simulator the runner has already started (off the loop):
    :meth:`started` yields it as it is instead of starting another one."""

    @contextlib.contextmanager
    def started(self) -> Iterator[ProviderPlan]:
        """Yield this plan (its simulator is running)."""
        yield self


_PLAN_FIELDS = tuple(f.name for f in dataclasses.fields(ProviderPlan))


def _cell(case: Case) -> tuple[Any, ...]:
    """What a case's audio and scenario depend on: every axis but the repeat."""
    return (case.conversation.id, case.language, case.accent, case.conditions)


def _session_turns(folder: str | None) -> list[dict[str, Any]]:
    """The turns an interrupted call's session was closed out with (its ``turns.json``),
    or none when the session was not made or the file cannot be read."""
    if not folder:
        return []
    from app.store.reader import check_turns
    from app.store.writer import TURNS_FILE

    path = Path(folder) / TURNS_FILE
    try:
        return check_turns(json.loads(path.read_text(encoding="utf-8")), path)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError, StoreError):
        return []


def _pct(values: list[float], q: float) -> float | None:
    from app.metrics.percentile import percentile

    p = percentile(values, q)
    return None if p is None else round(p, 3)
