"""Bridge-added delay and load figures for one call (benchmarks and the session summary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.metrics.percentile import delay_figures, percentile


@dataclass(slots=True)
class BridgeStats:
    """Raw samples collected on the loop thread.

    Attributes:
        send_delay_ns: per caller frame: capture stamp of its last sample → its audio
            handed to the websocket (``send`` returned).
        recv_delay_ns: per agent audio chunk: websocket receive stamp → its samples queued
            in the playout buffer that the sink drains.
        frames: caller frames processed.
        unsent_frames: caller frames (or control messages) the socket refused.
        loop_lag_ns: per wake-up of the audio loop: how late it woke after its sleep
            (the loop was busy or stalled); a free probe of event-loop stalls, since the
            audio loop sleeps anyway until each caller frame is due.
    """

    send_delay_ns: list[int] = field(default_factory=list)
    recv_delay_ns: list[int] = field(default_factory=list)
    frames: int = 0
    unsent_frames: int = 0
    loop_lag_ns: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """p50/p95/max of both delays, and p99/max of the loop lag, in ms."""
        return {
            "caller_capture_to_ws_send": delay_figures(self.send_delay_ns),
            "ws_receive_to_playout": delay_figures(self.recv_delay_ns),
            "frames": self.frames,
            "unsent_frames": self.unsent_frames,
            "loop_lag": {
                "count": len(self.loop_lag_ns),
                "p99_ms": percentile([v / 1e6 for v in self.loop_lag_ns], 99),
                "max_ms": max(self.loop_lag_ns) / 1e6 if self.loop_lag_ns else None,
            },
        }
