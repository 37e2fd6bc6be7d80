"""The command line: ``voiceprobe sim | call | sessions | sample | keys``.

Contract (DESIGN.md, "CLI contract"): bad input anywhere gives ONE line naming the problem
on stderr and exit code 2, never a traceback; a call that fails exits 1; ``--json`` prints
exactly one JSON object on stdout. The desktop app and the SIP commands are added by the
composition root (``ui.entry``), since ``app`` imports neither ``ui`` nor ``sip``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from app.errors import ConfigError, VoiceprobeError
from app.textsafe import json_text, printable, safe_text

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(ConfigError):
    """A command-line usage problem."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


Handler = Callable[[argparse.Namespace], int]


def build_parser() -> tuple[argparse.ArgumentParser, Any]:
    """The parser and its subparsers object (the composition root adds commands to it)."""
    parser = _Parser(prog="voiceprobe", description="Test realtime voice agents.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

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

    p = sub.add_parser("call", help="a headless call: stream a WAV as the caller")
    p.add_argument("--input", required=True, help="caller WAV (any common rate/width/channels)")
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
    ssub = p.add_subparsers(dest="sessions_command", parser_class=_Parser, required=True)
    q = ssub.add_parser("list", help="recent sessions")
    q.add_argument("--limit", type=int, default=30)
    q.add_argument("--search", help="filter by id, provider, model, tags, profile")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_sessions_list)
    q = ssub.add_parser("show", help="one session's turns")
    q.add_argument("session_id")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_sessions_show)
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
        help="start the next line MS ms after the agent's reply to TURN begins",
    )
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("keys", help="store API keys in the OS keyring")
    ksub = p.add_subparsers(dest="keys_command", parser_class=_Parser, required=True)
    q = ksub.add_parser("set", help="store a key read from stdin")
    q.add_argument("name", choices=("openai", "gemini", "sip"))
    q.set_defaults(handler=cmd_keys_set)
    q = ksub.add_parser("status", help="which keys are configured (never prints them)")
    q.set_defaults(handler=cmd_keys_status)
    from app.suite.cli import add_suite_commands  # suites: app/suite/, docs/suites.md

    add_suite_commands(sub)
    add_coverage_commands(sub)
    from app.serve.cli import add_serve_command

    add_serve_command(sub, add_agent_options)
    return parser, sub


def add_agent_options(p: argparse.ArgumentParser, truth_help: str = "") -> None:
    """The options every command that places calls shares (``call``, ``sip answer|dial``):
    which agent, where it lives, where the session goes."""
    p.add_argument("--provider", default="sim", help="sim | openai | gemini | twilio-ws")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="K=V",
        help="with --provider twilio-ws: a start.customParameters entry (repeatable)",
    )
    p.add_argument("--profile", help="profile name or YAML/JSON file")
    p.add_argument("--scenario", help="simulator scenario (with --provider sim)")
    p.add_argument("--url", help="provider endpoint (regional, Azure, Vertex, proxy, simulator)")
    p.add_argument("--ca-file", help="extra CA bundle for wss:// endpoints")
    p.add_argument(
        "--truth", help=truth_help or "with --provider sim: write the simulator's ground truth here"
    )
    p.add_argument("--out", help="data folder (default: the user data folder)")
    p.add_argument("--json", action="store_true", help="print the session summary as JSON")
    p.add_argument("--tag", action="append", default=[], help="tag the session (repeatable)")
    p.add_argument("--no-record", action="store_true", help="do not write audio.wav")
    p.add_argument("--max-seconds", type=float, default=900.0, help="limit on each call")


