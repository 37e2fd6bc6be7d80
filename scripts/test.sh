#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: lint, layering contract, pytest.
# Every service a test needs (PulseAudio, kamailio, baresip, sipp, the simulator) is
# started by the tests' own fixtures on loopback and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
export VOICEPROBE_HOME="${VOICEPROBE_HOME:-$(mktemp -d /tmp/voiceprobe-test.XXXXXX)}"
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/ruff check app ui sip tests
.venv/bin/lint-imports --config pyproject.toml
.venv/bin/mypy
# Two phases. Real-time calls mostly wait, so most test files run on several workers (each
# file whole on one worker, so module fixtures such as a recorded call run once); tests
# marked `serial` (a build, fuzzing, many calls at once, a CPU-time bound) then run alone,
# so their load never skews a timing check. VOICEPROBE_TEST_WORKERS=0: all serially.
workers="${VOICEPROBE_TEST_WORKERS:-3}"
pytest=(.venv/bin/python -m pytest -p no:cacheprovider)
if [ "$workers" = "0" ]; then
  exec "${pytest[@]}" "$@"
fi
status=0
"${pytest[@]}" -n "$workers" --dist loadfile -m "not serial" "$@" || status=$?
serial=0
"${pytest[@]}" -m serial "$@" || serial=$?
[ "$serial" -eq 5 ] && serial=0  # the arguments selected no serial test
[ "$status" -eq 5 ] && status=0
if [ "$status" -ne 0 ]; then exit "$status"; fi
exit "$serial"
