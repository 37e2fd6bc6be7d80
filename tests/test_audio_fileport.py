"""WavFilePort: nominal frame stamps, pacing, exhaustion, lockstep sink times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.audio.fileport import WavFilePort
from app.audio.wavio import write_wav
from app.errors import AudioFormatError

MS = 1_000_000
T0 = 1_000 * MS


def test_frames_are_released_on_nominal_times() -> None:
    pcm = np.arange(16000 // 10, dtype=np.int16)  # 100 ms = 5 frames at 16 kHz
    port = WavFilePort(pcm, 16000)
    assert port.read(T0) == []  # before start
    assert port.next_due_ns() is None
    port.start(T0)
    assert port.next_due_ns() == T0 + 20 * MS
    assert port.read(T0 + 19 * MS) == []
    frames = port.read(T0 + 47 * MS)  # frames ending at 20 and 40 ms; read late
    assert [f.t_ns for f in frames] == [T0 + 20 * MS, T0 + 40 * MS]
    assert port.next_due_ns() == T0 + 60 * MS
    assert np.array_equal(frames[0].pcm, pcm[:320]) and np.array_equal(frames[1].pcm, pcm[320:640])
    assert not port.exhausted
    frames = port.read(T0 + 100 * MS)
    assert [f.t_ns for f in frames] == [T0 + 60 * MS, T0 + 80 * MS, T0 + 100 * MS]
    assert port.exhausted
    silent = port.read(T0 + 140 * MS)
    assert len(silent) == 2 and not any(f.pcm.any() for f in silent)
    assert all(len(f.pcm) == port.frame_samples == 320 for f in silent)
    port.stop()
    port.stop()
    assert port.read(T0 + 1000 * MS) == []
    assert port.next_due_ns() is None


def test_partial_last_frame_is_zero_padded() -> None:
    port = WavFilePort(np.ones(100, np.int16), 8000)
    port.start(0)
    (frame,) = port.read(20 * MS)
    assert len(frame.pcm) == 160 and frame.pcm[:100].all() and not frame.pcm[100:].any()
    assert port.exhausted


def test_lockstep_sink_times_and_record() -> None:
    port = WavFilePort(np.zeros(16000, np.int16), 16000)
    port.start(T0)
    agent = [np.full(320, k, np.int16) for k in range(3)]
    for k in range(3):
        (frame,) = port.read(T0 + (k + 1) * 20 * MS + 3 * MS)  # the loop wakes 3 ms late
        play_at = port.write(agent[k], T0 + (k + 1) * 20 * MS + 4 * MS)
        assert play_at == frame.t_ns == T0 + (k + 1) * 20 * MS
    # A second write before the next read queues after the first.
    assert port.write(agent[0], T0 + 70 * MS) == T0 + 80 * MS
    assert np.array_equal(port.played(), np.concatenate(agent + [agent[0]]))


def test_from_wav_resamples(tmp_path: Path) -> None:
    tone = (np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000) * 8000).astype(np.int16)
    stereo = np.stack([tone, tone], axis=1)
    write_wav(tmp_path / "in.wav", stereo, 48000)
    port = WavFilePort.from_wav(tmp_path / "in.wav", rate=16000)
    assert port.rate == 16000 and port.duration_ns == 1_000_000_000
    port.start(0)
    frames = port.read(1000 * MS)
    assert len(frames) == 50 and port.exhausted
    level = np.sqrt(np.mean(np.concatenate([f.pcm for f in frames[5:45]]).astype(float) ** 2))
    assert abs(level - 8000 / np.sqrt(2)) < 100


def test_from_wav_bad_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFormatError):
        WavFilePort.from_wav(tmp_path / "missing.wav")
