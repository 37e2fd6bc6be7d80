"""``voiceprobe sip answer | dial``: the app as a registered softphone, bridging real phone
calls to the agent through the same core as ``voiceprobe call``.

:func:`register` adds the commands to the CLI (the composition root calls it; ``app``
never imports ``sip``). Contract (docs/architecture.md#command-line-contract): exit 0
when every call went well, 1 when a registration or call failed (one status line on
stderr), 2 on bad input (one line, raised as :class:`ConfigError`/:class:`SipError` and
printed by :func:`app.cli.main`). The SIP password comes from ``--account FILE``, the OS keyring
(``voiceprobe keys set sip``) or ``VOICEPROBE_SIP_PASSWORD``; never from argv, never
printed.

``sip answer --concurrent K`` bridges up to K calls at the same time (K ≤ 4, the pjsua2
wheel's cap on calls per process), each to its own fresh agent session: its own session
folder and, with ``--provider sim``, its own simulator (a simulator keeps one script
position across all its connections, so calls must not share one). Calls beyond K are
turned away with 486 Busy Here. Each call's summary is printed as it ends.

Threads: the command's main thread starts the endpoint and waits for registration, then
runs one asyncio loop for every call; pjsua2 stays on the endpoint's own thread.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli_output import progress_printer
from app.cli_support import (
    AgentSetup,
    Parser,
    add_agent_options,
    agent_setup,
    bridge_options,
    check_seconds,
)
from app.errors import ConfigError, SipError, VoiceprobeError
from app.events import EventBase
from sip.cli_calls import Calls, Gate, run_calls
from sip.cli_calls import status as _status

if TYPE_CHECKING:
    from app.bridge.session import CallSetup

EXIT_OK, EXIT_FAILED = 0, 1

#: Most calls bridged at once: the pjsua2 wheel's build cap on calls per process
#: (``sip.endpoint.MAX_CALLS``, not imported here so that the CLI loads without pjsua2).
MAX_CONCURRENT = 4

#: What a final SIP status means, for the status line of a failed call.
STATUS_MEANING = {
    401: "authentication required",
    403: "forbidden",
    404: "not found",
    407: "proxy authentication required",
    408: "no answer",
    480: "unavailable",
    486: "busy",
    487: "cancelled",
    488: "no codec in common",
    503: "service unavailable",
    600: "busy everywhere",
    603: "declined",
    604: "does not exist",
    606: "not acceptable",
}


def register(subparsers: Any) -> None:
    """Add ``sip answer`` and ``sip dial`` to the CLI's subparsers."""
    p = subparsers.add_parser("sip", help="answer or place SIP calls bridged to the agent")
    ssub = p.add_subparsers(dest="sip_command", parser_class=Parser, required=True)

    q = ssub.add_parser("answer", help="register, answer N incoming calls, bridge each")
    _account_options(q)
    q.add_argument("--calls", type=int, default=1, help="answer this many calls, then exit")
    q.add_argument(
        "--concurrent",
        type=int,
        default=1,
        metavar="K",
        help=f"bridge up to K calls at a time (1-{MAX_CONCURRENT}); more are turned away "
        "with 486",
    )
    _agent_options(q)
    q.set_defaults(handler=cmd_sip_answer)

    q = ssub.add_parser("dial", help="call TARGET and bridge the call to the agent")
    q.add_argument("target", help="SIP URI (sip:user@host) or a user at the account's domain")
    _account_options(q)
    _agent_options(q)
    q.set_defaults(handler=cmd_sip_dial)


