"""Sound devices that come and go: PulseAudio's sinks and sources, and a watcher thread.

PortAudio (through ALSA) sees a PulseAudio system as two devices, ``pulse`` and
``default``; the sinks and sources behind them (a USB headset, a Bluetooth speaker, a
null sink in the tests) are PulseAudio's. :func:`pulse_devices` lists them with
``pactl`` (no ``pactl`` or no server: an empty list), and :class:`DeviceWatcher` polls a
listing on a thread of its own, off the UI thread, and reports when the set of devices
changes.

PortAudio's own list is a snapshot taken when it is initialised: seeing an ALSA device
that appeared later needs :func:`app.audio.devices.rescan_devices`, which must not run
while a stream is open. The watcher rescans only when its ``can_rescan`` says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

#: How often the watcher looks (s): a device plugged in shows within about this long.
POLL_S = 1.0
#: Longest a ``pactl`` listing may take (s); a hung sound server is treated as none.
PACTL_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class PulseDevice:
    """One PulseAudio sink or source.

    Attributes:
        name: PulseAudio's name (``alsa_output.usb-…``, ``vsink``, ``vsink.monitor``).
        kind: ``sink`` (plays) or ``source`` (captures; a sink's ``.monitor`` too).
        rate: its sample rate (Hz; 0 when not reported).
        is_default: the server's default sink / source.
    """

    name: str
    kind: str
    rate: int
    is_default: bool = False


def _pactl(*args: str) -> str | None:
    """``pactl`` output, or ``None`` without pactl or a reachable server."""
    exe = shutil.which("pactl")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            timeout=PACTL_TIMEOUT_S,
            env={**os.environ, "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _rate(spec: str) -> int:
    """The rate in a ``s16le 1ch 48000Hz`` sample spec (0 if absent)."""
    for word in spec.split():
        if word.endswith("Hz") and word[:-2].isdigit():
            return int(word[:-2])
    return 0


def pulse_devices() -> list[PulseDevice]:
    """The PulseAudio server's sinks and sources (empty without a server).

    Runs two or three short ``pactl`` commands: call it off the UI thread.
    """
    info = _pactl("info")
    if info is None:
        return []
    defaults = {}
    for line in info.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("Default Sink", "Default Source"):
            defaults[key.strip().split()[-1].lower()] = value.strip()
    out: list[PulseDevice] = []
    for kind in ("sink", "source"):
        listing = _pactl("list", "short", f"{kind}s") or ""
        for line in listing.splitlines():
            cols = line.split("\t")
            if len(cols) >= 4 and cols[1]:
                out.append(
                    PulseDevice(cols[1], kind, _rate(cols[3]), cols[1] == defaults.get(kind))
                )
    return out


def find_pulse_device(name: str, kind: str) -> PulseDevice | None:
    """The PulseAudio ``sink`` or ``source`` called exactly ``name``, if any."""
    return next((d for d in pulse_devices() if d.kind == kind and d.name == name), None)


def device_names() -> tuple[list[str], list[str]]:
    """Every device a call may name: ``(inputs, outputs)``, PortAudio's (by index and
    name) and PulseAudio's sources and sinks. For error messages and the device lists.
    """
    from app.audio.devices import list_devices
    from app.errors import AudioDeviceError

    inputs: list[str] = []
    outputs: list[str] = []
    try:
        for d in list_devices():
            if d.max_input_channels:
                inputs.append(f"{d.index}: {d.name}")
            if d.max_output_channels:
                outputs.append(f"{d.index}: {d.name}")
    except AudioDeviceError:
        pass  # no PortAudio: PulseAudio's devices may still be named
    for p in pulse_devices():
        (outputs if p.kind == "sink" else inputs).append(p.name)
    return inputs, outputs


def snapshot() -> tuple[str, ...]:
    """What the watcher compares: every PortAudio and PulseAudio device, by kind and name."""
    inputs, outputs = device_names()
    return tuple(sorted([f"in:{n}" for n in inputs] + [f"out:{n}" for n in outputs]))


class DeviceWatcher:
    """Polls the device list on a daemon thread and reports changes.

    Threads: ``on_change`` runs on the watcher's thread (hop to the UI thread from it, e.g.
    with a queued signal); it must not block for long. :meth:`start`, :meth:`stop` and
    :meth:`poll_now` may be called from any thread.

    Args:
        on_change: receives the new listing each time it differs from the last one (and
            the first listing too with ``report_first``).
        lister: produces the listing (default :func:`snapshot`).
        can_rescan: when given and true, PortAudio is re-initialised before each
            listing, so that ALSA devices that appeared show; it must be false while any
            stream is open (a call runs).
        interval_s: time between listings.
        report_first: also report the first listing (a view filled before the watcher
            started then misses nothing that changed in between).
    """

    def __init__(
        self,
        on_change: Callable[[tuple[str, ...]], None],
        lister: Callable[[], tuple[str, ...]] = snapshot,
        can_rescan: Callable[[], bool] | None = None,
        interval_s: float = POLL_S,
        report_first: bool = False,
    ) -> None:
        self._on_change = on_change
        self._lister = lister
        self._can_rescan = can_rescan
        self._interval = interval_s
        self._report_first = report_first
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        #: The latest listing (``None`` before the first).
        self.last: tuple[str, ...] | None = None
        #: Set after every listing (tests and callers waiting for the first one).
        self.listed = threading.Event()

    def start(self) -> None:
        """Start polling (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="voiceprobe-devicewatch", daemon=True
        )
        self._thread.start()

    def poll_now(self) -> None:
        """Look again at once instead of at the next interval."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling and join the thread."""
        thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._look()
            self._wake.wait(self._interval)
            self._wake.clear()

    def _look(self) -> None:
        if self._can_rescan is not None and self._can_rescan():
            from app.audio.devices import rescan_devices
            from app.errors import AudioDeviceError

            try:
                rescan_devices()
            except AudioDeviceError:
                pass  # no PortAudio at all: the PulseAudio part of the listing remains
        current = self._lister()
        changed = current != self.last if self.last is not None else self._report_first
        self.last = current
        self.listed.set()
        if changed and not self._stop.is_set():
            self._on_change(current)
