"""Round-trip time to the provider: is a slow turn the network or the model?

Two sources, both cheap enough to sample through a whole call:

* the kernel's smoothed RTT of the connection's TCP socket (``TCP_INFO.tcpi_rtt`` on
  Linux), which measures the network path alone (to the proxy, when there is one), though
  a peer's delayed ACKs can add up to ~40 ms to it on a quiet socket;
* a WebSocket ping → pong round trip, which adds the peer's WebSocket stack. Gemini answers
  pings late (seconds), so its connections do not use this source.

:func:`summarize_network` turns the samples into the ``network_rtt`` figure of a session
summary. Pure functions apart from the socket read; no I/O on the event loop beyond one
``getsockopt``.
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any

from app.events import NetworkSample
from app.metrics.percentile import percentile

# struct tcp_info (linux/tcp.h): 8 one-byte fields, then u32s; tcpi_rtt (µs) is the 16th
# u32 after tcpi_rto, at byte offset 68.
_TCPI_RTT_OFFSET = 68
_TCP_INFO_LEN = 104


def tcp_rtt_ms(sock: socket.socket | None) -> float | None:
    """The kernel's smoothed RTT of ``sock`` in ms, or ``None`` where the platform does not
    report it (not Linux, not TCP, closed)."""
    if sock is None or not sys.platform.startswith("linux"):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, AttributeError):
        return None
    if len(info) < _TCPI_RTT_OFFSET + 4:
        return None
    rtt_us: int = struct.unpack_from("=I", info, _TCPI_RTT_OFFSET)[0]
    return rtt_us / 1000.0


def _figures(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": percentile(values, 50),
        "p95_ms": percentile(values, 95),
        "max_ms": max(values) if values else None,
    }


def summarize_network(samples: list[NetworkSample]) -> dict[str, Any]:
    """The ``network_rtt`` summary: p50/p95 of the round trip (``source``: ``ping`` where
    measured, else ``tcp``), the dial time of each connection, and each source's figures.
    """
    by: dict[str, list[float]] = {"connect": [], "tcp": [], "ping": []}
    for s in samples:
        by[s.source].append(s.ms)
    source = "ping" if by["ping"] else "tcp" if by["tcp"] else None
    main = _figures(by[source]) if source else _figures([])
    return {
        "source": source,
        **main,
        "connect_ms": by["connect"],
        "tcp": _figures(by["tcp"]),
        "ping": _figures(by["ping"]),
    }
