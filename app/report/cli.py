"""The commands of tags, verdicts, coverage and reports: ``sessions verdict|verdicts``,
``coverage`` and ``report session|coverage`` (docs/coverage.md).

Same contract as every command (``app.cli``): bad input gives one line and exit 2, and
nothing stored changes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.cli_support import add_show_command
from app.textsafe import json_text, printable

EXIT_OK = 0


def add_verdict_commands(ssub: Any) -> None:
    """Add ``sessions verdict`` and ``sessions verdicts`` to the ``sessions`` subparsers."""
    q = ssub.add_parser("verdict", help="judge one turn of a session: pass or fail")
    q.add_argument("session_id")
    q.add_argument("--turn", required=True, help="turn number as `sessions show` prints it")
    q.add_argument("verdict", help="pass | fail")
    q.add_argument("--reason", help="misheard, wrong_language, wrong_answer, too_slow, "
                   "cut_off, tool_error, other")  # fmt: skip
    q.add_argument("--note", help="free text")
    q.add_argument("--who", help="who judged (default: $VOICEPROBE_TESTER or the login name)")
    q.set_defaults(handler=cmd_verdict)
    add_show_command(
        ssub, "verdicts", "a session's verdicts, manual and automatic", "session_id", cmd_verdicts
    )


def _filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", default="language,accent",
                   help="dimensions, rows first (language, accent, scenario, tester, "
                   "agent_version, suite, noise, line, condition, provider, model)")  # fmt: skip
    p.add_argument("--since", help="first day (YYYY-MM-DD), inclusive")
    p.add_argument("--until", help="last day (YYYY-MM-DD), inclusive")
    p.add_argument("--agent-version", help="only sessions tagged agent_version=V")
    p.add_argument("--provider", help="only this provider")
    p.add_argument("--model", help="only this model")


def add_coverage_commands(sub: Any) -> None:
    """Add ``coverage`` and ``report session|coverage`` to the top-level subparsers."""
    p = sub.add_parser("coverage", help="what was tested, and how it went (matrix)")
    _filter_options(p)
    p.add_argument("--compare", nargs=2, metavar=("V1", "V2"),
                   help="two agent versions side by side, with deltas")  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_coverage)
    p = sub.add_parser("report", help="self-contained HTML reports")
    rsub = p.add_subparsers(dest="report_command", parser_class=type(p), required=True)
    q = rsub.add_parser("session", help="one session: transcript, verdicts, waterfall")
    q.add_argument("session_id")
    q.add_argument("--html", required=True, help="write the report here")
    q.set_defaults(handler=cmd_report_session)
    q = rsub.add_parser("coverage", help="the coverage matrix, languages, worst turns")
    _filter_options(q)
    q.add_argument("--html", required=True, help="write the report here")
    q.add_argument("--worst", type=int, default=5, help="worst turns with audio (default 5)")
    q.set_defaults(handler=cmd_report_coverage)


def _index(recover: bool = True) -> tuple[Path, Any]:
    """The data folder and its index with new or changed suite runs read in; with
    ``recover``, sessions a crash left open are closed out and ``verdicts.json`` files the
    index has not seen are read in first (that visits every session folder, so the
    coverage commands, which need only the index, skip it)."""
    from app.store.index import SessionIndex
    from app.store.paths import data_dir
    from app.store.reader import recover_unfinished
    from app.store.verdicts import ingest_suite_runs, ingest_verdict_files

    root = data_dir()
    index = SessionIndex(root / "sessions.db")
    if recover:
        recover_unfinished(root, index)
        ingest_verdict_files(root, index)
    ingest_suite_runs(root, index)
    return root, index


def cmd_verdict(args: argparse.Namespace) -> int:
    """``voiceprobe sessions verdict ID --turn N pass|fail [--reason R] [--note TEXT]``."""
    from app.cli_support import UsageError, find_session
    from app.store.reader import load_session
    from app.store.verdicts import check_verdict, resolve_who, set_manual

    if not args.turn.strip().isdigit():
        raise UsageError(f"--turn takes a turn number, got {printable(args.turn[:20])!r}")
    who = resolve_who(args.who, "--who")
    folder = find_session(args.session_id)
    record = load_session(folder)
    check_verdict(record, int(args.turn), args.verdict, args.reason, args.note)
    _, index = _index()
    entry = set_manual(record, index, int(args.turn), args.verdict, reason=args.reason,
                       note=args.note, who=who)  # fmt: skip
    why = f" ({entry['reason']})" if entry["reason"] else ""
    print(f"session {printable(record.session_id)} turn {entry['turn']}: {entry['verdict']}{why}")
    return EXIT_OK


def cmd_verdicts(args: argparse.Namespace) -> int:
    """``voiceprobe sessions verdicts ID [--json]``."""
    from app.cli_support import find_session

    folder = find_session(args.session_id)
    _, index = _index()
    rows = index.verdicts(folder.name)
    if args.json:
        print(json_text(rows))
        return EXIT_OK
    if not rows:
        print("no verdicts")
    for v in rows:
        p = printable
        print(
            f"turn {v['turn']:>3}  {p(v['source']):<6} {p(v['verdict']):<4} "
            f"{p(v['reason'] or ''):<14} {p(v['who'] or ''):<12} {p(v['note'] or '')}"
        )
    return EXIT_OK


def _query(args: argparse.Namespace) -> Any:
    from app.store.coverage import CoverageQuery, check_days, parse_by

    check_days(args.since, args.until, ("--since", "--until"))
    return CoverageQuery(by=parse_by(args.by), since=args.since, until=args.until,
                         agent_version=args.agent_version, provider=args.provider,
                         model=args.model)  # fmt: skip


def cmd_coverage(args: argparse.Namespace) -> int:
    """``voiceprobe coverage``: the matrix (or two versions compared) as a table or JSON."""
    from app.report.text import print_compare, print_coverage
    from app.store.coverage import compare, coverage

    q = _query(args)
    _, index = _index(recover=False)
    if args.compare:
        result = compare(index, q, args.compare[0], args.compare[1])
        if args.json:
            print(json_text(result))
        else:
            print_compare(result, sys.stdout)
        return EXIT_OK
    result = coverage(index, q)
    if args.json:
        print(json_text(result))
    else:
        print_coverage(result, sys.stdout)
    return EXIT_OK


def cmd_report_session(args: argparse.Namespace) -> int:
    """``voiceprobe report session ID --html FILE`` (as ``sessions export``)."""
    from app.cli import cmd_sessions_export

    return cmd_sessions_export(args)


def cmd_report_coverage(args: argparse.Namespace) -> int:
    """``voiceprobe report coverage [filters] --html FILE``."""
    from app.cli_support import UsageError
    from app.report.export import export_coverage_report
    from app.store.paths import data_dir

    q = _query(args)
    if not 0 <= args.worst <= 50:
        raise UsageError("--worst must be 0-50")
    print(printable(export_coverage_report(data_dir(), q, Path(args.html), worst=args.worst)))
    return EXIT_OK
