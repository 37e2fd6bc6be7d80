"""The ``voiceprobe serve …`` commands' registration (light: the servers load on use)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

#: The agents a served stream can be bridged to (kept here so the CLI stays light).
SERVE_PROVIDERS = ("sim", "openai", "gemini")


class _NoParam(argparse.Action):
    """``--param`` on ``serve twilio``: refused (exit 2) and left out of the help. It is
    the shared agent options' customParameters for ``--provider twilio-ws``, which a
    served stream cannot be bridged to; the agents it can be bridged to take none."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kw: Any) -> None:
        parser.error(
            "--param only applies to `call --provider twilio-ws`; serve twilio bridges "
            f"streams to {' | '.join(SERVE_PROVIDERS)}, which take no custom parameters"
        )


def add_serve_command(sub: Any, add_agent_options: Callable[..., None]) -> None:
    """Register ``voiceprobe serve twilio`` on the CLI's subparsers ``sub``."""
    p = sub.add_parser("serve", help="serve a protocol other systems call (Twilio Media Streams)")
    ssub = p.add_subparsers(dest="serve_command", required=True, parser_class=type(p))
    # ``resolve``: the shared --provider is re-declared below with the agents a served
    # stream can be bridged to (twilio-ws is a stream itself), and the shared --param
    # (twilio-ws only) with a refusal.
    q = ssub.add_parser(
        "twilio",
        help="a Twilio Media Streams server bridged to the agent",
        conflict_handler="resolve",
    )
    q.add_argument("--host", default="127.0.0.1")
    q.add_argument("--port", type=int, default=0)
    q.add_argument(
        "--public-url", help="the wss:// URL Twilio reaches this server at (for the TwiML)"
    )
    add_agent_options(q)
    q.add_argument(
        "--provider",
        choices=SERVE_PROVIDERS,
        help="the agent each stream is bridged to: sim | openai | gemini (default: sim, "
        "as for `call`)",
    )
    q.add_argument("--param", action=_NoParam, default=[], help=argparse.SUPPRESS)
    q.set_defaults(handler=_serve_twilio)


def _serve_twilio(args: argparse.Namespace) -> int:
    from app.serve.twilio import cmd_serve_twilio

    return cmd_serve_twilio(args)
