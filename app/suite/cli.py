"""``voiceprobe suite run | list | show``: probe suites from the command line.

``add_suite_commands(subparsers)`` registers the commands on the CLI's subparsers (the
lead wires it into :func:`app.cli.build_parser`). Exit codes: 0 every case passed (and no
baseline regression), 1 an expectation failed, a call failed or a baseline figure
regressed, 2 bad input (one line ``FILE:LINE: FIELD: problem``), 128 + signal (130 for
Ctrl-C) when interrupted — after the partial run is written (JSON, JUnit, store).
``suite show`` exits 0 only for a complete run whose every planned case passed, else 1
(failed, interrupted, crashed or still running: :func:`show_exit_code`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from app import eventloop
from app.bridge.providers import PROVIDER_CHOICES
from app.cli_support import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_list_command,
    add_show_command,
    check_limit,
    check_seconds,
    on_signals,
)
from app.textsafe import json_text, printable

#: Default ``--parallel``: calls this 2-core machine sustains against the simulator with
#: every media frame on time (measured with ``python -m app.bench.suite``; docs/suites.md).
DEFAULT_PARALLEL = 8
JSON_KEYS = ("run_id", "suite", "cases", "summary")


def add_suite_commands(subparsers: Any) -> None:
    """Add ``suite run|list|show`` to the CLI's subparsers object."""
    p = subparsers.add_parser("suite", help="run probe suites and read their results")
    sub = p.add_subparsers(dest="suite_command", parser_class=type(p), required=True)
    q = sub.add_parser("run", help="run a suite: every case a real recorded call")
    q.add_argument("file", help="suite YAML (format: docs/suites.md)")
    q.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        help="the agent (default: sim, or the profile's twilio-ws agent)",
    )
    q.add_argument("--url", help="provider endpoint (regional, Azure, proxy)")
    q.add_argument("--ca-file", help="extra CA bundle for wss:// endpoints")
    q.add_argument(
        "--parallel",
        type=int,
        default=DEFAULT_PARALLEL,
        help="calls at a time (default %(default)s)",
    )
    q.add_argument("--junit", help="write JUnit XML here")
    q.add_argument("--json", action="store_true", help="print the run as one JSON object")
    q.add_argument("--tag", action="append", default=[], metavar="K=V", help="tag every session")
    q.add_argument("--baseline", help="an earlier run id or --json file to compare with")
    q.add_argument("--max-regression", type=float, default=10.0, metavar="PCT")
    q.add_argument("--max-seconds", type=float, default=600.0, help="limit on each call")
    q.set_defaults(handler=cmd_suite_run)
    add_list_command(sub, "stored suite runs, newest first", cmd_suite_list)
    add_show_command(sub, "show", "one stored run's table and failures", "run_id", cmd_suite_show)


def _check_args(args: argparse.Namespace) -> None:
    if args.parallel < 1 or args.parallel > 64:
        raise UsageError(f"--parallel must be 1-64, got {args.parallel}")
    if not 0 <= args.max_regression <= 10_000:
        raise UsageError("--max-regression must be a percentage >= 0")
    check_seconds(args.max_seconds, "--max-seconds")
    for tag in args.tag:
        key, sep, _ = tag.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--tag must be K=V, got {printable(tag)!r}")
    if args.junit:
        parent = Path(args.junit).expanduser().resolve().parent
        if not parent.is_dir():
            raise UsageError(f"--junit: folder {printable(parent)} does not exist")


