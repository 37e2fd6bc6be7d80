"""Proto-JSON field names: Gemini accepts camelCase and snake_case for the same field.

Shared by our client protocol and the simulator's Gemini dialect, which both read either
spelling and refuse a known field of the wrong type (each with its own error).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

_CAMEL_HUMP = re.compile(r"(?<!^)([A-Z])")

_T = TypeVar("_T")


def snake(name: str) -> str:
    """``sessionResumption`` → ``session_resumption``."""
    return _CAMEL_HUMP.sub(r"_\1", name).lower()


def camel(name: str) -> str:
    """``session_resumption`` → ``sessionResumption``."""
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def get_field(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` under its camelCase or snake_case spelling (``None`` if absent)."""
    if name in obj:
        return obj[name]
    return obj.get(snake(name))


def typed_field(
    obj: dict[str, Any], name: str, kind: type[_T], error: Callable[[str], Exception]
) -> _T | None:
    """Field ``name`` of ``obj`` (either casing) when it is a ``kind``; ``None`` if absent
    (or JSON ``null``).

    Raises:
        Exception: what ``error(name)`` returns, when the field is there with another type.
    """
    value = get_field(obj, name)
    if value is not None and not isinstance(value, kind):
        raise error(name)
    return value
