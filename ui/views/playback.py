"""Replaying a stored call's stereo recording (``audio.wav``: left caller, right agent).

:class:`WavPlayer` plays through sounddevice on the default output (PySide6-Essentials has
no QtMultimedia), from any sample, and says where playback is from the output stream's
own clock: the callback notes which sample it handed over and when PortAudio says that
block reaches the DAC, so :attr:`WavPlayer.position_s` is the sample being heard now, not
a timer's guess. :func:`turn_start_s` places a turn on the recording (its first span's
stamp relative to the recording's ``audio_t0_ns``), which is where "play from this turn"
seeks to. :func:`compare_figures` gives two calls' figures side by side with their deltas
(B - A), for the history's compare window.
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import AudioDeviceError
from app.metrics.percentile import percentile
from app.metrics.records import TurnRecord


def turn_start_s(turn: TurnRecord, audio_t0_ns: int) -> float | None:
    """Seconds into the recording of ``turn``'s first stamp (its caller speech, else its
    earliest span), or ``None`` when it has no stamp."""
    speech = turn.spans.get("user_speech")
    if speech is not None and speech.start_ns is not None:
        start: int | None = speech.start_ns
    else:
        starts = [s.start_ns for s in turn.spans.values() if s.start_ns is not None]
        start = min(starts) if starts else None
    return None if start is None else max(0.0, (start - audio_t0_ns) / 1e9)


class WavPlayer:
    """Plays a WAV file through the default output device (sounddevice) and knows where it
    is.

    Main thread, except :meth:`_fill`, which runs on PortAudio's callback thread and only
    copies samples and writes two numbers into a preallocated array (no allocation of its
    own, no lock, no Qt).
    """

    def __init__(self) -> None:
        self._data: np.ndarray | None = None
        self._rate = 0
        self._pos = 0  # frames handed to the device (written by the callback only)
        # [first frame of the last block handed over, its DAC time on the stream clock]
        self._block = np.zeros(2, dtype=np.float64)
        self._start = 0
        self._stream: Any = None

    @staticmethod
    def load(path: Path) -> tuple[np.ndarray, int]:
        """Read a PCM16 WAV as ``(frames × channels int16, rate)``.

        Raises:
            AudioDeviceError: unreadable or not 16-bit PCM.
        """
        try:
            with wave.open(str(path), "rb") as w:
                if w.getsampwidth() != 2:
                    raise AudioDeviceError(f"{path.name} is not 16-bit PCM")
                data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
                return data.reshape(-1, w.getnchannels()), w.getframerate()
        except (OSError, EOFError, wave.Error) as exc:
            raise AudioDeviceError(f"cannot read {path.name} ({exc})") from None

    def play(self, path: Path, start_s: float = 0.0) -> float:
        """Start playing ``path`` from ``start_s`` seconds; returns its duration in seconds.

        Raises:
            AudioDeviceError: unreadable file, or no usable output device.
        """
        self.stop()
        data, rate = self.load(path)
        start = min(len(data), max(0, round(start_s * rate)))
        self._data, self._rate, self._pos, self._start = data, rate, start, start
        self._block[:] = (start, -1.0)
        try:
            import sounddevice as sd

            self._stream = sd.OutputStream(
                samplerate=rate, channels=data.shape[1], dtype="int16", callback=self._fill
            )
            self._stream.start()
        except Exception as exc:  # PortAudioError, or OSError without PortAudio
            self._stream = None
            raise AudioDeviceError(f"cannot play audio ({exc})") from None
        return len(data) / rate

    def _fill(self, outdata: Any, frames: int, time: Any, _status: Any) -> None:
        """PortAudio callback: copy the next frames, silence after the end."""
        data = self._data
        pos = self._pos
        n = 0 if data is None else max(0, min(frames, len(data) - pos))
        if n:
            outdata[:n] = data[pos : pos + n]  # type: ignore[index]
        outdata[n:] = 0
        self._block[0] = pos
        self._block[1] = time.outputBufferDacTime
        self._pos = pos + n

    @property
    def playing(self) -> bool:
        """True while the recording is playing (not stopped, not played to its end)."""
        return self._stream is not None and self._data is not None and not self.finished

    @property
    def finished(self) -> bool:
        """True once every frame has been handed to the device."""
        return self._data is not None and self._pos >= len(self._data)

    @property
    def handed_s(self) -> float:
        """How far the samples handed to the device reach, in seconds."""
        return self._pos / self._rate if self._rate else 0.0

    @property
    def position_s(self) -> float:
        """The sample being heard now, in seconds from the recording's start: the last
        block handed over, advanced by the stream clock since its DAC time (never past
        what was handed over, never before where playback started)."""
        if not self._rate:
            return 0.0
        first, dac = float(self._block[0]), float(self._block[1])
        stream, handed = self._stream, self._pos
        if stream is None or dac < 0:
            return (handed if stream is None else self._start) / self._rate
        try:
            now = float(stream.time)
        except Exception:  # the stream closed between the check and the read
            return handed / self._rate
        if dac > 0:
            heard = first + (now - dac) * self._rate
        else:  # a host API with no DAC time: what was handed over, less the latency
            heard = handed - float(stream.latency) * self._rate
        return min(float(handed), max(float(self._start), heard)) / self._rate

    def stop(self) -> None:
        """Stop and close the stream (idempotent); the position is kept."""
        at = self.position_s
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # the device vanished while playing: nothing to recover
                pass
            self._pos = min(self._pos, round(at * self._rate))


#: The figures compared between two calls: (label, span, percentile or None for a count).
COMPARED: tuple[tuple[str, str | None, float | None], ...] = (
    ("turns", None, None),
    ("voice-to-voice p50 (ms)", "voice_to_voice", 50.0),
    ("voice-to-voice p95 (ms)", "voice_to_voice", 95.0),
    ("time to first byte p50 (ms)", "ttfb", 50.0),
    ("agent speech p50 (ms)", "agent_speech", 50.0),
)


def compare_figures(a: Sequence[TurnRecord], b: Sequence[TurnRecord]) -> list[dict[str, Any]]:
    """The figures of :data:`COMPARED` for two calls' turns, with the delta B - A.

    Returns:
        ``{"figure", "a", "b", "delta"}`` per figure (``None`` where a call has no value);
        then one ``voice-to-voice turn N (ms)`` row per turn number either call has.
    """

    def figure(turns: Sequence[TurnRecord], span: str | None, q: float | None) -> float | None:
        if span is None or q is None:
            return float(len(turns))
        return percentile([t.spans[span].ms for t in turns if span in t.spans], q)

    rows = []
    for label, span, q in COMPARED:
        va, vb = figure(a, span, q), figure(b, span, q)
        rows.append({"figure": label, "a": va, "b": vb, "delta": _delta(va, vb)})
    for k in range(max(len(a), len(b))):
        va = _span_ms(a[k], "voice_to_voice") if k < len(a) else None
        vb = _span_ms(b[k], "voice_to_voice") if k < len(b) else None
        rows.append(
            {
                "figure": f"voice-to-voice turn {k + 1} (ms)",
                "a": va,
                "b": vb,
                "delta": _delta(va, vb),
            }
        )
    return rows


def _span_ms(turn: TurnRecord, span: str) -> float | None:
    s = turn.spans.get(span)
    return None if s is None else float(s.ms)


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def figure_text(value: float | None, signed: bool = False) -> str:
    """A compared figure as shown: ``-`` when missing, whole numbers, ``+`` on deltas."""
    if value is None:
        return "-"
    return f"{value:+.0f}" if signed else f"{value:.0f}"


def current_row(stamps: Sequence[int | None], now_ns: int) -> int | None:
    """The last row whose stamp is at or before ``now_ns`` (rows in time order; a row
    without a stamp is skipped), or ``None`` before the first."""
    found = None
    for row, t in enumerate(stamps):
        if t is not None and t <= now_ns:
            found = row
    return found
