"""What every command that places calls or reads sessions shares: the one-line-error
parser, the ``list``/``show`` subcommand shapes, the agent options and their resolution
into an :class:`AgentSetup`, signal handling, and finding a session folder.

Contract (docs/architecture.md#command-line-contract): bad input gives ONE line naming
the problem and exit code :data:`EXIT_BAD_INPUT`, never a traceback; so every check here
raises :class:`~app.errors.ConfigError` (or :class:`UsageError`) with a one-line message,
and :func:`app.cli.main` prints it. Heavy imports (the bridge, providers, the store) happen
inside the functions, so that ``voiceprobe --help`` stays quick.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from app.errors import ConfigError
from app.textsafe import printable

if TYPE_CHECKING:
    from app.bridge.call import BridgeOptions
    from app.bridge.providers import ProviderPlan
    from app.bridge.session import CallSetup
    from app.profile import Profile

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(ConfigError):
    """A command-line usage problem."""


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (raised as
    :class:`UsageError` and printed by :func:`app.cli.main`); pass it as the
    ``parser_class`` of every subparsers object."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def check_seconds(value: float, flag: str) -> None:
    """Refuse a duration flag that is not a positive, finite number of seconds (``nan``
    and ``inf`` parse as floats, and a ``nan`` limit never fires).

    Raises:
        UsageError: one line naming ``flag``.
    """
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{flag} must be a positive number of seconds, not {value:g}")


#: The most rows a ``list`` command prints (``--limit``).
MAX_LIST_LIMIT = 1_000_000


def check_limit(value: int) -> None:
    """Refuse a ``list`` command's ``--limit`` that is not 1 to :data:`MAX_LIST_LIMIT`
    (a negative one meant "no limit" to SQLite, a huge one overflowed it).

    Raises:
        UsageError: one line naming ``--limit``.
    """
    if not 1 <= value <= MAX_LIST_LIMIT:
        raise UsageError(f"--limit must be 1-{MAX_LIST_LIMIT}, got {value}")


def add_agent_options(p: argparse.ArgumentParser, truth_help: str = "") -> None:
    """The options every command that places calls shares (``call``, ``sip answer|dial``):
    which agent, where it lives, where the session goes."""
    p.add_argument(
        "--provider",
        help="sim | openai | gemini | twilio-ws (default: sim, or the profile's twilio-ws)",
    )
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


def plan_agent(args: argparse.Namespace, profile: Profile) -> tuple[ProviderPlan, Profile]:
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


@dataclass(frozen=True, slots=True)
class AgentSetup:
    """The agent side of a command that places calls, resolved from its agent options
    (see :func:`add_agent_options`) before any call starts.

    Attributes:
        profile: the agent profile, adjusted to the chosen provider.
        plan: which provider, endpoint and key (not started yet).
        data_root: the data folder sessions are written under (``--out`` or the user's).
        options: the bridge knobs of every call.
        tags: the checked ``--tag`` values every session carries.
    """

    profile: Profile
    plan: ProviderPlan
    data_root: Path
    options: BridgeOptions
    tags: tuple[str, ...] = ()

    def call_setup(
        self,
        source: str,
        *,
        record: bool = True,
        prices: Path | None = None,
        plan: ProviderPlan | None = None,
        extra_tags: Sequence[str] = (),
    ) -> CallSetup:
        """One call's :class:`~app.bridge.session.CallSetup` on this agent side.

        Args:
            source: the caller side, as the session records it (``file:NAME``, ``mic``,
                ``sip:URI``).
            record: write the call's ``audio.wav``.
            prices: a price table that overrides the shipped one (``--prices``).
            plan: this call's own copy of the plan (calls that run at the same time
                must not share a started simulator); default :attr:`plan`.
            extra_tags: tags put before :attr:`tags` (``sip`` for SIP calls).
        """
        from app.bridge.session import CallSetup

        return CallSetup(
            profile=self.profile,
            plan=plan if plan is not None else self.plan,
            data_root=self.data_root,
            tags=[*extra_tags, *self.tags],
            record=record,
            options=self.options,
            source=source,
            prices=prices,
        )


def agent_setup(args: argparse.Namespace, options: BridgeOptions | None = None) -> AgentSetup:
    """Resolve everything about the agent side that can fail on bad input: ``--tag`` (first,
    before any file is read), ``--max-seconds``, the profile, the provider plan (which
    tells the user where the key goes, see :func:`plan_agent`) and the data folder.

    Args:
        args: parsed options added by :func:`add_agent_options`.
        options: the bridge knobs (default: :func:`bridge_options` of ``args``).

    Raises:
        VoiceprobeError: one line naming the bad input.
    """
    from app.profile import load_profile
    from app.store.paths import data_dir
    from app.store.tags import check_tags

    tags = tuple(check_tags(args.tag))
    check_seconds(args.max_seconds, "--max-seconds")
    plan, profile = plan_agent(args, load_profile(args.profile))
    return AgentSetup(
        profile=profile,
        plan=plan,
        data_root=Path(args.out) if args.out else data_dir(),
        options=options if options is not None else bridge_options(args),
        tags=tags,
    )


def bridge_options(args: argparse.Namespace) -> BridgeOptions:
    """The bridge knobs from a command's flags: ``--max-seconds`` and, where the command
    has them, ``--barge-in``, ``--rollover-s`` and ``--no-reconnect`` (absent ones keep
    :class:`~app.bridge.call.BridgeOptions`' defaults)."""
    from app.bridge.call import BridgeOptions

    knobs: dict[str, Any] = {"max_seconds": args.max_seconds}
    if getattr(args, "barge_in", None):
        knobs["barge_in"] = args.barge_in
    if getattr(args, "rollover_s", None) is not None:
        knobs["session_max_s"] = args.rollover_s
    if getattr(args, "no_reconnect", False):
        knobs["reconnect_attempts"] = 0
    return BridgeOptions(**knobs)


def add_list_command(
    sub: Any, help: str, handler: Callable[[argparse.Namespace], Any]
) -> argparse.ArgumentParser:
    """Add a ``list`` subcommand (newest first) with ``--limit`` (default 30) and
    ``--json`` to the subparsers ``sub``; returns it for more options."""
    q: argparse.ArgumentParser = sub.add_parser("list", help=help)
    q.add_argument("--limit", type=int, default=30)
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=handler)
    return q


