"""YAML (and so JSON) loading with a budget, for profiles and scenarios.

``yaml.safe_load`` builds no objects it should not, but aliases let a few hundred bytes
stand for millions of values (the "billion laughs": ``b: &b [*a, *a, ...]`` nine levels
deep). The loaded value is shared, so loading is quick, but anything that walks or
serialises it (validation, the profile snapshot in ``session.json``) expands it. So
before constructing a document, :func:`load_yaml` counts the values and characters the
document stands for, *with every alias expanded*, and refuses it past the budget:

- :data:`MAX_TEXT_CHARS`: the file itself;
- :data:`MAX_VALUES`: scalars, lists and mappings, aliases expanded;
- :data:`MAX_VALUE_CHARS`: characters in all scalars, aliases expanded.

A recursive alias (``a: &x [*x]``) is refused as well. Counting is linear in the size of
the file (each node is counted once and its total reused), never in the expansion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from app.errors import ConfigError

MAX_TEXT_CHARS = 1 << 20
MAX_VALUES = 100_000
MAX_VALUE_CHARS = 2_000_000


def _expanded_size(root: Node, path: str) -> tuple[int, int]:
    """``(values, characters)`` of ``root`` with aliases expanded.

    Raises:
        ConfigError: a recursive alias.
    """
    totals: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in totals:
            continue
        if isinstance(node, ScalarNode):
            totals[key] = (1, len(node.value))
            continue
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        if children_done:
            open_nodes.discard(key)
            values, chars = 1, 0
            for child in children:
                v, c = totals[id(child)]
                values += v
                chars += c
            totals[key] = (values, chars)
            continue
        if key in open_nodes:
            raise ConfigError("a YAML alias refers to itself (recursive anchor)", path)
        open_nodes.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise ConfigError("a YAML alias refers to itself (recursive anchor)", path)
            if id(child) not in totals:
                stack.append((child, False))
    return totals[id(root)]


class _BoundedLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML has no stubs here
    """SafeLoader that checks the expanded size of each document before building it."""

    source = "<yaml>"

    def construct_document(self, node: Node) -> Any:
        values, chars = _expanded_size(node, self.source)
        if values > MAX_VALUES:
            raise ConfigError(
                f"too large: stands for {values} values with its aliases expanded "
                f"(the limit is {MAX_VALUES})",
                self.source,
            )
        if chars > MAX_VALUE_CHARS:
            raise ConfigError(
                f"too large: stands for {chars} characters of text with its aliases "
                f"expanded (the limit is {MAX_VALUE_CHARS})",
                self.source,
            )
        return super().construct_document(node)


def load_yaml(text: str, path: str, what: str = "YAML") -> Any:
    """Parse one YAML (or JSON) document within the budget described above.

    Args:
        text: the file's text.
        path: the file, for messages.
        what: how the format is named in messages (``"YAML/JSON"`` for profiles).

    Raises:
        ConfigError: one line naming ``path``: not ``what``, too large, or recursive.
    """
    if len(text) > MAX_TEXT_CHARS:
        raise ConfigError(
            f"too large ({len(text)} characters; the limit is {MAX_TEXT_CHARS})", path
        )
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters here
        loader.source = path
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"not valid {what}{where}", path) from None
    except (ValueError, RecursionError) as exc:  # an impossible date, absurd nesting
        raise ConfigError(f"not valid {what} ({type(exc).__name__})", path) from None
    finally:
        if loader is not None:
            loader.dispose()


def kind_of(value: object) -> str:
    """What a loaded value is, in a user's words, for messages such as ``expected a
    number, got text``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
