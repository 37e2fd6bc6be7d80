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

:class:`FieldReader` then checks the loaded plain data field by field (the scenario and
suite loaders subclass it with their own records), so every file format says "expected a
number, got text" the same way and every message is one line naming the field.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

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

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> Any:
        """A mapping, refused when it names one key twice: PyYAML would keep the last
        value without a word (``name: a`` then ``name: b`` runs as ``b``). A merge
        (``<<: *base``) may still be overridden by an explicit key."""
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise ConfigError(
                    f"key {shown_key(key_node.value)!r} appears twice "
                    f"(line {key_node.start_mark.line + 1}); the file must say it once",
                    self.source,
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


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


def shown_key(key: str) -> str:
    """A key from the file made safe for a one-line message: escaped, at most 40
    characters."""
    shown = key.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 40 else shown[:37] + "..."


#: How a loader names a place in its document (a dotted string, a path of keys, ...).
Where = TypeVar("Where")


class FieldReader(ABC, Generic[Where]):
    """Checks plain data loaded from YAML/JSON, value by value, into Python values.

    Every check returns the value (converted where said) or raises the
    :class:`~app.errors.ConfigError` made by :meth:`fail`, whose message is one line
    naming the field. A subclass says how a place in its document is written
    (:meth:`fail`, :meth:`at`) and adds its own records on top of these checks.

    Attributes:
        max_text: the longest text value accepted (characters).
        max_number: the default upper bound of :meth:`number`.
    """

    max_text: int = 10_000
    max_number: float = 1e9

    @abstractmethod
    def fail(self, where: Where, problem: str, *, key: bool = False) -> ConfigError:
        """The error for ``problem`` at ``where`` (``key``: the problem is the key
        itself, not its value)."""

    @abstractmethod
    def at(self, where: Where, step: str | int) -> Where:
        """The place of key or index ``step`` inside ``where``."""

    def mapping(
        self,
        value: object,
        where: Where,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """A mapping whose keys are text, all in ``allowed``, with every ``required`` one."""
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {kind_of(value)}")
        for k in value:
            if not isinstance(k, str):
                raise self.fail(where, f"keys must be text, got {kind_of(k)}")
            if k not in allowed:
                raise self.fail(
                    self.at(where, k), f"unknown key (allowed: {', '.join(allowed)})", key=True
                )
        for k in required:
            if k not in value:
                raise self.fail(self.at(where, k), "is required")
        return dict(value)

    def text(self, value: object, where: Where, *, nonempty: bool = False) -> str:
        """Text of at most :attr:`max_text` characters with no NUL (it may be handed to
        a program as an argument); ``nonempty``: not blank."""
        if not isinstance(value, str):
            raise self.fail(where, f"expected text, got {kind_of(value)}")
        if nonempty and not value.strip():
            raise self.fail(where, "must not be empty")
        if "\0" in value:
            raise self.fail(where, "must not contain a NUL character")
        if len(value) > self.max_text:
            raise self.fail(where, f"too long ({len(value)} characters; at most {self.max_text})")
        return value

    def number(
        self,
        value: object,
        where: Where,
        lo: float = 0.0,
        hi: float | None = None,
        *,
        lo_open: bool = False,
    ) -> float:
        """A finite number (not a boolean) from ``lo`` (excluded with ``lo_open``) to
        ``hi`` (default :attr:`max_number`), as a float."""
        hi = self.max_number if hi is None else hi
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {kind_of(value)}")
        try:
            v = float(value)
        except OverflowError:  # an integer beyond float range (YAML allows any length)
            v = math.inf
        if not math.isfinite(v):
            raise self.fail(where, "must be a finite number")
        if v < lo or (lo_open and v <= lo) or v > hi:
            span = f"more than {lo:g} and at most {hi:g}" if lo_open else f"from {lo:g} to {hi:g}"
            raise self.fail(where, f"must be a number {span}")
        return v

    def integer(self, value: object, where: Where, lo: int, hi: int) -> int:
        """An integer (not a boolean) from ``lo`` to ``hi``."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {kind_of(value)}")
        if not lo <= value <= hi:
            raise self.fail(where, f"must be between {lo} and {hi}")
        return value

    def boolean(self, value: object, where: Where) -> bool:
        """``true`` or ``false``."""
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {kind_of(value)}")
        return value

    def listing(self, value: object, where: Where, *, nonempty: bool = False) -> list[Any]:
        """A list (``nonempty``: with at least one item), as a new list."""
        if not isinstance(value, list | tuple):
            raise self.fail(where, f"expected a list, got {kind_of(value)}")
        if nonempty and not value:
            raise self.fail(where, "must not be empty")
        return list(value)
