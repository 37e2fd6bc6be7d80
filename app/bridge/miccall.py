"""``voiceprobe call --mic``: the desktop's microphone call without the window.

The call is the one the desktop places (:class:`~app.bridge.controller.CallController`):
the same caller port, built by the controller's port factory from the two device names,
through the same :func:`~app.bridge.session.run_call`, so it records the same session
folder and prints the same summary as a WAV call. What differs is how it ends: a person
ends a mic call with Ctrl-C (or a script with SIGTERM, or ``--max-seconds``), and that is
a normal end (exit 0), not an interruption.

Devices are named as the desktop names them: a PortAudio index or name, or under
PulseAudio a sink or source by its exact name; omitted, the system defaults (under
PulseAudio the default source and sink). A name nothing has is bad input: one line that
lists the devices that exist, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from app import eventloop
from app.audio.deviceport import DevicePort
from app.audio.devices import resolve_device
from app.cli_output import print_summary, progress_printer
from app.cli_support import EXIT_FAILED, EXIT_OK, UsageError, agent_setup
from app.errors import AudioDeviceError
from app.events import EventBase, Notice
from app.profile import Profile
from app.textsafe import printable


def device_arg(value: str | None) -> int | str | None:
    """A ``--mic``/``--speaker`` value: ``None``/empty = the default, digits = an index."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    return int(value) if value.isdigit() else value


def check_device(device: int | str | None, kind: str) -> None:
    """Refuse a device nothing has, naming the ones that exist.

    Raises:
        UsageError: one line: the device asked for and every device of its kind.
    """
    from app.audio.devicewatch import device_names

    what = "microphone" if kind == "input" else "speaker"
    try:
        resolve_device(device, kind)
    except AudioDeviceError as exc:
        inputs, outputs = device_names()
        there = ", ".join(inputs if kind == "input" else outputs) or "none"
        asked = "the default" if device is None else repr(device)
        raise UsageError(
            f"no {what} {printable(str(asked))} ({printable(str(exc))}); "
            f"{what}s: {printable(there)}"
        ) from None


def mic_port(
    mic: int | str | None, speaker: int | str | None, profile: Profile, aec: bool
) -> DevicePort:
    """The desktop's caller port for a mic call on ``mic`` and ``speaker`` with the
    profile's mic-path processing; ``aec=False`` is the bare microphone (no processing
    at all, no half duplex), to compare the echo."""
    from app.bridge.controller import device_port
    from app.bridge.request import CallRequest

    port = device_port(
        CallRequest(profile=profile, input_device=mic, output_device=speaker, aec=aec)
    )
    assert isinstance(port, DevicePort)
    return port


def run_mic_call(args: argparse.Namespace) -> int:
    """``voiceprobe call --mic [DEVICE] [--speaker DEVICE] [--aec on|off]``.

    Returns:
        0 when the call ended normally (Ctrl-C, SIGTERM, ``--max-seconds``, the agent),
        1 when it failed.

    Raises:
        VoiceprobeError: bad input (a device nothing has, ``--speaker``/``--aec``
            without ``--mic``, a bad profile…), before any session is written.
    """
    from app.bridge.session import CallHandle, CallSetup, run_call
    from app.store.reader import recover_unfinished

    if args.mic is None:
        raise UsageError("--speaker and --aec need --mic")
    agent = agent_setup(args)  # --tag first: before anything is read
    mic, speaker = device_arg(args.mic), device_arg(args.speaker)
    check_device(mic, "input")
    check_device(speaker, "output")
    aec = (args.aec or "on") == "on"
    port = mic_port(mic, speaker, agent.profile, aec)
    recover_unfinished(agent.data_root)
    setup = CallSetup(
        profile=agent.profile,
        plan=agent.plan,
        data_root=agent.data_root,
        tags=list(agent.tags),
        record=not args.no_record,
        options=agent.options,
        source="mic",
        prices=Path(args.prices) if getattr(args, "prices", None) else None,
    )
    handle = CallHandle()
    progress = None if args.json else progress_printer()
    ended = {"asked": False, "ready": False, "told": False}

    def attach(ev: EventBase) -> None:  # loop thread, every event
        bridge = handle.bridge
        if ended["asked"] and not ended["told"] and bridge is not None:
            ended["told"] = True  # Ctrl-C before the bridge existed: hang up now
            bridge.hangup("hangup")
        if not ended["ready"] and port.opened:
            ended["ready"] = True
            print(
                f"mic call: microphone {printable(port.opened.get('input', '-'))!r}, speaker "
                f"{printable(port.opened.get('output', '-'))!r} (Ctrl-C ends the call)",
                file=sys.stderr,
                flush=True,
            )
        if args.json and isinstance(ev, Notice) and ev.level != "info" and ev in port.notices:
            print(f"  {ev.level}: {printable(ev.message)}", file=sys.stderr)

    async def call() -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        def end() -> None:
            ended["asked"] = True
            handle.hangup()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, end)
        return await run_call(
            setup, port, [attach, *([progress] if progress else [])], handle=handle
        )

    summary = eventloop.run(call())
    summary["devices"] = port.device_stats()
    if not args.json:
        d = summary["devices"]
        print(
            f"devices: microphone {printable(d['input']['name'])!r} ({d['input']['rate']} Hz), "
            f"speaker {printable(d['output']['name'])!r} ({d['output']['rate']} Hz), "
            f"clock drift {d['drift_ppm']:+.1f} ppm"
        )
    print_summary(summary, args.json)
    return EXIT_OK if summary["ok"] else EXIT_FAILED
