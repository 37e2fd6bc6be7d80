"""Scoring on fixed texts against hand-computed values: WER/CER with per-language
normalisation, and offline language identification."""

from __future__ import annotations

import pytest

from app.errors import ConfigError
from app.probes.scoring import (
    MIN_LETTERS,
    detect_language,
    error_rate,
    language_matches,
    normalize_text,
    word_error_rate,
)


def test_wer_contraction_is_two_errors_in_five_words() -> None:
    # ref "whats the weather in paris" (5 words; apostrophe, ? and case removed)
    # hyp "what is the weather in paris": whats->what (1 S) + "is" inserted (1 I)
    # WER = (1 + 0 + 1) / 5 = 0.4
    r = error_rate("What's the weather in Paris?", "what is the weather in paris", "en-AU")
    assert (r.substitutions, r.deletions, r.insertions, r.hits) == (1, 0, 1, 4)
    assert r.unit == "wer" and r.value == pytest.approx(2 / 5)
    assert r.reference == "whats the weather in paris"


def test_spanish_punctuation_and_case_do_not_count_but_accents_do() -> None:
    # ¿ ? ¡ ! and case are normalised away: 0 errors.
    assert word_error_rate("¿Qué tiempo hace en París?", "qué tiempo hace en parís", "es-MX") == 0
    # Accents are letters: qué->que and parís->paris are 2 substitutions of 5 words.
    assert word_error_rate("¿Qué tiempo hace en París?", "Que tiempo hace en Paris", "es") == 0.4


def test_chinese_is_scored_by_characters() -> None:
    # ref 巴黎的天气怎么样 (8 characters; ？ removed), hyp drops 的: 1 D / 8 = 0.125
    r = error_rate("巴黎的天气怎么样？", "巴黎天气怎么样", "zh-CN")
    assert r.unit == "cer" and (r.deletions, r.value) == (1, 0.125)
    # 气->汽 (1 S) and 啊 appended (1 I), spaces and ，。 ignored: 2 / 8 = 0.25
    assert word_error_rate("巴黎的天气，怎么样。", "巴黎的 天汽 怎么样啊", "zh") == 0.25
    # Japanese too: ref てんきはいいです (8), hyp てんきがいいです: 1 S / 8
    assert word_error_rate("てんきは、いいです。", "てんきがいいです", "ja-JP") == 0.125


def test_hindi_and_arabic_normalisation() -> None:
    # Danda and ? are punctuation; है->हैं is 1 S of 5 words.
    assert word_error_rate("पेरिस में मौसम कैसा है?", "पेरिस में मौसम कैसा हैं।", "hi-IN") == 0.2
    # Arabic harakat and tatweel are dropped, ؟ is punctuation: 0 errors.
    assert word_error_rate("مَا هُوَ الطَّقْسُ في باريس؟", "ما هو الطقـس في باريس", "ar-EG") == 0


def test_numbers_stay_as_written() -> None:
    assert normalize_text("It costs $3.50, at 10:30!", "en") == "it costs $3.50 at 10:30"
    # "5" is not "five": 1 S of 4 words.
    assert word_error_rate("I need 5 tickets", "I need five tickets", "en-US") == 0.25
    assert normalize_text("ＡＢＣ？", "en") == "abc"  # full-width forms (NFKC)


def test_empty_texts() -> None:
    assert word_error_rate("Hello there", "", "en") == 1.0
    assert word_error_rate("Hello there", "  ¿?  ", "en") == 1.0
    with pytest.raises(ConfigError, match="empty after normalisation"):
        word_error_rate("?!", "hello", "en")
    with pytest.raises(ConfigError, match="not a BCP-47"):
        word_error_rate("hello", "hello", "en_US_x_y_z_!")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("¿Qué tiempo hace hoy en París?", "es"),
        ("आज पेरिस में मौसम कैसा है?", "hi"),
        ("ما هو الطقس في باريس اليوم؟", "ar"),
        ("今天巴黎的天气怎么样？", "zh"),
        ("Quel temps fait-il à Paris aujourd'hui ?", "fr"),
        ("What's the weather like in Paris today?", "en"),
        ("Wie ist das Wetter heute in Paris?", "de"),
        ("Está fazendo sol em Paris hoje.", "pt"),
        ("Oggi a Parigi c'è il sole.", "it"),
        ("きょうのパリのてんきははれです。", "ja"),
    ],
)
def test_detects_the_language(text: str, code: str) -> None:
    assert detect_language(text) == code


def test_language_matches_by_primary_subtag() -> None:
    assert language_matches("Hoy hace sol en París y mañana lloverá.", "es-MX") is True
    assert language_matches("आज पेरिस में धूप है और कल बारिश होगी।", "hi-IN") is True
    assert language_matches("今天巴黎阳光明媚。", "cmn-Hans-CN") is True
    # The agent answered in English to a Spanish caller: not a match.
    assert (
        language_matches("It is sunny in Paris today, and it will rain tomorrow.", "es-MX") is False
    )
    # Too short to judge.
    assert language_matches("Hola", "es") is None and MIN_LETTERS > len("Hola")
    assert language_matches("你好", "zh-CN") is None
    with pytest.raises(ConfigError, match="cannot detect language 'sw-KE'"):
        language_matches("Habari ya asubuhi, rafiki yangu mpendwa.", "sw-KE")
