"""Bridge-added delay and load figures for one call (benchmarks and the session summary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.metrics.timeline import percentile


@dataclass(slots=True)
class BridgeStats:
    """Raw samples collected on the loop thread.

    Attributes:
        send_delay_ns: per caller frame: capture stamp of its last sample → its audio
            handed to the websocket (``send`` returned).
        recv_delay_ns: per agent audio chunk: websocket receive stamp → its samples queued
            in the playout buffer that the sink drains.
        frames: caller frames processed.
    """

    send_delay_ns: list[int] = field(default_factory=list)
    recv_delay_ns: list[int] = field(default_factory=list)
    frames: int = 0
    unsent_frames: int = 0

    def summary(self) -> dict[str, Any]:
        """p50/p95/max of both delays in ms."""

        def figs(values: list[int]) -> dict[str, float | None]:
            ms = [v / 1e6 for v in values]
            return {
                "count": len(ms),
                "p50_ms": percentile(ms, 50),
                "p95_ms": percentile(ms, 95),
                "max_ms": max(ms) if ms else None,
            }

        return {
            "caller_capture_to_ws_send": figs(self.send_delay_ns),
            "ws_receive_to_playout": figs(self.recv_delay_ns),
            "frames": self.frames,
            "unsent_frames": self.unsent_frames,
        }