def plan_agent(args: argparse.Namespace, profile: Any) -> tuple[Any, Any]:
    """The provider plan for the agent options of ``args`` (see :func:`add_agent_options`);
    tells the user on stderr which host receives the API key before any call starts.

    ``--url`` is named on the command line, so its host may receive the key; a profile's
    URL may not send it off the vendor's hosts (``app.providers.keyhost``).

    Raises:
        VoiceprobeError: bad input (see :func:`app.bridge.providers.plan_provider`), or a
            bad ``--tag`` (:func:`app.store.tags.check_tag`).
    """
    from app.bridge.providers import plan_provider
    from app.store.tags import check_tags

    check_tags(getattr(args, "tag", []))  # every command that places calls tags sessions

    plan, profile = plan_provider(
        args.provider,
        profile,
        args.url,
        args.ca_file,
        args.scenario,
        args.truth,
        params=parse_params(getattr(args, "param", [])),
    )
    if plan.key_destination is not None:
        print(f"voiceprobe: {plan.key_destination.describe()}", file=sys.stderr)
    return plan, profile


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """``--param K=V`` options as a dict.

    Raises:
        UsageError: an item without ``=`` or with an empty name.
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param must be K=V, got {printable(item[:60])!r}")
        out[name.strip()] = value
    return out


def cancel_on_signals() -> list[signal.Signals]:
    """SIGINT/SIGTERM cancel the running task (call from inside it), so a command's
    ``finally`` blocks hang up calls and close sessions.

    Returns:
        The list each signal received is appended to, so the command can exit with
        ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
    """
    received: list[signal.Signals] = []
    task = asyncio.current_task()
    if task is None:
        return received
    loop = asyncio.get_running_loop()

    def cancel(sig: signal.Signals) -> None:
        received.append(sig)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, cancel, sig)
    return received


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
        asyncio.run(serve())
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port} ({exc.strerror})") from None
    return EXIT_OK


# --- call --------------------------------------------------------------------------------


def cmd_call(args: argparse.Namespace) -> int:
    """``voiceprobe call``: stream a WAV in real time as the caller and record the agent."""
    from app.audio.fileport import WavFilePort
    from app.bridge.session import CallSetup, run_call
    from app.profile import load_profile
    from app.store.paths import data_dir
    from app.store.tags import check_tags

    tags = check_tags(args.tag)  # before anything is read or written
    if args.max_seconds <= 0:
        raise UsageError("--max-seconds must be positive")
    if args.rollover_s is not None and args.rollover_s <= 0:
        raise UsageError("--rollover-s must be positive")
    port = WavFilePort.from_wav(args.input, rate=16000)
    profile = load_profile(args.profile)
    plan, profile = plan_agent(args, profile)
    root = Path(args.out) if args.out else data_dir()
    _recover(root)
    setup = CallSetup(
        profile=profile,
        plan=plan,
        data_root=root,
        tags=tags,
        record=not args.no_record,
        options=_call_options(args),
        source=f"file:{Path(args.input).name}",
        prices=Path(args.prices) if args.prices else None,
    )
    progress = None if args.json else _progress_printer()
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

    summary = asyncio.run(call())
    if summary is None:
        where = ""
        if folders:
            where = f": session {printable(folders[0].name)} in {printable(folders[0])}"
        print(f"interrupted by {caught[0].name}{where}", file=sys.stderr)
        return 128 + int(caught[0])
    if args.json:
        print(json_text(summary))
    else:
        from app.metrics.presentation import transcripts_scripted

        scripted = transcripts_scripted(summary["provider"])
        print_turn_table(summary["turns"], sys.stdout, scripted=scripted)
        v2v = summary["voice_to_voice"]
        if v2v["count"]:
            print(
                f"voice_to_voice (LocalSpeechStopped → PlaybackStarted): "
                f"p50 {v2v['p50_ms']:.0f} ms, p95 {v2v['p95_ms']:.0f} ms over {v2v['count']} turns"
            )
        print(cost_line(summary))
        print(f"session {summary['session_id']}: {summary['session_dir']}")
    for err in summary["errors"]:  # on stderr with --json too: stdout holds only the JSON
        code, message = printable(err.get("code")), printable(err.get("message"))
        fix = f" ({printable(err['fix'])})" if err.get("fix") else ""
        print(f"error: {code}: {message}{fix}", file=sys.stderr)
    return EXIT_OK if summary["ok"] else EXIT_FAILED


def cost_line(summary: dict[str, Any]) -> str:
    """The call's cost as one inert line: the figure and the price it used, or why it
    is unknown."""
    usage = summary.get("usage")
    if not usage:
        return "cost: unknown (the provider reported no token usage)"
    tokens = f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out tokens"
    cost, price = summary.get("cost_usd"), usage.get("price")
    if isinstance(cost, int | float) and price:
        where = printable(price.get("source") or price.get("table"))
        return (
            f"cost: ${cost:.4f} ({tokens}; {printable(price.get('model'))} at "
            f"{where}, {printable(price.get('retrieved') or 'undated')})"
        )
    why = str(usage.get("notice") or "no price").removeprefix("cost unknown: ")
    return f"cost: unknown ({tokens}; {printable(why)})"


def _call_options(args: argparse.Namespace) -> Any:
    """Bridge knobs from ``call``'s flags."""
    from app.bridge.call import BridgeOptions

    options = BridgeOptions(
        barge_in=args.barge_in, max_seconds=args.max_seconds, session_max_s=args.rollover_s
    )
    if args.no_reconnect:
        options = dataclasses.replace(options, reconnect_attempts=0)
    return options


