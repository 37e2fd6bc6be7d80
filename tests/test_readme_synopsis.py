"""The README's command-line synopsis names exactly the flags each command has.

The synopsis (the code block under "Command line") is what a user reads first; a flag
added to argparse but not to the synopsis, or left in the synopsis after it was removed,
fails here. The commands checked are the ones the synopsis spells out in full.
"""

from __future__ import annotations

import argparse
import re

import pytest

from app.cli import build_parser
from tests.conftest import REPO

#: Commands whose synopsis lists every flag (the others point to their own sections).
FULL_SYNOPSES = ("call", "sim", "sample")

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def synopsis(command: str) -> str:
    """The synopsis of ``voiceprobe COMMAND`` in the README: its first line and the
    indented lines that continue it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## Command line", 1)[1].split("```", 2)[1]
    lines = block.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"voiceprobe {command} ") or line == f"voiceprobe {command}":
            out = [line]
            out += _continued(lines[i + 1 :])
            return "\n".join(out)
    raise AssertionError(f"no `voiceprobe {command}` line in the README's synopsis")


def _continued(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if not line.startswith(" "):
            break
        out.append(line)
    return out


def argparse_flags(command: str) -> set[str]:
    parser, sub = build_parser()
    choices: dict[str, argparse.ArgumentParser] = sub.choices
    return {
        opt
        for action in choices[command]._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }


@pytest.mark.parametrize("command", FULL_SYNOPSES)
def test_readme_synopsis_lists_every_flag(command: str) -> None:
    listed = set(FLAG.findall(synopsis(command)))
    flags = argparse_flags(command)
    missing, unknown = sorted(flags - listed), sorted(listed - flags)
    assert not missing, f"`{command}` flags missing from the README synopsis: {missing}"
    assert not unknown, f"the README lists `{command}` flags that do not exist: {unknown}"


def test_the_synopsis_reader_sees_continuation_lines() -> None:
    text = synopsis("call")
    assert text.startswith("voiceprobe call --input") and "--prices" in text
    assert "voiceprobe sessions" not in text
