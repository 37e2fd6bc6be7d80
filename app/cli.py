"""The command line: ``voiceprobe sim | call | sessions | sample | keys``.

Contract (docs/architecture.md#command-line-contract): bad input anywhere gives ONE line
naming the problem on stderr and exit code 2, never a traceback; a call that fails exits
1; ``--json`` prints exactly one JSON object on stdout. The desktop app and the SIP
commands are added by the composition root (``ui.entry``), since ``app`` imports neither
``ui`` nor ``sip``. The helpers other command modules share are public in
:mod:`app.cli_support` (arguments, agent set-up) and :mod:`app.cli_output` (what a call
prints).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app import eventloop
from app.cli_output import print_summary, print_turn_table, progress_printer
from app.cli_support import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    UsageError,
    add_agent_options,
    add_list_command,
    add_show_command,
    agent_setup,
    bridge_options,
    cancel_on_signals,
    check_limit,
    check_seconds,
    find_session,
    interrupted_summary,
)
from app.errors import ConfigError, VoiceprobeError
from app.textsafe import json_text, printable

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "UsageError", "build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> tuple[argparse.ArgumentParser, Any]:
    """The parser and its subparsers object (the composition root adds commands to it)."""
    parser = Parser(prog="voiceprobe", description="Test realtime voice agents.")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)

    p = sub.add_parser("sim", help="run the local realtime simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--scenario", help="scenario YAML (default: the bundled demo)")
    p.add_argument("--dialect", choices=("openai", "gemini"), default="openai")
    p.add_argument("--truth", help="append the simulator's ground-truth stamps to this JSONL file")
    p.add_argument(
        "--binary-frames",
        action="store_true",
        help="send JSON in binary WebSocket frames (as the real Gemini service does)",
    )
    p.set_defaults(handler=cmd_sim)

    p = sub.add_parser("call", help="a headless call: a WAV or the microphone as the caller")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="caller WAV (any common rate/width/channels)")
    src.add_argument(
        "--mic",
        nargs="?",
        const="",
        metavar="DEVICE",
        help="the desktop's mic call: microphone by index or name (default: the system's)",
    )
    p.add_argument("--speaker", metavar="DEVICE", help="with --mic: speaker by index or name")
    p.add_argument(
        "--aec", choices=("on", "off"), help="with --mic: echo cancellation (default: on)"
    )
    add_agent_options(p)
    p.add_argument("--barge-in", choices=("local", "server"), default="local")
    p.add_argument(
        "--rollover-s",
        type=float,
        help="start a fresh provider session at the first turn boundary after this long",
    )
    p.add_argument("--no-reconnect", action="store_true", help="end the call if the socket drops")
    p.add_argument(
        "--prices",
        help="price table (YAML) that overrides the shipped one and the config folder's "
        "prices.yaml, model by model",
    )
    p.set_defaults(handler=cmd_call)

    p = sub.add_parser("sessions", help="list, show or export recorded sessions")
    ssub = p.add_subparsers(dest="sessions_command", parser_class=Parser, required=True)
    q = add_list_command(ssub, "recent sessions", cmd_sessions_list)
    q.add_argument("--search", help="filter by id, provider, model, tags, profile")
    add_show_command(ssub, "show", "one session's turns", "session_id", cmd_sessions_show)
    q = ssub.add_parser("export", help="export a session report")
    q.add_argument("session_id")
    q.add_argument("--html", required=True, help="write an HTML report here")
    q.set_defaults(handler=cmd_sessions_export)
    from app.report.cli import add_coverage_commands, add_verdict_commands  # docs/coverage.md

    add_verdict_commands(ssub)

    p = sub.add_parser("sample", help="write a caller WAV that speaks a scenario's lines")
    p.add_argument("--scenario", help="scenario YAML (default: the bundled demo)")
    p.add_argument("--out", help="WAV path (default: <data folder>/samples/<scenario>.wav)")
    p.add_argument(
        "--barge-in",
        action="append",
        default=[],
        metavar="TURN:MS",
        help="start the next line MS ms after the agent's reply to turn TURN begins "
        "(turns numbered from 1, as the tables show them)",
    )
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("keys", help="store API keys in the OS keyring")
    ksub = p.add_subparsers(dest="keys_command", parser_class=Parser, required=True)
    q = ksub.add_parser("set", help="store a key read from stdin")
    q.add_argument("name", choices=tuple(KEY_SECRETS))
    q.set_defaults(handler=cmd_keys_set)
    q = ksub.add_parser("status", help="which keys are configured (never prints them)")
    q.set_defaults(handler=cmd_keys_status)
    from app.suite.cli import add_suite_commands  # suites: app/suite/, docs/suites.md

    add_suite_commands(sub)
    add_coverage_commands(sub)
    from app.serve.cli import add_serve_command

    add_serve_command(sub, add_agent_options)
    return parser, sub


def main(
    argv: Sequence[str] | None = None,
    extend: Callable[[Any], None] | None = None,
    default: Handler | None = None,
) -> int:
    """Run the CLI. ``extend(subparsers)`` lets the composition root add commands;
    ``default`` runs when no command is given (the desktop app).
    """
    parser, sub = build_parser()
    if extend is not None:
        extend(sub)
    try:
        args = parser.parse_args(argv)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            if default is None:
                parser.print_help()
                code = EXIT_OK
            else:
                code = default(args)
        else:
            code = handler(args)
        sys.stdout.flush()  # a reader that went away (``| head``) shows here, not at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except VoiceprobeError as exc:
        # One line, inert on a terminal: messages may quote file names and server text.
        message = printable(str(exc))  # argparse's own lines already name the command
        if not message.startswith("voiceprobe"):
            message = f"voiceprobe: error: {message}"
        print(message, file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    """Point stdout at the null device after its reader went away, so the interpreter's
    final flush of what is still buffered does not fail again (as the Python docs on
    SIGPIPE recommend)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # stdout is not a file (tests calling main() directly)


