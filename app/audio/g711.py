"""G.711 mu-law and A-law codecs by table lookup.

Bit-exact with the standard library's ``audioop`` (``lin2ulaw``/``ulaw2lin``/``lin2alaw``/
``alaw2lin`` at width 2), which is deprecated and gone in Python 3.13: the tables are
built at import with numpy from the same Sun reference algorithm ``audioop`` uses
(16-bit input is shifted to 14 bits for mu-law and 13 bits for A-law, arithmetic shift).
Encoding and decoding are one vectorised lookup each; pure and thread-safe.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_QUANT_MASK = 0x0F
_SEG_MASK = 0x70
_SEG_SHIFT = 4
_SIGN_BIT = 0x80
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _all_samples() -> NDArray[np.int64]:
    """Every int16 value, ordered by its uint16 bit pattern (the lookup index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int64)


def _build_ulaw_encode() -> NDArray[np.uint8]:
    pcm = _all_samples() >> 2  # 14-bit
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, mag, side="left")  # first i with mag <= end[i]
    code = (seg << 4) | ((mag >> (seg + 1)) & _QUANT_MASK)
    code = np.where(seg >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_ulaw_decode() -> NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int64) & 0xFF
    t = (((u & _QUANT_MASK) << 3) + _ULAW_BIAS) << ((u & _SEG_MASK) >> _SEG_SHIFT)
    return np.where(u & _SIGN_BIT, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode() -> NDArray[np.uint8]:
    pcm = _all_samples() >> 3  # 13-bit
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_SEG_AEND, mag, side="left")
    quant = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & _QUANT_MASK
    code = np.where(seg >= 8, 0x7F, (seg << _SEG_SHIFT) | quant)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_alaw_decode() -> NDArray[np.int16]:
    a = np.arange(256, dtype=np.int64) ^ 0x55
    t = (a & _QUANT_MASK) << 4
    seg = (a & _SEG_MASK) >> _SEG_SHIFT
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & _SIGN_BIT, t, -t).astype(np.int16)


#: Lookup tables: encoders are indexed by the sample's uint16 bit pattern, decoders by code.
ULAW_ENCODE = _build_ulaw_encode()
ULAW_DECODE = _build_ulaw_decode()
ALAW_ENCODE = _build_alaw_encode()
ALAW_DECODE = _build_alaw_decode()
for _table in (ULAW_ENCODE, ULAW_DECODE, ALAW_ENCODE, ALAW_DECODE):
    _table.setflags(write=False)


def _index(a: NDArray[np.int16]) -> NDArray[np.uint16]:
    return np.ascontiguousarray(a, dtype=np.int16).view(np.uint16)


def ulaw_encode(a: NDArray[np.int16]) -> bytes:
    """Encode int16 samples as G.711 mu-law, one byte per sample."""
    return ULAW_ENCODE[_index(a)].tobytes()


def ulaw_decode(b: bytes | bytearray | memoryview) -> NDArray[np.int16]:
    """Decode G.711 mu-law bytes into a new int16 array."""
    return ULAW_DECODE[np.frombuffer(b, dtype=np.uint8)]


def alaw_encode(a: NDArray[np.int16]) -> bytes:
    """Encode int16 samples as G.711 A-law, one byte per sample."""
    return ALAW_ENCODE[_index(a)].tobytes()


def alaw_decode(b: bytes | bytearray | memoryview) -> NDArray[np.int16]:
    """Decode G.711 A-law bytes into a new int16 array."""
    return ALAW_DECODE[np.frombuffer(b, dtype=np.uint8)]
