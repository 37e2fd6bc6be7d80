"""Which espeak-ng voice speaks a probe, and at what rate and pitch.

A probe's voice is chosen, first match wins:

1. the probe's own ``voice`` (an espeak-ng voice name, optionally ``+variant``);
2. the mapping (:data:`DEFAULT_VOICES` with the suite's ``voices:`` overrides laid over
   it) at ``TAG/ACCENT`` then ``TAG``, trying the full tag and then shorter prefixes
   (``en-GB-x/scottish``, ``en-GB/scottish``, ``en/scottish``, ``en-GB-x``, ``en-GB``,
   ``en``); keys are case-insensitive;
3. the primary subtag itself when espeak-ng has a voice of that name (``sw``, ``ta``...).

An accent that no key names falls back to the language's voice (the accent is then only
a label). The chosen voice must be installed, or :class:`~app.errors.ConfigError` lists
the installed voices of that language family and how to override the mapping.

Rate and pitch vary per probe: :func:`variation` draws them from the suite seed and the
probe's text and voice, so the same seed always gives the same voice settings.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from app.errors import ConfigError
from app.probes.espeak import installed_voices, voice_exists
from app.probes.lang import canonical_tag

#: Words per minute and pitch ranges that :func:`variation` draws from (inclusive).
WPM_VARIATION = (150, 190)
PITCH_VARIATION = (35, 65)

_LATAM = ("mx", "419", "ar", "co", "cl", "pe", "ve", "us", "ec", "gt", "cu", "bo", "uy")

#: The built-in language/accent -> espeak-ng voice table (espeak-ng 1.51 voice names).
#: Where espeak-ng has no voice for a region the nearest one is used: en-AU, en-NZ, en-IE
#: and en-IN are spoken by the British voice, fr-CA by the French one. Mandarin uses
#: ``cmn-latn-pinyin``: espeak-ng 1.51's plain ``cmn`` voice reads the tone digits of its
#: own pinyin conversion aloud in English ("ba five ...").
DEFAULT_VOICES: Mapping[str, str] = MappingProxyType(
    {
        "en": "en-us",
        "en-us": "en-us",
        "en-gb": "en-gb",
        "en-au": "en-gb",
        "en-nz": "en-gb",
        "en-ie": "en-gb",
        "en-in": "en-gb",
        "en-029": "en-029",
        "en-jm": "en-029",
        "en/scottish": "en-gb-scotland",
        "en/rp": "en-gb-x-rp",
        "en/lancaster": "en-gb-x-gbclan",
        "en/west-midlands": "en-gb-x-gbcwmd",
        "en/new-york": "en-us-nyc",
        "en/caribbean": "en-029",
        "es": "es",
        "es-es": "es",
        **{f"es-{r}": "es-419" for r in _LATAM},
        "fr": "fr-fr",
        "fr-fr": "fr-fr",
        "fr-be": "fr-be",
        "fr-ch": "fr-ch",
        "fr-ca": "fr-fr",
        "de": "de",
        "it": "it",
        "pt": "pt",
        "pt-pt": "pt",
        "pt-br": "pt-br",
        "hi": "hi",
        "ar": "ar",
        "zh": "cmn-latn-pinyin",
        "zh-cn": "cmn-latn-pinyin",
        "zh-hans": "cmn-latn-pinyin",
        "zh-tw": "cmn-latn-pinyin",
        "zh-hk": "yue",
        "zh-yue": "yue",
        "cmn": "cmn-latn-pinyin",
        "yue": "yue",
        "ja": "ja",
        "ko": "ko",
        "vi": "vi",
    }
)


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """An espeak-ng voice with its settings for one probe.

    Attributes:
        voice: the espeak-ng voice name (``-v``), possibly with ``+variant``.
        wpm: speaking rate in words per minute (``-s``).
        pitch: base pitch 0-99 (``-p``).
    """

    voice: str
    wpm: int
    pitch: int


def _norm_key(key: str) -> str:
    tag, sep, accent = str(key).partition("/")
    tag = canonical_tag(tag, field="voices").lower()
    return f"{tag}/{_norm_accent(accent)}" if sep else tag


def _norm_accent(accent: str) -> str:
    return "-".join(str(accent).strip().lower().split())


def _family(primary: str) -> list[str]:
    names = []
    for v in installed_voices():
        subtags = {v.name.split("-")[0], *(a.split("-")[0] for a in v.aliases)}
        if primary in subtags:
            names.append(v.name)
    return names


def _missing(what: str, tag: str, primary: str) -> ConfigError:
    family = _family(primary)
    if family:
        have = f"espeak-ng voices for {primary!r}: {', '.join(family)}"
    else:
        all_names = [v.name for v in installed_voices()]
        have = f"espeak-ng has no {primary!r} voice; installed: {', '.join(all_names)}"
    return ConfigError(
        f"{what}; {have}; choose one with the probe's voice: or the suite's "
        f"voices: {{{tag}: VOICE}}",
        field="voice",
    )


def voice_for(
    language: str,
    accent: str | None = None,
    *,
    voice: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """Return the installed espeak-ng voice that speaks ``language`` (with ``accent``).

    Args:
        language: a BCP-47 tag such as ``en-AU`` or ``hi-IN``.
        accent: an optional accent label (``scottish``); see the module docstring.
        voice: an explicit voice for this probe, which wins over any mapping.
        overrides: ``{"TAG" or "TAG/ACCENT": voice}`` entries laid over
            :data:`DEFAULT_VOICES` (a suite's ``voices:``).

    Raises:
        ConfigError: a malformed tag or override key, espeak-ng missing, or no installed
            voice for the language; the message lists the installed voices of the family.
    """
    tag = canonical_tag(language)
    primary = tag.split("-")[0]
    if voice:
        if not voice_exists(voice):
            raise _missing(f"no espeak-ng voice {voice!r} (for {tag})", tag, primary)
        return voice.lower()
    table = dict(DEFAULT_VOICES)
    table.update({_norm_key(k): str(v) for k, v in (overrides or {}).items()})
    parts = tag.lower().split("-")
    prefixes = ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]
    keys = [f"{p}/{_norm_accent(accent)}" for p in prefixes] if accent else []
    keys += prefixes
    for key in keys:
        if key in table:
            chosen = table[key]
            if not voice_exists(chosen):
                raise _missing(f"no espeak-ng voice {chosen!r} (mapped from {key})", tag, primary)
            return chosen.lower()
    if voice_exists(primary):
        return primary
    raise _missing(f"no espeak-ng voice for language {tag}", tag, primary)


def check_speakable(text: str, voice: str) -> None:
    """Reject text the chosen voice is known to misread.

    espeak-ng's Japanese voice reads kana but says "Chinese letter" for every kanji, so
    Japanese probe text must be written in kana (or come from a recording).

    Raises:
        ConfigError: kanji in text for a ``ja`` voice.
    """
    if voice.split("+")[0].lower() == "ja":
        kanji = [ch for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"]
        if kanji:
            raise ConfigError(
                f"espeak-ng's Japanese voice cannot read kanji ({''.join(kanji[:4])}...): "
                "write the probe in kana or use a recording (file:)",
                field="text",
            )


def variation(seed: int, *parts: str) -> tuple[int, int]:
    """Return ``(wpm, pitch)`` drawn uniformly from :data:`WPM_VARIATION` and
    :data:`PITCH_VARIATION`, determined by ``seed`` and ``parts`` (e.g. text and voice).

    The draw uses SHA-256 of the inputs, so it is the same on every run and machine.
    """
    digest = hashlib.sha256(repr((int(seed), *parts)).encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return rng.randint(*WPM_VARIATION), rng.randint(*PITCH_VARIATION)


def choose_voice(
    text: str,
    language: str,
    accent: str | None = None,
    *,
    seed: int,
    voice: str | None = None,
    overrides: Mapping[str, str] | None = None,
    wpm: int | None = None,
    pitch: int | None = None,
) -> VoiceChoice:
    """Resolve the voice (:func:`voice_for`) and fill in rate and pitch for one probe.

    ``wpm``/``pitch`` given explicitly are kept; missing ones come from
    :func:`variation` over ``(seed, text, voice)``.

    Raises:
        ConfigError: as :func:`voice_for`, or text the voice misreads
            (:func:`check_speakable`).
    """
    name = voice_for(language, accent, voice=voice, overrides=overrides)
    check_speakable(text, name)
    v_wpm, v_pitch = variation(seed, text, name)
    return VoiceChoice(
        name, wpm if wpm is not None else v_wpm, pitch if pitch is not None else v_pitch
    )


__all__ = [
    "DEFAULT_VOICES",
    "VoiceChoice",
    "check_speakable",
    "choose_voice",
    "variation",
    "voice_for",
]
