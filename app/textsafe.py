r"""Untrusted text made safe to print, write and render.

Anything a server, a tool or a hand-edited file sends is plain text that may hold:

- lone UTF-16 surrogates (``json.loads('"\ud800"')`` keeps them), which strict UTF-8
  cannot encode: a ``print`` or a file write would fail;
- C0/C1 control characters and ESC sequences (clear the screen, set the window title,
  rewrite a line with CR or backspace);
- bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069, U+200E/F, "Trojan
  Source") that reorder what a reader sees.

:func:`safe_text` fixes the encoding only (surrogates → U+FFFD). :func:`printable` also
replaces every control and bidi character by a visible escape (``\x1b``, ``\u202e``), so
the text shown is inert and still tells what was sent. :func:`json_text` serialises data
for ``--json`` outputs with the same characters as JSON escapes, so the output is valid
UTF-8, inert on a terminal, and parses back to the same values.

Every place that prints or writes outside text (the CLI's tables, progress and error
lines, the HTML report) goes through these helpers.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Lone surrogates: never valid in UTF-8 (a proper pair is one code point in a Python str).
_SURROGATES = re.compile("[\ud800-\udfff]")
#: Bidi controls: embeddings/overrides, isolates, and the LRM/RLM/ALM marks.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
#: C0 (but TAB/LF, handled separately), DEL, C1, line/paragraph separators, bidi.
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
#: What :func:`json_text` must escape in addition (json.dumps escapes C0 itself).
_JSON_UNSAFE = re.compile(f"[\ud800-\udfff\x7f-\x9f\u2028\u2029{_BIDI}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: object) -> str:
    """``str(value)`` with lone surrogates replaced by U+FFFD (encodable as UTF-8).

    ``None`` gives ``""``.
    """
    text = "" if value is None else str(value)
    return _SURROGATES.sub("\ufffd", text)


def printable(value: object, *, multiline: bool = False) -> str:
    r"""``value`` as inert text for a terminal or a page.

    Lone surrogates become U+FFFD; control characters (C0, DEL, C1 — so every ESC, CSI
    and OSC sequence loses its introducer), U+2028/U+2029 and bidi controls become visible
    escapes such as ``\x1b`` or ``\u202e``. TAB becomes a space. A newline is kept only
    with ``multiline=True`` (otherwise escaped), so a one-line message stays one line.
    ``None`` gives ``""``.
    """
    text = safe_text(value).replace("\t", " ")
    if not multiline:
        text = text.replace("\n", "\\n")
    return _UNSAFE.sub(_escape, text)


def _escape_json(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any, **kwargs: Any) -> str:
    r"""``json.dumps(value, ensure_ascii=False, **kwargs)`` made safe to print.

    Lone surrogates, DEL, C1, U+2028/U+2029 and bidi controls are written as ``\uXXXX``
    escapes (outside string literals JSON text is ASCII, so this only touches strings):
    the result is valid UTF-8 and parses back to exactly ``value``.
    """
    return _JSON_UNSAFE.sub(_escape_json, json.dumps(value, ensure_ascii=False, **kwargs))


def safe_data(value: Any) -> Any:
    """A copy of JSON-like ``value`` with :func:`safe_text` applied to every string
    (mapping keys too), e.g. before handing it to a store that needs valid UTF-8.
    """
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_data(k): safe_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_data(v) for v in value]
    return value
