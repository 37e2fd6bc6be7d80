"""A demo's caller port: a WAV file as the caller, both sides heard on a speaker.

For ``voiceprobe demo`` and the app's Demo call: the room hears the caller's recorded
lines and the agent's replies, as a listener on the line would. The call itself is the
WAV file port's (:class:`~app.audio.fileport.WavFilePort`): frames, stamps and the
recording come from its paced, virtual sink, so a demo's figures are those of the same
call without a speaker. The speaker is a second, output-only :class:`DevicePort` that
gets each caller frame mixed with the agent audio that follows it.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from app.audio.deviceport import DevicePort
from app.audio.fileport import WavFilePort
from app.audio.port import CallerFrame
from app.audio.resample import resample
from app.audio.wavio import read_wav


class SpeakerDemoPort(WavFilePort):
    """:class:`WavFilePort`, and everything it plays or hears also on a speaker.

    Runs on the bridge's thread, like its parent; the speaker's PortAudio callback only
    copies (see :class:`DevicePort`).

    Args:
        pcm: caller audio, int16 mono at ``rate``.
        rate: the port rate.
        output_device: the speaker (index, partial name, ``None`` = the default).
        speaker: a ready output-only port (tests); default: a :class:`DevicePort` on
            ``output_device`` with capture off.
    """

    start_blocks = True  # the speaker may take seconds to play (DevicePort.start)

    def __init__(
        self,
        pcm: NDArray[np.int16],
        rate: int = 16000,
        output_device: int | str | None = None,
        speaker: DevicePort | None = None,
    ) -> None:
        super().__init__(pcm, rate)
        self.speaker = speaker or DevicePort(output_device=output_device, rate=rate, capture=False)
        # Caller frames released and not yet mixed (the bridge writes one agent block per
        # caller frame, in order).
        self._heard: deque[CallerFrame] = deque()

    @classmethod
    def from_wav(
        cls, path: str | Path, rate: int = 16000, output_device: int | str | None = None
    ) -> SpeakerDemoPort:
        """Load a WAV file (mixed to mono, converted to ``rate``) as the caller.

        Raises:
            AudioFormatError: the file cannot be read.
        """
        pcm, file_rate = read_wav(path)
        return cls(resample(pcm, file_rate, rate), rate, output_device)

    def start(self, t0_ns: int) -> None:
        """Open the speaker, then anchor the file's clock.

        Raises:
            AudioDeviceError: no speaker (no audio server, no such device).
        """
        began = time.monotonic_ns()
        self.speaker.emit = self.emit  # the speaker's notices (a slow start) join the call's
        self.speaker.start(t0_ns)
        self._heard.clear()
        # The file's clock starts once the speaker plays (it may take seconds to), or its
        # first frames would all fall due at once.
        super().start(t0_ns + time.monotonic_ns() - began)

    def read(self, now_ns: int) -> list[CallerFrame]:
        frames = super().read(now_ns)
        self._heard.extend(frames)
        return frames

    def write_for_frame(self, pcm: NDArray[np.int16], now_ns: int, frame_t_ns: int) -> int:
        """Queue the agent block on the file's sink (its stamp is the call's) and play it,
        mixed with the caller frame it follows, on the speaker."""
        stamp = super().write_for_frame(pcm, now_ns, frame_t_ns)
        caller = None
        while self._heard and self._heard[0].t_ns <= frame_t_ns:
            caller = self._heard.popleft()
        mixed = np.asarray(pcm, dtype=np.int32)
        if caller is not None and len(caller.pcm) == len(mixed):
            mixed = mixed + caller.pcm
        self.speaker.write(np.clip(mixed, -32768, 32767).astype(np.int16), now_ns)
        return stamp

    def write(self, pcm: NDArray[np.int16], now_ns: int) -> int:
        """Agent audio written with no caller frame named: queued and played as is."""
        stamp = super().write(pcm, now_ns)
        self.speaker.write(np.asarray(pcm, dtype=np.int16), now_ns)
        return stamp

    def flush_output(self) -> None:
        """Barge-in: the speaker drops the agent audio it has queued."""
        self.speaker.flush_output()

    def stop(self) -> None:
        super().stop()
        self.speaker.stop()
