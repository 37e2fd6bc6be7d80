"""WAV files: a tolerant reader for any common PCM/float WAV, a PCM16 writer, and header
repair for files whose writer died.

The RIFF chunks are parsed here because Python's ``wave`` module rejects float and
WAVE_FORMAT_EXTENSIBLE files. Everything is synchronous; files are read whole (probe
WAVs are short). Every failure to read is an :class:`~app.errors.AudioFormatError` with
a one-line message naming the file.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.g711 import alaw_decode, ulaw_decode
from app.audio.pcm import float_to_int16
from app.audio.resample import MAX_RATE, MIN_RATE
from app.errors import AudioFormatError

#: Largest WAV file read (probe WAVs are short; an hour of 48 kHz stereo float is 1.4 GB).
MAX_WAV_BYTES = 1 << 30

_PCM = 0x0001
_FLOAT = 0x0003
_ALAW = 0x0006
_ULAW = 0x0007
_EXTENSIBLE = 0xFFFE

#: Names of compressed format tags, for the error message.
_TAG_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0011: "IMA ADPCM",
    0x0022: "DSP TrueSpeech",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0045: "G.726 ADPCM",
    0x0050: "MPEG audio",
    0x0055: "MP3",
    0x0161: "WMA",
    0x0162: "WMA Pro",
    0x00FF: "AAC",
    0x1610: "AAC (ADTS)",
    0xF1AC: "FLAC",
}


@dataclass(frozen=True, slots=True)
class _Layout:
    tag: int  # effective tag (the subformat for EXTENSIBLE)
    channels: int
    rate: int
    bits: int  # container bits per sample
    block_align: int
    data_offset: int
    data_size: int


def _fail(path: str | Path, message: str) -> AudioFormatError:
    return AudioFormatError(message, path=str(path))


def _load(path: str | Path) -> bytes:
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise _fail(path, "file not found") from None
    except IsADirectoryError:
        raise _fail(path, "is a directory, not a WAV file") from None
    except OSError as exc:
        raise _fail(path, f"cannot read file ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _fail(path, "is a directory, not a WAV file")
        if not stat.S_ISREG(info.st_mode):
            raise _fail(path, "not a regular file (a device, pipe or socket), not a WAV file")
        if info.st_size > MAX_WAV_BYTES:
            raise _fail(path, f"too large ({info.st_size} bytes; at most {MAX_WAV_BYTES})")
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(MAX_WAV_BYTES + 1)
    except OSError as exc:
        raise _fail(path, f"cannot read file ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _parse(path: str | Path, blob: bytes) -> _Layout:
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise _fail(path, "not a WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int, int] | None = None
    data: tuple[int, int] | None = None
    pos = 12
    while pos + 8 <= len(blob):
        cid = blob[pos : pos + 4]
        (size,) = struct.unpack_from("<I", blob, pos + 4)
        body = pos + 8
        if cid == b"fmt ":
            fmt = _parse_fmt(path, blob[body : body + size])
        elif cid == b"data":
            avail = len(blob) - body
            # 0 / 0xFFFFFFFF / too large: a streaming or crashed writer; use the file.
            if size == 0 or size > avail:
                size = avail
            data = (body, size)
            if fmt is not None:
                break
        pos = body + size + (size & 1)
    if fmt is None:
        raise _fail(path, "no fmt chunk")
    if data is None:
        raise _fail(path, "no data chunk")
    tag, channels, rate, bits, block_align = fmt
    return _Layout(tag, channels, rate, bits, block_align, data[0], data[1])


def _parse_fmt(path: str | Path, fmt: bytes) -> tuple[int, int, int, int, int]:
    if len(fmt) < 16:
        raise _fail(path, "fmt chunk too short")
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE:
        if len(fmt) < 40:
            raise _fail(path, "WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
        (tag,) = struct.unpack_from("<H", fmt, 24)  # first two bytes of the subformat GUID
    if tag not in (_PCM, _FLOAT, _ALAW, _ULAW):
        name = _TAG_NAMES.get(tag, "compressed")
        raise _fail(path, f"unsupported WAV encoding: {name} (format tag 0x{tag:04X})")
    if channels == 0:
        raise _fail(path, "WAV header says 0 channels")
    if rate == 0:
        raise _fail(path, "WAV header says 0 Hz sample rate")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise _fail(
            path, f"unsupported sample rate {rate} Hz (voiceprobe reads {MIN_RATE}-{MAX_RATE} Hz)"
        )
    valid = {_PCM: (8, 16, 24, 32), _FLOAT: (32, 64), _ALAW: (8,), _ULAW: (8,)}[tag]
    if bits not in valid:
        raise _fail(path, f"unsupported {bits}-bit samples for format tag 0x{tag:04X}")
    if block_align < channels * bits // 8:
        block_align = channels * bits // 8
    return tag, channels, rate, bits, block_align


def _decode(path: str | Path, blob: bytes, lay: _Layout) -> NDArray[np.int16]:
    frames = lay.data_size // lay.block_align
    if frames == 0:
        raise _fail(path, "WAV file has no audio")
    width = lay.bits // 8
    count = frames * lay.block_align
    raw = np.frombuffer(blob, dtype=np.uint8, count=count, offset=lay.data_offset)
    # (frames, channels, width) bytes, ignoring any padding bytes at the end of a block.
    samples = raw.reshape(frames, lay.block_align)[:, : lay.channels * width]
    samples = samples.reshape(frames, lay.channels, width)
    if lay.tag == _FLOAT:
        dtype = "<f4" if width == 4 else "<f8"
        values = np.ascontiguousarray(samples).view(dtype)[..., 0]
        return float_to_int16(values)
    if lay.tag in (_ALAW, _ULAW):
        decode = alaw_decode if lay.tag == _ALAW else ulaw_decode
        return decode(np.ascontiguousarray(samples).tobytes()).reshape(frames, lay.channels)
    if width == 1:
        return ((samples[..., 0].astype(np.int16) - 128) << 8).astype(np.int16)
    # Integer PCM: the top two bytes are the int16 value (truncating extra precision).
    hi = samples[..., width - 2 : width]
    return np.ascontiguousarray(hi).view("<i2")[..., 0].astype(np.int16)


def read_wav_channels(path: str | Path) -> tuple[NDArray[np.int16], int]:
    """Read a WAV file as int16 with shape ``(frames, channels)`` and return it with its rate.

    Accepts 8-bit unsigned, 16/24/32-bit integer PCM, 32/64-bit float, 8-bit A-law and
    mu-law, plain or WAVE_FORMAT_EXTENSIBLE, any channel count and rate. Wider samples are
    truncated to their top 16 bits; float samples are scaled by 32768 and clipped. A data
    chunk whose size is 0, 0xFFFFFFFF or past the end of the file runs to the end of the
    file (a streaming or crashed writer); a trailing partial frame is dropped.

    Raises:
        AudioFormatError: the file is missing or unreadable, not a regular file (a device
            or pipe), larger than :data:`MAX_WAV_BYTES`, not a RIFF/WAVE file, lacks a fmt
            or data chunk, uses a compressed encoding, declares zero channels or a rate
            outside ``MIN_RATE``..``MAX_RATE`` of :mod:`app.audio.resample`, or holds no
            audio.
    """
    blob = _load(path)
    lay = _parse(path, blob)
    return _decode(path, blob, lay), lay.rate


def read_wav(path: str | Path) -> tuple[NDArray[np.int16], int]:
    """Read a WAV file as mono int16 (channels averaged) and return it with its rate.

    Same formats and errors as :func:`read_wav_channels`.
    """
    data, rate = read_wav_channels(path)
    if data.shape[1] == 1:
        return data[:, 0].copy(), rate
    mono = np.rint(data.astype(np.float64).mean(axis=1))
    return mono.astype(np.int16), rate


def wav_header(channels: int, rate: int, data_bytes: int) -> bytes:
    """Return the 44-byte header of a PCM16 WAV holding ``data_bytes`` of audio."""
    block = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes + (data_bytes & 1),
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        channels,
        rate,
        rate * block,
        block,
        16,
        b"data",
        data_bytes,
    )


def write_wav(path: str | Path, data: NDArray[np.int16], rate: int) -> None:
    """Write int16 audio as a PCM16 WAV: 1-D is mono, 2-D ``(frames, channels)``.

    Raises:
        ValueError: ``data`` has more than two dimensions or zero channels.
    """
    arr = np.asarray(data, dtype=np.int16)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"write_wav expects (frames,) or (frames, channels), got {arr.shape}")
    payload = np.ascontiguousarray(arr, dtype="<i2").tobytes()
    with open(path, "wb") as fh:
        fh.write(wav_header(arr.shape[1], rate, len(payload)))
        fh.write(payload)
        if len(payload) & 1:
            fh.write(b"\0")


def repair_wav_header(path: str | Path) -> bool:
    """Fix the RIFF and data sizes of a PCM16 WAV whose writer died before finalising.

    The data chunk is taken to run to the end of the file (rounded down to whole frames)
    unless a well-formed chunk follows it. The file is modified in place.

    Returns:
        True if a size field was changed.

    Raises:
        AudioFormatError: the file is missing, not a WAV, or has no fmt/data chunk.
    """
    blob = _load(path)
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise _fail(path, "not a WAV file (no RIFF/WAVE header)")
    pos = 12
    block_align = 0
    while pos + 8 <= len(blob):
        cid = blob[pos : pos + 4]
        (size,) = struct.unpack_from("<I", blob, pos + 4)
        body = pos + 8
        if cid == b"fmt " and size >= 16:
            (channels,) = struct.unpack_from("<H", blob, body + 2)
            (block_align,) = struct.unpack_from("<H", blob, body + 12)
            block_align = block_align or channels * 2 or 1
        if cid == b"data":
            if block_align == 0:
                raise _fail(path, "no fmt chunk before the data chunk")
            return _fix_sizes(path, blob, pos, size, block_align)
        pos = body + size + (size & 1)
    raise _fail(path, "no data chunk")


def _fix_sizes(path: str | Path, blob: bytes, pos: int, size: int, block_align: int) -> bool:
    body = pos + 8
    avail = len(blob) - body
    end = body + size + (size & 1)
    followed = size <= avail and _plausible_chunk(blob, end)
    new_size = size if followed else avail - avail % block_align
    new_riff = len(blob) - 8
    changes: list[tuple[int, int]] = []
    if new_size != size:
        changes.append((pos + 4, new_size))
    if struct.unpack_from("<I", blob, 4)[0] != new_riff:
        changes.append((4, new_riff))
    if not changes:
        return False
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset, value in changes:
            os.pwrite(fd, struct.pack("<I", value), offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _plausible_chunk(blob: bytes, pos: int) -> bool:
    if pos + 8 > len(blob):
        return False
    cid = blob[pos : pos + 4]
    (size,) = struct.unpack_from("<I", blob, pos + 4)
    return all(32 <= c < 127 for c in cid) and pos + 8 + size <= len(blob)
