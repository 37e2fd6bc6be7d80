"""BCP-47 language tags as probes use them: shape check, canonical case, primary subtag.

Only the shape is checked (``ll[-Script][-RR][-variant...]``), not the IANA registry: a
tag is accepted when its primary subtag is 2-3 letters and every other subtag is 2-8
letters or digits. Pure functions.
"""

from __future__ import annotations

import re

from app.errors import ConfigError

_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")


def canonical_tag(tag: str, *, field: str = "language") -> str:
    """Return ``tag`` in canonical case: ``es-MX``, ``zh-Hans-CN``, ``es-419``, ``en-AU``.

    Underscores are read as hyphens (``pt_BR``). The primary subtag is lower case, a
    4-letter script subtag is title case, a 2-letter region is upper case, the rest lower.

    Raises:
        ConfigError: ``tag`` is not shaped like a BCP-47 language tag.
    """
    text = str(tag).strip().replace("_", "-")
    if not _TAG.fullmatch(text):
        raise ConfigError(
            f"{tag!r} is not a BCP-47 language tag (expected e.g. en-AU, es-MX, hi-IN, zh-CN)",
            field=field,
        )
    parts = text.split("-")
    out = [parts[0].lower()]
    for p in parts[1:]:
        if len(p) == 4 and p.isalpha():
            out.append(p.title())
        elif len(p) == 2 and p.isalpha():
            out.append(p.upper())
        else:
            out.append(p.lower())
    return "-".join(out)


def primary_subtag(tag: str) -> str:
    """Return the lower-case primary language subtag: ``es-MX`` -> ``es``, ``cmn`` -> ``cmn``.

    Raises:
        ConfigError: ``tag`` is not shaped like a BCP-47 language tag.
    """
    return canonical_tag(tag).split("-")[0]
