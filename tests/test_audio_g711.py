"""G.711 tables are bit-exact with the stdlib audioop for every input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from app.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from app.audio.pcm import int16_to_bytes

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def test_ulaw_encode_all_65536_samples() -> None:
    assert ulaw_encode(ALL_SAMPLES) == audioop.lin2ulaw(int16_to_bytes(ALL_SAMPLES), 2)


def test_alaw_encode_all_65536_samples() -> None:
    assert alaw_encode(ALL_SAMPLES) == audioop.lin2alaw(int16_to_bytes(ALL_SAMPLES), 2)


def test_ulaw_decode_all_256_codes() -> None:
    assert int16_to_bytes(ulaw_decode(ALL_CODES)) == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_all_256_codes() -> None:
    assert int16_to_bytes(alaw_decode(ALL_CODES)) == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_round_trip_is_close_and_types(encode, decode) -> None:
    x = (np.sin(np.arange(800) / 7) * 20000).astype(np.int16)
    coded = encode(x)
    assert isinstance(coded, bytes) and len(coded) == len(x)
    y = decode(coded)
    assert y.dtype == np.int16 and len(y) == len(x)
    # G.711 keeps about 38 dB SNR on a loud sine.
    err = y.astype(np.float64) - x
    assert 10 * np.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(err**2)) > 30


def test_non_contiguous_input() -> None:
    x = ALL_SAMPLES[::3]
    assert ulaw_encode(x) == audioop.lin2ulaw(int16_to_bytes(x), 2)
