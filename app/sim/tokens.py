"""The simulator's stand-in for a tokenizer (both dialects bill text by it)."""

from __future__ import annotations

#: Characters per text token: the simulator's stand-in for a tokenizer (not a vendor's).
CHARS_PER_TEXT_TOKEN = 4


def text_tokens(text: str) -> int:
    """The simulator's token count of ``text`` (:data:`CHARS_PER_TEXT_TOKEN`, rounded up)."""
    return -(-len(text) // CHARS_PER_TEXT_TOKEN)
