"""The one espeak-ng wrapper: list the installed voices and synthesise text with one.

espeak-ng is run as a subprocess with no shell: the text is a single argv element after
``--`` (so it is never read as an option), ``-b 1`` declares it UTF-8, and the audio is
written with ``-w`` to a private temporary WAV that :func:`app.audio.wavio.read_wav`
reads. Output is mono PCM16 at :data:`ESPEAK_RATE`. espeak-ng 1.51's output was measured
byte-identical run to run for the same text, voice, rate and pitch (and independent of
the locale), which is what makes probe rendering deterministic.

Functions are synchronous (a sentence takes ~20-60 ms) and thread-safe; call them off
any event loop.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.wavio import read_wav
from app.errors import AudioFormatError, ConfigError
from app.textsafe import safe_text

#: Sample rate of espeak-ng's output, in Hz.
ESPEAK_RATE = 22050

#: espeak-ng's accepted ranges for ``-s`` (words per minute) and ``-p`` (pitch, 0-99).
WPM_RANGE = (80, 450)
PITCH_RANGE = (0, 99)

_TIMEOUT_S = 60
_ALIAS = re.compile(r"\(([^\s()]+)\s+\d+\)")
_VARIANT = re.compile(r"!v/(\S+)")


@dataclass(frozen=True, slots=True)
class EspeakVoice:
    """One installed espeak-ng voice.

    Attributes:
        name: what ``-v`` takes (the "Language" column of ``espeak-ng --voices``),
            e.g. ``en-gb-scotland``, ``es-419``, ``cmn``.
        aliases: the other language codes the voice declares, e.g. ``("zh-cmn", "zh")``.
        description: espeak-ng's name for it, e.g. ``English_(Scotland)``.
    """

    name: str
    aliases: tuple[str, ...]
    description: str


def espeak_program() -> str | None:
    """Return the path of ``espeak-ng`` on PATH, or None (looked up on every call)."""
    return shutil.which("espeak-ng")


def _require_program() -> str:
    exe = espeak_program()
    if exe is None:
        raise ConfigError("espeak-ng is not installed (Debian package espeak-ng)")
    return exe


@functools.lru_cache(maxsize=4)
def _voice_listing(exe: str, kind: str) -> str:
    arg = "--voices=variant" if kind == "variant" else "--voices"
    try:
        proc = subprocess.run(
            [exe, arg], capture_output=True, timeout=_TIMEOUT_S, check=False, text=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"cannot list espeak-ng voices ({exc})") from None
    if proc.returncode != 0:
        raise ConfigError(f"espeak-ng {arg} failed with exit code {proc.returncode}")
    return proc.stdout


def installed_voices() -> tuple[EspeakVoice, ...]:
    """Return the voices of the installed espeak-ng, sorted by name (cached per program).

    Raises:
        ConfigError: espeak-ng is not installed or cannot list its voices.
    """
    seen: dict[str, EspeakVoice] = {}
    for line in _voice_listing(_require_program(), "voices").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        name = fields[1].lower()
        if name not in seen:
            aliases = tuple(a.lower() for a in _ALIAS.findall(" ".join(fields[5:])))
            seen[name] = EspeakVoice(name, aliases, fields[3])
    return tuple(seen[k] for k in sorted(seen))


def installed_variants() -> tuple[str, ...]:
    """Return the names of espeak-ng's voice variants (``f3``, ``m2``, ``klatt`` ...), which
    a voice takes after ``+`` (``en-gb+f3``).

    Raises:
        ConfigError: espeak-ng is not installed or cannot list its variants.
    """
    listing = _voice_listing(_require_program(), "variant")
    return tuple(sorted({m.lower() for m in _VARIANT.findall(listing)}))


def voice_exists(voice: str) -> bool:
    """Return True when ``voice`` (``NAME`` or ``NAME+VARIANT``, any case) is installed.

    Raises:
        ConfigError: espeak-ng is not installed or cannot list its voices.
    """
    base, _, variant = voice.lower().partition("+")
    if base not in {v.name for v in installed_voices()}:
        return False
    return not variant or variant in installed_variants()


def espeak_pcm(text: str, *, voice: str, wpm: int = 175, pitch: int = 50) -> NDArray[np.int16]:
    """Synthesise ``text`` with espeak-ng and return mono int16 samples at :data:`ESPEAK_RATE`.

    The voice is not checked here (see :func:`voice_exists`); an unknown one makes
    espeak-ng fail, which is reported as a ConfigError.

    Args:
        text: the words to speak (must not be empty or contain a NUL byte); it is put in
            Unicode NFC form first and lone surrogates become U+FFFD.
        voice: an espeak-ng voice name, optionally with ``+variant``.
        wpm: speaking rate in words per minute, within :data:`WPM_RANGE`.
        pitch: base pitch, within :data:`PITCH_RANGE` (espeak-ng's default is 50).

    Raises:
        ConfigError: espeak-ng is missing or fails, the text is empty or holds a NUL byte,
            or ``wpm``/``pitch`` is out of range.
    """
    if "\0" in text:
        raise ConfigError("text contains a NUL byte, which espeak-ng cannot take")
    if not text.strip():
        raise ConfigError("text to speak is empty")
    if not WPM_RANGE[0] <= wpm <= WPM_RANGE[1] or not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
        raise ConfigError(f"espeak-ng rate {wpm} wpm / pitch {pitch} out of range")
    exe = _require_program()
    # NFC: espeak-ng misreads decomposed kana marks; lone surrogates cannot be argv.
    text = unicodedata.normalize("NFC", safe_text(text))
    with tempfile.TemporaryDirectory(prefix="voiceprobe-espeak-") as tmp:
        out = Path(tmp) / "speech.wav"
        argv = [exe, "-w", str(out), "-b", "1", "-v", voice, "-s", str(wpm), "-p", str(pitch)]
        try:
            proc = subprocess.run(
                [*argv, "--", text], capture_output=True, timeout=_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigError(f"espeak-ng could not run ({exc})") from None
        if proc.returncode != 0 or not out.exists():
            reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            why = reason[0][:200] if reason else f"exit code {proc.returncode}"
            raise ConfigError(f"espeak-ng failed for voice {voice!r}: {why}")
        try:
            pcm, rate = read_wav(out)
        except AudioFormatError:
            raise ConfigError(f"espeak-ng produced no audio for {text[:40]!r}") from None
    if rate != ESPEAK_RATE:
        raise ConfigError(f"espeak-ng wrote {rate} Hz audio, expected {ESPEAK_RATE} Hz")
    return pcm