def cmd_suite_run(args: argparse.Namespace) -> int:
    """``voiceprobe suite run FILE``."""
    from app.bridge.providers import TRANSCRIBING_KINDS, plan_provider
    from app.profile import load_profile
    from app.store.paths import data_dir
    from app.store.reader import recover_unfinished
    from app.suite.baseline import compare, print_deltas
    from app.suite.expand import expand
    from app.suite.load import load_suite
    from app.suite.measurable import check_measurable
    from app.suite.output import Progress, print_failures, print_table, write_junit
    from app.suite.runner import RunSettings, SuiteRunner
    from app.suite.runs import load_run, new_run_id, save_run

    _check_args(args)
    suite = load_suite(args.file)
    profile = load_profile(suite.profile)
    plan, profile = plan_provider(args.provider, profile, args.url, args.ca_file)
    check_measurable(suite, plan.label, plan.kind in TRANSCRIBING_KINDS)
    if plan.key_destination is not None:
        print(f"voiceprobe: {plan.key_destination.describe()}", file=sys.stderr)
    root = data_dir()
    baseline = load_run(args.baseline, root) if args.baseline else None
    recover_unfinished(root)
    cases = expand(suite)
    progress = Progress(len(cases), sys.stderr)
    runner = SuiteRunner(
        suite,
        cases,
        profile,
        plan,
        RunSettings(args.parallel, root, list(args.tag), args.max_seconds),
        new_run_id(root),
        on_case=progress.case_done,
    )
    # Bad probes (missing voice, sox) -> exit 2 before calls.
    prepared = runner.prepare(
        notify=lambda line: print(f"voiceprobe: {line}", file=sys.stderr, flush=True)
    )

    async def main() -> list[signal.Signals]:
        caught = on_signals(runner.interrupt)
        progress.start()
        await runner.run(prepared)
        return caught

    caught = eventloop.run(main())
    progress.finish()
    run = runner.snapshot(final=True)
    exit_code = EXIT_OK if all(c["passed"] for c in run["cases"]) else EXIT_FAILED
    rows: list[dict[str, Any]] = []
    if baseline is not None:
        rows = compare(run, baseline, args.max_regression)
        run["summary"]["baseline"] = {
            "run_id": baseline.get("run_id"),
            "max_regression_pct": args.max_regression,
            "rows": rows,
            "regressed": any(r["regression"] for r in rows),
        }
        if run["summary"]["baseline"]["regressed"]:
            exit_code = EXIT_FAILED
    if args.junit:
        write_junit(Path(args.junit).expanduser(), run)
    if caught:
        exit_code = 128 + int(caught[0])
    run["summary"]["exit_code"] = exit_code
    save_run(run, root)
    text_out = sys.stderr if args.json else sys.stdout
    if args.json:
        print(json_text({k: run[k] for k in JSON_KEYS}))
    print_table(run["summary"], text_out)
    print_failures(run["cases"], text_out)
    if rows:
        print_deltas(rows, args.max_regression, text_out)
    print(f"run {run['run_id']} ({run['status']})", file=text_out)
    if caught:
        print(
            f"interrupted by {caught[0].name}: partial run {run['run_id']} written", file=sys.stderr
        )
    return exit_code


def cmd_suite_list(args: argparse.Namespace) -> int:
    """``voiceprobe suite list``."""
    from app.suite.runs import list_runs

    check_limit(args.limit)
    runs = list_runs()[: args.limit]
    if args.json:
        keys = ("run_id", "suite", "status", "started", "finished", "provider")
        print(
            json_text([{**{k: r.get(k) for k in keys}, "summary": r.get("summary")} for r in runs])
        )
        return EXIT_OK
    print(f"{'run':<21} {'suite':<24} {'status':<12} {'ran/planned':>11} {'passed':>6} "
          f"{'started':<25}")  # fmt: skip
    for r in runs:
        s = r.get("summary") or {}
        ran = f"{s.get('ran', len(r.get('cases') or []))}/{s.get('planned', '-')}"
        print(
            f"{printable(r.get('run_id')):<21} {printable(r.get('suite'))[:24]:<24} "
            f"{printable(r.get('status'))[:12]:<12} {printable(ran):>11} "
            f"{s.get('passed', '-')!s:>6} {printable(r.get('started'))[:25]:<25}"
        )
    return EXIT_OK


def cmd_suite_show(args: argparse.Namespace) -> int:
    """``voiceprobe suite show RUN_ID``."""
    from app.suite.output import print_failures, print_table
    from app.suite.runs import load_run
    from app.suite.summary import summarize_run

    run = load_run(args.run_id)
    code = show_exit_code(run)
    if args.json:
        print(json_text(run))
        return code
    cases = [c for c in run["cases"] if isinstance(c, dict)]
    stored: dict[str, Any] = run["summary"] if isinstance(run.get("summary"), dict) else {}
    status = run.get("status")
    summary = summarize_run(
        cases, int(stored.get("planned") or len(cases)), status == "interrupted",
        float(stored.get("wall_s") or 0.0), crashed=status == "crashed",
    )  # fmt: skip
    print(f"run {printable(run.get('run_id'))}: suite {printable(run.get('suite'))}, "
          f"{printable(status)}, started {printable(run.get('started'))}")  # fmt: skip
    print_table(summary, sys.stdout)
    print_failures(cases, sys.stdout)
    for s in run.get("unfinished_sessions") or []:
        if isinstance(s, dict):
            print(printable(f"{s.get('case')}: in progress when the run's process died "
                            f"(session {s.get('session_id')})"))  # fmt: skip
    return code


def show_exit_code(run: dict[str, Any]) -> int:
    """``suite show``'s exit code: 0 only for a ``complete`` run that ran every planned
    case, each passing, with no baseline regression; 1 otherwise (a failed case, an
    interrupted or crashed run, one still running)."""
    cases = [c for c in run.get("cases") or [] if isinstance(c, dict)]
    summary: dict[str, Any] = run["summary"] if isinstance(run.get("summary"), dict) else {}
    planned = summary.get("planned")
    regressed = bool((summary.get("baseline") or {}).get("regressed"))
    ok = (
        run.get("status") == "complete"
        and (not isinstance(planned, int) or len(cases) >= planned)
        and all(c.get("passed") for c in cases)
        and not regressed
    )
    return EXIT_OK if ok else EXIT_FAILED