def _progress_printer() -> Callable[[Any], None]:
    from app.events import CallStarted, ConnectionState, Notice, ProviderErrorEvent, TurnCompleted

    def show(ev: Any) -> None:
        p = printable  # everything here may hold server text (details, messages)
        if isinstance(ev, CallStarted):
            print(f"call {ev.session_id} → {p(ev.provider)} ({p(ev.model)})", file=sys.stderr)
        elif isinstance(ev, ConnectionState):
            print(f"  connection: {p(ev.state)} {p(ev.detail)}".rstrip(), file=sys.stderr)
        elif isinstance(ev, TurnCompleted):
            v2v = ev.turn["spans"].get("voice_to_voice")
            fig = f"{v2v['ms']:.0f} ms" if v2v else "-"
            print(f"  turn {ev.turn['index'] + 1} done, voice_to_voice {fig}", file=sys.stderr)
        elif isinstance(ev, ProviderErrorEvent):
            print(f"  provider error {p(ev.code)}: {p(ev.message)}", file=sys.stderr)
        elif isinstance(ev, Notice) and ev.level != "info":
            print(f"  {p(ev.level)}: {p(ev.message)}", file=sys.stderr)

    return show


TABLE_SPANS = (
    ("eot", "end_of_turn_delay"),
    ("resp", "response_start"),
    ("ttfb", "ttfb"),
    ("tools", None),
    ("follow", "tool_followup"),
    ("play", "playback_latency"),
    ("v2v", "voice_to_voice"),
)


