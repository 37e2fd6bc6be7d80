"""Session tags: ``k=v`` labels kept in ``session.json`` (``"tags": ["language=hi-IN", ...]``).

The keys the coverage matrix reads (``language``, ``accent``, ``scenario``, ``tester``,
``agent_version``, ``suite``, ``noise``, ``line``) are indexed as columns; any other
``k=v`` (and a bare label such as ``demo``, which sessions recorded earlier may carry) is
kept and searchable. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from app.errors import ConfigError
from app.textsafe import printable

#: A tag key: letters, digits, ``_ . -`` (what a shell and a URL keep intact).
KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
#: Longest tag value kept.
MAX_VALUE = 200
#: Keys with a meaning of their own, indexed as columns (see the module docstring).
KNOWN_KEYS = ("language", "accent", "scenario", "tester", "agent_version", "suite",
              "noise", "line")  # fmt: skip


def check_tag(item: str) -> str:
    """Validate one ``--tag`` value and return it as stored.

    ``k=v`` needs a key matching :data:`KEY_RE` and a value of at most
    :data:`MAX_VALUE` characters with no control character; a bare label (no ``=``) must
    itself be a valid key.

    Raises:
        ConfigError: one line naming the bad tag.
    """
    key, sep, value = item.partition("=")
    shown = printable(item[:60])
    if not KEY_RE.fullmatch(key):
        what = "an empty key" if not key.strip() else f"a bad key {printable(key[:40])!r}"
        raise ConfigError(f"tag {shown!r} has {what} (use k=v; k is letters, digits, _ . -)")
    if sep and (len(value) > MAX_VALUE or printable(value) != value):
        raise ConfigError(f"tag {shown!r}: the value is too long or holds control characters")
    return item


def check_tags(items: Iterable[str]) -> list[str]:
    """:func:`check_tag` over ``items``; the first bad one raises."""
    return [check_tag(i) for i in items]


def tag_values(tags: Sequence[object]) -> dict[str, str]:
    """The ``k=v`` tags of a stored list as a mapping (the last value of a key wins; bare
    labels and non-text entries are left out)."""
    out: dict[str, str] = {}
    for tag in tags:
        if isinstance(tag, str):
            key, sep, value = tag.partition("=")
            if sep and key:
                out[key] = value
    return out


def dimension_values(tags: Sequence[object] | Mapping[str, str]) -> dict[str, str]:
    """The indexed tag columns of a session: every key of :data:`KNOWN_KEYS`, ``""`` when
    the session has no such tag."""
    values = tags if isinstance(tags, Mapping) else tag_values(tags)
    return {k: str(values.get(k) or "") for k in KNOWN_KEYS}
