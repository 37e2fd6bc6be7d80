"""Mic-path processing without devices: the processor's contract, the profile's
``audio_processing`` section, and ``mic_raw.wav`` across a crash."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from app.audio.aec import AudioProcessing, EchoCanceller, ProcessingUnavailable
from app.audio.recorder import MIC_RAW_WAV, StereoRecorder
from app.errors import ConfigError
from app.profile import load_profile
from app.store import SessionIndex, SessionWriter, load_session, recover_unfinished


def test_near_returns_whole_blocks_and_keeps_the_rest() -> None:
    ec = EchoCanceller(AudioProcessing(), 16000)
    x = (np.sin(np.arange(480) / 5) * 8000).astype(np.int16)
    assert len(ec.near(x[:320])) == 320  # a 20 ms frame comes back at once
    assert len(ec.near(x[320:470])) == 0  # 150 samples: less than a block
    assert len(ec.near(x[470:])) == 160


def test_an_unsupported_rate_is_a_clear_error() -> None:
    with pytest.raises(ProcessingUnavailable, match="not 24000 Hz"):
        EchoCanceller(AudioProcessing(), 24000)


def test_profile_processing_options(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("audio_processing:\n  aec: off\n  noise_suppression: true\n")
    p = load_profile(str(good))
    assert p.audio_processing == AudioProcessing(aec=False, noise_suppression=True)
    assert load_profile(None).audio_processing == AudioProcessing()
    bad = tmp_path / "bad.yaml"
    bad.write_text("audio_processing:\n  aec: on\n  echo_tail: 3\n")
    with pytest.raises(ConfigError) as err:
        load_profile(str(bad))
    assert str(bad) in str(err.value) and "audio_processing.echo_tail" in str(err.value)
    worse = tmp_path / "worse.yaml"
    worse.write_text("audio_processing:\n  aec: maybe\n")
    with pytest.raises(ConfigError, match="audio_processing.aec: must be on or off"):
        load_profile(str(worse))


def test_cli_names_the_bad_processing_option(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("audio_processing:\n  gain: true\n")
    wav = tmp_path / "in.wav"
    with wave.open(str(wav), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(16000)
        wf.writeframes(b"\0\0" * 1600)
    r = subprocess.run(
        [sys.executable, "-m", "app.cli", "call", "--input", str(wav), "--profile", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "audio_processing.gain: unknown field" in lines[0], r.stderr


def test_mic_raw_wav_is_repaired_after_a_crash(tmp_path: Path) -> None:
    w = SessionWriter(tmp_path, "mic", {})
    rec = StereoRecorder(w.dir / MIC_RAW_WAV, 16000, 0, channels=1)
    rec.left(np.full(16000 + 8000, 1000, dtype=np.int16), 0)  # 1.5 s, header says 1 s
    rec.flush()
    rec.left(np.full(4000, 1000, dtype=np.int16), 1_500_000_000)  # on disk, not in header
    # The process dies here: no close(). Recovery makes the file whole.
    with wave.open(str(w.dir / MIC_RAW_WAV), "rb") as wf:
        assert wf.getnframes() == 24000  # the header lags what is on disk
    meta = json.loads((w.dir / "session.json").read_text())
    meta["pid"] = 0
    (w.dir / "session.json").write_text(json.dumps(meta))
    assert recover_unfinished(tmp_path, SessionIndex(tmp_path / "sessions.db")) == ["mic"]
    with wave.open(str(w.dir / MIC_RAW_WAV), "rb") as wf:
        assert wf.getnchannels() == 1
        assert wf.getnframes() == 28000  # every sample the OS accepted
    assert "mic_raw_repair_error" not in load_session(w.dir).meta


def test_bench_figures_in_a_simulated_room() -> None:
    from app.bench.echo import run

    report = run(8.0)
    livekit = report["results"][0]
    assert livekit["binding"] == "livekit"
    assert livekit["erle_db"] >= 25.0
    assert livekit["false_barge_ins"] == 0
    assert livekit["barge_in_ms"] is not None and livekit["barge_in_ms"] <= 300
    assert abs(livekit["added_delay_ms"]) <= 10.0  # the processed caller speech vs the raw