def _clip(text: object, width: int) -> str:
    """Untrusted ``text`` as one inert line of at most ``width`` characters."""
    text = printable(" ".join(safe_text(text).split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def print_turn_table(turns: list[dict[str, Any]], out: Any, scripted: bool = False) -> None:
    """One row per turn with the span figures in ms (``-`` where a span does not apply).

    ``turns`` are turn records (``index`` required; the other keys may be missing, as in
    a checked ``turns.json``); transcripts are printed as inert text. Turns are numbered
    from 1 (``index`` + 1), as everywhere a person reads them. ``scripted`` marks the
    caller's words as the simulator's script (``[scripted]``).
    """
    from app.metrics.presentation import caller_text, turn_number

    # The cost column appears once turns are priced (sessions recorded before have none).
    priced = any("cost_usd" in t for t in turns)
    head = f"{'#':>2}  {'caller':<28} {'agent':<28} " + " ".join(f"{h:>7}" for h, _ in TABLE_SPANS)
    print(head + (f" {'cost':>8}" if priced else ""), file=out)
    print(
        f"{'':>2}  {'':<28} {'':<28} "
        + " ".join(f"{'ms':>7}" for _ in TABLE_SPANS)
        + (f" {'$':>8}" if priced else ""),
        file=out,
    )
    for turn in turns:
        spans = turn.get("spans", {})
        cells = []
        for _, span in TABLE_SPANS:
            if span is None:
                ms = sum(
                    v["ms"]
                    for k, v in spans.items()
                    if k.startswith("tool:") and v.get("ms") is not None
                )
                cells.append(f"{ms:7.0f}" if turn.get("tool_calls") else f"{'-':>7}")
            elif span in spans:
                cells.append(f"{spans[span]['ms']:7.0f}")
            else:
                cells.append(f"{'-':>7}")
        if priced:
            cost = turn.get("cost_usd")
            known = isinstance(cost, int | float) and not isinstance(cost, bool)
            cells.append(f"{cost:8.4f}" if known else f"{'-':>8}")
        agent = ("[cut] " if turn.get("interrupted") else "") + turn.get("agent_transcript", "")
        user = caller_text(str(turn.get("user_transcript", "")), scripted)
        print(
            f"{turn_number(turn)!s:>2}  {_clip(user, 28):<28} "
            f"{_clip(agent, 28):<28} " + " ".join(cells),
            file=out,
        )


# --- sessions ----------------------------------------------------------------------------


def _recover(root: Path) -> list[str]:
    """Close out sessions a crash left open (run at start-up)."""
    from app.store.index import SessionIndex
    from app.store.reader import recover_unfinished

    return recover_unfinished(root, SessionIndex(root / "sessions.db"))


def _find_session(session_id: str) -> Path:
    from app.store.paths import data_dir

    root = data_dir()
    folder = root / "sessions" / session_id
    if "/" in session_id or session_id in (".", "..") or not (folder / "session.json").exists():
        raise ConfigError(f"no session {session_id!r} in {root}")
    return folder


def cmd_sessions_list(args: argparse.Namespace) -> int:
    """``voiceprobe sessions list``."""
    from app.store.index import SessionIndex
    from app.store.paths import data_dir

    root = data_dir()
    _recover(root)
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

    record = load_session(_find_session(args.session_id))
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
    from app.store.index import SessionIndex
    from app.store.reader import load_session
    from app.store.report import html_report
    from app.store.writer import atomic_write_text

    folder = _find_session(args.session_id)
    record = load_session(folder)
    out = _report_target(Path(args.html), folder.parent)
    verdicts = SessionIndex(folder.parent.parent / "sessions.db").verdicts(record.session_id)
    # A new file renamed over the target: never half a report. The user's umask applies.
    atomic_write_text(out, html_report(record, verdicts), private=False)
    print(printable(out))
    return EXIT_OK


def _report_target(path: Path, sessions: Path) -> Path:
    """Where an export may go: not into voiceprobe's session folders (symlinks resolved),
    not a folder, and into a folder that exists. Returns the resolved path.

    Raises:
        ConfigError: one line naming ``path``.
    """
    target = path.resolve()
    store = sessions.resolve()
    if target == store or store in target.parents:
        raise ConfigError(f"is inside voiceprobe's session folder {store}", str(path))
    if target.is_dir():
        raise ConfigError("is a folder, not a file", str(path))
    if not target.parent.is_dir():
        raise ConfigError(f"folder {path.parent} does not exist", str(path))
    return target


# --- sample, keys --------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    """``voiceprobe sample``: write the caller WAV for a scenario and print its path."""
    from app.bridge.providers import DEFAULT_SCENARIO
    from app.private_files import PRIVATE_FILE_MODE
    from app.sim.caller import write_caller_wav
    from app.sim.scenario import load_scenario
    from app.store.paths import data_dir, samples_dir

    scenario = load_scenario(args.scenario or str(DEFAULT_SCENARIO))
    barge: dict[int, int] = {}
    for spec in args.barge_in:
        turn, _, ms = spec.partition(":")
        if not (turn.isdigit() and ms.isdigit()):
            raise UsageError(f"--barge-in takes TURN:MS, got {spec!r}")
        barge[int(turn)] = int(ms)
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


def cmd_keys_set(args: argparse.Namespace) -> int:
    """``voiceprobe keys set NAME``: read the key from stdin (never from argv)."""
    from app.secrets import set_secret

    value = sys.stdin.readline().strip()
    if not value:
        raise UsageError("no key on stdin")
    set_secret(
        {"openai": "openai_api_key", "gemini": "gemini_api_key", "sip": "sip_password"}[args.name],
        value,
    )
    print(f"{args.name} key stored in the OS keyring")
    return EXIT_OK


def cmd_keys_status(args: argparse.Namespace) -> int:
    """``voiceprobe keys status``: configured or not, and where from (never the value)."""
    from app.bridge.providers import KEY_NAMES
    from app.secrets import get_secret, keyring_available

    backend = "available" if keyring_available() else "none (using environment variables)"
    print(f"keyring backend: {backend}")
    for provider, (name, env_vars) in KEY_NAMES.items():
        print(f"{provider}: {'configured' if get_secret(name, env_vars) else 'not configured'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