def add_show_command(
    sub: Any, name: str, help: str, key: str, handler: Callable[[argparse.Namespace], Any]
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` that shows one thing named by the positional ``key`` (e.g.
    ``session_id``), with ``--json``, to the subparsers ``sub``; returns it."""
    q: argparse.ArgumentParser = sub.add_parser(name, help=help)
    q.add_argument(key)
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=handler)
    return q


def on_signals(stop: Callable[[], object]) -> list[signal.Signals]:
    """SIGINT/SIGTERM call ``stop`` (call this on the running loop's thread).

    Returns:
        The list each signal received is appended to, so the command can exit with
        ``128 + signal`` (130 for SIGINT, 143 for SIGTERM).
    """
    received: list[signal.Signals] = []
    loop = asyncio.get_running_loop()

    def handle(sig: signal.Signals) -> None:
        received.append(sig)
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handle, sig)
    return received


def cancel_on_signals() -> list[signal.Signals]:
    """SIGINT/SIGTERM cancel the running task (call from inside it), so a command's
    ``finally`` blocks hang up calls and close sessions; returns :func:`on_signals`' list.
    """
    task = asyncio.current_task()
    return on_signals(task.cancel) if task is not None else []


def interrupted_summary(folder: Path, prices: Path | None = None) -> dict[str, Any] | None:
    """The summary of a call a signal interrupted, read back from its session folder, in
    the shape of a finished call's (:func:`app.bridge.session.run_call`), so that it prints
    the same way: the turns the session was closed out with (``turns.json``), their
    voice-to-voice figures, the cost of the usage they report, and the round trips the
    events log holds; ``ok`` is false and ``reason`` is ``interrupted``. What only a
    finished call knows (the bridge's counters, the call's errors) is empty.

    Args:
        folder: the session folder, closed out ``interrupted`` by ``run_call``.
        prices: the call's ``--prices`` table, if any.

    Returns:
        The summary, or ``None`` when the folder or the price table cannot be read.
    """
    from app.bridge.session import call_summary
    from app.errors import VoiceprobeError
    from app.events import NetworkSample
    from app.metrics.cost import load_price_table, price_call
    from app.store.reader import load_session, session_events

    try:
        record = load_session(folder)
        cost = price_call(record.turns, load_price_table(prices))
    except VoiceprobeError:
        return None
    meta = record.meta
    network = session_events(record, {"NetworkSample": NetworkSample})
    return call_summary(
        session_id=record.session_id,
        folder=record.path,
        provider=meta.get("provider"),
        model=meta.get("model"),
        ok=False,
        reason="interrupted",
        cost=cost,
        errors=[],
        network=[e for e in network if isinstance(e, NetworkSample)],
        bridge={},
    )


def find_session(session_id: str) -> Path:
    """The folder of session ``session_id`` in the data folder.

    Raises:
        ConfigError: no such session (or an id that is not a plain folder name).
    """
    from app.store.paths import data_dir

    root = data_dir()
    folder = root / "sessions" / session_id
    if "/" in session_id or session_id in (".", "..") or not (folder / "session.json").exists():
        raise ConfigError(f"no session {session_id!r} in {root}")
    return folder
