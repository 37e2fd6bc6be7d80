#!/usr/bin/env bash
# Set up (idempotent) and run voiceprobe. With a display: the desktop app (the built-in
# simulator is the agent when no API key is configured). Without one: a headless demo call
# against the simulator with a generated caller WAV, printing the per-turn table.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ $# -gt 0 ]; then exec .venv/bin/voiceprobe "$@"; fi
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then exec .venv/bin/voiceprobe; fi
echo "run: no display; running a headless demo call against the built-in simulator" >&2
wav="$(.venv/bin/voiceprobe sample --barge-in 3:1500)"
exec .venv/bin/voiceprobe call --input "$wav" --provider sim
