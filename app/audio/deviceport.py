"""Real audio devices (PortAudio via sounddevice) as the caller port.

Capture and playback run as two separate streams (``InputStream`` and ``OutputStream``)
at the device's own rate, usually 48 kHz: a full-duplex stream at 16/24 kHz fails through
the ALSA pulse plugin. The PortAudio callbacks only copy samples into preallocated
:class:`~app.audio.ringbuffer.RingBuffer` objects and count xruns; resampling to the
port rate (16 kHz), framing and stamping happen in :meth:`DevicePort.read` and
:meth:`DevicePort.write` on the bridge's thread.

``sounddevice`` is imported lazily: PortAudio scans the devices when it is imported, so a
process that starts a sound server later must call :func:`rescan_devices`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.port import CallerFrame, CallerPort
from app.audio.resample import SUPPORTED_RATES, StreamResampler
from app.audio.ringbuffer import RingBuffer
from app.errors import AudioDeviceError

#: Device rates tried, in order, after the device's own default rate.
PREFERRED_RATES = (48000, 16000, 24000, 8000)
#: Callback block length.
BLOCK_MS = 10
#: Capture ring length (how long the bridge may stall before samples are dropped).
INPUT_BUFFER_MS = 2000
#: Playback ring length (agent audio may arrive much faster than real time).
OUTPUT_BUFFER_MS = 120_000
#: Half duplex keeps the mic closed this long after the last agent sample plays (room echo).
HALF_DUPLEX_TAIL_MS = 150


def _sd() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise AudioDeviceError(f"PortAudio is not available ({exc})") from None
    return sounddevice


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One PortAudio device.

    Attributes:
        index: PortAudio device index (changes when devices are rescanned).
        name: device name (stable; what the UI stores).
        host_api: host API name (ALSA, PulseAudio, Core Audio, WASAPI…).
        max_input_channels / max_output_channels: 0 when the device cannot capture/play.
        default_samplerate: the device's default rate (Hz).
        is_default_input / is_default_output: the system default devices.
    """

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool = False
    is_default_output: bool = False


def rescan_devices() -> None:
    """Re-initialise PortAudio so devices that appeared since import become visible.

    Must not be called while any stream is open.
    """
    sd = _sd()
    sd._terminate()
    sd._initialize()


def list_devices() -> list[DeviceInfo]:
    """Every PortAudio device, with its host API and default flags.

    Raises:
        AudioDeviceError: PortAudio is missing or cannot enumerate devices.
    """
    sd = _sd()
    try:
        devices = sd.query_devices()
        apis = sd.query_hostapis()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices ({exc})") from None
    out = []
    for i, d in enumerate(devices):
        api = apis[d["hostapi"]]["name"] if 0 <= d["hostapi"] < len(apis) else ""
        out.append(
            DeviceInfo(
                index=i,
                name=str(d["name"]),
                host_api=str(api),
                max_input_channels=int(d["max_input_channels"]),
                max_output_channels=int(d["max_output_channels"]),
                default_samplerate=float(d["default_samplerate"]),
                is_default_input=i == default_in,
                is_default_output=i == default_out,
            )
        )
    return out


def _resolve(sd: Any, device: int | str | None, kind: str) -> tuple[int, dict[str, Any], str]:
    """Find ``device`` (index, exact or unique partial name, ``None`` = default)."""
    try:
        info = sd.query_devices(device, kind=kind)
    except (ValueError, sd.PortAudioError) as exc:
        what = "default" if device is None else repr(device)
        raise AudioDeviceError(f"no {kind} device {what} ({exc})", device) from None
    apis = sd.query_hostapis()
    api = str(apis[info["hostapi"]]["name"]) if 0 <= info["hostapi"] < len(apis) else ""
    channels = info["max_input_channels" if kind == "input" else "max_output_channels"]
    if channels < 1:
        raise AudioDeviceError(f"device {info['name']!r} has no {kind} channels", info["name"], api)
    return int(info["index"]), info, api


def _pick_rate(
    sd: Any, index: int, info: dict[str, Any], api: str, kind: str, want: int | None
) -> int:
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    default = int(info["default_samplerate"])
    if want is not None:
        candidates: tuple[int, ...] = (want,)
    else:
        candidates = ((default,) if default in SUPPORTED_RATES else ()) + PREFERRED_RATES
    for rate in candidates:
        try:
            check(device=index, samplerate=rate, channels=1, dtype="int16")
        except (ValueError, sd.PortAudioError):
            continue
        return rate
    tried = ", ".join(str(r) for r in candidates)
    raise AudioDeviceError(
        f"{kind} device {info['name']!r} supports none of the rates {tried} Hz", info["name"], api
    )


