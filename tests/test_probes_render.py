"""Probe rendering: real espeak-ng voices, determinism, the content-hash cache (counted
with a logging espeak-ng on PATH), recordings, and clear errors for missing voices."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from app.audio.resample import resample
from app.audio.wavio import read_wav, write_wav
from app.errors import AudioFormatError, ConfigError
from app.probes.render import PROBE_RATE, Probe, render_probe
from app.probes.voices import voice_for
from tests.probe_helpers import EspeakLog, active_frames, install_espeak_log


@pytest.fixture
def espeak_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EspeakLog:
    return install_espeak_log(tmp_path, monkeypatch)


PARIS = Probe("What's the weather in Paris?", "en-AU")

#: (language, text, espeak-ng voice the default mapping must pick)
LANGUAGES = [
    ("en-AU", "What's the weather in Paris?", "en-gb"),
    ("es-MX", "¿Qué tiempo hace en París?", "es-419"),
    ("hi-IN", "पेरिस में मौसम कैसा है?", "hi"),
    ("ar-EG", "ما هو الطقس في باريس؟", "ar"),
    ("zh-CN", "巴黎的天气怎么样？", "cmn-latn-pinyin"),
    ("fr-FR", "Quel temps fait-il à Paris ?", "fr-fr"),
    ("de-DE", "Wie ist das Wetter in Paris?", "de"),
    ("ja-JP", "ぱりのてんきはどうですか", "ja"),
]


@pytest.mark.parametrize(("language", "text", "voice"), LANGUAGES)
def test_languages_render_with_their_real_espeak_voice(
    language: str, text: str, voice: str, tmp_path: Path, espeak_log: EspeakLog
) -> None:
    r = render_probe(Probe(text, language), seed=7, cache_dir=tmp_path / "cache")
    assert r.voice is not None and r.voice.voice == voice
    (call,) = espeak_log.syntheses()
    assert call[call.index("-v") + 1] == voice
    assert call[-1] == text and call[-2] == "--"
    assert r.rate == PROBE_RATE == 16000 and r.samples.dtype == np.int16
    # Real speech: at least half a second of active frames, not a tone or silence.
    assert active_frames(r.samples).sum() / PROBE_RATE > 0.5
    data, rate = read_wav(r.path)
    assert rate == 16000 and np.array_equal(data, r.samples)


def test_render_is_deterministic_and_cached(tmp_path: Path, espeak_log: EspeakLog) -> None:
    first = render_probe(PARIS, seed=7, cache_dir=tmp_path / "a")
    assert len(espeak_log.syntheses()) == 1
    again = render_probe(PARIS, seed=7, cache_dir=tmp_path / "a")
    assert len(espeak_log.syntheses()) == 1, "a cached probe must not run espeak-ng again"
    assert again.path == first.path and again.samples.tobytes() == first.samples.tobytes()
    # A fresh cache synthesises again and gets the very same bytes.
    fresh = render_probe(PARIS, seed=7, cache_dir=tmp_path / "b")
    assert len(espeak_log.syntheses()) == 2
    assert fresh.path.read_bytes() == first.path.read_bytes()
    # Another seed: another rate/pitch variant, other audio.
    other = render_probe(PARIS, seed=8, cache_dir=tmp_path / "a")
    assert first.voice is not None and other.voice is not None
    assert (other.voice.wpm, other.voice.pitch) != (first.voice.wpm, first.voice.pitch)
    assert other.samples.tobytes() != first.samples.tobytes()


def test_conditioned_render_is_cached_too(tmp_path: Path, espeak_log: EspeakLog) -> None:
    conds = ["babble@10", "g711+loss5"]
    first = render_probe(PARIS, seed=3, conditions=conds, cache_dir=tmp_path)
    n = len(espeak_log.syntheses())
    assert n == 5  # the probe plus four babble talkers
    again = render_probe(PARIS, seed=3, conditions=conds, cache_dir=tmp_path)
    assert len(espeak_log.syntheses()) == n
    assert again.key == first.key and again.samples.tobytes() == first.samples.tobytes()
    talkers = [c[c.index("-v") + 1] for c in espeak_log.syntheses()[1:]]
    assert len(set(talkers)) == 4 and not any(t.startswith("en-gb") for t in talkers), talkers
    # Another probe reuses the cached talkers: only its own speech and, at most, the one
    # pool talker (of the five that are not en-gb) not drawn for the first probe.
    lyon = Probe("Is it raining in Lyon?", "en-AU")
    render_probe(lyon, seed=3, conditions=conds, cache_dir=tmp_path)
    new = espeak_log.syntheses()[n:]
    assert new[0][-1] == lyon.text and len(new) <= 2
    assert all(c[c.index("-v") + 1] not in talkers for c in new[1:])
    mode = stat.S_IMODE(first.path.stat().st_mode)
    assert mode == 0o600, oct(mode)


def test_default_cache_is_in_the_data_dir(home: Path) -> None:
    r = render_probe(PARIS, seed=1)
    assert r.path.parent == home / "probe-cache"


def test_explicit_voice_rate_and_pitch_are_used(tmp_path: Path, espeak_log: EspeakLog) -> None:
    p = Probe("Good morning", "en-GB", voice="en-gb-scotland+f3", wpm=150, pitch=60)
    r = render_probe(p, seed=1, cache_dir=tmp_path)
    assert r.voice is not None and (r.voice.voice, r.voice.wpm, r.voice.pitch) == (
        "en-gb-scotland+f3", 150, 60)  # fmt: skip
    (call,) = espeak_log.syntheses()
    assert call[call.index("-s") + 1] == "150" and call[call.index("-p") + 1] == "60"


def test_accent_and_override_mapping() -> None:
    assert voice_for("en-GB", "Scottish") == "en-gb-scotland"
    assert voice_for("en-AU", "unknown-accent") == "en-gb"  # the accent stays a label
    assert voice_for("en-AU", overrides={"en-AU": "en-us"}) == "en-us"
    assert voice_for("en-IN", "south", overrides={"en/south": "en-029"}) == "en-029"
    assert voice_for("sw-KE") == "sw"  # no table entry: the primary subtag's voice


def test_missing_voice_lists_the_installed_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        render_probe(PARIS, seed=1, voices={"en-AU": "en-au"}, cache_dir=tmp_path)
    msg = str(err.value)
    assert "'en-au'" in msg and "en-gb" in msg and "en-us" in msg and "en-gb-scotland" in msg
    assert "voices:" in msg and "\n" not in msg
    with pytest.raises(ConfigError) as err:
        render_probe(Probe("Sawubona", "zu-ZA"), seed=1, cache_dir=tmp_path)
    msg = str(err.value)
    assert "zu-ZA" in msg and "installed:" in msg and "hi" in msg and "cmn" in msg
    with pytest.raises(ConfigError, match="no espeak-ng voice 'xx-nope'"):
        render_probe(Probe("Hello", "en", voice="xx-nope"), seed=1, cache_dir=tmp_path)


@pytest.mark.parametrize(
    ("probe", "match"),
    [
        (Probe("Hello", "english"), "not a BCP-47 language tag"),
        (Probe("  ", "en-US"), "probe text is empty"),
        (Probe("bad\0text", "en-US"), "NUL byte"),
        (Probe("天気", "ja-JP"), "cannot read kanji"),
    ],
)
def test_bad_probes_are_config_errors(probe: Probe, match: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=match):
        render_probe(probe, seed=1, cache_dir=tmp_path)


def test_recording_probe_is_resampled_and_cached(tmp_path: Path, espeak_log: EspeakLog) -> None:
    speech = render_probe(PARIS, seed=1, cache_dir=tmp_path / "c").samples
    at44 = resample(speech, 16000, 44100)
    src = tmp_path / "me.wav"
    write_wav(src, np.stack([at44, at44], axis=1), 44100)  # stereo, 44.1 kHz
    before = len(espeak_log.syntheses())
    p = Probe("What's the weather in Paris?", "en-AU", file=Path("me.wav"))
    r = render_probe(p, seed=1, conditions=["level@-26"], cache_dir=tmp_path / "c",
                     base_dir=tmp_path)  # fmt: skip
    assert len(espeak_log.syntheses()) == before and r.voice is None
    assert r.rate == 16000 and abs(len(r.samples) - len(speech)) <= 1
    again = render_probe(p, seed=1, conditions=["level@-26"], cache_dir=tmp_path / "c",
                         base_dir=tmp_path)  # fmt: skip
    assert again.samples.tobytes() == r.samples.tobytes()
    with pytest.raises(ConfigError, match="none.wav: file: file not found"):
        render_probe(Probe("x", "en", file=tmp_path / "none.wav"), seed=1, cache_dir=tmp_path)
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioFormatError, match="text.wav: not a WAV file"):
        render_probe(Probe("x", "en", file=tmp_path / "text.wav"), seed=1, cache_dir=tmp_path)
