"""The composition root: the ``voiceprobe`` command and ``python -m ui``.

The one place that wires ``app`` (core and CLI), ``sip`` (softphone commands) and ``ui``
(the desktop window) together. Headless commands never import Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli import EXIT_FAILED, EXIT_OK, UsageError
from app.cli import main as cli_main
from app.cli_support import check_seconds
from app.textsafe import printable

if TYPE_CHECKING:  # Qt, pjsua2 and the core load only when a command needs them
    from PySide6.QtWidgets import QWidget

    from app.bridge.request import CallOverrides
    from sip.controller import SipController
    from ui.main_window import MainWindow


def _extend(sub: Any) -> None:
    p = sub.add_parser("gui", help="the desktop app (the default with no command)")
    p.set_defaults(handler=cmd_gui)
    p = sub.add_parser(
        "demo",
        help="a call from a caller WAV to the simulator in the desktop window, both sides "
        "heard on the speaker",
    )
    p.add_argument("--screenshot", metavar="FILE.png", help="save the window when done, exit")
    p.add_argument("--size", metavar="WxH", help="window size, e.g. 1024x768")
    p.add_argument("--presentation", action="store_true", help="presentation mode (large figures)")
    p.add_argument(
        "--speaker",
        metavar="DEVICE",
        help="play the call on this output device (default: the app's speaker; with "
        "--screenshot the call is silent unless a speaker is named)",
    )
    p.add_argument("--scenario", help="simulator scenario (default: the bundled demo)")
    p.add_argument("--timeout", type=float, default=120.0, help="give up after this long")
    p.set_defaults(handler=cmd_demo)
    try:
        from sip.cli import register
    except ImportError:  # pjsua2 not installed: the SIP commands are not offered
        return
    register(sub)


def cmd_gui(args: argparse.Namespace) -> int:
    """Open the desktop app; with no API key it talks to the built-in simulator."""
    from app.bridge.controller import CallController
    from ui.app import run_app, settings_data_root

    controller: CallController | None = None
    sip_controller: SipController | None = None

    def factory() -> CallController:
        nonlocal controller
        controller = CallController(data_root=settings_data_root())
        return controller

    def wire(window: MainWindow) -> None:
        try:
            import sip.controller  # noqa: F401  (pjsua2 present?)
        except ImportError:
            return

        def open_sip(parent: QWidget) -> None:
            # One SIP endpoint per process, made only when the tester opens the phone.
            nonlocal sip_controller
            from sip.controller import SipController
            from ui.sip_window import open_sip_window

            if sip_controller is None:
                sip_controller = SipController()
                sip_controller.subscribe(window.bus.post)  # SIP calls feed the same views
            open_sip_window(parent, sip_controller)

        window.set_sip_opener(open_sip)

    def wire_all(window: MainWindow) -> None:
        window.set_demo_starter(lambda: demo_options(window, None, speaker=True))
        wire(window)

    try:
        return run_app(factory, on_window=wire_all)
    finally:
        if sip_controller is not None:
            sip_controller.shutdown()
        if controller is not None:
            controller.shutdown()


def demo_wav(scenario_path: str | None) -> Path:
    """The bundled caller WAV for a scenario (generated on first use)."""
    from app.bridge.providers import DEFAULT_SCENARIO
    from app.sim.caller import write_caller_wav
    from app.sim.scenario import load_scenario
    from app.store.paths import samples_dir

    scenario = load_scenario(scenario_path or str(DEFAULT_SCENARIO))
    out = samples_dir() / f"{scenario.name}-demo.wav"
    if not out.exists():
        write_caller_wav(scenario, out, barge_in={2: 1500})
    return out


def demo_options(window: MainWindow, scenario: str | None, speaker: bool) -> CallOverrides:
    """What a demo sets on the window's call request: the scenario's caller WAV as the
    caller (a :class:`~app.audio.demoport.SpeakerDemoPort` playing both sides on the
    window's speaker when ``speaker``, else a silent file port), the simulator as the
    agent.

    Raises:
        VoiceprobeError: the scenario or its WAV cannot be read.
    """
    from app.audio.demoport import SpeakerDemoPort
    from app.audio.fileport import WavFilePort
    from app.bridge.providers import DEFAULT_SCENARIO

    wav = demo_wav(scenario)
    port = (
        SpeakerDemoPort.from_wav(wav, output_device=window.output_device.currentData())
        if speaker
        else WavFilePort.from_wav(wav)
    )
    return {
        "provider": "sim",
        "scenario": scenario or str(DEFAULT_SCENARIO),
        "port": port,
        "source": wav.name,
    }


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    w, sep, h = text.lower().partition("x")
    if not (
        sep and w.isdigit() and h.isdigit() and 320 <= int(w) <= 7680 and 240 <= int(h) <= 4320
    ):
        raise UsageError(f"--size takes WxH, e.g. 1024x768 (got {text!r})")
    return int(w), int(h)


def cmd_demo(args: argparse.Namespace) -> int:
    """A real call (core + simulator) with a WAV as the caller, shown in the window; the
    caller and the agent are both heard on the speaker."""
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        if not args.screenshot.lower().endswith(".png"):
            raise UsageError("--screenshot takes a .png path")
    size = _size(args.size)
    check_seconds(args.timeout, "--timeout")
    demo_wav(args.scenario)  # a bad scenario is bad input: one line, exit 2
    from app.bridge.controller import CallController
    from ui.app import build_main_window, ensure_app, save_screenshot

    app = ensure_app()
    controller = CallController()
    window = build_main_window(controller, devices=None if args.speaker else lambda: [])
    if args.speaker:
        index = window.output_device.findData(args.speaker)
        if index < 0:
            index = next(
                (
                    i
                    for i in range(window.output_device.count())
                    if args.speaker.lower() in window.output_device.itemText(i).lower()
                ),
                -1,
            )
        if index < 0:
            raise UsageError(f"no speaker {args.speaker!r} (see the app's Speaker list)")
        window.output_device.setCurrentIndex(index)
    if size is not None:
        window.resize(*size)
    window.set_demo_starter(
        lambda: demo_options(
            window, args.scenario, speaker=bool(args.speaker or not args.screenshot)
        )
    )
    window.show()
    if args.presentation:
        window.set_presentation(True)
    window.start_demo()
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline:
            app.processEvents()
            if controller.last_summary is not None and not controller.in_call:
                break
            if window.vm.failure is not None and not window.in_call:
                break  # it could not start: the window and stderr say why
            time.sleep(0.02)
        else:
            print("voiceprobe: error: the demo call did not finish in time", file=sys.stderr)
            return EXIT_FAILED
        if window.vm.failure is not None:
            code, message, fix = window.vm.failure
            print(
                f"voiceprobe: error: {printable(message)} ({printable(code)}); what to do: "
                f"{printable(fix)}",
                file=sys.stderr,
            )
        for _ in range(30):  # let the queued events render
            app.processEvents()
            time.sleep(0.01)
        summary = controller.last_summary or {}
        turns = summary.get("turns", [])
        if turns:
            window.waterfall.select_turn(min(1, len(turns) - 1))
        if args.screenshot:
            save_screenshot(window, args.screenshot)
            print(args.screenshot)
        else:
            app.exec()
        return EXIT_OK if summary.get("ok") else EXIT_FAILED
    finally:
        window.close()
        controller.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """``voiceprobe``: the desktop app with no arguments, else the CLI."""
    return cli_main(argv, extend=_extend, default=cmd_gui)


if __name__ == "__main__":
    sys.exit(main())