def _account_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uri", help="the account's address, e.g. sip:alice@example.com")
    p.add_argument("--registrar", help="registrar URI, e.g. sip:example.com (none: no REGISTER)")
    p.add_argument("--username", help="digest user name (default: the user part of --uri)")
    p.add_argument("--transport", choices=("udp", "tcp", "tls"), help="SIP transport")
    p.add_argument("--account", help="account YAML/JSON file (may hold the password)")
    p.add_argument(
        "--bind", metavar="HOST:PORT", help="local SIP/RTP address (default 127.0.0.1:0)"
    )
    p.add_argument(
        "--tls-ca-file",
        metavar="FILE",
        help="PEM file of the CAs that sign the SIP server's TLS certificate (default: the "
        "system's CAs); with --transport tls the server is always verified",
    )
    p.add_argument(
        "--srtp", choices=("off", "optional", "mandatory"), help="SRTP for the call's media"
    )
    p.add_argument(
        "--srtp-insecure-signaling",
        action="store_true",
        help="allow SRTP over udp/tcp signalling (INSECURE: the SRTP keys travel in "
        "plaintext SDP)",
    )


def _agent_options(p: argparse.ArgumentParser) -> None:
    add_agent_options(
        p,
        truth_help="with --provider sim: write the simulator's ground truth here (with "
        "--concurrent above 1, one file per call: NAME-1.jsonl, NAME-2.jsonl, ...)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for each incoming call (answer) or for the answer (dial)",
    )


# --- input -------------------------------------------------------------------------------


def account_from_args(args: argparse.Namespace) -> Any:
    """Build the :class:`SipAccountConfig` from ``--account FILE`` and the flags (flags win).

    Raises:
        ConfigError: a missing or bad field, a malformed ``--bind``, no password for a
            registrar, an unreadable ``--tls-ca-file``, SRTP over udp/tcp without
            ``--srtp-insecure-signaling``.
    """
    from sip.config import SipAccountConfig, load_account_config

    fields: dict[str, Any] = {}
    if args.account:
        base = load_account_config(args.account)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        if args.uri or args.username:
            fields["username"] = args.username or ""
    for name in ("uri", "registrar", "username", "transport", "tls_ca_file", "srtp"):
        value = getattr(args, name)
        if value:
            fields[name] = value
    if args.srtp_insecure_signaling:
        fields["srtp_insecure_signaling"] = True
    if args.bind:
        host, sep, port = args.bind.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"--bind takes HOST:PORT, got {args.bind!r}")
        fields["bind_host"], fields["bind_port"] = host, int(port)
    if not fields.get("uri"):
        raise ConfigError("--uri (or --account FILE with a uri) is required")
    cfg = SipAccountConfig(**fields)
    if cfg.registrar and not cfg.resolved_password():
        raise ConfigError(
            "no SIP password: put it in the --account file, store it with "
            "`voiceprobe keys set sip`, or set VOICEPROBE_SIP_PASSWORD"
        )
    return cfg


def _agent_setup(args: argparse.Namespace) -> AgentSetup:
    """The agent side of the calls (:func:`app.cli_support.agent_setup`), after checking
    ``--timeout``; sessions a crash left open in its data folder are closed out first."""
    from app.store.reader import recover_unfinished

    check_seconds(args.timeout, "--timeout")
    agent = agent_setup(args, bridge_options(args))
    recover_unfinished(agent.data_root)
    return agent


def _dial_uri(target: str, domain: str) -> str:
    if target.startswith(("sip:", "sips:")):
        return target
    if "@" in target:
        return f"sip:{target}"
    if not target or any(c.isspace() for c in target):
        raise ConfigError(f"not a SIP target: {target!r}")
    return f"sip:{target}@{domain}"


def describe_status(code: int, reason: str) -> str:
    """``486 Busy Here (busy)``: the status, its phrase and what it means."""
    meaning = STATUS_MEANING.get(code)
    text = f"{code} {reason}".strip()
    return f"{text} ({meaning})" if meaning and meaning.lower() not in reason.lower() else text


# --- output ------------------------------------------------------------------------------


