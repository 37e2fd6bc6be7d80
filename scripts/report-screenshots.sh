#!/usr/bin/env bash
# Make the README's report screenshots: a small suite against the built-in simulator
# (three languages, two noise conditions, one misheard language and one agent answering in
# the wrong language, by the suite's simulator rules), a manual verdict on one call, then
# `voiceprobe report session` and `voiceprobe report coverage`, each rendered by headless
# Chromium (Debian's package, installed by scripts/setup.sh) into docs/screenshots/.
#
#   ./scripts/report-screenshots.sh [OUT_DIR]      # default: docs/screenshots
#
# Everything runs in a temporary data folder; nothing of the user's is read or written.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshots}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d /tmp/voiceprobe-report-shots.XXXXXX)"
trap 'rm -rf "$work"' EXIT
export VOICEPROBE_HOME="$work/home"
vp=(.venv/bin/voiceprobe)

cat > "$work/suite.yaml" <<'EOF'
name: report-demo
seed: 7
lead_ms: 200
idle_ms: 500
conversations:
  - id: weather
    turns:
      - say: {en: "What is the weather in Paris today", es: "Qué tiempo hace en París hoy", hi: "पेरिस में आज मौसम कैसा है"}
        simulate:
          tool_call: {name: get_weather, arguments: {city: Paris}}
          after_result: {en: "It is sunny in Paris today.", es: "Hace sol en París hoy.", hi: "आज पेरिस में धूप खिली है।"}
        expect:
          heard: {max_wer: 0.3}
          reply_language: true
          says: ["Paris|París|पेरिस"]
          tool: {name: get_weather}
          v2v_ms: {max: 1500}
      - say: {en: "Thank you very much", es: "Muchas gracias", hi: "बहुत धन्यवाद"}
        simulate:
          reply: {en: "You are very welcome, have a lovely day.", es: "De nada, que tenga un muy buen día.", hi: "आपका स्वागत है, आपका दिन बहुत शुभ हो।"}
        expect:
          reply_language: true
matrix:
  language: [en-GB, es-MX, hi-IN]
  noise: [clean, babble@10]
simulator:
  timing: {response_delay_ms: 50, first_audio_ms: 150, transcript_delay_ms: 50, realtime_factor: 4, endpointing_ms: 300}
  rules:
    - when: {language: hi}
      word_errors: 3
    - when: {language: es, turn: 2}
      reply_in: en
EOF

echo "report-screenshots: running a 6-call suite against the simulator" >&2
"${vp[@]}" suite run "$work/suite.yaml" --provider sim --parallel 3 --tag agent_version=v7 \
  > "$work/suite.txt" || true  # some checks fail by design (exit 1)

sid="$("${vp[@]}" sessions list --search language=es-MX --json \
  | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')"
"${vp[@]}" sessions verdict "$sid" --turn 2 fail --reason wrong_language \
  --note "Answered in English to a Spanish caller" --who reviewer
"${vp[@]}" report session "$sid" --html "$work/session.html"
"${vp[@]}" report coverage --html "$work/coverage.html"

shoot() {  # HTML file, PNG file, height
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --mute-audio \
    --disable-background-networking --disable-component-update --disable-sync \
    --no-first-run --user-data-dir="$work/chromium" --window-size="1200,$3" \
    --screenshot="$2" "file://$1" 2>/dev/null
  echo "report-screenshots: wrote $2" >&2
}
shoot "$work/session.html" "$out/report-session-1200.png" 2200
shoot "$work/coverage.html" "$out/report-coverage-1200.png" 2000