# --- sim ---------------------------------------------------------------------------------


def cmd_sim(args: argparse.Namespace) -> int:
    """``voiceprobe sim``: serve until SIGINT/SIGTERM; first stdout line is the URL."""
    from app.sim.scenario import load_scenario
    from app.sim.server import run_sim

    if args.scenario:
        load_scenario(args.scenario)  # bad scenario → exit 2 before binding
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")

    async def serve() -> None:
        cancel_on_signals()
        try:
            await run_sim(
                args.scenario,
                args.host,
                args.port,
                args.dialect,
                args.truth,
                binary=args.binary_frames,
            )
        except asyncio.CancelledError:
            pass

    try:
        eventloop.run(serve())
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    return EXIT_OK


# --- call --------------------------------------------------------------------------------


def cmd_call(args: argparse.Namespace) -> int:
    """``voiceprobe call``: stream a WAV in real time as the caller and record the agent."""
    if args.mic is not None or args.speaker is not None or args.aec is not None:
        from app.bridge.miccall import run_mic_call  # the desktop's mic call, headless

        return run_mic_call(args)
    from app.audio.fileport import WavFilePort
    from app.bridge.session import run_call
    from app.store.reader import recover_unfinished

    if args.rollover_s is not None:
        check_seconds(args.rollover_s, "--rollover-s")
    agent = agent_setup(args, bridge_options(args))  # --tag first: before anything is read
    port = WavFilePort.from_wav(args.input, rate=16000)
    recover_unfinished(agent.data_root)
    setup = agent.call_setup(
        f"file:{Path(args.input).name}",
        record=not args.no_record,
        prices=Path(args.prices) if args.prices else None,
    )
    progress = None if args.json else progress_printer()
    folders: list[Path] = []
    caught: list[signal.Signals] = []

    async def call() -> dict[str, Any] | None:
        received = cancel_on_signals()
        try:
            return await run_call(
                setup,
                port,
                [progress] if progress else [],
                on_session=lambda _id, folder: folders.append(folder),
            )
        except asyncio.CancelledError:
            if not received:
                raise
            caught.extend(received)  # run_call closed the session out as "interrupted"
            return None

    summary = eventloop.run(call())
    if summary is None:
        where = ""
        if folders:  # the turns that finished, as a finished call prints them
            where = f": session {printable(folders[0].name)} in {printable(folders[0])}"
            kept = interrupted_summary(folders[0], Path(args.prices) if args.prices else None)
            if kept is not None:
                print_summary(kept, args.json)
        print(f"interrupted by {caught[0].name}{where}", file=sys.stderr)
        return 128 + int(caught[0])
    print_summary(summary, args.json)
    return EXIT_OK if summary["ok"] else EXIT_FAILED


