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
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from app.errors import ConfigError, VoiceprobeError

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
    return parser, sub


def add_agent_options(p: argparse.ArgumentParser, truth_help: str = "") -> None:
    """The options every command that places calls shares (``call``, ``sip answer|dial``):
    which agent, where it lives, where the session goes."""
    p.add_argument("--provider", default="sim", help="sim | openai | gemini")
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


def cancel_on_signals() -> None:
    """SIGINT/SIGTERM cancel the running task (call from inside it), so a command's
    ``finally`` blocks hang up calls and close sessions."""
    task = asyncio.current_task()
    if task is None:
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)


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
                return EXIT_OK
            return default(args)
        return handler(args)
    except VoiceprobeError as exc:
        message = str(exc)  # argparse's own lines already name the command
        if not message.startswith("voiceprobe"):
            message = f"voiceprobe: error: {message}"
        print(message, file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


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
    from app.bridge.providers import plan_provider
    from app.bridge.session import CallSetup, run_call
    from app.profile import load_profile
    from app.store.paths import data_dir

    if args.max_seconds <= 0:
        raise UsageError("--max-seconds must be positive")
    if args.rollover_s is not None and args.rollover_s <= 0:
        raise UsageError("--rollover-s must be positive")
    port = WavFilePort.from_wav(args.input, rate=16000)
    profile = load_profile(args.profile)
    plan, profile = plan_provider(
        args.provider, profile, args.url, args.ca_file, args.scenario, args.truth
    )
    root = Path(args.out) if args.out else data_dir()
    _recover(root)
    setup = CallSetup(
        profile=profile,
        plan=plan,
        data_root=root,
        tags=list(args.tag),
        record=not args.no_record,
        options=_call_options(args),
        source=f"file:{Path(args.input).name}",
    )
    progress = None if args.json else _progress_printer()
    summary = asyncio.run(run_call(setup, port, [progress] if progress else []))
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print_turn_table(summary["turns"], sys.stdout)
        v2v = summary["voice_to_voice"]
        if v2v["count"]:
            print(
                f"voice_to_voice (LocalSpeechStopped → PlaybackStarted): "
                f"p50 {v2v['p50_ms']:.0f} ms, p95 {v2v['p95_ms']:.0f} ms over {v2v['count']} turns"
            )
        for err in summary["errors"]:
            print(f"error: {err.get('code')}: {err.get('message')}", file=sys.stderr)
        print(f"session {summary['session_id']}: {summary['session_dir']}")
    return EXIT_OK if summary["ok"] else EXIT_FAILED


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
        if isinstance(ev, CallStarted):
            print(f"call {ev.session_id} → {ev.provider} ({ev.model})", file=sys.stderr)
        elif isinstance(ev, ConnectionState):
            print(f"  connection: {ev.state} {ev.detail}".rstrip(), file=sys.stderr)
        elif isinstance(ev, TurnCompleted):
            v2v = ev.turn["spans"].get("voice_to_voice")
            fig = f"{v2v['ms']:.0f} ms" if v2v else "-"
            print(f"  turn {ev.turn['index']} done, voice_to_voice {fig}", file=sys.stderr)
        elif isinstance(ev, ProviderErrorEvent):
            print(f"  provider error {ev.code}: {ev.message}", file=sys.stderr)
        elif isinstance(ev, Notice) and ev.level != "info":
            print(f"  {ev.level}: {ev.message}", file=sys.stderr)

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


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_turn_table(turns: list[dict[str, Any]], out: Any) -> None:
    """One row per turn with the span figures in ms (``-`` where a span does not apply)."""
    head = f"{'#':>2}  {'caller':<28} {'agent':<28} " + " ".join(f"{h:>7}" for h, _ in TABLE_SPANS)
    print(head, file=out)
    print(f"{'':>2}  {'':<28} {'':<28} " + " ".join(f"{'ms':>7}" for _ in TABLE_SPANS), file=out)
    for turn in turns:
        cells = []
        for _, span in TABLE_SPANS:
            if span is None:
                ms = sum(
                    v["ms"]
                    for k, v in turn["spans"].items()
                    if k.startswith("tool:") and v.get("ms") is not None
                )
                cells.append(f"{ms:7.0f}" if turn["tool_calls"] else f"{'-':>7}")
            elif span in turn["spans"]:
                cells.append(f"{turn['spans'][span]['ms']:7.0f}")
            else:
                cells.append(f"{'-':>7}")
        agent = ("[cut] " if turn["interrupted"] else "") + turn["agent_transcript"]
        print(
            f"{turn['index']:>2}  {_clip(turn['user_transcript'], 28):<28} "
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
        print(json.dumps(rows, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print(f"no sessions in {root}")
        return EXIT_OK
    head = ("session", "started", "status", "provider", "turns", "v2v p50")
    print(f"{head[0]:<22} {head[1]:<20} {head[2]:<11} {head[3]:<8} {head[4]:>5} {head[5]:>8}")
    for r in rows:
        p50 = r.get("p50_v2v_ms")
        print(
            f"{r['id']:<22} {str(r.get('started_at') or '')[:19]:<20} {r.get('status') or '':<11} "
            f"{r.get('provider') or '':<8} {r.get('turns') or 0:>5} "
            f"{(f'{p50:.0f} ms' if p50 is not None else '-'):>8}"
        )
    return EXIT_OK


def cmd_sessions_show(args: argparse.Namespace) -> int:
    """``voiceprobe sessions show ID``."""
    from app.store.reader import load_session

    record = load_session(_find_session(args.session_id))
    if args.json:
        print(json.dumps({"meta": record.meta, "turns": record.turns}, ensure_ascii=False))
        return EXIT_OK
    meta = record.meta
    print(
        f"session {record.session_id}  status {meta.get('status')}  provider {meta.get('provider')}"
    )
    print(f"started {meta.get('started_at')}  ended {meta.get('ended_at')}")
    print(f"events {len(record.events)}  folder {record.path}")
    print_turn_table(record.turns, sys.stdout)
    return EXIT_OK


def cmd_sessions_export(args: argparse.Namespace) -> int:
    """``voiceprobe sessions export ID --html FILE``."""
    from app.store.reader import load_session
    from app.store.report import html_report

    record = load_session(_find_session(args.session_id))
    out = Path(args.html)
    try:
        out.write_text(html_report(record), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write ({exc.strerror})", str(out)) from None
    print(out)
    return EXIT_OK


# --- sample, keys --------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    """``voiceprobe sample``: write the caller WAV for a scenario and print its path."""
    from app.bridge.providers import DEFAULT_SCENARIO
    from app.sim.caller import write_caller_wav
    from app.sim.scenario import load_scenario
    from app.store.paths import data_dir

    scenario = load_scenario(args.scenario or str(DEFAULT_SCENARIO))
    barge: dict[int, int] = {}
    for spec in args.barge_in:
        turn, _, ms = spec.partition(":")
        if not (turn.isdigit() and ms.isdigit()):
            raise UsageError(f"--barge-in takes TURN:MS, got {spec!r}")
        barge[int(turn)] = int(ms)
    out = Path(args.out) if args.out else data_dir() / "samples" / f"{scenario.name}.wav"
    utterances = write_caller_wav(scenario, out, barge_in=barge)
    print(out)
    for u in utterances:
        print(f"  {u.start / 16000:7.3f}–{u.end / 16000:7.3f} s  {u.text}", file=sys.stderr)
    return EXIT_OK


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
