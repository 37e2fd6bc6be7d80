"""The ``voiceprobe serve …`` commands' registration (light: the servers load on use)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_serve_command(sub: Any, add_agent_options: Callable[..., None]) -> None:
    """Register ``voiceprobe serve twilio`` on the CLI's subparsers ``sub``."""
    p = sub.add_parser("serve", help="serve a protocol other systems call (Twilio Media Streams)")
    ssub = p.add_subparsers(dest="serve_command", required=True, parser_class=type(p))
    q = ssub.add_parser("twilio", help="a Twilio Media Streams server bridged to the agent")
    q.add_argument("--host", default="127.0.0.1")
    q.add_argument("--port", type=int, default=0)
    q.add_argument(
        "--public-url", help="the wss:// URL Twilio reaches this server at (for the TwiML)"
    )
    add_agent_options(q)
    q.set_defaults(handler=_serve_twilio)


def _serve_twilio(args: argparse.Namespace) -> int:
    from app.serve.twilio import cmd_serve_twilio

    return cmd_serve_twilio(args)
