"""Token usage of a Gemini Live ``usageMetadata`` (``types.UsageMetadata``), as the
counts of :class:`~app.events.Usage` (``docs/cost.md``)."""

from __future__ import annotations

from typing import Any

from app.providers.gemini.casing import get_field as _get


def _token_count(obj: dict[str, Any], name: str, where: str) -> int:
    """A token count (proto-JSON int64 may come as a string): absent is 0.

    Raises:
        ValueError: not a whole number ≥ 0.
    """
    v = _get(obj, name)
    if v is None:
        return 0
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{where}.{name} is not a whole number of tokens")
    return v


def _by_modality(obj: dict[str, Any], name: str, where: str) -> dict[str, int]:
    """``[{modality, tokenCount}]`` summed per modality (``TEXT``, ``AUDIO``…).

    Raises:
        ValueError: not a list of such objects.
    """
    items = _get(obj, name)
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ValueError(f"{where}.{name} is not a list")
    out: dict[str, int] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"{where}.{name}[] is not an object")
        modality = _get(item, "modality")
        key = modality.upper() if isinstance(modality, str) else "MODALITY_UNSPECIFIED"
        out[key] = out.get(key, 0) + _token_count(item, "tokenCount", f"{where}.{name}[]")
    return out


def _split(total: int, parts: dict[str, int]) -> tuple[int, int, int]:
    """(text, audio, other) of a count and its per-modality breakdown; what the breakdown
    does not explain is ``other``."""
    text, audio = parts.get("TEXT", 0), parts.get("AUDIO", 0)
    listed = sum(parts.values())
    return text, audio, listed - text - audio + max(0, total - listed)


def usage_counts(meta: dict[str, Any]) -> dict[str, int]:
    """The token counts of a ``usageMetadata`` (``types.UsageMetadata``) as
    :class:`~app.events.Usage` fields.

    Input is ``promptTokenCount`` plus ``toolUsePromptTokenCount`` (tool results fed back
    to the model); output is ``responseTokenCount`` plus ``thoughtsTokenCount`` (thinking,
    counted as text). ``cachedContentTokenCount`` is a subset of the prompt. Counts the
    ``*TokensDetails`` lists do not break down by modality are ``other``; so is whatever
    of ``totalTokenCount`` the other counts do not explain.

    Raises:
        ValueError: a count or a details list has the wrong shape.
    """
    w = "usageMetadata"
    prompt = _token_count(meta, "promptTokenCount", w)
    tool = _token_count(meta, "toolUsePromptTokenCount", w)
    cached = _token_count(meta, "cachedContentTokenCount", w)
    response = _token_count(meta, "responseTokenCount", w)
    thoughts = _token_count(meta, "thoughtsTokenCount", w)
    total = _token_count(meta, "totalTokenCount", w)
    p_text, p_audio, p_other = _split(prompt, _by_modality(meta, "promptTokensDetails", w))
    t_text, t_audio, t_other = _split(tool, _by_modality(meta, "toolUsePromptTokensDetails", w))
    c_text, c_audio, c_other = _split(cached, _by_modality(meta, "cacheTokensDetails", w))
    r_text, r_audio, r_other = _split(response, _by_modality(meta, "responseTokensDetails", w))
    known = prompt + tool + response + thoughts
    return {
        "text_input": p_text + t_text,
        "audio_input": p_audio + t_audio,
        "other_input": p_other + t_other + max(0, total - known),
        "cached_text_input": c_text,
        "cached_audio_input": c_audio,
        "cached_other_input": c_other,
        "text_output": r_text + thoughts,
        "audio_output": r_audio,
        "other_output": r_other,
    }
