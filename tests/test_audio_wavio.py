"""WAV reader/writer: every common format round-trips, every bad file is an AudioFormatError."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from app.audio.g711 import alaw_encode, ulaw_encode
from app.audio.wavio import read_wav, read_wav_channels, repair_wav_header, write_wav
from app.errors import AudioFormatError

SUBFORMAT_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def fmt_chunk(tag: int, channels: int, rate: int, bits: int, extensible: bool = False) -> bytes:
    block = channels * bits // 8
    base = struct.pack(
        "<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * block, block, bits
    )
    if extensible:
        base += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + SUBFORMAT_TAIL
    return base


def chunk(cid: bytes, body: bytes, size: int | None = None) -> bytes:
    n = len(body) if size is None else size
    return cid + struct.pack("<I", n) + body + (b"\0" if len(body) & 1 else b"")


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make(tmp_path: Path, blob: bytes, name: str = "x.wav") -> Path:
    p = tmp_path / name
    p.write_bytes(blob)
    return p


# A stereo reference signal in int16, and the same encoded in each format.
REF = np.stack([np.arange(-1000, 1000, 10), np.arange(1000, -1000, -10)], axis=1).astype(np.int16)
REF *= 16  # use the upper bits too


def encoded(kind: str) -> tuple[int, int, bytes, np.ndarray]:
    """Return (tag, bits, payload, expected int16 (frames, ch)) for a format."""
    x = REF.astype(np.int64)
    if kind == "u8":
        return 1, 8, ((x >> 8) + 128).astype(np.uint8).tobytes(), ((x >> 8) << 8)
    if kind == "s16":
        return 1, 16, x.astype("<i2").tobytes(), x
    if kind == "s24":
        v = (x << 8) + 0x7F
        b = v.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        return 1, 24, b, x
    if kind == "s32":
        return 1, 32, ((x << 16) + 0x1234).astype("<i4").tobytes(), x
    if kind == "f32":
        return 3, 32, (x / 32768.0).astype("<f4").tobytes(), x
    if kind == "f64":
        return 3, 64, (x / 32768.0).astype("<f8").tobytes(), x
    raise AssertionError(kind)


@pytest.mark.parametrize("extensible", [False, True])
@pytest.mark.parametrize("kind", ["u8", "s16", "s24", "s32", "f32", "f64"])
def test_formats_round_trip(tmp_path: Path, kind: str, extensible: bool) -> None:
    tag, bits, payload, expected = encoded(kind)
    p = make(
        tmp_path,
        riff(chunk(b"fmt ", fmt_chunk(tag, 2, 44100, bits, extensible)), chunk(b"data", payload)),
    )
    data, rate = read_wav_channels(p)
    assert rate == 44100 and data.dtype == np.int16 and data.shape == REF.shape
    assert np.array_equal(data, expected.astype(np.int16))
    mono, rate = read_wav(p)
    assert mono.shape == (len(REF),)
    assert np.abs(mono - expected.mean(axis=1)).max() <= 0.5


@pytest.mark.parametrize(("tag", "encode"), [(6, alaw_encode), (7, ulaw_encode)])
def test_g711_wav(tmp_path: Path, tag: int, encode) -> None:
    x = REF[:, 0].copy()
    p = make(tmp_path, riff(chunk(b"fmt ", fmt_chunk(tag, 1, 8000, 8)), chunk(b"data", encode(x))))
    data, rate = read_wav(p)
    assert rate == 8000 and len(data) == len(x)
    assert np.abs(data.astype(int) - x).max() < 600


def test_many_channels_odd_chunks_and_partial_frame(tmp_path: Path) -> None:
    x = np.arange(6 * 5, dtype=np.int16).reshape(5, 6)
    junk = chunk(b"junk", b"abc")  # odd size, padded
    blob = riff(
        chunk(b"fmt ", fmt_chunk(1, 6, 96000, 16)),
        junk,
        chunk(b"data", x.astype("<i2").tobytes() + b"\x01\x02\x03"),
    )
    data, rate = read_wav_channels(make(tmp_path, blob))
    assert rate == 96000 and np.array_equal(data, x)


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF, 10**6])
def test_crashed_writer_data_size(tmp_path: Path, declared: int) -> None:
    x = np.arange(100, dtype=np.int16)
    blob = riff(
        chunk(b"fmt ", fmt_chunk(1, 1, 16000, 16)),
        chunk(b"data", x.astype("<i2").tobytes(), size=declared),
    )
    data, _ = read_wav(make(tmp_path, blob))
    assert np.array_equal(data, x)


def test_write_wav_mono_and_stereo(tmp_path: Path) -> None:
    write_wav(tmp_path / "m.wav", REF[:, 0], 16000)
    data, rate = read_wav_channels(tmp_path / "m.wav")
    assert rate == 16000 and np.array_equal(data[:, 0], REF[:, 0])
    write_wav(tmp_path / "s.wav", REF, 24000)
    data, rate = read_wav_channels(tmp_path / "s.wav")
    assert rate == 24000 and np.array_equal(data, REF)
    import wave

    with wave.open(str(tmp_path / "s.wav")) as w:  # the stdlib agrees with our header
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (2, 24000, len(REF))


def test_repair_wav_header(tmp_path: Path) -> None:
    p = tmp_path / "crash.wav"
    write_wav(p, REF, 16000)
    good = p.read_bytes()
    assert repair_wav_header(p) is False
    broken = bytearray(good)
    broken[4:8] = struct.pack("<I", 36)
    broken[40:44] = struct.pack("<I", 0)
    p.write_bytes(bytes(broken) + b"\x07")  # plus half a frame from a dying writer
    assert repair_wav_header(p) is True
    data, _ = read_wav_channels(p)
    assert np.array_equal(data, REF)
    import wave

    with wave.open(str(p)) as w:
        assert w.getnframes() == len(REF)
    assert repair_wav_header(p) is False


def test_repair_keeps_chunk_after_data(tmp_path: Path) -> None:
    blob = riff(
        chunk(b"fmt ", fmt_chunk(1, 1, 8000, 16)),
        chunk(b"data", b"\0\0" * 4),
        chunk(b"LIST", b"info"),
    )
    p = make(tmp_path, blob)
    assert repair_wav_header(p) is False


BAD_CASES = {
    "not_riff": b"OggS" + b"\0" * 40,
    "short": b"RIF",
    "riff_not_wave": b"RIFF\x04\0\0\0AVI ",
    "no_fmt": riff(chunk(b"data", b"\0\0" * 10)),
    "no_data": riff(chunk(b"fmt ", fmt_chunk(1, 1, 8000, 16))),
    "adpcm": riff(chunk(b"fmt ", fmt_chunk(2, 1, 8000, 4)), chunk(b"data", b"\0" * 10)),
    "mp3": riff(chunk(b"fmt ", fmt_chunk(0x55, 2, 44100, 0)), chunk(b"data", b"\0" * 10)),
    "ext_adpcm": riff(chunk(b"fmt ", fmt_chunk(0x11, 1, 8000, 4, True)), chunk(b"data", b"\0")),
    "zero_channels": riff(chunk(b"fmt ", fmt_chunk(1, 0, 8000, 16)), chunk(b"data", b"\0" * 4)),
    "zero_rate": riff(chunk(b"fmt ", fmt_chunk(1, 1, 0, 16)), chunk(b"data", b"\0" * 4)),
    "empty_audio": riff(chunk(b"fmt ", fmt_chunk(1, 1, 8000, 16)), chunk(b"data", b"")),
    "short_fmt": riff(chunk(b"fmt ", b"\x01\0\x01\0"), chunk(b"data", b"\0" * 4)),
    "bad_bits": riff(chunk(b"fmt ", fmt_chunk(1, 1, 8000, 12)), chunk(b"data", b"\0" * 4)),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_files_raise_audio_format_error(tmp_path: Path, case: str) -> None:
    p = make(tmp_path, BAD_CASES[case], f"{case}.wav")
    with pytest.raises(AudioFormatError) as info:
        read_wav(p)
    message = str(info.value)
    assert "\n" not in message and str(p) in message
    if case == "adpcm":
        assert "ADPCM" in message and "0x0002" in message
    if case == "mp3":
        assert "MP3" in message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for p in (tmp_path / "nope.wav", tmp_path):
        with pytest.raises(AudioFormatError) as info:
            read_wav(p)
        assert str(p) in str(info.value)
    with pytest.raises(AudioFormatError):
        repair_wav_header(tmp_path / "nope.wav")


def test_espeak_streamed_header_is_read(tmp_path: Path) -> None:
    import subprocess

    out = subprocess.run(["espeak-ng", "--stdout", "hi"], capture_output=True, check=True)
    data, rate = read_wav(make(tmp_path, out.stdout))
    assert rate == 22050 and len(data) > 2000
