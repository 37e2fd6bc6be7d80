"""Shared helpers for the probe tests: an espeak-ng that logs its invocations, and
independent measurements (active-speech SNR and level, band energy)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray


class EspeakLog:
    """Reads the argv lines the logging espeak-ng wrapper wrote."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def calls(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        return [line.split("\x1f") for line in self.path.read_text().splitlines() if line]

    def syntheses(self) -> list[list[str]]:
        """The invocations that synthesised audio (``-w FILE``), not voice listings."""
        return [c for c in self.calls() if "-w" in c]


def install_espeak_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EspeakLog:
    """Put the real espeak-ng behind a wrapper on PATH that logs every invocation."""
    real = shutil.which("espeak-ng")
    assert real, "espeak-ng must be installed (scripts/setup.sh)"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "espeak-calls.log"
    wrapper = bindir / "espeak-ng"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"(IFS=$(printf '\\037'); printf '%s\\n' \"$*\") >> '{log}'\n"
        f"exec '{real}' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return EspeakLog(log)


def active_frames(speech: NDArray[np.int16], rate: int = 16000) -> NDArray[np.bool_]:
    """Per-sample mask of the 20 ms frames within 35 dB of the loudest (and above -70 dBFS),
    written here independently of app.probes.levels."""
    w = rate // 50
    n = len(speech) // w
    x = speech[: n * w].astype(np.float64).reshape(n, w)
    db = np.array([10 * np.log10(max(np.dot(f, f) / w, 1e-20) / 32768.0**2) for f in x])
    keep = db >= max(db.max() - 35.0, -70.0)
    mask = np.zeros(len(speech), dtype=bool)
    for i in np.flatnonzero(keep):
        mask[i * w : (i + 1) * w] = True
    return mask


def snr_db(speech: NDArray[np.int16], mix: NDArray[np.int16]) -> float:
    """SNR of ``mix`` = speech + noise, over the speech's active frames."""
    mask = active_frames(speech)
    s = speech.astype(np.float64)[mask]
    n = mix.astype(np.float64)[mask] - s
    return float(10 * np.log10(np.sum(s**2) / np.sum(n**2)))


def level_dbfs(x: NDArray[np.int16]) -> float:
    """Active-speech RMS level in dBFS."""
    sel = x.astype(np.float64)[active_frames(x)]
    return float(10 * np.log10(np.mean(sel**2) / 32768.0**2))


def band_energy(x: NDArray[np.int16], lo: float, hi: float, rate: int = 16000) -> float:
    """Energy of ``x`` between ``lo`` and ``hi`` Hz (FFT of the whole signal)."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / rate)
    return float(spec[(f >= lo) & (f < hi)].sum())
