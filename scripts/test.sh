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
.venv/bin/python -m pytest -p no:cacheprovider "$@"
