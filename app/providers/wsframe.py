"""The hot send: one masked text frame written straight to an open ``websockets``
connection's transport.

Caller audio leaves 50 times a second. ``websockets``' own ``send`` takes it through an
async context manager, the sans-I/O protocol's frame object, a serializer and a
``data_to_send`` list: about 90 µs of CPU per message on a 20 ms wake-up here (cold
caches), more than the socket write itself. :func:`try_send_text` writes the same bytes
(RFC 6455 §5.2: FIN + text opcode, masked payload length, a 4-byte key from the OS's
CSPRNG, the payload XORed with it) in one ``transport.write`` when nothing else can be in
flight, and declines otherwise, so the caller falls back to ``websockets.send``:

* the connection is a client's (frames are masked) and OPEN, no fragmented message is
  being sent or expected, and no extension was negotiated (the bridge dials with
  ``compression=None``);
* the protocol has no bytes of its own queued (a pong or close waiting to go out);
* the transport is not closing and its buffer is under the high-water mark (writes are
  not paused), so back-pressure still goes through ``websockets``' ``drain``.

The frame is built here rather than by ``websockets.frames.Frame.serialize``: after a
20 ms sleep that call costs about 82 µs for a 1.3 KB append, this one about 48 µs (the
same bytes but the key; ``tests/test_wsframe.py`` parses them with the library's own
parser).

Everything runs on the connection's loop thread, between ``websockets``' own writes, so
the frames on the wire stay whole and in order. Mask keys are cut from a 4 KiB block of
``os.urandom``: the RFC asks for unpredictable keys from a strong source, not for one
system call per frame.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from websockets.protocol import CLIENT, OPEN

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure-Python fallback ships with websockets
    from websockets.utils import apply_mask

_FIN_TEXT = 0x81
_MASK_BIT = 0x80
_POOL_BYTES = 4096


class MaskKeys:
    """Masking keys cut from blocks of ``os.urandom``."""

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = _POOL_BYTES

    def next(self) -> bytes:
        """The next 4-byte key."""
        if self._pos >= len(self._pool):
            self._pool = os.urandom(_POOL_BYTES)
            self._pos = 0
        pos = self._pos
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


def text_frame(payload: bytes, key: bytes) -> bytes:
    """A client's single-frame text message: header, ``key``, masked ``payload``."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", _FIN_TEXT, _MASK_BIT | n)
    elif n < 65536:
        head = struct.pack("!BBH", _FIN_TEXT, _MASK_BIT | 126, n)
    else:
        head = struct.pack("!BBQ", _FIN_TEXT, _MASK_BIT | 127, n)
    return head + key + apply_mask(payload, key)


def try_send_text(ws: Any, text: str, keys: MaskKeys) -> bool:
    """Write ``text`` as one frame on ``ws`` (a ``websockets`` asyncio connection) if it
    is safe to bypass its send path (the module docstring's conditions); ``False`` and
    nothing written otherwise."""
    protocol = ws.protocol
    if (
        protocol.state is not OPEN
        or protocol.side is not CLIENT
        or ws.send_in_progress is not None
        or ws.paused
        or protocol.expect_continuation_frame
        or protocol.extensions
        or protocol.writes
    ):
        return False
    transport = ws.transport
    if transport.is_closing():
        return False
    transport.write(text_frame(text.encode(), keys.next()))
    return True
