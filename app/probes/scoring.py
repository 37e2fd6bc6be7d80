"""Scoring what was heard and said: error rates against a probe's text, and language ID.

Normalisation (:func:`normalize_text`), applied to reference and hypothesis alike:

1. Unicode NFKC (full-width forms become ASCII: ``？`` -> ``?``), then case folding;
2. Arabic only: harakat (U+064B-U+065F, U+0670) and tatweel (U+0640) are removed;
3. apostrophes (``' ’ ʼ ‘``) are removed, joining the word (``what's`` -> ``whats``);
4. every other Unicode punctuation character (category P*: ``¿ ¡ 。 ， 、 । ؟`` ...)
   becomes a space, except ``.``, ``,`` and ``:`` between two digits (``3.5``,
   ``10:30``); symbols (``$``, ``€``, ``+``) stay;
5. whitespace runs collapse to one space; numbers stay as written (``5`` is not
   ``five``) and contractions are not expanded.

Languages written without spaces between words (:data:`CER_LANGUAGES`, decided by the
primary subtag) are scored by character error rate over the normalised text with all
whitespace removed; others by word error rate. Both are (S + D + I) / N against the
reference, computed with jiwer, and can exceed 1.

Language identification uses lingua-language-detector, offline, restricted to
:data:`DETECTABLE` and in its low-accuracy (trigram) mode: built once on first use in
about 0.3 s and ~30 MB (high-accuracy mode took 5.3 s and ~400 MB for the same set, and
gave the same answers on the project's test sentences). Text with a letter weight under
:data:`MIN_LETTERS` (letters and combining marks count 1, CJK characters 3) is too
short to judge.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

import jiwer

from app.errors import ConfigError
from app.probes.lang import primary_subtag

#: Primary subtags scored by character error rate.
CER_LANGUAGES = frozenset({"zh", "cmn", "yue", "ja", "th", "lo", "km", "my"})

#: ISO 639-1 codes the language detector chooses among.
DETECTABLE = (
    "en", "es", "fr", "de", "it", "pt", "nl", "pl", "ru", "tr",
    "ar", "hi", "ja", "zh", "ko", "vi", "th", "id",
)  # fmt: skip

#: Minimum letter weight for :func:`detect_language` to judge a text.
MIN_LETTERS = 15

#: Primary subtags that the detector knows under another code.
_DETECT_ALIASES = {"cmn": "zh", "yue": "zh"}

_APOSTROPHES = dict.fromkeys(map(ord, "'’ʼ‘`"), None)
_ARABIC_MARKS = re.compile("[\u064b-\u065f\u0670\u0640]")
_DIGIT_PUNCT = re.compile(r"(?<=\d)[.,:](?=\d)")
_KEEP = "\ue000"  # private-use stand-in for punctuation kept between digits


@dataclass(frozen=True, slots=True)
class ErrorRate:
    """An error rate of a hypothesis against a reference.

    Attributes:
        value: (substitutions + deletions + insertions) / reference length.
        unit: ``wer`` (words) or ``cer`` (characters).
        substitutions, deletions, insertions, hits: the alignment counts.
        reference, hypothesis: the normalised texts that were compared.
    """

    value: float
    unit: Literal["wer", "cer"]
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    reference: str
    hypothesis: str


def uses_cer(language: str) -> bool:
    """True when ``language`` (BCP-47) is scored by character error rate."""
    return primary_subtag(language) in CER_LANGUAGES


def normalize_text(text: str, language: str) -> str:
    """Return ``text`` normalised for scoring in ``language`` (rules in the module docstring).

    Raises:
        ConfigError: ``language`` is not a BCP-47 tag.
    """
    primary = primary_subtag(language)
    s = unicodedata.normalize("NFKC", text).casefold()
    if primary == "ar":
        s = _ARABIC_MARKS.sub("", s)
    s = s.translate(_APOSTROPHES)
    s = _DIGIT_PUNCT.sub(lambda m: _KEEP + m.group(0), s)
    out = []
    for i, ch in enumerate(s):
        if ch == _KEEP or (i and s[i - 1] == _KEEP):
            out.append("" if ch == _KEEP else ch)
        elif unicodedata.category(ch).startswith("P"):
            out.append(" ")
        else:
            out.append(ch)
    s = " ".join("".join(out).split())
    return "".join(s.split()) if primary in CER_LANGUAGES else s


def error_rate(reference: str, hypothesis: str, language: str) -> ErrorRate:
    """Score ``hypothesis`` against ``reference``: CER for :data:`CER_LANGUAGES`, else WER.

    An empty (after normalisation) hypothesis scores 1.0 (everything deleted).

    Raises:
        ConfigError: ``language`` is not a BCP-47 tag, or the reference is empty after
            normalisation.
    """
    ref = normalize_text(reference, language)
    hyp = normalize_text(hypothesis, language)
    unit: Literal["wer", "cer"] = "cer" if uses_cer(language) else "wer"
    if not ref:
        raise ConfigError(f"reference text {reference[:40]!r} is empty after normalisation")
    n = len(ref) if unit == "cer" else len(ref.split())
    if not hyp:
        return ErrorRate(1.0, unit, 0, n, 0, 0, ref, hyp)
    out = jiwer.process_characters(ref, hyp) if unit == "cer" else jiwer.process_words(ref, hyp)
    s, d, i, h = out.substitutions, out.deletions, out.insertions, out.hits
    return ErrorRate((s + d + i) / n, unit, s, d, i, h, ref, hyp)


def word_error_rate(reference: str, hypothesis: str, language: str) -> float:
    """Return :func:`error_rate`'s value: WER, or CER for languages without spaces.

    Raises:
        ConfigError: as :func:`error_rate`.
    """
    return error_rate(reference, hypothesis, language).value


_detector: Any = None
_detector_lock = threading.Lock()


def _get_detector() -> Any:
    global _detector
    with _detector_lock:
        if _detector is None:
            from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

            langs = [
                Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in DETECTABLE
            ]
            builder = LanguageDetectorBuilder.from_languages(*langs).with_low_accuracy_mode()
            _detector = builder.with_preloaded_language_models().build()
        return _detector


def load_detector() -> None:
    """Build the language detector now (it is otherwise built on first use, ~0.3 s);
    call once before timing-sensitive work. Thread-safe; later calls do nothing."""
    _get_detector()


def letter_weight(text: str) -> int:
    """Return the letters and combining marks (the vowel signs of Devanagari, Arabic...)
    of ``text``, counting Han, kana and Hangul characters as 3."""
    weight = 0
    for ch in text:
        if not (ch.isalpha() or unicodedata.category(ch).startswith("M")):
            continue
        name = unicodedata.name(ch, "")
        weight += 3 if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")) else 1
    return weight


def detect_language(text: str) -> str | None:
    """Return the ISO 639-1 code of ``text``'s language among :data:`DETECTABLE`, or None
    when the text is too short to judge (:func:`letter_weight` below :data:`MIN_LETTERS`)
    or the detector cannot decide. Thread-safe."""
    if letter_weight(text) < MIN_LETTERS:
        return None
    found = _get_detector().detect_language_of(text)
    return None if found is None else str(found.iso_code_639_1.name).lower()


def language_matches(text: str, language: str) -> bool | None:
    """Return whether ``text`` is in ``language`` (BCP-47; compared by primary subtag), or
    None when the text is too short to judge (see :func:`detect_language`).

    Raises:
        ConfigError: ``language`` is malformed or not among :data:`DETECTABLE`.
    """
    primary = primary_subtag(language)
    expected = _DETECT_ALIASES.get(primary, primary)
    if expected not in DETECTABLE:
        raise ConfigError(
            f"cannot detect language {language!r}; detectable: {', '.join(DETECTABLE)}",
            field="reply_language",
        )
    found = detect_language(text)
    return None if found is None else found == expected
