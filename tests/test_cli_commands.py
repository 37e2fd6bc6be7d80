"""The shared subcommand builders and signal hook of app.cli_support."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from app.cli_support import Parser, UsageError, add_list_command, add_show_command, on_signals


def _handler(args: object) -> int:
    return 0


def test_list_and_show_commands_parse() -> None:
    p = Parser(prog="voiceprobe things")
    sub = p.add_subparsers(dest="cmd", parser_class=Parser, required=True)
    add_list_command(sub, "things, newest first", _handler).add_argument("--search")
    add_show_command(sub, "show", "one thing", "thing_id", _handler)
    a = p.parse_args(["list", "--limit", "5", "--json", "--search", "x"])
    assert (a.limit, a.json, a.search, a.handler) == (5, True, "x", _handler)
    assert p.parse_args(["list"]).limit == 30
    b = p.parse_args(["show", "t1"])
    assert (b.thing_id, b.json, b.handler) == ("t1", False, _handler)
    with pytest.raises(UsageError):
        p.parse_args(["show"])


def test_on_signals_calls_stop_and_records_the_signal() -> None:
    async def main() -> list[signal.Signals]:
        stopped = asyncio.Event()
        caught = on_signals(stopped.set)
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stopped.wait(), 10)
        return caught

    assert asyncio.run(main()) == [signal.SIGTERM]