class DevicePort(CallerPort):
    """Microphone and speaker as the caller side of a call.

    Threads: :meth:`start`, :meth:`read`, :meth:`write`, :meth:`clear_output` and
    :meth:`stop` run on the bridge's thread. The two PortAudio callbacks run on
    PortAudio's threads and only copy samples into ring buffers and count xruns; they take
    no lock, log nothing and never call back into the bridge.

    Stamps: a frame's ``t_ns`` is the capture time of its last sample, from the input
    callback's ADC time (PortAudio's stream clock, mapped to ``time.monotonic_ns``), less
    the resampler's delay; when the host API gives no ADC time, the drain time minus the
    queued audio and the input latency. :meth:`write` returns when its first sample will
    play: now + queued output + output latency.

    Args:
        input_device / output_device: index, (partial) name, or ``None`` for the default.
        rate: port rate of frames in and out (Hz).
        device_rate: force the device rate; ``None`` picks the device's default if the
            resampler supports it, else the first of :data:`PREFERRED_RATES` that opens.
        mute: start muted (frames are silence; timing is unchanged).
        half_duplex: silence the mic while agent audio plays (no echo canceller).
        capture: open the input device; ``False`` makes an output-only port (a speaker
            for a demo whose caller is a WAV file), whose :meth:`read` returns nothing.
    """

    def __init__(
        self,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        *,
        rate: int = 16000,
        device_rate: int | None = None,
        mute: bool = False,
        half_duplex: bool = False,
        capture: bool = True,
    ) -> None:
        self.rate = rate
        self.capture = capture
        self.input_device = input_device
        self.output_device = output_device
        self.muted = mute
        self.half_duplex = half_duplex
        self._want_rate = device_rate
        self.in_rate = 0
        self.out_rate = 0
        self._in_stream: Any = None
        self._out_stream: Any = None
        self._in_ring: RingBuffer | None = None
        self._out_ring: RingBuffer | None = None
        self._rs_in: StreamResampler | None = None
        self._rs_out: StreamResampler | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames_out = 0  # port-rate samples handed out as frames
        self._dev_drained = 0  # device-rate samples taken out of the input ring
        # Written by the input callback (one tuple store, atomic under the GIL):
        # (ADC time of the block's first sample on PortAudio's clock, its sample index).
        self._in_anchor: tuple[float, int] | None = None
        self._in_count = 0  # callback-owned: device samples written to the ring
        self._flush = False  # set by clear_output, honoured by the output callback
        self._play_until_ns = 0
        #: PortAudio-reported xruns (input overflow, output underflow) and ring overruns.
        self.input_overflows = 0
        self.output_underflows = 0

    # --- callbacks (PortAudio threads): copy and count only ------------------------------

    def _in_callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self.input_overflows += 1
        ring = self._in_ring
        if ring is None:
            return
        first = self._in_count
        self._in_count = first + ring.write(indata[:, 0])
        self._in_anchor = (time_info.inputBufferAdcTime, first)

    def _out_callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status.output_underflow:
            self.output_underflows += 1
        ring = self._out_ring
        if ring is None:
            outdata.fill(0)
            return
        if self._flush:
            ring.clear()
            self._flush = False
        ring.read_into(outdata[:, 0])

    # --- CallerPort -------------------------------------------------------------------

    def start(self, t0_ns: int) -> None:
        """Open both devices and start streaming.

        Raises:
            AudioDeviceError: a device is missing, busy, or supports none of the rates.
        """
        if self._in_stream is not None or self._out_stream is not None:
            return
        sd = _sd()
        if self.capture:
            in_idx, in_info, in_api = _resolve(sd, self.input_device, "input")
        out_idx, out_info, out_api = _resolve(sd, self.output_device, "output")
        self.out_rate = _pick_rate(sd, out_idx, out_info, out_api, "output", self._want_rate)
        self._out_ring = RingBuffer(self.out_rate * OUTPUT_BUFFER_MS // 1000)
        self._rs_out = StreamResampler(self.rate, self.out_rate)
        if not self.capture:
            in_info, in_api = out_info, out_api  # named in a start error below
        else:
            self.in_rate = _pick_rate(sd, in_idx, in_info, in_api, "input", self._want_rate)
            self._in_ring = RingBuffer(self.in_rate * INPUT_BUFFER_MS // 1000)
            self._rs_in = StreamResampler(self.in_rate, self.rate)
            self._in_stream = self._open(
                sd,
                sd.InputStream,
                "input",
                in_idx,
                in_info,
                in_api,
                self.in_rate,
                self._in_callback,
            )
        self._out_stream = self._open(
            sd,
            sd.OutputStream,
            "output",
            out_idx,
            out_info,
            out_api,
            self.out_rate,
            self._out_callback,
        )
        try:
            self._out_stream.start()
            if self._in_stream is not None:
                self._in_stream.start()
        except sd.PortAudioError as exc:
            self.stop()
            raise AudioDeviceError(
                f"cannot start audio streams ({exc})", in_info["name"], in_api
            ) from None

    def _open(
        self,
        sd: Any,
        stream_type: Any,
        kind: str,
        index: int,
        info: dict[str, Any],
        api: str,
        rate: int,
        callback: Any,
    ) -> Any:
        """Open one mono int16 PortAudio stream; a refusal closes the port and raises."""
        try:
            return stream_type(
                device=index,
                samplerate=rate,
                channels=1,
                dtype="int16",
                blocksize=rate * BLOCK_MS // 1000,
                latency="low",
                callback=callback,
            )
        except sd.PortAudioError as exc:
            self.stop()
            raise AudioDeviceError(
                f"cannot open {kind} device {info['name']!r} at {rate} Hz ({exc})",
                info["name"],
                api,
            ) from None

    def read(self, now_ns: int) -> list[CallerFrame]:
        """Drain captured audio as whole 20 ms frames at :attr:`rate` (possibly none)."""
        ring, rs = self._in_ring, self._rs_in
        if ring is None or rs is None:
            return []
        avail = ring.available
        if avail:
            x = ring.read(avail)
            self._dev_drained += len(x)
            y = rs.process(x)
            self._pending = np.concatenate((self._pending, y)) if len(self._pending) else y
        n = self.frame_samples
        frames: list[CallerFrame] = []
        while len(self._pending) >= n:
            pcm = self._pending[:n].copy()
            self._pending = self._pending[n:]
            self._frames_out += n
            t_ns = self._capture_ns(self._frames_out - 1, now_ns)
            if self.muted or (self.half_duplex and t_ns < self._play_until_ns):
                pcm[:] = 0
            frames.append(CallerFrame(pcm, t_ns))
        return frames

    def _capture_ns(self, out_index: int, now_ns: int) -> int:
        """Clock time at which port-rate sample ``out_index`` was captured."""
        rs = self._rs_in
        delay_s = rs.delay_ms / 1000 if rs is not None else 0.0
        dev_index = (out_index / self.rate - delay_s) * self.in_rate
        anchor = self._in_anchor
        stream = self._in_stream
        if anchor is not None and anchor[0] > 0 and stream is not None:
            mono = time.monotonic_ns()
            offset = mono - int(stream.time * 1e9)  # PortAudio stream clock → monotonic
            base_ns = int(anchor[0] * 1e9) + offset
            return base_ns + int((dev_index - anchor[1]) * 1e9 / self.in_rate)
        # No ADC time: the newest drained sample was captured one input latency ago.
        latency_s = float(stream.latency) if stream is not None else 0.0
        newest = self._dev_drained - 1
        return now_ns - int(latency_s * 1e9) - int((newest - dev_index) * 1e9 / self.in_rate)

    def write(self, pcm: NDArray[np.int16], now_ns: int) -> int:
        """Queue agent audio (at :attr:`rate`) for playout; return the clock time its first
        sample will play. Audio beyond the playout ring's capacity is dropped (counted in
        the ring's ``overruns``).
        """
        ring, rs = self._out_ring, self._rs_out
        if ring is None or rs is None:
            return now_ns
        y = rs.process(np.asarray(pcm, dtype=np.int16))
        queued = ring.available
        # The bridge hands over one frame per caller frame; the two device clocks differ
        # a little, so silence is skipped once two frames wait, which keeps the output's
        # latency bounded (agent audio is never skipped).
        if y.any() or queued < 2 * len(y):
            ring.write(y)
        latency_s = float(self._out_stream.latency) if self._out_stream is not None else 0.0
        delay_s = rs.delay_ms / 1000
        start_ns = now_ns + int((queued / self.out_rate + latency_s + delay_s) * 1e9)
        end_ns = start_ns + int(len(y) * 1e9 / self.out_rate)
        self._play_until_ns = max(self._play_until_ns, end_ns + HALF_DUPLEX_TAIL_MS * 1_000_000)
        return start_ns

    def flush_output(self) -> None:
        """Barge-in: drop queued agent audio (see :meth:`clear_output`)."""
        self.clear_output()

    def clear_output(self) -> int:
        """Drop queued agent audio at once (barge-in); returns the samples dropped (at the
        device rate, approximate). The output callback performs the drop.
        """
        ring = self._out_ring
        dropped = ring.available if ring is not None else 0
        self._flush = True
        self._play_until_ns = 0
        return dropped

    @property
    def output_queued_ms(self) -> float:
        """Agent audio queued for playout (ms)."""
        ring = self._out_ring
        return (
            1000.0 * ring.available / self.out_rate if ring is not None and self.out_rate else 0.0
        )

    def set_mute(self, muted: bool) -> None:
        """Mute or unmute the mic (frames keep flowing as silence)."""
        self.muted = muted

    def set_half_duplex(self, on: bool) -> None:
        self.half_duplex = on

    def xruns(self) -> dict[str, int]:
        """Counters: PortAudio input overflows / output underflows, ring overruns."""
        return {
            "input_overflows": self.input_overflows,
            "output_underflows": self.output_underflows,
            "input_ring_overruns": self._in_ring.overruns if self._in_ring else 0,
            "output_ring_overruns": self._out_ring.overruns if self._out_ring else 0,
        }

    def stop(self) -> None:
        """Stop and close both streams; idempotent."""
        for name in ("_in_stream", "_out_stream"):
            stream = getattr(self, name)
            setattr(self, name, None)
            if stream is None:
                continue
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # closing a stream whose device vanished; nothing to recover
                pass