def _sip_printer() -> Callable[[EventBase], None]:
    """Status lines for SIP events (loop thread). One printer may serve every call: an
    account event that reaches each call's session is printed once."""
    from collections import deque

    from sip.events import CallState, Dtmf, RegistrationState

    shown: deque[EventBase] = deque(maxlen=16)  # by identity; holding them keeps ids unique

    def show(ev: EventBase) -> None:
        if any(e is ev for e in shown):
            return
        shown.append(ev)
        if isinstance(ev, CallState) and ev.state in ("incoming", "confirmed", "disconnected"):
            _status(f"sip call {ev.state}: {ev.remote_uri} {ev.code} {ev.reason}".rstrip())
        elif isinstance(ev, Dtmf):
            _status(f"sip DTMF {ev.digit}")
        elif isinstance(ev, RegistrationState) and not ev.active:
            _status(f"sip {ev.reason}")

    return show


# --- commands ----------------------------------------------------------------------------


def _start_endpoint(cfg: Any, on_incoming: Callable[[Any], int] | None) -> tuple[Any, Any]:
    """Start pjsua2 and add the account; raises :class:`SipError` on a bad transport."""
    from sip.endpoint import SipEndpoint

    ep = SipEndpoint(on_incoming=on_incoming, media_rate=16000)
    try:
        ep.start()
        acc = ep.add_account(cfg)
    except BaseException:
        ep.shutdown()
        raise
    return ep, acc


def _registered(cfg: Any, acc: Any) -> bool:
    """Wait for the registration outcome; print it. False: registration failed."""
    if not cfg.registrar:
        _status(f"account {cfg.uri} (no registrar), contact {acc.contact}")
        return True
    st = acc.wait_registration(cfg.reg_timeout + 2.0)
    if st is None:
        _status(f"registration failed: no answer from {cfg.registrar}")
        return False
    if not st.active or st.code // 100 != 2:
        _status(st.reason if st.reason.startswith("registration") else
                f"registration failed: {st.code} {st.reason}")
        return False
    _status(f"registered {cfg.uri} at {cfg.registrar} ({st.code} {st.reason})")
    return True


def _subscribers(
    args: argparse.Namespace, sip_printer: Callable[[EventBase], None] | None = None
) -> list[Callable[[EventBase], None]]:
    subs = [sip_printer or _sip_printer()]
    # Progress lines name no call: with several calls at once they would be ambiguous.
    if not args.json and getattr(args, "concurrent", 1) == 1:
        subs.append(progress_printer())
    return subs


def _call_truth_path(path: str | None, index: int, concurrent: int) -> str | None:
    """Each concurrent call's simulator writes its own ground truth: NAME-<index>.jsonl."""
    if path is None or concurrent <= 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{index}{p.suffix}"))


def _setup(
    args: argparse.Namespace, agent: AgentSetup, source: str, index: int = 1
) -> CallSetup:
    """The call's agent side. The plan is copied: starting it (the simulator) fills in its
    URL, which must not be shared by calls running at the same time."""
    plan = dataclasses.replace(
        agent.plan,
        truth_path=_call_truth_path(agent.plan.truth_path, index, getattr(args, "concurrent", 1)),
        sim=None,
    )
    return agent.call_setup(source, record=not args.no_record, plan=plan, extra_tags=["sip"])


def cmd_sip_answer(args: argparse.Namespace) -> int:
    """``voiceprobe sip answer``: bridge ``--calls`` incoming calls, up to ``--concurrent``
    at a time, then exit (0 when every call was bridged and ended well)."""
    if args.calls < 1:
        raise ConfigError("--calls must be at least 1")
    if not 1 <= args.concurrent <= MAX_CONCURRENT:
        raise ConfigError(
            f"--concurrent must be 1-{MAX_CONCURRENT}: the pjsua2 wheel handles at most "
            f"{MAX_CONCURRENT} calls per process (run more processes for more calls)"
        )
    cfg = account_from_args(args)
    agent = _agent_setup(args)
    gate = Gate(args.calls, args.concurrent)
    ep, acc = _start_endpoint(cfg, gate.decide)
    try:
        if not _registered(cfg, acc):
            return EXIT_FAILED
        calls = Calls(args.json)
        return run_calls(lambda: _serve(args, cfg, agent, gate, calls), calls)
    finally:
        ep.shutdown()


