"""Audio conditions measured on rendered probes: SNR of white/pink/babble/file noise on
active speech, the G.711 telephone band, packet loss, speed and level; names and errors.

Every figure is measured here independently of app.probes.levels (see probe_helpers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.audio.wavio import write_wav
from app.errors import ConfigError
from app.probes.conditions import VALID_FORMS, condition_rng, parse_condition, parse_conditions
from app.probes.line import telephone_line
from app.probes.render import Probe, RenderedProbe, render_probe
from tests.probe_helpers import band_energy, level_dbfs, snr_db

PROBE = Probe("What's the weather like in Paris this weekend?", "en-US")
SEED = 11


def _render(tmp_path: Path, *conds: str, probe: Probe = PROBE, seed: int = SEED) -> RenderedProbe:
    return render_probe(probe, seed=seed, conditions=conds, cache_dir=tmp_path / "cache",
                        base_dir=tmp_path)  # fmt: skip


@pytest.mark.parametrize(("cond", "target"), [("babble@10", 10.0), ("white@5", 5.0),
                                              ("pink@20", 20.0), ("babble@0", 0.0)])  # fmt: skip
def test_noise_snr_on_active_speech(cond: str, target: float, tmp_path: Path) -> None:
    clean = _render(tmp_path)
    noisy = _render(tmp_path, cond)
    assert noisy.conditions == (cond,) and len(noisy.samples) == len(clean.samples)
    measured = snr_db(clean.samples, noisy.samples)
    assert abs(measured - target) <= 0.5, f"{cond}: SNR {measured:.2f} dB"


def test_pink_noise_falls_3db_per_octave(tmp_path: Path) -> None:
    clean = _render(tmp_path)
    noise = _render(tmp_path, "pink@0").samples.astype(np.int32) - clean.samples
    noise16 = noise.astype(np.int16)
    low = band_energy(noise16, 250, 500) / 250
    high = band_energy(noise16, 2000, 4000) / 2000
    # Power density falls by 1/f: from the 250-500 band to the 2-4 kHz band, 8x or ~9 dB.
    assert abs(10 * np.log10(low / high) - 9.03) < 1.5


def test_user_noise_file_is_looped_at_the_snr(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    hum = 0.3 * np.sin(2 * np.pi * 120 * np.arange(2400) / 8000) + 0.05 * rng.standard_normal(2400)
    write_wav(tmp_path / "hum.wav", np.rint(hum * 20000).astype(np.int16), 8000)  # 0.3 s
    clean = _render(tmp_path)
    noisy = _render(tmp_path, "noise:hum.wav@10")
    assert abs(snr_db(clean.samples, noisy.samples) - 10.0) <= 0.5
    residue = noisy.samples.astype(np.int32) - clean.samples
    assert np.abs(residue[-1600:]).max() > 0, "the noise must be looped to the end"


def test_g711_line_is_band_limited(tmp_path: Path) -> None:
    wide = _render(tmp_path)
    line = _render(tmp_path, "g711")
    assert wide.samples is not line.samples and len(line.samples) == len(wide.samples)
    passband = band_energy(line.samples, 300, 3400)
    above = band_energy(line.samples, 4000, 8000)
    assert 10 * np.log10(above / passband) < -50
    # espeak-ng speech does carry energy above 4 kHz before the line:
    assert 10 * np.log10(band_energy(wide.samples, 4000, 8000) / passband) > -40


def test_g711_line_attenuates_below_300_hz(tmp_path: Path) -> None:
    t = np.arange(32000) / 16000
    tones = 0.2 * (np.sin(2 * np.pi * 100 * t) + np.sin(2 * np.pi * 1000 * t)
                   + np.sin(2 * np.pi * 6000 * t))  # fmt: skip
    write_wav(tmp_path / "tones.wav", np.rint(tones * 32767).astype(np.int16), 16000)
    probe = Probe("tones", "en", file=Path("tones.wav"))
    out = _render(tmp_path, "g711", probe=probe).samples
    mid = band_energy(out, 950, 1050)
    assert 10 * np.log10(band_energy(out, 50, 150) / mid) < -40
    assert 10 * np.log10(band_energy(out, 5900, 6100) / mid) < -60


def test_g711_packet_loss_is_deterministic(tmp_path: Path) -> None:
    clean_line = _render(tmp_path, "g711")
    lossy = _render(tmp_path, "g711+loss10")
    # The lost packets, as the line draws them for this probe and seed:
    cond = parse_condition("g711+loss10")
    rng = condition_rng(SEED, cond, lossy.speech_key)
    speech = _render(tmp_path).samples
    result = telephone_line(speech, 16000, loss_pct=10, rng=rng)
    assert result.audio.tobytes() == lossy.samples.tobytes()
    assert len(result.lost) == round(0.10 * result.packets) and result.packets >= 100
    # In the audio: a packet (320 samples at 16 kHz) that carries speech on the clean line
    # is silent at its centre exactly when it is lost.
    ref, got = clean_line.samples.astype(np.float64), lossy.samples.astype(np.float64)
    silent_when_lost = []
    for k in range(len(ref) // 320):
        centre = slice(k * 320 + 80, k * 320 + 240)
        if np.sqrt(np.mean(ref[centre] ** 2)) < 300:  # no speech here to tell
            continue
        silent = np.sqrt(np.mean(got[centre] ** 2)) < 0.05 * np.sqrt(np.mean(ref[centre] ** 2))
        silent_when_lost.append(silent == (k in result.lost))
    assert len(silent_when_lost) > 40 and all(silent_when_lost)
    # Same seed: same packets; another seed: other packets.
    assert _render(tmp_path / "again", "g711+loss10").samples.tobytes() == lossy.samples.tobytes()
    other = telephone_line(speech, 16000, loss_pct=10, rng=condition_rng(SEED + 1, cond, "x"))
    assert other.lost != result.lost


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_speed_changes_duration(factor: float, tmp_path: Path) -> None:
    clean = _render(tmp_path)
    fast = _render(tmp_path, f"speed@{factor}")
    ratio = len(fast.samples) / len(clean.samples)
    assert abs(ratio * factor - 1.0) <= 0.02, ratio


def test_level_sets_active_speech_dbfs(tmp_path: Path) -> None:
    assert abs(level_dbfs(_render(tmp_path).samples) - (-26)) > 3  # espeak-ng is louder
    for target in (-26.0, -40.0):
        out = _render(tmp_path, f"level@{target:g}").samples
        assert abs(level_dbfs(out) - target) <= 0.5


def test_conditions_apply_in_a_fixed_order_and_keep_their_names(tmp_path: Path) -> None:
    conds = (
        "g711",
        "Babble@10",
        "level@-26",
        "speed@0.9",
    )
    r = _render(tmp_path, *conds)
    assert r.conditions == ("speed@0.9", "level@-26", "Babble@10", "g711")
    assert [c.kind for c in parse_conditions(conds)] == ["speed", "level", "noise", "line"]
    assert (
        _render(tmp_path, "clean", "wideband").samples.tobytes()
        == _render(tmp_path).samples.tobytes()
    )
    assert _render(tmp_path, "clean", "wideband").conditions == ("clean", "wideband")


@pytest.mark.parametrize(
    "name",
    ["babble", "babble@", "pink@abc", "speed@2", "speed@0.5", "g711+loss80", "level@3",
     "white@100", "noise:missing.wav@10", "g722", "", "babble@10dB"],
)  # fmt: skip
def test_bad_condition_names_are_config_errors(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _render(tmp_path, name)
    msg = str(err.value)
    assert repr(name.strip()) in msg and VALID_FORMS in msg and "\n" not in msg


def test_two_conditions_of_one_kind_are_rejected() -> None:
    with pytest.raises(ConfigError, match="'white@5' and 'babble@10' are both noise"):
        parse_conditions(["white@5", "babble@10"])
