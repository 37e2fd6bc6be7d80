#!/usr/bin/env bash
# Smoke-test the frozen app: `voiceprobe --help`, and a headless call against the built-in
# simulator with a generated caller WAV (`call --input ... --provider sim --json`).
#
# Usage: packaging/smoke.sh [path/to/voiceprobe]   (default: dist/voiceprobe/voiceprobe)
# Exit 0 when both commands exit 0 and the call's JSON reports at least one turn.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="${1:-$ROOT/dist/voiceprobe/voiceprobe}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export VOICEPROBE_HOME="$TMP/home" QT_QPA_PLATFORM=offscreen

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

[ -x "$APP" ] || fail "no executable at $APP (run packaging/build.sh first)"

"$APP" --help >"$TMP/help.txt" || fail "voiceprobe --help exited $?"
grep -q "call" "$TMP/help.txt" || fail "--help does not list the call command"
echo "smoke: --help ok"

# The caller: speech from espeak-ng when present, else a speech-like tone burst (stdlib).
WAV="$TMP/caller.wav"
if command -v espeak-ng >/dev/null 2>&1; then
    espeak-ng -v en -s 150 -w "$WAV" "Hello, I would like to book a trip to Lisbon next week."
else
    python3 - "$WAV" <<'PY'
import math, struct, sys, wave
rate = 16000
frames = bytearray()
for n in range(int(rate * 3.5)):
    t = n / rate
    env = 0.0 if t < 0.3 or t > 3.0 else 0.5 * (1 + math.sin(2 * math.pi * 4 * t))
    v = env * (0.5 * math.sin(2 * math.pi * 180 * t) + 0.3 * math.sin(2 * math.pi * 720 * t))
    frames += struct.pack("<h", int(12000 * v))
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate); w.writeframes(bytes(frames))
PY
fi

rc=0
timeout 120 "$APP" call --input "$WAV" --provider sim --json >"$TMP/call.json" 2>"$TMP/call.err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$TMP/call.err" >&2; fail "voiceprobe call exited $rc"; }
python3 - "$TMP/call.json" <<'PY' || fail "the call's JSON has no turn"
import json, sys
summary = json.load(open(sys.argv[1]))
assert summary["provider"] == "sim" and summary["turns"], summary
print(f"smoke: call ok ({len(summary['turns'])} turn(s), session {summary['session_id']})")
PY
echo "smoke: PASS"
