"""``python -m ui [--demo] [--screenshot FILE]``: the UI with the scripted demo call.

The real desktop entry point (``voiceprobe``) lives in the composition root, which builds
the bridge controller and calls :func:`ui.app.run_app`.
"""

from __future__ import annotations

import argparse

from ui.app import run_demo


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m ui")
    parser.add_argument("--screenshot", metavar="FILE", help="render the demo offscreen to FILE")
    args = parser.parse_args()
    return run_demo(args.screenshot)


if __name__ == "__main__":
    raise SystemExit(main())
