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
# Four phases. Real-time calls mostly wait, so most test files run on several workers
# (each file whole on one worker, so module fixtures such as a recorded call run once).
# Tests that load pjsua2 (marked `sip`) then run in one worker of their own: pjsua2 must
# not share a process with unrelated tests. Beside them, on a second worker, the frozen
# app is built (marked `build`: a minute of CPU, no timing asserted). Then the files marked
# `paired` (one real-time call each, spans checked to tens of milliseconds: they mostly
# wait) run two at a time with nothing else. Last, tests marked `serial` (many calls at
# once, timing checked to the millisecond, CPU-time bounds) run alone, so no other load
# skews them. VOICEPROBE_TEST_WORKERS=0 runs everything in one process.
# Order: pytest-randomly shuffles test files and the tests inside each file (a file's
# tests stay together, so its module fixtures still run once; xdist workers share the
# seed). Every run of this command draws a new seed, printed below, so two runs test two
# different orders at no extra cost and order dependence cannot come back silently;
# VOICEPROBE_TEST_SEED=N repeats the order of a failed run (plain pytest:
# `-p randomly --randomly-seed=N`; `-p no:randomly` keeps file order).
workers="${VOICEPROBE_TEST_WORKERS:-3}"
seed="${VOICEPROBE_TEST_SEED:-$(( (RANDOM << 15) | RANDOM ))}"
echo "test order: --randomly-seed=$seed (repeat it with VOICEPROBE_TEST_SEED=$seed)"
pytest=(.venv/bin/python -m pytest -p no:cacheprovider -p randomly --randomly-seed="$seed")
if [ "$workers" = "0" ]; then
  exec "${pytest[@]}" "$@"
fi
status=0
run_phase() {
  local code=0
  "${pytest[@]}" "$@" || code=$?
  [ "$code" -eq 5 ] && code=0  # the arguments selected no test of this phase
  [ "$status" -eq 0 ] && status=$code
  return 0
}
# --durations: the slowest tests of each phase, to keep the whole run within its budget.
run_phase -n "$workers" --dist loadfile -m "not serial and not paired and not sip and not build" --durations=10 "$@"
run_phase -n 2 --dist loadgroup -m "(sip or build) and not serial and not paired" --durations=5 "$@"
run_phase -n 2 --dist loadfile -m "paired and not serial" --durations=5 "$@"
run_phase -m serial --durations=10 "$@"
exit "$status"
