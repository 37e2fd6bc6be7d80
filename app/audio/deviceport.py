"""Real audio devices (PortAudio via sounddevice) as the caller port.

Capture and playback run as two separate streams (``InputStream`` and ``OutputStream``)
at the device's own rate, usually 48 kHz: a full-duplex stream at 16/24 kHz fails through
the ALSA pulse plugin. The PortAudio callbacks only copy samples into preallocated
:class:`~app.audio.ringbuffer.RingBuffer` objects and count xruns; resampling to the
port rate (16 kHz), framing and stamping happen in :meth:`DevicePort.read` and
:meth:`DevicePort.write` on the bridge's thread.

Finding devices and their rates lives in :mod:`app.audio.devices`.

One module on purpose (over 500 lines): one call's two device streams, from opening
them through their health (a device that goes away), the mic-path processing and clock
drift, to stopping them; each part reads and writes the same per-stream state.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.audio.aec import AudioProcessing, EchoCanceller, ProcessingUnavailable
from app.audio.devices import (
    close_quietly,
    pick_rate,
    pulse_target,
    resolve_device,
    shown_name,
    sounddevice_module,
)
from app.audio.drift import SETTLE_S, DriftCompensator
from app.audio.pcm import FRAME_MS
from app.audio.port import CallerFrame, CallerPort
from app.audio.recorder import StereoRecorder
from app.audio.resample import StreamResampler
from app.audio.ringbuffer import RingBuffer
from app.errors import AudioDeviceError
from app.events import Notice, NoticeLevel

#: Callback block length.
BLOCK_MS = 10
#: Capture ring length (how long the bridge may stall before samples are dropped).
INPUT_BUFFER_MS = 2000
#: The default mic-path processing: echo cancellation alone.
ECHO_CANCELLATION = AudioProcessing()
#: A block whose DAC time lies this much (s) after the previous block's end, in a callback
#: PortAudio flags as underflowed, follows an output underflow: the device played that
#: much silence (``DevicePort._timeline``). Half a block: DAC times jitter by well
#: under a millisecond.
REF_JUMP_S = BLOCK_MS / 2000
#: Without the underflow flag a jump must be this long (s) to count, either way. PulseAudio
#: moves its latency estimate by 2-7 ms a few times a call with nothing lost; following
#: those moves shifted the reference against the echo and the canceller lost 20-30 dB
#: until it re-adapted (measured on the null-sink rig: 4 of 14 runs, one false barge-in).
REF_UNFLAGGED_JUMP_S = 0.030
#: The reference may run this many 10 ms blocks short of its lead over the capture
#: (callback jitter) before silence stands in for it (``DevicePort._feed_reference``).
REF_SLACK_BLOCKS = 3
#: A longer jump is a restarted stream (a speaker moved), not silence to put in the
#: reference: the reference resynchronises to the new stream instead.
REF_MAX_GAP_S = 1.0
#: Playback ring length (agent audio may arrive much faster than real time).
OUTPUT_BUFFER_MS = 120_000
#: How long :meth:`DevicePort.start` waits for the speaker to play its first block. A
#: speaker can take seconds to start (the first stream of a fresh PulseAudio daemon: about
#: 1.8 s; a Bluetooth headset); audio queued meanwhile would play that much later than
#: stamped, and the queue would then catch up by skipping silence between turns.
SPEAKER_START_S = 3.0
#: A start at least this slow (ms) is reported in a notice.
SPEAKER_SLOW_MS = 250
#: A stream whose callbacks stop this long after they began is taken for a device that
#: went away (an unplugged headset); PortAudio's finished callback usually says so first.
STALL_MS = 2000
#: How often a named PulseAudio device's presence is checked (s, on a watcher thread).
PULSE_POLL_S = 0.25
#: How often :meth:`DevicePort.read` looks at the streams' health.
HEALTH_EVERY_MS = 100


class DevicePort(CallerPort):
    """Microphone and speaker as the caller side of a call.

    Threads: :meth:`start`, :meth:`read`, :meth:`write`, :meth:`flush_output` and
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
        processing: echo cancellation and the other mic-path stages
            (app/audio/aec.py); on by default (echo cancellation alone); ``None`` = no
            processing at all, and no half duplex either. When it cannot start
            (the library is missing, an unsupported rate), :attr:`half_duplex_fallback`
            turns true and a warning :class:`~app.events.Notice` says why.
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
        processing: AudioProcessing | None = ECHO_CANCELLATION,
        capture: bool = True,
    ) -> None:
        self.rate = rate
        self.capture = capture
        self.input_device = input_device
        self.output_device = output_device
        self.processing = processing
        self._aec: EchoCanceller | None = None
        # Far-end reference: the output callback copies every block it hands the device
        # here (silence included); read() resamples it to the port rate for the canceller.
        self._ref_ring: RingBuffer | None = None
        self._rs_ref: StreamResampler | None = None
        self._raw_pending = np.zeros(0, dtype=np.int16)
        # Output-callback-owned: when the next played sample is due on the DAC timeline
        # (s; 0 = not yet known), the output latency, and silence to copy into gaps.
        self._out_next_t = 0.0
        self._out_latency_s = 0.0
        self._ref_zeros = np.zeros(0, dtype=np.int16)
        # Bridge-thread side: port-rate samples fed to the canceller each way, the
        # reference's lead over the capture at the start, and stand-in silence fed while
        # the reference ran short, not yet taken back (see _feed_reference).
        self._far_fed = 0
        self._near_fed = 0
        self._ref_lead: int | None = None
        self._ref_debt = 0
        #: Output underflows filled with the silence they played in the reference.
        self.reference_gaps = 0
        #: True when processing was asked for but could not start: the owner of the call
        #: mutes the mic while the agent speaks instead (the bridge's half duplex).
        self.half_duplex_fallback = False
        #: Where the raw capture (before processing) goes, stamped as the processed
        #: frames: a mono recorder set by the session (``mic_raw.wav``), or ``None``.
        self.raw_recorder: StereoRecorder | None = None
        #: CPU time spent in the processor (ns) and port-rate samples it processed.
        self.processing_cpu_ns = 0
        self.processing_samples = 0
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
        # A barge-in: flush_output asks the playout ring to drop what it holds; the
        # output callback drops it, then treats the ring running dry before the next
        # write as the cut's silence (``_cut_at``: the ring position cut at), not as an
        # underrun.
        self._cut_at: int | None = None  # callback-owned
        self._short_blocks = 0  # callback-owned: output blocks the ring could not fill
        # Callback-owned: output-rate samples the speaker played that the ring did not
        # give (a dry ring's shortfall, an underflow's gap): its clock ran all the same.
        self._out_silence = 0
        #: PortAudio-reported xruns (input overflow, output underflow) and ring overruns.
        self.input_overflows = 0
        self.output_underflows = 0

    # Device health and drift (set up by :meth:`start`; class defaults keep the
    # constructor's state as it is).
    _drift: DriftCompensator | None = None
    # Playout figures (bridge thread): device-rate samples written to the playout ring,
    # its deepest level after a write, and its underrun count once playout had settled.
    _playout_fed = 0
    _playout_peak = 0
    _underruns_base: int | None = None
    _pulse: dict[str, str | None] = {}  # start() gives each port its own
    _names: dict[str, str] = {}  # start() gives each port its own
    _in_calls = 0  # callback-owned counters: a stream that stops calling back is dead
    _out_calls = 0
    _in_finished = False  # set by PortAudio's finished callback (the stream ended)
    _out_finished = False
    _gone = False  # a device went away and nothing replaced it: the call ends
    _health: dict[str, tuple[int, float]] = {}  # start() gives each port its own
    _next_health = 0.0
    _watcher: Any = None  # a DeviceWatcher while a PulseAudio device is named
    #: How long the speaker took to play its first block after it opened (ms; ``None``
    #: before :meth:`start`, or when it had played nothing after :data:`SPEAKER_START_S`).
    speaker_start_ms: float | None = None
    #: Every notice about the devices, in order (also sent to :attr:`emit`).
    notices: tuple[Notice, ...] = ()

    # --- callbacks (PortAudio threads): copy and count only ------------------------------

    def _in_callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        self._in_calls += 1
        if status.input_overflow:
            self.input_overflows += 1
        ring = self._in_ring
        if ring is None:
            return
        first = self._in_count
        self._in_count = first + ring.write(indata[:, 0])
        self._in_anchor = (time_info.inputBufferAdcTime, first)

    def _in_finished_callback(self) -> None:
        self._in_finished = True

    def _out_finished_callback(self) -> None:
        self._out_finished = True

    def _out_callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        self._out_calls += 1
        if status.output_underflow:
            self.output_underflows += 1
        ring = self._out_ring
        if ring is None:
            outdata.fill(0)
            return
        gap, skip = self._timeline(frames, time_info, status)
        cut_at = ring.apply_drop()
        if cut_at is not None:
            self._cut_at = cut_at
        written = ring.written  # before the read: what this block could take
        got = ring.read_into(outdata[:, 0])
        self._out_silence += gap + frames - got
        cut = self._cut_at
        if cut is not None and written > cut:
            cut = self._cut_at = None  # audio came after the cut: the ring counts again
        if got < frames and cut is None:
            self._short_blocks += 1  # ran dry mid-stream
        ref = self._ref_ring
        if ref is not None:  # the canceller's reference: what the device plays, when
            zeros = self._ref_zeros
            n = gap
            while n > 0:  # the gap's silence first, from a preallocated block of it
                k = ref.write(zeros[: min(n, len(zeros))])
                n = n - k if k else 0
            if gap:
                self.reference_gaps += 1
            ref.write(outdata[skip:, 0])

    def _timeline(self, frames: int, time_info: Any, status: Any) -> tuple[int, int]:
        """Place a block on the device's timeline (output callback; arithmetic only: no
        allocation, lock or logging): ``(gap, skip)``, the samples of silence the device
        played before it that no callback saw, and the samples at its start that overlap
        what was already placed.

        The block's first sample plays at its DAC time (PortAudio's stream clock; when the
        host API gives none, the callback's arrival on ``time.monotonic`` plus the output
        latency). Where that time lies later than the previous block's end, the device ran
        dry and played silence: the echo canceller's reference gets the same silence, so
        every reference sample keeps the time it played at, and the drift figure counts it
        as played (the speaker's clock ran on). With DAC times a jump of more than half a
        block in a callback PortAudio flags as underflowed is such a gap, and unflagged
        only one over :data:`REF_UNFLAGGED_JUMP_S` (smaller unflagged moves are the host's
        latency estimate, not silence played); arrival times jitter by blocks, so without
        DAC times only a flagged block is.
        """
        dac = float(time_info.outputBufferDacTime)
        t = dac if dac > 0 else time.monotonic() + self._out_latency_s
        expected = self._out_next_t
        gap = skip = 0
        if expected > 0:
            late = t - expected
            if dac > 0:
                jump = REF_JUMP_S if status.output_underflow else REF_UNFLAGGED_JUMP_S
                if jump < late < REF_MAX_GAP_S:
                    gap = int(late * self.out_rate + 0.5)
                # A block due earlier than the count says overlaps what the reference
                # already holds (a restarted stream plays sooner): its overlap is skipped.
                if -REF_MAX_GAP_S < late < -REF_UNFLAGGED_JUMP_S:
                    skip = min(frames, int(-late * self.out_rate + 0.5))
                    t = expected - skip / self.out_rate
            elif status.output_underflow and 0 < late < REF_MAX_GAP_S:
                gap = int(late * self.out_rate + 0.5)
            else:
                t = min(t, expected)  # arrivals jitter late; the earliest is on time
        self._out_next_t = t + frames / self.out_rate
        return gap, skip

    # --- CallerPort -------------------------------------------------------------------

    start_blocks = True  # a speaker may take seconds to play (_await_speaker)

    def start(self, t0_ns: int) -> None:
        """Open both devices and start streaming.

        A device may be a PortAudio device (index or name) or, under PulseAudio, a sink or
        source by its exact name (see :func:`resolve_device`). A rate the device refuses
        is converted to one it takes (see :func:`pick_rate`).

        Raises:
            AudioDeviceError: a device is missing, busy, or supports none of the rates.
        """
        if self._in_stream is not None or self._out_stream is not None:
            return
        sd = sounddevice_module()
        self._pulse, self._names, self._health = {}, {}, {}
        self._gone = False
        self.notices = ()
        if self.capture:
            in_idx, in_info, in_api, in_pulse = resolve_device(self.input_device, "input")
        out_idx, out_info, out_api, out_pulse = resolve_device(self.output_device, "output")
        self._open_output(sd, out_idx, out_info, out_api, out_pulse, self._want_rate)
        self._await_speaker()
        if self.capture:
            self.in_rate = pick_rate(sd, in_idx, in_info, in_api, "input", self._want_rate)
            self._in_ring = RingBuffer(self.in_rate * INPUT_BUFFER_MS // 1000)
            self._rs_in = StreamResampler(self.in_rate, self.rate)
            self._in_finished = False
            with pulse_target("input", in_pulse):
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
                self._start_stream(sd, self._in_stream, in_info, in_api)
            self._pulse["input"] = in_pulse
            self._names["input"] = in_pulse or shown_name(in_info, "input")
        if self.capture:
            self._start_processing()
        if any(self._pulse.values()):
            self._watch_pulse()
        self._notify(
            "info",
            ", ".join(
                f"{'microphone' if kind == 'input' else 'speaker'} {name!r} at "
                f"{self.in_rate if kind == 'input' else self.out_rate} Hz"
                for kind, name in sorted(self._names.items())
            ),
        )

    @property
    def opened(self) -> dict[str, str]:
        """The devices open now: ``{"input": name, "output": name}`` (PulseAudio's name
        when one was named), empty before :meth:`start`."""
        return dict(self._names)

    def _open_output(
        self,
        sd: Any,
        index: int,
        info: dict[str, Any],
        api: str,
        pulse: str | None,
        want_rate: int | None,
    ) -> None:
        """Open and start the output stream; a new rate gets a new ring and resampler (the
        ring's queued audio is kept when the rate stays)."""
        rate = pick_rate(sd, index, info, api, "output", want_rate)
        if rate != self.out_rate or self._out_ring is None:
            self.out_rate = rate
            self._out_ring = RingBuffer(rate * OUTPUT_BUFFER_MS // 1000)
            self._rs_out = StreamResampler(self.rate, rate)
            self._drift = DriftCompensator(rate)
            self._playout_fed, self._underruns_base = 0, None  # a new ring counts anew
            self._cut_at = None  # a position of the old ring
        elif self._drift is not None:  # the same ring, drained by another device
            self._drift.reset()
            self._drift.new_speaker()
        self._out_finished = False
        with pulse_target("output", pulse):
            self._out_stream = self._open(
                sd, sd.OutputStream, "output", index, info, api, rate, self._out_callback
            )
            self._start_stream(sd, self._out_stream, info, api)
        self._out_latency_s = float(self._out_stream.latency)
        self._pulse["output"] = pulse
        self._names["output"] = pulse or shown_name(info, "output")

    def _await_speaker(self) -> None:
        """Wait until the speaker has played one block of silence, at most
        :data:`SPEAKER_START_S`, before the microphone opens and the call's audio flows:
        the call starts when the tester can hear it, and every playback stamp counts from
        a speaker that plays. A slow start is reported; so is a speaker that plays nothing
        (its audio then queues, and playback stamps run early until it plays)."""
        ring = self._out_ring
        if ring is None:
            return
        began = time.monotonic()
        ring.write(np.zeros(self.out_rate * BLOCK_MS // 1000, dtype=np.int16))
        played = ring.written
        end = began + SPEAKER_START_S
        while ring.consumed < played and time.monotonic() < end:
            time.sleep(0.002)  # polling the device's first pull; bounded above
        name = self._names.get("output", "?")
        if ring.consumed < played:
            self.speaker_start_ms = None
            self._notify(
                "warning",
                f"speaker {name!r} has played nothing {SPEAKER_START_S:g} s after it opened; "
                "agent audio waits for it and playback times run early until it plays",
            )
            return
        self.speaker_start_ms = round(1000 * (time.monotonic() - began), 1)
        if self.speaker_start_ms >= SPEAKER_SLOW_MS:
            self._notify(
                "info",
                f"speaker {name!r} took {self.speaker_start_ms / 1000:.2f} s to start "
                "playing; the call began once it did",
            )

    # --- device health (bridge thread) -------------------------------------------------

    def _watch_pulse(self) -> None:
        """Watch PulseAudio's devices on a thread: a named sink or source that is unloaded
        (a headset unplugged) can leave PortAudio's stream calling back as if nothing
        happened, so its presence is checked by name."""
        from app.audio.devicewatch import DeviceWatcher, pulse_devices

        def listing() -> tuple[str, ...]:
            return tuple(f"{d.kind}:{d.name}" for d in pulse_devices())

        # Its latest listing (``watcher.last``, one attribute store) is all we read.
        self._watcher = DeviceWatcher(lambda _: None, lister=listing, interval_s=PULSE_POLL_S)
        self._watcher.start()

    def check_devices(self) -> None:
        """Notice a device that went away and move the call or end it (bridge thread;
        :meth:`read` calls it, at most every :data:`HEALTH_EVERY_MS`).

        A stream is dead when PortAudio finished it on its own (the ALSA/PulseAudio stream
        failed), it is no longer active, or its callbacks stopped for :data:`STALL_MS`
        after they had begun. A dead speaker moves to the system default output (the
        queued agent audio is kept when the rate stays); a dead microphone ends the call
        cleanly (:attr:`exhausted`), since capture stamps cannot be carried across two
        device clocks. Either way a :class:`~app.events.Notice` says which, and the
        recording, which the bridge writes, keeps everything up to the end.
        """
        now = time.monotonic()
        if now < self._next_health or self._gone:
            return
        self._next_health = now + HEALTH_EVERY_MS / 1000
        for kind, stream, calls, finished in (
            ("output", self._out_stream, self._out_calls, self._out_finished),
            ("input", self._in_stream, self._in_calls, self._in_finished),
        ):
            if stream is None:
                continue
            seen, since = self._health.get(kind, (0, now))
            if calls != seen:
                self._health = {**self._health, kind: (calls, now)}
            stalled = calls == seen and calls > 0 and now - since >= STALL_MS / 1000
            pulse = self._pulse.get(kind)
            present = self._watcher.last if self._watcher is not None else None
            unloaded = (
                pulse is not None
                and present is not None
                and f"{'sink' if kind == 'output' else 'source'}:{pulse}" not in present
            )
            if finished or stalled or unloaded or not stream.active:
                self._device_lost(kind, "stopped answering" if stalled else "went away")
                return

    def _device_lost(self, kind: str, how: str) -> None:
        """Close the dead stream; reopen the speaker on the system default, or end."""
        what = "speaker" if kind == "output" else "microphone"
        name = self._names.get(kind, "?")
        attr = "_out_stream" if kind == "output" else "_in_stream"
        stream = getattr(self, attr)
        setattr(self, attr, None)
        close_quietly(stream)
        self._health = {k: v for k, v in self._health.items() if k != kind}
        if kind == "output":
            sd = sounddevice_module()
            try:
                index, info, api, _ = resolve_device(None, "output")
                self._open_output(sd, index, info, api, None, self.out_rate)
            except AudioDeviceError as exc:
                self._gone = True
                self._notify(
                    "error",
                    f"{what} {name!r} {how} and the system default cannot play ({exc}); "
                    "the call ends, the recording is kept",
                )
                return
            default = self._names["output"]
            self._notify(
                "warning", f"{what} {name!r} {how}; playing on the system default {default!r}"
            )
            return
        self._gone = True
        self._notify("error", f"{what} {name!r} {how}; the call ends, the recording is kept")

    def _notify(self, level: NoticeLevel, message: str) -> None:
        ev = Notice(t_ns=time.monotonic_ns(), level=level, message=message)
        self.notices = (*self.notices, ev)
        if self.emit is not None:
            self.emit(ev)

    @property
    def exhausted(self) -> bool:
        """True once a device went away with nothing to replace it: the bridge ends the
        call as it ends a finished WAV (after the agent is quiet)."""
        return self._gone

    @property
    def drift_ppm(self) -> float:
        """Speaker clock against the microphone's, measured by the playout's drift
        compensation (ppm, positive: the speaker runs fast; 0 until measured)."""
        return self._drift.drift_ppm if self._drift is not None else 0.0

    def device_stats(self) -> dict[str, Any]:
        """The devices of the call for its summary: names and rates, measured drift,
        xruns and the notices about devices."""
        return {
            "input": {"name": self._names.get("input"), "rate": self.in_rate},
            "output": {
                "name": self._names.get("output"),
                "rate": self.out_rate,
                "start_ms": self.speaker_start_ms,
            },
            "drift_ppm": round(self.drift_ppm, 1),
            "playout": {
                "peak_ms": round(self.playout_peak_ms, 1),
                "underruns": self.playout_underruns,
            },
            "xruns": self.xruns(),
            "notices": [n.message for n in self.notices],
        }

    def _start_stream(self, sd: Any, stream: Any, info: dict[str, Any], api: str) -> None:
        try:
            stream.start()
        except sd.PortAudioError as exc:
            self.stop()
            raise AudioDeviceError(
                f"cannot start audio streams ({exc})", info["name"], api
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
                finished_callback=(
                    self._in_finished_callback if kind == "input" else self._out_finished_callback
                ),
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
        self.check_devices()
        ring, rs = self._in_ring, self._rs_in
        if ring is None or rs is None:
            return []
        avail = ring.available
        if avail:
            x = ring.read(avail)
            self._dev_drained += len(x)
            y = rs.process(x)
            self._raw_pending = (
                np.concatenate((self._raw_pending, y)) if len(self._raw_pending) else y
            )
            if self._aec is not None:
                y = self._process(y)
            self._pending = np.concatenate((self._pending, y)) if len(self._pending) else y
        n = self.frame_samples
        frames: list[CallerFrame] = []
        # The processor returns whole 10 ms blocks and a frame is two of them, so a frame
        # is complete processed exactly when it is complete raw: no added delay.
        while len(self._pending) >= n:
            pcm = self._pending[:n].copy()
            raw = self._raw_pending[:n]
            self._pending = self._pending[n:]
            self._raw_pending = self._raw_pending[n:]
            self._frames_out += n
            t_ns = self._capture_ns(self._frames_out - 1, now_ns)
            if self.raw_recorder is not None:
                # Stamped as the bridge stamps the processed frame in audio.wav.
                self.raw_recorder.left(raw, t_ns - FRAME_MS * 1_000_000)
            frames.append(CallerFrame(pcm, t_ns))
        return frames

    # --- mic-path processing (bridge thread) --------------------------------------------

    def _start_processing(self) -> None:
        """Start the processor asked for at the port rate; on failure fall back to half
        duplex with a warning that says why (never silently)."""
        config = self.processing
        if config is None or not config.active or self._aec is not None:
            return
        latency_ms = 1000.0 * sum(
            float(stream.latency) for stream in (self._in_stream, self._out_stream) if stream
        )
        try:
            self._aec = EchoCanceller(config, self.rate, stream_delay_ms=latency_ms)
        except ProcessingUnavailable as exc:
            self.half_duplex_fallback = config.aec
            then = "half duplex instead (the mic is muted while the agent speaks)"
            self._notify("warning", f"{exc}; {then}" if config.aec else str(exc))
            return
        if config.aec:
            self._ref_zeros = np.zeros(max(self.out_rate, 8000) // 10, dtype=np.int16)
            # Published last: the output callback starts copying once it sees the ring.
            self._ref_ring = RingBuffer(max(self.out_rate, 8000) * INPUT_BUFFER_MS // 1000)
        self._notify("info", f"mic processing: {config.describe()} at {self.rate} Hz")

    def _process(self, y: NDArray[np.int16]) -> NDArray[np.int16]:
        """Feed the reference played so far, then process the capture ``y`` (port rate)."""
        aec = self._aec
        assert aec is not None
        started = time.thread_time_ns()
        ref = self._ref_ring
        if ref is not None and self.out_rate:
            if self._rs_ref is None or self._rs_ref.in_rate != self.out_rate:
                self._rs_ref = StreamResampler(self.out_rate, self.rate)  # speaker moved
            # The output callback placed every played sample by its DAC time, underflow
            # silence included (_timeline): the ring is the device's timeline.
            far = self._rs_ref.process(ref.read(ref.available)) if ref.available else None
            self._feed_reference(aec, far, len(y))
        self._near_fed += len(y)
        out = aec.near(y)
        self.processing_cpu_ns += time.thread_time_ns() - started
        self.processing_samples += len(y)
        return out

    def _feed_reference(
        self, aec: EchoCanceller, far: NDArray[np.int16] | None, near: int
    ) -> None:
        """Feed the reference (port rate) so that it keeps its lead over the capture.

        AEC3 pairs render and capture blocks by the order of the calls: a capture block
        that finds no new render block (the output callback is stalled, or late) shifts
        the echo delay it sees and it re-converges. So when the reference runs more than
        :data:`REF_SLACK_BLOCKS` short of ``near`` more capture samples plus the lead it
        had at the start, silence stands in for the missing part (what a stalled output
        plays). The ring is the device's timeline (the output callback put an underflow's
        silence in it at its place), so each stand-in sample takes the place of the next
        sample to arrive: that many are skipped, whatever they hold, and every later
        sample keeps its time.
        """
        if far is not None and len(far):
            if self._ref_lead is None:  # reference ahead of the capture, this one included
                self._ref_lead = self._far_fed + len(far) - (self._near_fed + near)
            repay = min(self._ref_debt, len(far))
            if repay:
                far = far[repay:]
                self._ref_debt -= repay
            aec.far(far)
            self._far_fed += len(far)
        if self._ref_lead is None:
            return
        short = self._near_fed + near + self._ref_lead - self._far_fed
        if short > aec.block * REF_SLACK_BLOCKS:
            aec.far(np.zeros(short, dtype=np.int16))
            self._far_fed += short
            self._ref_debt += short

    @property
    def processing_state(self) -> str:
        """What runs on the mic path now: the stages, ``"half duplex (fallback)"`` or
        ``"off"``."""
        if self._aec is not None:
            return self._aec.config.describe()
        return "half duplex (fallback)" if self.half_duplex_fallback else "off"

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
        queued = ring.kept  # less a flush the output callback has not done yet
        if self._drift is not None:  # fed on the mic's clock, drained on the speaker's
            y = self._drift.process(y, queued, self._out_silence)
        # The bridge hands over one frame per caller frame; the two device clocks differ
        # a little, so silence is skipped once two frames wait, which keeps the output's
        # latency bounded (agent audio is never skipped).
        if y.any() or queued < 2 * len(y):
            ring.write(y)
        elif self._drift is not None:
            self._drift.discard(len(y))
        self._count_playout(ring, len(y))
        latency_s = float(self._out_stream.latency) if self._out_stream is not None else 0.0
        delay_s = rs.delay_ms / 1000
        start_ns = now_ns + int((queued / self.out_rate + latency_s + delay_s) * 1e9)
        return start_ns

    def _count_playout(self, ring: RingBuffer, n: int) -> None:
        """Track the queue's peak; start counting underruns once playout has settled."""
        self._playout_peak = max(self._playout_peak, ring.available)
        self._playout_fed += n
        if self._underruns_base is None and self._playout_fed >= SETTLE_S * self.out_rate:
            self._underruns_base = self._short_blocks

    @property
    def playout_peak_ms(self) -> float:
        """The deepest the speaker's queue has been after a write, over the whole call
        (ms; the drift compensation keeps it near its target)."""
        return 1000.0 * self._playout_peak / self.out_rate if self.out_rate else 0.0

    @property
    def playout_underruns(self) -> int:
        """Speaker callbacks that found the queue short (played silence mid-stream), counted
        from :data:`~app.audio.drift.SETTLE_S` of audio on: the call's first blocks, before
        the queue has its level, are not counted, nor is the silence right after a
        barge-in's flush (until the next block arrives the speaker plays the cut)."""
        base = self._underruns_base
        return self._short_blocks - base if self._out_ring is not None and base is not None else 0

    @property
    def input_samples(self) -> int:
        """Device-rate samples the microphone has captured so far (any thread may read
        it: the input callback's counter)."""
        return self._in_count

    def flush_output(self) -> None:
        """Barge-in: drop the agent audio queued so far (the output callback performs the
        drop at its next block; blocks written after this call are kept, and the next
        quiet one refills the queue to its working level, see ``DriftCompensator.reset``).
        """
        ring = self._out_ring
        if ring is None:
            return
        ring.request_drop()
        if self._rs_out is not None:  # the cut audio's filter tail would play after it
            self._rs_out.reset()
        if self._drift is not None:
            self._drift.reset(ring.available)

    @property
    def output_queued_ms(self) -> float:
        """Agent audio queued for playout (ms)."""
        ring = self._out_ring
        return (
            1000.0 * ring.available / self.out_rate if ring is not None and self.out_rate else 0.0
        )

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
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        for name in ("_in_stream", "_out_stream"):
            stream = getattr(self, name)
            setattr(self, name, None)
            if stream is not None:
                close_quietly(stream)