async def _serve(
    args: argparse.Namespace, cfg: Any, agent: AgentSetup, gate: Gate, calls: Calls
) -> int:
    """Bridge the calls the gate takes, each in its own task; return the exit code.

    Gives up (exit 1) when no call is in progress and none has arrived for ``--timeout``
    seconds. Cancelling this (SIGINT) cancels every call's task, which hangs the call up.
    """
    from sip.bridge import bridge_sip_call

    loop = asyncio.get_running_loop()
    printer = _sip_printer()
    outcomes: list[bool] = []
    running: set[asyncio.Task[None]] = set()
    last_activity = loop.time()

    async def bridge_one(call: Any, index: int) -> None:
        nonlocal last_activity
        try:
            summary = await bridge_sip_call(
                call, _setup(args, agent, f"sip:{call.remote_uri}", index),
                _subscribers(args, printer), on_session=calls.started,
            )
        except VoiceprobeError as exc:  # this call's session could not be set up
            _status(f"call {index} from {call.remote_uri} failed: {exc}")
            outcomes.append(False)
            return
        finally:
            gate.release()
            last_activity = loop.time()
        calls.print(summary)
        outcomes.append(bool(summary["ok"]))

    timed_out = False
    async with asyncio.TaskGroup() as tg:
        started = 0
        announced = -1
        while started < args.calls:
            if announced != started:
                announced = started
                _status(f"waiting for call {started + 1} of {args.calls} at {cfg.uri}")
            # Short waits so that Ctrl-C is not held up by a blocked thread.
            call = await loop.run_in_executor(None, gate.next_call, 0.25)
            if call is None:
                if not running and loop.time() - last_activity > args.timeout:
                    _status(f"no incoming call within {args.timeout:g} s")
                    timed_out = True
                    break
                continue
            if call.ended.is_set():  # the caller gave up while it rang
                gate.forget()
                continue
            started += 1
            last_activity = loop.time()
            _status(f"call {started} from {call.remote_uri}")
            task = tg.create_task(bridge_one(call, started), name=f"sip-call-{started}")
            running.add(task)
            task.add_done_callback(running.discard)
    if gate.turned_away:
        _status(f"turned away {gate.turned_away} call(s) with 486 (busy)")
    ok = not timed_out and len(outcomes) == args.calls and all(outcomes)
    return EXIT_OK if ok else EXIT_FAILED


def cmd_sip_dial(args: argparse.Namespace) -> int:
    """``voiceprobe sip dial TARGET``: call TARGET and bridge the call to the agent."""
    cfg = account_from_args(args)
    target = _dial_uri(args.target, cfg.domain)
    agent = _agent_setup(args)
    ep, acc = _start_endpoint(cfg, lambda call: 486)  # a dialling softphone is busy
    calls = Calls(args.json)
    try:
        if not _registered(cfg, acc):
            return EXIT_FAILED

        async def dial() -> int:
            from sip.bridge import bridge_sip_call

            loop = asyncio.get_running_loop()
            try:
                call = await loop.run_in_executor(None, ep.make_call, acc, target)
            except SipError as exc:
                _status(f"call to {target} failed: {exc}")
                return EXIT_FAILED
            _status(f"calling {target}")

            async def ring_limit() -> None:
                answered = await loop.run_in_executor(None, call.wait_confirmed, args.timeout)
                if not answered and not call.ended.is_set():
                    _status(f"no answer within {args.timeout:g} s")
                    call.hangup(487)

            limit = asyncio.create_task(ring_limit())
            try:
                summary = await bridge_sip_call(
                    call, _setup(args, agent, f"sip:{target}"), _subscribers(args),
                    on_session=calls.started,
                )
            finally:
                limit.cancel()
            sip_info = summary["sip"]
            if not sip_info["answered"]:
                status = describe_status(sip_info["end_code"], sip_info["end_reason"])
                _status(f"call to {target} failed: {status}")
            calls.print(summary)
            return EXIT_OK if summary["ok"] else EXIT_FAILED

        return run_calls(dial, calls)
    finally:
        ep.shutdown()
