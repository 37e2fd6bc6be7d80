"""Acoustic echo cancellation (and optional noise suppression and gain) on the mic path.

:class:`EchoCanceller` wraps WebRTC's audio processing module (AEC3) as shipped in the
``livekit`` SDK (``livekit.rtc.AudioProcessingModule``), chosen by measurement against
``pywebrtc-audio`` (docs/audio.md). It is synchronous and has one owner thread (the
bridge's, in ``DevicePort.read``); it must never run inside a PortAudio callback (each
10 ms block is a call into the native library through livekit's FFI, tens of µs).

Contract:
    * :meth:`EchoCanceller.far` takes the far-end reference: exactly the samples that
      went to the output device, in output order, silence included, at :attr:`rate`.
    * :meth:`EchoCanceller.near` takes captured mic samples at :attr:`rate` and returns
      as many processed samples as it completed (whole 10 ms blocks); the rest waits for
      the next call. A caller that hands over whole 20 ms frames gets them back at once:
      the processing adds no buffering delay.
    * Feed the reference up to "now" before the capture of the same period: the echo of
      a played sample always reaches the mic later than the sample reaches ``far``.

The processor runs at the port rate (16 kHz by default, any of :data:`APM_RATES`): the
agent hears that rate anyway, one rate serves both directions whatever the two devices
run at, and it costs a third of the 48 kHz CPU (docs/audio.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.errors import VoiceprobeError

#: Rates WebRTC's processing module accepts.
APM_RATES = (8000, 16000, 32000, 48000)
#: The module's block length.
APM_BLOCK_MS = 10
#: The module's delay hint is clamped to this range (WebRTC's own limits).
MAX_STREAM_DELAY_MS = 500


@dataclass(frozen=True, slots=True)
class AudioProcessing:
    """What runs on the mic path in mic mode (the profile's ``audio_processing`` section).

    Attributes:
        aec: cancel the echo of what we play (on by default).
        noise_suppression: WebRTC noise suppression.
        auto_gain: WebRTC automatic gain control.
    """

    aec: bool = True
    noise_suppression: bool = False
    auto_gain: bool = False

    @property
    def active(self) -> bool:
        """True when at least one stage runs."""
        return self.aec or self.noise_suppression or self.auto_gain

    def describe(self) -> str:
        """Short text naming the stages that run (``"echo cancellation + noise
        suppression"``), or ``"off"``."""
        names = [
            name
            for on, name in (
                (self.aec, "echo cancellation"),
                (self.noise_suppression, "noise suppression"),
                (self.auto_gain, "automatic gain"),
            )
            if on
        ]
        return " + ".join(names) or "off"


class ProcessingUnavailable(VoiceprobeError):
    """The processor cannot start here (library missing, unsupported rate); the message
    says why in one line. The caller falls back to half duplex and says so."""


def _rtc() -> Any:
    try:
        from livekit import rtc
    except Exception as exc:  # noqa: BLE001 - ImportError, or its native library failing
        raise ProcessingUnavailable(
            f"echo cancellation is unavailable: the livekit package cannot load ({exc})"
        ) from None
    return rtc


class EchoCanceller:
    """WebRTC audio processing over one mono stream at ``rate``.

    Args:
        config: which stages run.
        rate: sample rate of both directions (one of :data:`APM_RATES`).
        stream_delay_ms: the device round trip (output latency + input latency), given
            to the module as its delay hint; AEC3 still estimates the true delay itself.

    Raises:
        ProcessingUnavailable: the binding cannot load or the rate is not supported.
    """

    def __init__(self, config: AudioProcessing, rate: int, stream_delay_ms: float = 0.0) -> None:
        if rate not in APM_RATES:
            rates = ", ".join(str(r) for r in APM_RATES)
            raise ProcessingUnavailable(
                f"echo cancellation needs one of {rates} Hz, not {rate} Hz"
            )
        rtc = _rtc()
        self.config = config
        self.rate = rate
        self.block = rate * APM_BLOCK_MS // 1000
        self._rtc = rtc
        try:
            self._apm = rtc.AudioProcessingModule(
                echo_cancellation=config.aec,
                noise_suppression=config.noise_suppression,
                high_pass_filter=config.aec or config.noise_suppression,
                auto_gain_control=config.auto_gain,
            )
        except Exception as exc:  # noqa: BLE001 - the native side refused: say why
            raise ProcessingUnavailable(
                f"echo cancellation is unavailable: the processing module did not start ({exc})"
            ) from None
        self.delay_ms = int(min(max(stream_delay_ms, 0.0), MAX_STREAM_DELAY_MS))
        self._far = np.zeros(0, dtype=np.int16)
        self._near = np.zeros(0, dtype=np.int16)
        #: 10 ms blocks processed in each direction.
        self.far_blocks = 0
        self.near_blocks = 0

    def set_stream_delay_ms(self, delay_ms: float) -> None:
        """Update the delay hint (a device whose latency changed)."""
        self.delay_ms = int(min(max(delay_ms, 0.0), MAX_STREAM_DELAY_MS))

    def _frame(self, block: NDArray[np.int16]) -> Any:
        return self._rtc.AudioFrame(bytearray(block.tobytes()), self.rate, 1, self.block)

    def far(self, pcm: NDArray[np.int16]) -> None:
        """Feed far-end reference samples (what was played), in output order."""
        if not self.config.aec:
            return
        x = np.concatenate((self._far, pcm)) if len(self._far) else np.asarray(pcm, np.int16)
        n = len(x) // self.block * self.block
        for i in range(0, n, self.block):
            self._apm.process_reverse_stream(self._frame(x[i : i + self.block]))
            self.far_blocks += 1
        self._far = x[n:].copy()

    def near(self, pcm: NDArray[np.int16]) -> NDArray[np.int16]:
        """Process captured samples; returns the processed whole blocks (possibly none).

        Raises:
            RuntimeError: the native module rejected a block (not expected at a
                supported rate).
        """
        x = np.concatenate((self._near, pcm)) if len(self._near) else np.asarray(pcm, np.int16)
        n = len(x) // self.block * self.block
        out = np.empty(n, dtype=np.int16)
        for i in range(0, n, self.block):
            frame = self._frame(x[i : i + self.block])
            if self.config.aec:
                self._apm.set_stream_delay_ms(self.delay_ms)
            self._apm.process_stream(frame)
            out[i : i + self.block] = np.frombuffer(frame._data, dtype=np.int16)  # in place
            self.near_blocks += 1
        self._near = x[n:].copy()
        return out
