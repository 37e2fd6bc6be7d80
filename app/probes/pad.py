"""The probe pad's files and scoring: probes a tester plays into a live call by hand.

A pad probe is two files in ``<data dir>/probes`` that a team can copy around:
``<name>.wav`` (mono PCM16, 16 kHz) and ``<name>.json`` (``{"name", "text", "language",
"accent", "source", "text_source", "provider", "model", "pending"}``; ``source`` is
``tts``, ``import`` or ``recorded``; ``text_source`` is ``typed`` or ``provider``, the
latter with the ``provider`` and ``model`` whose caller transcript gave the text). Probes
come from espeak-ng (:func:`render_to_pad`, through :func:`app.probes.render.render_probe`
and its cache), from a WAV the user has (:func:`import_wav`) or from the microphone
(:func:`save_probe` of the captured samples). Bad input (a file that is not audio, an empty
text, a bad language tag or name) raises one clear :class:`~app.errors.ConfigError` line
and writes nothing.

A recording made during a call may be stored before its text is known
(:func:`save_pending`): its text is empty and ``pending`` says why, until the provider's
transcript fills it (:func:`set_text`, see :mod:`app.probes.transcribed`) or the tester
types it. A pending probe is listed but cannot be played as a scored probe.

Playing a probe into a call goes through the bridge's
:class:`~app.audio.callermix.CallerMix`. After the call, :func:`score_plays` gives each
played probe its turn (the turn whose caller speech starts while the probe plays; several
such turns are one probe heard as several utterances, joined), its WER against what the
agent heard (:func:`app.probes.scoring.error_rate`) and the reply's language, and
:func:`store_pad_run` files them as a suite run (``<data dir>/suite-runs/pad-<id>.json``),
so they become the turns' automatic verdicts and facts the way a suite's checks do
(:func:`app.store.verdicts.ingest_suite_runs`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.callermix import MixedClip
from app.audio.wavio import read_wav
from app.errors import ConfigError
from app.metrics.presentation import turn_number
from app.metrics.records import TurnRecord
from app.private_files import private_dir
from app.probes.cache import PROBE_RATE
from app.probes.lang import canonical_tag, primary_subtag
from app.probes.render import Probe, render_probe
from app.probes.scoring import detect_language, error_rate, uses_cer
from app.probes.speech import load_recording
from app.textsafe import printable

PAD_FOLDER = "probes"
SOURCES = ("tts", "import", "recorded")
#: Where a probe's text came from: typed by the tester, or the provider's transcription.
TEXT_SOURCES = ("typed", "provider")
#: A probed turn passes its ``heard`` check at or below this WER (CER for CJK/Thai).
PAD_MAX_WER = 0.5
MAX_TEXT = 2000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: A turn whose caller speech starts this much before a probe's first sample is still its.
_SLACK_NS = 20_000_000


@dataclass(frozen=True, slots=True)
class PadProbe:
    """One probe of the pad.

    Attributes:
        name: file stem (letters, digits, ``_ . -``; at most 64).
        text: what is said: the turn's expected transcript.
        language: BCP-47 tag in canonical case.
        accent: accent label, or empty.
        source: ``tts``, ``import`` or ``recorded``.
        folder: the pad folder holding ``<name>.wav`` and ``<name>.json``.
        text_source: ``typed`` or ``provider`` (the call's caller transcript).
        provider: with ``text_source`` ``provider``: the provider that transcribed it.
        model: with ``text_source`` ``provider``: that provider's model.
        pending: why the text is still empty (a recording waiting for, or left without,
            the provider's transcript); empty once the probe has its text.
    """

    name: str
    text: str
    language: str
    accent: str
    source: str
    folder: Path
    text_source: str = "typed"
    provider: str = ""
    model: str = ""
    pending: str = ""

    @property
    def is_pending(self) -> bool:
        """The probe has no text yet (it cannot be played as a scored probe)."""
        return not self.text

    @property
    def wav(self) -> Path:
        """The probe's audio file."""
        return self.folder / f"{self.name}.wav"

    def meta(self) -> dict[str, str]:
        """What the JSON file holds (and what a played clip carries)."""
        d = asdict(self)
        d.pop("folder")
        return d


def pad_dir(root: Path) -> Path:
    """``<root>/probes``, created (``0700``) on demand."""
    return private_dir(root / PAD_FOLDER)


def check_name(name: str) -> str:
    """Return ``name`` if it can name a probe's files.

    Raises:
        ConfigError: one line naming the rule.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"probe name {printable(name[:40])!r} must be 1-64 letters, digits, '_', '.' "
            "or '-' and start with a letter or digit",
            field="name",
        )
    return name


def _checked(text: str, language: str, *, pending: bool = False) -> tuple[str, str]:
    text = " ".join(text.split())
    if not text and not pending:
        raise ConfigError("probe text is empty", field="text")
    if len(text) > MAX_TEXT:
        raise ConfigError(f"probe text is {len(text)} characters (at most {MAX_TEXT})")
    return text, canonical_tag(language)


def _write_meta(probe: PadProbe) -> None:
    from app.store.writer import atomic_write_text

    path = probe.folder / f"{probe.name}.json"
    atomic_write_text(path, json.dumps(probe.meta(), indent=2, ensure_ascii=False) + "\n")


def default_name(text: str, language: str, folder: Path) -> str:
    """A free file stem from the language and the first words of ``text``."""
    words = re.sub(r"[^A-Za-z0-9]+", "-", text.lower()).strip("-")[:32].strip("-")
    base = f"{language}-{words}" if words else language
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", base)[:56]
    name, n = base, 2
    while (folder / f"{name}.json").exists() or (folder / f"{name}.wav").exists():
        name, n = f"{base}-{n}", n + 1
    return name


def save_probe(
    folder: Path,
    pcm: NDArray[np.int16],
    rate: int,
    text: str,
    language: str,
    accent: str = "",
    *,
    source: str = "recorded",
    name: str | None = None,
) -> PadProbe:
    """Store ``pcm`` (mono int16 at ``rate``) as a pad probe with its typed ``text``;
    returns it. Without a ``name`` one is made from the language and the first words; a
    probe of the same name is replaced.

    Raises:
        ConfigError: empty or too long text, a bad language tag or name, an unknown
            source, no audio; nothing is written.
    """
    text, language = _checked(text, language)
    return _save(folder, pcm, rate, replace(_BLANK, text=text, language=language,
                                            accent=accent, source=source), name)  # fmt: skip


def save_pending(
    folder: Path,
    pcm: NDArray[np.int16],
    rate: int,
    language: str,
    accent: str,
    reason: str,
    *,
    provider: str = "",
    model: str = "",
    name: str | None = None,
) -> PadProbe:
    """Store a recording whose text is not known yet (``pending`` = ``reason``, its text
    to come from ``provider``/``model``); it is listed but cannot be played as a scored
    probe until :func:`set_text` gives it one.

    Raises:
        ConfigError: a bad language tag or name, no audio, an empty ``reason``; nothing
            is written.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise ConfigError("a pending probe needs the reason it has no text")
    blank = replace(_BLANK, language=canonical_tag(language), accent=accent, text_source="provider",
                    provider=provider, model=model, pending=reason)  # fmt: skip
    return _save(folder, pcm, rate, blank, name)


#: The fields a new probe starts from (:func:`_save` fills in the rest).
_BLANK = PadProbe("-", "", "", "", "recorded", Path("."))


def _save(
    folder: Path, pcm: NDArray[np.int16], rate: int, fields: PadProbe, name: str | None
) -> PadProbe:
    """Write ``fields`` (text and language already checked) with ``pcm`` as a probe."""
    from app.audio.resample import resample
    from app.audio.wavio import write_wav

    if fields.source not in SOURCES:
        raise ConfigError(f"unknown probe source {printable(fields.source[:20])!r}")
    x = np.asarray(pcm, dtype=np.int16).reshape(-1)
    if not len(x):
        raise ConfigError("the probe has no audio")
    if rate != PROBE_RATE:
        x = resample(x, rate, PROBE_RATE)
    folder = private_dir(folder)
    if name:
        name = check_name(name)
    else:
        name = default_name(fields.text or "recorded", fields.language, folder)
    probe = replace(fields, name=name, accent=" ".join(fields.accent.split()), folder=folder)
    write_wav(probe.wav, x, PROBE_RATE)
    _write_meta(probe)
    return probe


def set_text(
    probe: PadProbe,
    text: str,
    *,
    text_source: str = "typed",
    provider: str = "",
    model: str = "",
) -> PadProbe:
    """Give ``probe`` its text (typed, or the provider's transcript with the
    ``provider`` and ``model`` that made it); rewrites its JSON file, returns the probe.

    Raises:
        ConfigError: empty or too long text, an unknown ``text_source``; nothing is
            written.
    """
    if text_source not in TEXT_SOURCES:
        raise ConfigError(f"unknown text source {printable(text_source[:20])!r}")
    text, _ = _checked(text, probe.language)
    typed = text_source == "typed"
    done = replace(
        probe,
        text=text,
        text_source=text_source,
        provider="" if typed else provider,
        model="" if typed else model,
        pending="",
    )
    _write_meta(done)
    return done


def mark_pending(probe: PadProbe, reason: str) -> PadProbe:
    """Record why a pending ``probe`` still has no text (its JSON file is rewritten); a
    probe that has its text is returned as it is."""
    if not probe.is_pending:
        return probe
    done = replace(probe, pending=" ".join(reason.split()))
    _write_meta(done)
    return done


def render_to_pad(
    folder: Path,
    text: str,
    language: str,
    accent: str = "",
    *,
    seed: int = 0,
    name: str | None = None,
    cache_dir: Path | None = None,
) -> PadProbe:
    """Speak ``text`` with espeak-ng in ``language``/``accent`` and store it on the pad.

    Raises:
        ConfigError: bad text, tag or name, no espeak-ng voice for the language.
    """
    text, language = _checked(text, language)
    done = render_probe(
        Probe(text=text, language=language, accent=accent or None),
        seed=seed,
        cache_dir=cache_dir,
    )
    return save_probe(
        folder, done.samples, done.rate, text, language, accent, source="tts", name=name
    )


def import_wav(
    folder: Path,
    path: Path,
    text: str,
    language: str,
    accent: str = "",
    *,
    name: str | None = None,
) -> PadProbe:
    """Store the user's recording ``path`` (any WAV :mod:`app.audio.wavio` reads) on the
    pad, with its transcript ``text``.

    Raises:
        ConfigError: ``path`` is missing or not audio
            (:class:`~app.errors.AudioFormatError`, one line naming the file), bad text,
            tag or name; nothing is written.
    """
    text, language = _checked(text, language)
    pcm = load_recording(Path(path))
    return save_probe(folder, pcm, PROBE_RATE, text, language, accent, source="import", name=name)


def list_probes(folder: Path) -> list[PadProbe]:
    """The pad's probes, by name; a JSON file that is unreadable, malformed or without its
    WAV is skipped (a shared folder may hold anything)."""
    out: list[PadProbe] = []
    if not folder.is_dir():
        return out
    for meta in sorted(folder.glob("*.json")):
        try:
            d = json.loads(meta.read_text(encoding="utf-8"))
            pending = " ".join(str(d.get("pending") or "").split())
            probe = PadProbe(
                check_name(meta.stem),
                *_checked(str(d["text"]), str(d["language"]), pending=bool(pending)),
                accent=str(d.get("accent") or ""),
                source=str(d.get("source") or "import"),
                folder=folder,
                text_source=str(d.get("text_source") or "typed"),
                provider=str(d.get("provider") or ""),
                model=str(d.get("model") or ""),
            )
            if not probe.text:
                probe = replace(probe, pending=pending)
        except (OSError, ValueError, KeyError, TypeError, ConfigError, RecursionError):
            continue
        if probe.wav.is_file():
            out.append(probe)
    return out


def load_audio(probe: PadProbe) -> tuple[NDArray[np.int16], int]:
    """The probe's samples and rate.

    Raises:
        AudioFormatError: the WAV is missing or unusable.
    """
    return read_wav(probe.wav)


def score_plays(
    plays: Sequence[MixedClip], turns: Sequence[Mapping[str, Any]], rate: int
) -> list[dict[str, Any]]:
    """Match played probes to the call's turns and score them.

    Args:
        plays: the clips the call's :class:`~app.audio.callermix.CallerMix` started, each
            with a pad probe's :meth:`PadProbe.meta` as its ``meta``.
        turns: the call's turn records in their JSON form (the summary's ``turns``).
        rate: the rate of the clips' samples (the call port's).

    Returns:
        One entry per play that some turn answered: ``{"turn", "probe", "expected",
        "language", "accent", "heard", "said", "wer", "reply_language"}`` (``wer`` is a
        CER for CJK/Thai; ``reply_language`` a primary subtag or None).
    """
    out: list[dict[str, Any]] = []
    for clip in plays:
        if clip.start_ns is None:
            continue
        start = clip.start_ns - _SLACK_NS
        end = clip.start_ns + len(clip.pcm) * 1_000_000_000 // rate
        mine = []
        for row, t in enumerate(turns):
            s = TurnRecord.from_dict(t).start_ns
            if s is not None and start <= s < end:
                mine.append((row, t))
        if not mine:
            continue
        meta = clip.meta
        language = str(meta.get("language") or "")
        expected = str(meta.get("text") or "")
        heard = " ".join(str(t.get("user_transcript") or "") for _, t in mine).strip()
        said = " ".join(str(t.get("agent_transcript") or "") for _, t in mine).strip()
        out.append(
            {
                "turn": turn_number(mine[0][1], mine[0][0]),
                "probe": str(meta.get("name") or ""),
                "expected": expected,
                "language": language,
                "accent": str(meta.get("accent") or ""),
                "heard": heard,
                "said": said,
                "wer": round(error_rate(expected, heard, language).value, 4),
                "reply_language": detect_language(said) if said else None,
            }
        )
    return out


def _checks(r: Mapping[str, Any]) -> list[dict[str, Any]]:
    unit = "CER" if uses_cer(r["language"]) else "WER"
    ok = r["wer"] <= PAD_MAX_WER
    checks = [
        {
            "turn": r["turn"],
            "name": "heard",
            "passed": ok,
            "value": r["wer"],
            "limit": PAD_MAX_WER,
            "message": f"{unit} {r['wer']:.2f} against the probe {r['probe']!r}",
        }
    ]
    if r["reply_language"] is not None:
        want = primary_subtag(r["language"])
        want = "zh" if want in ("cmn", "yue") else want
        checks.append(
            {
                "turn": r["turn"],
                "name": "reply_language",
                "passed": r["reply_language"] == want,
                "value": r["reply_language"],
                "limit": want,
                "message": f"agent answered in {r['reply_language']} (expected {want})",
            }
        )
    return checks


def store_pad_run(root: Path, session_id: str, results: Sequence[Mapping[str, Any]]) -> Path:
    """File the scored probes of session ``session_id`` as a suite run
    (``<root>/suite-runs/pad-<id>.json``, one case, the checks ``heard`` and
    ``reply_language`` per probed turn) and return its path. The case's language is the
    first probe's (the index judges reply-language facts by it).

    Raises:
        StoreError: the file cannot be written.
    """
    from app.store.writer import atomic_write_text

    folder = private_dir(root / "suite-runs")
    checks = [c for r in results for c in _checks(r)]
    case = {
        "session_id": session_id,
        "language": results[0]["language"] if results else None,
        "accent": results[0]["accent"] if results else None,
        "source": "probe-pad",
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
        "turns": [dict(r) for r in results],
    }
    run = {
        "suite": "probe-pad",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cases": [case],
    }
    path = folder / f"pad-{check_name(session_id)}.json"
    atomic_write_text(path, json.dumps(run, indent=2, ensure_ascii=False) + "\n")
    return path