# --- sessions ----------------------------------------------------------------------------


def cmd_sessions_list(args: argparse.Namespace) -> int:
    """``voiceprobe sessions list``: a ``warning:`` line on stderr for each session folder
    that cannot be read (it is not listed, or only as the index last saw it)."""
    from app.store.index import SessionIndex
    from app.store.paths import data_dir
    from app.store.reader import recover_unfinished

    def unreadable(folder: Path, reason: str) -> None:
        print(f"warning: session {printable(folder)} cannot be read: {printable(reason)}",
              file=sys.stderr)  # fmt: skip

    check_limit(args.limit)
    root = data_dir()
    recover_unfinished(root, on_unreadable=unreadable)
    rows = SessionIndex(root / "sessions.db").list(limit=args.limit, query=args.search)
    if args.json:
        print(json_text(rows))
        return EXIT_OK
    if not rows:
        print(f"no sessions in {root}")
        return EXIT_OK
    head = ("session", "started", "status", "provider", "turns", "v2v p50")
    print(f"{head[0]:<22} {head[1]:<20} {head[2]:<11} {head[3]:<8} {head[4]:>5} {head[5]:>8}")
    for r in rows:
        p50 = r.get("p50_v2v_ms")
        p = printable  # rows come from session files: text from outside
        print(
            f"{p(r['id']):<22} {p(str(r.get('started_at') or '')[:19]):<20} "
            f"{p(r.get('status')):<11} {p(r.get('provider')):<8} {r.get('turns') or 0:>5} "
            f"{(f'{p50:.0f} ms' if isinstance(p50, int | float) else '-'):>8}"
        )
    return EXIT_OK


def cmd_sessions_show(args: argparse.Namespace) -> int:
    """``voiceprobe sessions show ID``: the session, why it failed (and what to do), and
    one row per turn numbered from 1."""
    from app.metrics.presentation import SCRIPTED_MARK, SCRIPTED_NOTE, transcripts_scripted
    from app.store.reader import load_session, session_failures

    record = load_session(find_session(args.session_id))
    if args.json:
        print(json_text({"meta": record.meta, "turns": record.turns}))
        return EXIT_OK
    meta, p = record.meta, printable  # session files hold text from outside
    print(
        f"session {p(record.session_id)}  status {p(meta.get('status'))}  "
        f"provider {p(meta.get('provider'))}"
    )
    print(f"started {p(meta.get('started_at'))}  ended {p(meta.get('ended_at'))}")
    print(f"events {len(record.events)}  folder {p(record.path)}")
    for fail in session_failures(record):
        print(f"failed: {p(fail['code'])}: {p(fail['message'])}")
        if fail["fix"]:
            print(f"  what to do: {p(fail['fix'])}")
    scripted = transcripts_scripted(meta.get("provider"))
    if scripted:
        print(f"{SCRIPTED_MARK} {SCRIPTED_NOTE}")
    print_turn_table(record.turns, sys.stdout, scripted=scripted)
    return EXIT_OK


