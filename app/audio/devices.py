"""Finding sound devices: PortAudio's list, PulseAudio sinks and sources by name, the
rate a device will open at, and the names a person knows them by.

``sounddevice`` is imported lazily: PortAudio scans the devices when it is imported, so a
process that starts a sound server later must call :func:`rescan_devices`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.audio.resample import SUPPORTED_RATES
from app.errors import AudioDeviceError

#: Device rates tried, in order, after the device's own default rate.
PREFERRED_RATES = (48000, 16000, 24000, 8000)
#: PulseAudio's per-client default sink / source, read when a stream is opened.
_PULSE_ENV = {"output": "PULSE_SINK", "input": "PULSE_SOURCE"}


def sounddevice_module() -> Any:
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
    sd = sounddevice_module()
    sd._terminate()
    sd._initialize()


def list_devices() -> list[DeviceInfo]:
    """Every PortAudio device, with its host API and default flags.

    Raises:
        AudioDeviceError: PortAudio is missing or cannot enumerate devices.
    """
    sd = sounddevice_module()
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


def resolve_portaudio(
    sd: Any, device: int | str | None, kind: str
) -> tuple[int, dict[str, Any], str]:
    """Find ``device`` (index, exact or unique partial name, ``None`` = default)."""
    try:
        info = sd.query_devices(device, kind=kind)
    except (ValueError, sd.PortAudioError) as exc:
        what = "default" if device is None else repr(device)
        raise AudioDeviceError(f"no {kind} device {what} ({exc})", device) from None
    return checked_device(sd, info, kind)


def resolve_device(
    device: int | str | None, kind: str
) -> tuple[int, dict[str, Any], str, str | None]:
    """Find ``device``: a PortAudio device (see :func:`resolve_portaudio`) or, failing that, a
    PulseAudio sink (``kind="output"``) or source (``"input"``) by its exact name, reached
    through PortAudio's ``pulse`` device.

    Returns:
        ``(index, info, host API, PulseAudio name or None)``.

    Raises:
        AudioDeviceError: neither PortAudio nor PulseAudio has it.
    """
    sd = sounddevice_module()
    try:
        return (*resolve_portaudio(sd, device, kind), None)
    except AudioDeviceError:
        if not isinstance(device, str):
            raise
        from app.audio.devicewatch import find_pulse_device

        if find_pulse_device(device, "sink" if kind == "output" else "source") is None:
            raise
        try:
            return (*resolve_portaudio(sd, "pulse", kind), device)
        except AudioDeviceError:
            raise AudioDeviceError(
                f"PulseAudio has {kind} device {device!r} but PortAudio has no 'pulse' device",
                device,
            ) from None


@contextlib.contextmanager
def pulse_target(kind: str, name: str | None) -> Iterator[None]:
    """Point PulseAudio clients opened inside at sink/source ``name`` (``None``: no change),
    and restore the environment after. Bridge thread only (the environment is shared)."""
    if name is None:
        yield
        return
    var = _PULSE_ENV[kind]
    saved = os.environ.get(var)
    os.environ[var] = name
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = saved


def checked_device(sd: Any, info: dict[str, Any], kind: str) -> tuple[int, dict[str, Any], str]:
    """``info``'s index and host API, if it has ``kind`` channels."""
    apis = sd.query_hostapis()
    api = str(apis[info["hostapi"]]["name"]) if 0 <= info["hostapi"] < len(apis) else ""
    channels = info["max_input_channels" if kind == "input" else "max_output_channels"]
    if channels < 1:
        raise AudioDeviceError(f"device {info['name']!r} has no {kind} channels", info["name"], api)
    return int(info["index"]), info, api


def pick_rate(
    sd: Any, index: int, info: dict[str, Any], api: str, kind: str, want: int | None
) -> int:
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    default = int(info["default_samplerate"])
    # A rate we asked for that the device refuses is converted, not refused: the device's
    # own rate is tried next, then the usual ones (the resampler takes 44.1 kHz and others).
    candidates = ((want,) if want is not None else ()) + (
        (default,) if default in SUPPORTED_RATES else ()
    )
    candidates += PREFERRED_RATES + (default,)
    candidates = tuple(dict.fromkeys(r for r in candidates if r > 0))
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


def close_quietly(stream: Any) -> None:
    """Abort and close a stream, whose device may have vanished (nothing to recover)."""
    try:
        stream.abort(ignore_errors=True)
        stream.close(ignore_errors=True)
    except Exception:  # noqa: BLE001 - a stream whose device vanished cannot be closed twice
        pass


def shown_name(info: dict[str, Any], kind: str) -> str:
    """A device's name as a person knows it: PortAudio's ``pulse``/``default`` devices
    are PulseAudio's default sink or source, shown by that name."""
    name = str(info["name"])
    if name in ("pulse", "default"):
        return _pulse_default("sink" if kind == "output" else "source") or name
    return name


def _pulse_default(kind: str) -> str | None:
    """PulseAudio's default sink or source now (``None`` without PulseAudio)."""
    from app.audio.devicewatch import pulse_devices

    return next((d.name for d in pulse_devices() if d.kind == kind and d.is_default), None)
