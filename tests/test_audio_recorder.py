"""StereoRecorder: sample alignment on the clock, gaps, padding, valid file after flush."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from app.audio.recorder import StereoRecorder
from app.audio.wavio import read_wav_channels, repair_wav_header

RATE = 16000
T0 = 5_000_000_000
MS = 1_000_000


def ramp(start: int, n: int) -> np.ndarray:
    return (np.arange(start, start + n) % 30000 + 1).astype(np.int16)


def test_channels_are_aligned_to_the_sample(tmp_path: Path) -> None:
    rec = StereoRecorder(tmp_path / "a.wav", RATE, T0)
    # Caller frames from 10 ms after t0, 20 ms each, stamped with their first sample.
    for k in range(50):
        rec.left(ramp(k * 320, 320), T0 + 10 * MS + k * 20 * MS)
    # Agent audio first plays at 123.4375 ms = sample 1975 exactly.
    rec.right(np.full(480, 7, np.int16), T0 + 123_437_500)
    rec.right(np.full(480, 8, np.int16), T0 + 153_437_500)  # contiguous
    assert rec.left_samples == 160 + 50 * 320
    assert rec.right_samples == 1975 + 960
    rec.close()
    data, rate = read_wav_channels(tmp_path / "a.wav")
    assert rate == RATE and data.shape == (160 + 50 * 320, 2)
    assert not data[:160, 0].any()
    assert np.array_equal(data[160:, 0], ramp(0, 50 * 320))
    assert not data[:1975, 1].any()
    assert (data[1975:2455, 1] == 7).all() and (data[2455:2935, 1] == 8).all()
    assert not data[2935:, 1].any()  # padded to the longer channel


def test_small_jitter_stays_contiguous_and_pause_is_zero_filled(tmp_path: Path) -> None:
    rec = StereoRecorder(tmp_path / "b.wav", RATE, T0)
    rec.left(np.zeros(16000, np.int16), T0)
    rec.right(np.full(320, 1, np.int16), T0)
    rec.right(np.full(320, 2, np.int16), T0 + 25 * MS)  # 5 ms late: within a frame
    assert rec.right_samples == 640
    rec.right(np.full(320, 3, np.int16), T0 + 100 * MS)  # 60 ms late: a pause
    assert rec.right_samples == 1600 + 320
    rec.right(np.full(320, 4, np.int16), T0 + 50 * MS)  # early: appended at the cursor
    assert rec.right_samples == 1920 + 320
    rec.close()
    data, _ = read_wav_channels(tmp_path / "b.wav")
    r = data[:, 1]
    assert (r[:320] == 1).all() and (r[320:640] == 2).all()
    assert not r[640:1600].any() and (r[1600:1920] == 3).all() and (r[1920:2240] == 4).all()


def test_audio_before_t0_is_dropped(tmp_path: Path) -> None:
    rec = StereoRecorder(tmp_path / "c.wav", RATE, T0)
    rec.left(ramp(0, 320), T0 - 10 * MS)
    assert rec.left_samples == 160
    rec.close()
    data, _ = read_wav_channels(tmp_path / "c.wav")
    assert np.array_equal(data[:, 0], ramp(160, 160))


def test_audio_before_t0_is_dropped_from_every_write(tmp_path: Path) -> None:
    """Frames stamped before t0 (a Twilio stream's caller audio that arrived before the
    session began) are dropped wherever they come, not only from the first write: they
    used to be appended from sample 0 on, and everything after ran that late."""
    rec = StereoRecorder(tmp_path / "d.wav", RATE, T0)
    for k in range(5):  # 100 ms of frames from 90 ms before t0: the last 10 ms is kept
        rec.left(ramp(k * 320, 320), T0 - 90 * MS + k * 20 * MS)
    rec.left(ramp(1600, 320), T0 + 10 * MS)
    rec.right(np.full(320, 9, np.int16), T0 - 20 * MS)  # wholly before t0: not anchored
    rec.right(np.full(320, 7, np.int16), T0 + 40 * MS)
    assert rec.left_samples == 160 + 320 and rec.right_samples == 640 + 320
    rec.close()
    data, _ = read_wav_channels(tmp_path / "d.wav")
    assert np.array_equal(data[:480, 0], ramp(1440, 480))  # sample k is at T0 + k / RATE
    assert not data[:640, 1].any() and (data[640:960, 1] == 7).all()


def test_file_is_valid_after_flush_and_repairable_after_crash(tmp_path: Path) -> None:
    path = tmp_path / "d.wav"
    rec = StereoRecorder(path, RATE, T0)
    for k in range(150):  # 3 s on both channels
        rec.left(ramp(k * 320, 320), T0 + k * 20 * MS)
        rec.right(np.full(320, k, np.int16), T0 + k * 20 * MS)
    assert rec.frames_on_disk == 150 * 320
    rec.flush()
    data, _ = read_wav_channels(path)
    assert data.shape == (150 * 320, 2)
    # Sizes are refreshed at least once per second of audio even without flush.
    for k in range(150, 190):
        rec.left(ramp(k * 320, 320), T0 + k * 20 * MS)
        rec.right(np.full(320, k, np.int16), T0 + k * 20 * MS)
    rec._fh.flush()  # the OS has the bytes; simulate a crash by copying the file now
    crashed = tmp_path / "crashed.wav"
    shutil.copy(path, crashed)
    assert repair_wav_header(crashed) is True
    data, _ = read_wav_channels(crashed)
    assert data.shape == (190 * 320, 2)
    assert (data[189 * 320 :, 1] == 189).all()
    rec.close()
    rec.close()  # idempotent


def test_one_silent_channel_is_padded_on_close(tmp_path: Path) -> None:
    rec = StereoRecorder(tmp_path / "e.wav", RATE, T0)
    rec.left(ramp(0, 3200), T0)
    assert rec.frames_on_disk == 0  # waits for the agent channel
    rec.close()
    data, _ = read_wav_channels(tmp_path / "e.wav")
    assert data.shape == (3200, 2) and not data[:, 1].any()