def cmd_sessions_export(args: argparse.Namespace) -> int:
    """``voiceprobe sessions export ID --html FILE`` (and ``report session``): the
    session's page with its verdicts."""
    from app.report.export import export_session_report

    print(printable(export_session_report(find_session(args.session_id), Path(args.html))))
    return EXIT_OK


# --- sample, keys --------------------------------------------------------------------------


#: ``sample --barge-in``'s largest delay: a reply of a minute is already very long, and a
#: larger figure only pads the WAV with silence (99999999 wrote 3.2 GB).
MAX_BARGE_IN_MS = 60_000


def cmd_sample(args: argparse.Namespace) -> int:
    """``voiceprobe sample``: write the caller WAV for a scenario and print its path."""
    from app.bridge.providers import DEFAULT_SCENARIO
    from app.private_files import PRIVATE_FILE_MODE
    from app.sim.caller import write_caller_wav
    from app.sim.scenario import load_scenario
    from app.store.paths import data_dir, samples_dir

    scenario = load_scenario(args.scenario or str(DEFAULT_SCENARIO))
    barge: dict[int, int] = {}
    last = len(scenario.turns) - 1  # the last turn has no next line to barge in with
    for spec in args.barge_in:
        turn, _, ms = spec.partition(":")
        if not (turn.isdigit() and ms.isdigit()):
            raise UsageError(f"--barge-in takes TURN:MS, got {printable(spec)!r}")
        if not 1 <= int(turn) <= last:
            raise UsageError(
                f"--barge-in {printable(spec)}: the scenario's turns that a next line can "
                + (f"barge into are 1-{last}" if last else "barge into: none (one turn)")
            )
        if int(ms) > MAX_BARGE_IN_MS:
            raise UsageError(f"--barge-in {printable(spec)}: MS is at most {MAX_BARGE_IN_MS}")
        barge[int(turn) - 1] = int(ms)  # the track's turn index is 0-based
    if args.out:
        out = Path(args.out)
        _check_output_file(out)
    else:  # our own folder: private, and a file name the scenario cannot steer elsewhere
        safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in scenario.name)
        out = samples_dir(data_dir()) / f"{safe_name.lstrip('.') or 'sample'}.wav"
    try:
        utterances = write_caller_wav(scenario, out, barge_in=barge)
        if not args.out:
            os.chmod(out, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"cannot write ({exc.strerror or exc})", str(out)) from None
    print(printable(out))
    for u in utterances:
        print(
            f"  {u.start / 16000:7.3f}–{u.end / 16000:7.3f} s  {printable(u.text)}",
            file=sys.stderr,
        )
    return EXIT_OK


def _check_output_file(path: Path) -> None:
    """Refuse an output path that is a folder or lies under something that is not one.

    Raises:
        ConfigError: one line naming ``path``.
    """
    if path.is_dir():
        raise ConfigError("is a folder, not a file", str(path))
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{parent} is not a folder", str(path))
            break


#: ``keys set``/``keys status`` names → keyring entries (their environment variables:
#: :data:`app.secrets.ENV_VARS`).
KEY_SECRETS = {"openai": "openai_api_key", "gemini": "gemini_api_key", "sip": "sip_password"}


def cmd_keys_set(args: argparse.Namespace) -> int:
    """``voiceprobe keys set NAME``: read the key from stdin (never from argv)."""
    from app.secrets import set_secret

    value = sys.stdin.readline().strip()
    if not value:
        raise UsageError("no key on stdin")
    set_secret(KEY_SECRETS[args.name], value)
    print(f"{args.name} key stored in the OS keyring")
    return EXIT_OK


def cmd_keys_status(args: argparse.Namespace) -> int:
    """``voiceprobe keys status``: configured or not, for every key ``keys set`` takes
    (never the value)."""
    from app.secrets import get_secret, keyring_available

    backend = "available" if keyring_available() else "none (using environment variables)"
    print(f"keyring backend: {backend}")
    for name, secret in KEY_SECRETS.items():
        print(f"{name}: {'configured' if get_secret(secret) else 'not configured'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
