"""The bridge's per-frame hot paths, made cheaper for issue 10, still do what they did.

Each cut is checked against the plain computation it replaced: the append message against
the protocol's own JSON serialisation, the block resampler against the filter computed
output by output, the file port's frames against the padded file, the batched recorder
against the file it must leave; and the loop-lag probe shows up in the bridge summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.audio.fileport import WavFilePort
from app.audio.recorder import BATCH_MS, StereoRecorder
from app.audio.resample import StreamResampler, _design, resample
from app.audio.wavio import read_wav_channels
from app.bridge.stats import BridgeStats
from app.clock import FakeClock
from app.profile import Profile
from app.providers.openai.protocol import OpenAIProtocol
from tests.sdk_oracle import validate_openai_client

RATE = 16000
T0 = 1_000_000_000
FRAME = 320


def test_audio_append_is_the_text_the_generic_serialiser_makes() -> None:
    proto = OpenAIProtocol(Profile(), FakeClock())
    pcm = np.arange(-4800, 4800, 20, dtype=np.int16).tobytes()
    first = proto.audio(pcm)[0]
    other = proto.respond()[0]  # shares the event-id counter
    second = proto.audio(pcm + b"\x01")[0]  # half a sample is dropped
    msg = json.loads(first.text)
    assert first.text == json.dumps(msg, separators=(",", ":"))
    assert list(msg) == ["type", "event_id", "audio"] and first.log is None
    assert first.type == msg["type"] == "input_audio_buffer.append"
    ids = [json.loads(o.text)["event_id"] for o in (first, other, second)]
    tag = ids[0].rsplit("_", 1)[0]
    assert ids == [f"{tag}_1", f"{tag}_2", f"{tag}_3"]
    assert json.loads(second.text)["audio"] == msg["audio"]
    validate_openai_client(first.text)


def _direct(x: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """The polyphase filter output by output (no blocks, no matrices), as floats."""
    up, down, delay_up, bank = _design(in_rate, out_rate)
    taps = bank.shape[1]
    buf = np.concatenate((np.zeros(taps - 1), x.astype(np.float64), np.zeros(taps + down)))
    n_out = round(len(x) * out_rate / in_rate)
    out = np.empty(n_out)
    for j in range(n_out):
        n = j * down + delay_up
        i = n // up
        out[j] = float(np.dot(buf[i : i + taps], bank[n % up]))
    return out


@pytest.mark.parametrize("rates", [(16000, 24000), (24000, 16000), (8000, 24000), (44100, 16000)])
def test_block_resampler_is_the_filter_output_by_output(rates: tuple[int, int]) -> None:
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(4000) * 6000).astype(np.int16)
    want = np.clip(np.rint(_direct(x, *rates)), -32768, 32767).astype(np.int16)
    got = resample(x, *rates)
    assert len(got) == len(want)
    assert np.abs(got.astype(int) - want).max() <= 1  # summation order may differ
    assert np.mean(got != want) < 0.01
    # Streaming in uneven blocks gives the same samples as the whole signal at once.
    rs = StreamResampler(*rates)
    cuts = np.cumsum(rng.integers(0, 700, 20))
    blocks = [rs.process(b) for b in np.split(x, cuts[cuts < len(x)])]
    whole = StreamResampler(*rates).process(x)
    assert np.array_equal(np.concatenate(blocks), whole)


def test_file_port_frames_are_read_only_views_of_the_padded_file() -> None:
    pcm = np.arange(1, 3 * FRAME + 101, dtype=np.int16)
    port = WavFilePort(pcm, RATE)
    port.start(T0)
    frames = port.read(T0 + 10 * 20_000_000)
    assert [f.t_ns for f in frames] == [T0 + (k + 1) * 20_000_000 for k in range(10)]
    padded = np.zeros(4 * FRAME, np.int16)
    padded[: len(pcm)] = pcm
    assert np.array_equal(np.concatenate([f.pcm for f in frames[:4]]), padded)
    assert all(not f.pcm.any() for f in frames[4:])
    with pytest.raises(ValueError):
        frames[0].pcm[0] = 7  # shared with the port: nobody may write into it


def test_recorder_writes_in_batches_and_flush_writes_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "r.wav"
    rec = StereoRecorder(path, RATE, T0)
    per_batch = BATCH_MS // 20
    for k in range(per_batch - 1):
        rec.left(np.full(FRAME, k + 1, np.int16), T0 + k * 20_000_000)
        rec.right(np.full(FRAME, -k - 1, np.int16), T0 + k * 20_000_000)
    assert rec.frames_on_disk == 0  # under one batch: nothing written yet
    k = per_batch - 1
    rec.left(np.full(FRAME, k + 1, np.int16), T0 + k * 20_000_000)
    rec.right(np.full(FRAME, -k - 1, np.int16), T0 + k * 20_000_000)
    assert rec.frames_on_disk == per_batch * FRAME  # one write for the batch
    rec.left(np.full(FRAME, 99, np.int16), T0 + per_batch * 20_000_000)
    rec.right(np.full(FRAME, -99, np.int16), T0 + per_batch * 20_000_000)
    rec.flush()
    assert rec.frames_on_disk == (per_batch + 1) * FRAME
    data, _ = read_wav_channels(path)  # a valid WAV holding every covered frame
    assert data.shape == ((per_batch + 1) * FRAME, 2)
    assert (data[::FRAME, 0] == [*range(1, per_batch + 1), 99]).all()
    assert (data[::FRAME, 1] == [*range(-1, -per_batch - 1, -1), -99]).all()
    rec.close()


def test_bridge_summary_reports_the_longest_loop_stall() -> None:
    stats = BridgeStats()
    stats.loop_lag_ns.extend([100_000] * 199 + [250_000_000])
    lag = stats.summary()["loop_lag"]
    assert lag["count"] == 200 and lag["max_ms"] == 250.0
    assert 0.1 <= lag["p99_ms"] < 250.0
    assert BridgeStats().summary()["loop_lag"] == {"count": 0, "p99_ms": None, "max_ms": None}
