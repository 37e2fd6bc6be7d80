"""The caller-audio path of a call: what the bridge does with each caller frame.

One :class:`CallerPath` per :class:`~app.bridge.call.Bridge`, on the bridge's loop thread.
For each frame the port captured it mixes in the played probes (``Bridge.caller_mix``),
applies the mute / half-duplex gate, runs the local VAD at 16 kHz (barge-in, manual turn
start and end), resamples to the provider's input rate and sends, keeps the sent audio for
re-sending after a drop, writes the recording's left channel at the frame's clock position,
plays one frame of agent audio (``port.write_for_frame`` through the playout buffer) and
reports playout to protocols that want it.

It is the bridge's caller half, not a separate actor: it reads and changes the bridge's
per-call state (playout, the VAD, the supervisor's resend history, the levels) in order on
the same thread, through the bridge's public members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from app.audio.callermix import mix
from app.audio.pcm import FRAME_MS, int16_to_bytes, rms_dbfs
from app.audio.port import CallerFrame
from app.audio.resample import StreamResampler
from app.errors import ProviderError
from app.events import LocalSpeechStarted, LocalSpeechStopped

if TYPE_CHECKING:
    from app.bridge.call import Bridge

#: The local VAD's sample rate.
VAD_RATE = 16000


class CallerPath:
    """Takes the caller's frames through to the provider, the VAD and the recording.

    Args:
        bridge: the call this path belongs to (its port rate fixes the VAD resampler).
    """

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        rate = bridge.port.rate
        self._to_vad = StreamResampler(rate, VAD_RATE) if rate != VAD_RATE else None
        self._to_provider: StreamResampler | None = None

    def connected(self, input_rate: int) -> None:
        """The provider is connected and takes caller audio at ``input_rate`` Hz."""
        rate = self._bridge.port.rate
        self._to_provider = StreamResampler(rate, input_rate) if rate != input_rate else None

    async def on_frame(self, frame: CallerFrame) -> None:
        """Handle one caller frame (stamped at its capture end)."""
        bridge = self._bridge
        # A played probe is the caller: provider, VAD and the recording's left channel
        # all hear it, even while the microphone is muted.
        clip = bridge.caller_mix.take(len(frame.pcm), frame.t_ns - FRAME_MS * 1_000_000)
        pcm = mix(frame.pcm, clip)
        half = bridge.half_duplex or bridge.port.half_duplex_fallback
        if bridge.muted or (half and bridge.playback.audible):
            # Muted, push-to-talk released, or half-duplex while the agent speaks: the
            # provider and the local VAD hear silence; the recording keeps the real mic.
            heard = np.zeros_like(pcm) if clip is None else clip
        else:
            heard = pcm
        frame_vad_pos = bridge.vad.position
        if bridge.options.manual_turns:
            # The turn's start/end messages must reach the server before this frame.
            await self._local_vad(frame, heard)
        send = heard
        if self._to_provider is not None:
            send = self._to_provider.process(send)
        data = int16_to_bytes(send)
        bridge.supervisor.history.append(frame_vad_pos, data)
        if len(send) and bridge.supervisor.online.is_set():
            try:
                await bridge.provider.send_audio(data)
            except ProviderError:
                # The socket is gone; the event pump reports it and ends (or recovers) the
                # call. The caller audio stays in the recording.
                bridge.stats.unsent_frames += 1
        bridge.stats.send_delay_ns.append(bridge.clock.now_ns() - frame.t_ns)
        bridge.stats.frames += 1
        if not bridge.options.manual_turns:
            # After the send: the frame's audio waits for nothing it does not need.
            await self._local_vad(frame, heard)
        bridge.levels = (rms_dbfs(pcm), bridge.levels[1])
        if bridge.recorder is not None:
            bridge.recorder.left(pcm, frame.t_ns - FRAME_MS * 1_000_000)
        bridge.playback.play_frame(bridge.clock.now_ns(), frame.t_ns)
        if bridge.provider.protocol.reports_playout:
            await self._report_playout()
        bridge.levels = (bridge.levels[0], bridge.playback.level)
        if bridge.recorder is not None and bridge.recorder.error is not None:
            if not bridge.stopping:  # the disk refused a write: recording has stopped
                bridge.abort("store", bridge.recorder.error)

    async def _local_vad(self, frame: CallerFrame, heard: NDArray[np.int16]) -> None:
        """Local VAD on 16 kHz; edges mapped to the clock via the frame's capture stamp."""
        bridge = self._bridge
        vad = bridge.vad
        x16 = self._to_vad.process(heard) if self._to_vad is not None else heard
        for edge in vad.feed(x16):
            t = frame.t_ns - int((vad.position - edge.sample) * 1e9 / VAD_RATE)
            if edge.speaking:
                cur = bridge.timeline.current
                if cur is None or cur.agent_phase or bridge.supervisor.utterance_start is None:
                    bridge.supervisor.utterance_start = edge.sample
                bridge.emit(LocalSpeechStarted(t_ns=t, sample=edge.sample))
                local = bridge.options.barge_in == "local"
                if local and bridge.provider.protocol.caller_cuts_playout:
                    bridge.barge_in(bridge.clock.now_ns(), "local_vad")
                if bridge.options.manual_turns:
                    await bridge.send_quietly(bridge.provider.protocol.manual_turn_start())
            else:
                bridge.emit(LocalSpeechStopped(t_ns=t, sample=edge.sample))
                if bridge.options.manual_turns:
                    await bridge.send_quietly(bridge.provider.protocol.manual_turn_end())

    async def _report_playout(self) -> None:
        """Tell the protocol how much of the item being heard has played (Twilio answers
        the agent's marks from it)."""
        playback = self._bridge.playback
        item = playback.playing_item()
        item_id = item.item_id if item is not None else ""
        played = playback.buffer.played_ms(item_id) if item_id else 0
        await self._bridge.send_quietly(self._bridge.provider.protocol.played(item_id, played))
