"""Render a probe: its clean speech (espeak-ng or a recording) under its conditions.

Output is mono int16 PCM at :data:`PROBE_RATE` (16 kHz), also stored as a WAV in the
render cache (``<data dir>/probe-cache``, see :mod:`app.probes.cache`). Rendering is
deterministic: the same probe, conditions and seed give the same bytes, and a second
render reads the cached file instead of running espeak-ng again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.errors import ConfigError
from app.probes.cache import (
    PROBE_RATE,
    cached_audio,
    content_key,
    ensure_cache_dir,
    file_digest,
    probe_cache_dir,
)
from app.probes.conditions import Condition, apply_conditions, parse_conditions
from app.probes.lang import canonical_tag
from app.probes.speech import load_recording, speak, speech_key
from app.probes.voices import VoiceChoice, choose_voice

__all__ = ["PROBE_RATE", "Probe", "RenderedProbe", "render_probe"]


@dataclass(frozen=True, slots=True)
class Probe:
    """One caller utterance.

    Attributes:
        text: what is said; for a recording, its transcript (the WER reference).
        language: BCP-47 tag (``es-MX``, ``hi-IN``, ``en-AU``, ``zh-CN``, ``ar-EG``).
        accent: optional accent label (kept in results; also a voice-mapping key).
        voice: optional espeak-ng voice name (``en-gb-scotland``, ``en-us+f3``) that wins
            over the language/accent mapping. Ignored for recordings.
        file: a recording (any WAV :mod:`app.audio.wavio` reads) instead of espeak-ng; a
            relative path is relative to the ``base_dir`` given to :func:`render_probe`.
        wpm: fixed speaking rate (words per minute); default: varied by the seed.
        pitch: fixed espeak-ng pitch (0-99); default: varied by the seed.
    """

    text: str
    language: str
    accent: str | None = None
    voice: str | None = None
    file: Path | None = None
    wpm: int | None = None
    pitch: int | None = None


@dataclass(frozen=True, slots=True)
class RenderedProbe:
    """A rendered probe.

    Attributes:
        probe: what was rendered.
        language: the probe's tag in canonical case (``es-MX``).
        conditions: the condition names as written, in application order.
        voice: the espeak-ng voice, rate and pitch used; None for a recording.
        path: the cached WAV of the result (mono PCM16, 16 kHz); do not modify it.
        speech_path: the cached WAV of the clean speech before conditions.
        speech_key: the content hash naming ``speech_path``; it is also the ``salt`` the
            conditions' random draws use (:func:`app.probes.conditions.condition_rng`).
        key: the content hash naming ``path``.
        samples: the result, read-only int16 at :attr:`rate`.
        rate: always :data:`PROBE_RATE`.
    """

    probe: Probe
    language: str
    conditions: tuple[str, ...]
    voice: VoiceChoice | None
    path: Path
    speech_path: Path
    speech_key: str
    key: str
    samples: NDArray[np.int16]
    rate: int = PROBE_RATE

    @property
    def duration_s(self) -> float:
        """Length of the result in seconds."""
        return len(self.samples) / self.rate


def _resolve(path: Path, base_dir: Path | None) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else (base_dir or Path.cwd()) / path


def render_probe(
    probe: Probe,
    *,
    seed: int,
    conditions: Sequence[str | Condition] = (),
    voices: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    base_dir: Path | None = None,
) -> RenderedProbe:
    """Render ``probe`` under ``conditions`` and return the cached result.

    Args:
        probe: the utterance.
        seed: the suite seed; fixes the rate/pitch variation and every random draw of
            the conditions.
        conditions: condition names as written (or parsed :class:`Condition` objects);
            at most one per kind, applied speed, level, noise, line.
        voices: the suite's language/accent -> espeak-ng voice overrides.
        cache_dir: the cache folder; default ``<data dir>/probe-cache``.
        base_dir: folder for relative ``file``/``noise:`` paths (the suite's folder).

    Raises:
        ConfigError: a bad language tag, empty text, a missing espeak-ng voice (listing
            the installed ones), a bad condition, a missing or unreadable file
            (:class:`~app.errors.AudioFormatError`), espeak-ng or sox missing.
        StoreError: the cache cannot be written.
    """
    language = canonical_tag(probe.language)
    if not probe.text.strip():
        raise ConfigError("probe text is empty", field="text")
    names = [c if isinstance(c, str) else c.name for c in conditions]
    parsed = parse_conditions(names, base_dir=base_dir)
    folder = ensure_cache_dir(cache_dir) if cache_dir is not None else probe_cache_dir()
    choice: VoiceChoice | None = None
    if probe.file is not None:
        source = _resolve(probe.file, base_dir)
        digest = file_digest(source, field="file")
        s_key = content_key({"kind": "recording", "sha256": digest})
        speech_path, speech = cached_audio(s_key, lambda: load_recording(source), folder)
    else:
        choice = choose_voice(
            probe.text,
            language,
            probe.accent,
            seed=seed,
            voice=probe.voice,
            overrides=voices,
            wpm=probe.wpm,
            pitch=probe.pitch,
        )
        s_key = speech_key(probe.text, choice)
        speech_path, speech = speak(probe.text, choice, folder)
    written = tuple(c.name for c in parsed)
    active = [c for c in parsed if not c.is_identity]
    if not active:
        return RenderedProbe(
            probe, language, written, choice, speech_path, speech_path, s_key, s_key, speech
        )
    fields: dict[str, object] = {
        "kind": "probe",
        "speech": s_key,
        "conditions": [c.spec for c in active],
        "files": [file_digest(c.file, field="condition") for c in active if c.file],
        "seed": int(seed) if any(c.uses_seed for c in active) else None,
        "exclude": choice.voice if choice and any(c.source == "babble" for c in active) else None,
    }
    key = content_key(fields)
    voice_name = choice.voice if choice else None
    path, samples = cached_audio(
        key,
        lambda: apply_conditions(
            speech, active, seed=seed, cache_dir=folder, salt=s_key, probe_voice=voice_name
        ),
        folder,
    )
    return RenderedProbe(probe, language, written, choice, path, speech_path, s_key, key, samples)
