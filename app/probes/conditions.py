"""Audio conditions a suite applies to probes, parsed from their names as written.

Grammar (keywords are case-insensitive; numbers are decimal):

==========================  =====  ===================================================
name                        kind   effect
==========================  =====  ===================================================
``clean``                   noise  none
``white@SNR``               noise  white noise at SNR dB (-10 to 60)
``pink@SNR``                noise  pink noise at SNR dB
``babble@SNR``              noise  several other espeak-ng talkers at SNR dB
``noise:FILE.wav@SNR``      noise  the WAV at FILE, looped, at SNR dB
``wideband``                line   none (the probe's 16 kHz audio as is)
``g711`` / ``g711+lossP``   line   telephone line, P % of 20 ms packets lost (0-50)
``speed@F``                 speed  tempo x F (0.8-1.2) with pitch kept (sox ``tempo``)
``level@DB``                level  active speech RMS set to DB dBFS (-60 to 0)
==========================  =====  ===================================================

SNR and level are measured on active speech (:mod:`app.probes.levels`); noise sources
are described in :mod:`app.probes.noise`, the line in :mod:`app.probes.line`. A case
takes at most one condition of each kind, applied in the order speed, level, noise,
line (how the caller talks, then the room, then the phone network). Each condition keeps
:attr:`name` exactly as written (surrounding spaces removed), for results.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from app.audio.wavio import read_wav, write_wav
from app.errors import ConfigError
from app.probes import noise as noises
from app.probes.cache import PROBE_RATE
from app.probes.levels import mix_at_snr, set_active_level
from app.probes.line import telephone_line

#: The valid forms, as quoted in error messages.
VALID_FORMS = (
    "clean, white@SNR, pink@SNR, babble@SNR, noise:FILE.wav@SNR, wideband, g711, "
    "g711+lossP, speed@F (0.8-1.2), level@DB (dBFS)"
)
SNR_RANGE = (-10.0, 60.0)
LOSS_RANGE = (0.0, 50.0)
SPEED_RANGE = (0.8, 1.2)
LEVEL_RANGE = (-60.0, 0.0)
_ORDER = {"speed": 0, "level": 1, "noise": 2, "line": 3}
_NUM = r"(-?\d+(?:\.\d+)?)"


@dataclass(frozen=True, slots=True)
class Condition:
    """One parsed condition.

    Attributes:
        name: the name exactly as written (surrounding spaces removed).
        kind: ``noise``, ``line``, ``speed`` or ``level``.
        source: noise: ``clean``, ``white``, ``pink``, ``babble`` or ``file``; line:
            ``wideband`` or ``g711``; otherwise empty.
        value: SNR in dB (noise), loss % (line), tempo factor (speed) or dBFS (level);
            0 for ``clean``/``wideband``/``g711``.
        file: the noise WAV for ``noise:FILE@SNR`` (resolved against the base folder).
    """

    name: str
    kind: Literal["noise", "line", "speed", "level"]
    source: str = ""
    value: float = 0.0
    file: Path | None = None

    @property
    def is_identity(self) -> bool:
        """True for ``clean`` and ``wideband``, which leave the audio unchanged."""
        return self.source in ("clean", "wideband")

    @property
    def spec(self) -> str:
        """A canonical spelling (case and number format normalised) that identifies the
        effect: ``noise:babble@10``, ``line:g711@5``; used for seeds and cache keys."""
        where = f":{self.file}" if self.file is not None else ""
        return f"{self.kind}:{self.source}{where}@{self.value:g}"

    @property
    def uses_seed(self) -> bool:
        """True when the result depends on the seed (noise, packet loss)."""
        return (self.kind == "noise" and self.source != "clean") or (
            self.kind == "line" and self.value > 0
        )


def _bad(name: str, why: str) -> ConfigError:
    return ConfigError(
        f"invalid condition {name!r}: {why}; valid forms: {VALID_FORMS}", field="condition"
    )


def _ranged(name: str, text: str, bounds: tuple[float, float], what: str) -> float:
    value = float(text)
    if not bounds[0] <= value <= bounds[1]:
        raise _bad(name, f"{what} {value:g} outside {bounds[0]:g} to {bounds[1]:g}")
    return value


def parse_condition(name: str, *, base_dir: Path | None = None) -> Condition:
    """Parse one condition name (grammar in the module docstring).

    Args:
        name: the name as written in the suite.
        base_dir: folder that a relative ``noise:FILE`` path is relative to (the suite's
            folder); default the current folder.

    Raises:
        ConfigError: an unknown form, a value out of range, or a noise file that does not
            exist; the message names the condition and lists the valid forms.
    """
    text = str(name).strip()
    low = text.lower()
    if low in ("clean", "wideband", "g711"):
        kind: Literal["noise", "line"] = "noise" if low == "clean" else "line"
        return Condition(text, kind, low)
    if m := re.fullmatch(r"(white|pink|babble)@" + _NUM, low):
        return Condition(text, "noise", m[1], _ranged(text, m[2], SNR_RANGE, "SNR"))
    if m := re.fullmatch(r"noise:(.+)@" + _NUM, text, flags=re.IGNORECASE | re.DOTALL):
        path = Path(m[1]).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        if not path.is_file():
            raise _bad(text, f"noise file {str(path)!r} not found")
        return Condition(text, "noise", "file", _ranged(text, m[2], SNR_RANGE, "SNR"), path)
    if m := re.fullmatch(r"g711\+loss" + _NUM + "%?", low):
        return Condition(text, "line", "g711", _ranged(text, m[1], LOSS_RANGE, "loss %"))
    if m := re.fullmatch(r"speed@" + _NUM, low):
        return Condition(text, "speed", "", _ranged(text, m[1], SPEED_RANGE, "speed"))
    if m := re.fullmatch(r"level@" + _NUM, low):
        return Condition(text, "level", "", _ranged(text, m[1], LEVEL_RANGE, "level"))
    raise _bad(text, "unknown form")


def parse_conditions(
    names: Sequence[str], *, base_dir: Path | None = None
) -> tuple[Condition, ...]:
    """Parse the conditions of one case and return them in application order.

    Raises:
        ConfigError: any name is invalid, or two conditions have the same kind.
    """
    parsed = [parse_condition(n, base_dir=base_dir) for n in names]
    seen: dict[str, str] = {}
    for c in parsed:
        if c.kind in seen:
            raise ConfigError(
                f"conditions {seen[c.kind]!r} and {c.name!r} are both {c.kind} "
                "conditions; a case takes one of each kind",
                field="condition",
            )
        seen[c.kind] = c.name
    return tuple(sorted(parsed, key=lambda c: _ORDER[c.kind]))


def condition_rng(seed: int, condition: Condition, salt: str = "") -> np.random.Generator:
    """Return the numpy generator a condition draws from: a function of the seed, the
    condition's :attr:`~Condition.spec` and ``salt`` (the probe's speech key), stable
    across runs."""
    digest = hashlib.sha256(repr((int(seed), condition.spec, salt)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def change_tempo(x: NDArray[np.int16], rate: int, factor: float) -> NDArray[np.int16]:
    """Return ``x`` played ``factor`` times as fast with its pitch kept (``sox tempo -s``,
    WSOLA tuned for speech); the duration becomes ``len(x) / factor``.

    Raises:
        ConfigError: sox is not installed or fails.
    """
    exe = shutil.which("sox")
    if exe is None:
        raise ConfigError("sox is not installed (Debian package sox); speed@ needs it")
    with tempfile.TemporaryDirectory(prefix="voiceprobe-sox-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        write_wav(src, x, rate)
        # -D: no dither, so the output is the same bytes on every run.
        argv = [exe, "-D", "-V1", str(src), str(dst), "tempo", "-s", f"{factor:.6f}"]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ConfigError(f"sox could not run ({exc})") from None
        if proc.returncode != 0:
            raise ConfigError(f"sox tempo failed with exit code {proc.returncode}")
        out, _ = read_wav(dst)
    return out


def apply_conditions(
    speech: NDArray[np.int16],
    conditions: Sequence[Condition],
    *,
    seed: int,
    cache_dir: Path,
    salt: str = "",
    probe_voice: str | None = None,
) -> NDArray[np.int16]:
    """Apply ``conditions`` (from :func:`parse_conditions`) to a probe's clean speech.

    Args:
        speech: mono int16 at :data:`~app.probes.cache.PROBE_RATE`.
        conditions: applied in the order given (parse_conditions sorts them).
        seed: the suite seed; with ``salt`` it fixes every random draw.
        cache_dir: where babble talkers are rendered and cached.
        salt: distinguishes probes so they get different noise (their speech key).
        probe_voice: the probe's espeak-ng voice, which babble leaves out.

    Raises:
        ConfigError: silent speech for a level/SNR, a missing tool, an unreadable noise file.
    """
    x = np.asarray(speech, dtype=np.int16)
    for c in conditions:
        if c.is_identity:
            continue
        rng = condition_rng(seed, c, salt)
        if c.kind == "speed":
            x = change_tempo(x, PROBE_RATE, c.value)
        elif c.kind == "level":
            x = set_active_level(x, PROBE_RATE, c.value)
        elif c.kind == "line":
            x = telephone_line(x, PROBE_RATE, loss_pct=c.value, rng=rng).audio
        else:
            n = len(x)
            if c.source == "white":
                noise = noises.white(n, rng)
            elif c.source == "pink":
                noise = noises.pink(n, rng)
            elif c.source == "babble":
                noise = noises.babble(n, rng, exclude_voice=probe_voice, cache_dir=cache_dir)
            else:
                assert c.file is not None
                noise = noises.from_file(c.file, n, rng)
            x = mix_at_snr(x, noise, PROBE_RATE, c.value)
    return x
