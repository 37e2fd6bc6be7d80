"""Proto-JSON field names: Gemini accepts camelCase and snake_case for the same field.

Shared by our client protocol and the simulator's Gemini dialect, which both read either
spelling.
"""

from __future__ import annotations

import re
from typing import Any

_CAMEL_HUMP = re.compile(r"(?<!^)([A-Z])")


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
